// `plinth agent list|show|ban|evict|count`: attested nodes (agents) on plinth serve, with the
// flags of `spire-server agent` (-spiffeID, -attestationType, -banned, ...; two dashes work
// too). Text output prints spire-server-like blocks; --output json the AttestedNode protos.
#ifndef PLINTH_CLI_AGENT_COMMAND_H_
#define PLINTH_CLI_AGENT_COMMAND_H_

#include "cli/command.h"

namespace plinth::cli {

// Registers the `agent` group on `root`. `console` must outlive `root`.
//   list:  agents matching the filters, with their selectors.
//   show:  the agent -spiffeID with its selectors; exit 3 if absent.
//   ban:   clears the agent's current and new certificate serial numbers (it must attest
//          again to get an SVID); exit 3 if absent.
//   evict: deletes the agent's record (it may attest again); exit 3 if absent.
//   count: agents matching the filters of list.
void RegisterAgentCommands(CLI::App& root, Console& console);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_AGENT_COMMAND_H_
