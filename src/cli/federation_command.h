// `plinth federation create|list|show|update|delete`: federation relationships on plinth
// serve, with the flags of `spire-server federation` (-trustDomain, -bundleEndpointURL,
// -bundleEndpointProfile https_web|https_spiffe, -endpointSpiffeID, and an optional initial
// bundle from -trustDomainBundlePath in -trustDomainBundleFormat pem|spiffe).
#ifndef PLINTH_CLI_FEDERATION_COMMAND_H_
#define PLINTH_CLI_FEDERATION_COMMAND_H_

#include "cli/command.h"

namespace plinth::cli {

// Registers the `federation` group on `root`. `console` must outlive `root`.
//   create: a new relationship (exit 1 with ALREADY_EXISTS if there is one); with a bundle
//           file, also sets that trust domain's bundle.
//   list:   every relationship.
//   show:   the relationship with -trustDomain; exit 3 if absent.
//   update: -trustDomain plus the fields to change; only the flags given are written.
//   delete: the relationship with -trustDomain (its bundle stays); exit 3 if absent.
void RegisterFederationCommands(CLI::App& root, Console& console);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_FEDERATION_COMMAND_H_
