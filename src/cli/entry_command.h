// `plinth entry create|show|update|delete|count`: registration entries on plinth serve, with
// the flags of `spire-server entry` (-spiffeID, -parentID, -selector type:value, ...; two
// dashes work too). Text output prints spire-server-like blocks; --output json the
// RegistrationEntry protos.
#ifndef PLINTH_CLI_ENTRY_COMMAND_H_
#define PLINTH_CLI_ENTRY_COMMAND_H_

#include <ostream>

#include "cli/command.h"
#include "plinth/v1/types.pb.h"

namespace plinth::cli {

// Registers the `entry` group on `root`. `console` must outlive `root`.
//   create: a new entry (or exit 1 with ALREADY_EXISTS when a similar one exists: same SPIFFE
//           ID, parent ID and selectors); prints it.
//   show:   by -entryID (exit 3 if absent), or every entry matching the filters.
//   update: -entryID plus the fields to change; only the flags given are written.
//   delete: -entryID; exit 3 if absent.
//   count:  entries matching the filters of show.
void RegisterEntryCommands(CLI::App& root, Console& console);

// Prints `entry` as a block of "Label : value" lines (no trailing blank line).
void PrintEntry(std::ostream& out, const ::plinth::v1::RegistrationEntry& entry);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_ENTRY_COMMAND_H_
