// `plinth token generate`: a join token for an agent to attest with, as `spire-server token
// generate` makes it. With -spiffeID it also registers that ID for the agent, under the
// agent's join-token ID spiffe://<trust domain>/spire/agent/join_token/<token>.
#ifndef PLINTH_CLI_TOKEN_COMMAND_H_
#define PLINTH_CLI_TOKEN_COMMAND_H_

#include <string>

#include "cli/command.h"
#include "common/status.h"

namespace plinth::cli {

// Registers the `token` group on `root`. `console` must outlive `root`.
//   generate: stores a new random token (a UUIDv4) that expires after -ttl seconds (default
//             600) and prints "Token: <token>". With -spiffeID X it then creates the entry
//             {spiffe_id: X, parent_id: <agent ID>, selectors: [spiffe_id:<agent ID>]}, where
//             the agent ID is X's trust domain's join-token ID for the token. If that entry
//             cannot be created, the token stays and the command exits 1 naming it.
void RegisterTokenCommands(CLI::App& root, Console& console);

// A random UUIDv4 in lowercase hex, from OpenSSL's CSPRNG. Internal when it fails.
StatusOr<std::string> NewUuid();

}  // namespace plinth::cli

#endif  // PLINTH_CLI_TOKEN_COMMAND_H_
