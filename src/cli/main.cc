// The `plinth` command: builds the root CLI11 app and lets each command group register its
// verbs. Command logic lives in the groups (store_command.cc, ...), never here.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "cli/agent_command.h"
#include "cli/bundle_command.h"
#include "cli/command.h"
#include "cli/entry_command.h"
#include "cli/federation_command.h"
#include "cli/migrate_command.h"
#include "cli/serve_command.h"
#include "cli/store_command.h"
#include "cli/token_command.h"

int main(int argc, char** argv) {
  plinth::cli::Console console{std::cout, std::cerr};
  CLI::App app;
  plinth::cli::ConfigureRootApp(app, console);
  plinth::cli::RegisterEntryCommands(app, console);
  plinth::cli::RegisterAgentCommands(app, console);
  plinth::cli::RegisterBundleCommands(app, console);
  plinth::cli::RegisterTokenCommands(app, console);
  plinth::cli::RegisterFederationCommands(app, console);
  plinth::cli::RegisterStoreCommands(app, console);
  plinth::cli::RegisterMigrateCommand(app, console);
  plinth::cli::RegisterServeCommand(app, console);
  return plinth::cli::RunApp(app, console, std::vector<std::string>(argv + 1, argv + argc));
}
