// `plinth bundle show|list|count|set|append|delete|prune`: trust bundles on plinth serve, read
// and written in the formats of `spire-server bundle` (-format pem|spiffe; see
// internal/bundle_format.h). --output json prints the Bundle protos instead.
#ifndef PLINTH_CLI_BUNDLE_COMMAND_H_
#define PLINTH_CLI_BUNDLE_COMMAND_H_

#include "cli/command.h"

namespace plinth::cli {

// Registers the `bundle` group on `root`. `console` must outlive `root`.
//   show:   the bundle of -id in -format (pem: the X.509 roots; spiffe: the JWKS); exit 3 if
//           absent.
//   list:   every bundle (or just -id), each under a banner naming its trust domain.
//   count:  the number of bundles.
//   set:    replaces (or creates) the bundle of -id with the one read from -path (stdin if
//           none) in -format.
//   append: adds the roots and keys read from -path to the bundle of -id (creating it).
//   delete: deletes the bundle of -id; -mode restrict (default: fail if entries federate with
//           it), delete (also delete those entries) or dissociate (remove it from them).
//   prune:  removes roots and keys of -id that expire before -expiresBefore.
void RegisterBundleCommands(CLI::App& root, Console& console);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_BUNDLE_COMMAND_H_
