// `plinth migrate --from URL --to URL`: copies a whole store into another, any backend to any
// backend, from one snapshot of the source, and verifies the copy (store/migrate/migrate.h).
// Progress goes to stderr, the report to stdout (text or --output json). Store URLs are shown
// with their passwords replaced by "***" in every line it prints.
#ifndef PLINTH_CLI_MIGRATE_COMMAND_H_
#define PLINTH_CLI_MIGRATE_COMMAND_H_

#include <string>
#include <string_view>

#include "cli/command.h"

namespace plinth::cli {

// Registers the `migrate` command on `root`. `console` must outlive `root`.
//
// Exit codes (command.h):
//   0 (kExitOk)     - copied and verified; the report is on stdout.
//   1 (kExitFailed) - the migration failed: the destination holds keys (without
//                     --allow-non-empty) or one that the source also has, a pair does not fit
//                     the destination's limits, a store is unreachable, or verification found a
//                     mismatch. Unless the message says how many keys were committed, nothing
//                     was written.
//   2 (kExitUsage)  - bad flags, a malformed store URL or option, --from and --to the same,
//                     or a sqlite --from file that does not exist.
void RegisterMigrateCommand(CLI::App& root, Console& console);

// `url` for messages: RedactUrl's "***" for a user-info password, and also for the value of
// any query option whose name contains "password" (etcd's ?password=).
std::string RedactStoreUrl(std::string_view url);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_MIGRATE_COMMAND_H_
