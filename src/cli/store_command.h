// `plinth store <verb>`: direct access to a store by URL, for operators and scripts: put, get,
// delete, range, count, watch, compact, status, and a demo that walks through the contract.
// Every such verb opens the store given by --store (or $PLINTH_STORE), does one thing, and
// exits with the codes of command.h. Three verbs ask a running `plinth serve` about the store
// it serves instead (Operator service, connection flags of client.h): stats, verify, and
// compact when no --store is given.
#ifndef PLINTH_CLI_STORE_COMMAND_H_
#define PLINTH_CLI_STORE_COMMAND_H_

#include <memory>
#include <string_view>

#include "cli/command.h"
#include "store/store.h"

namespace plinth::cli {

// The store used when neither --store nor $PLINTH_STORE is given: an embedded SQLite file in
// ./plinth-data, which is created on demand.
inline constexpr std::string_view kDefaultStoreUrl = "sqlite://./plinth-data/plinth.db";

// Registers the `store` command group and its verbs on `root`. `console` must outlive `root`.
void RegisterStoreCommands(CLI::App& root, Console& console);

// Opens the store at `url` with store::OpenStore. For a sqlite URL whose file lives directly
// in ./plinth-data (the default location), creates that directory first.
StatusOr<std::unique_ptr<store::Store>> OpenStoreForCommand(std::string_view url);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_STORE_COMMAND_H_
