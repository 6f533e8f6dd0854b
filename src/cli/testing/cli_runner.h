// Runs the `plinth` CLI in-process for tests, exactly as main.cc does but with only the
// command groups under test registered, and captures what it prints.
#ifndef PLINTH_CLI_TESTING_CLI_RUNNER_H_
#define PLINTH_CLI_TESTING_CLI_RUNNER_H_

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"

namespace plinth::cli::testing {

// What one run printed, and its exit code.
struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// A command group's registration function, e.g. RegisterStoreCommands.
using RegisterFn = void (*)(CLI::App& root, Console& console);

// Builds the root app, registers `groups`, runs `args` (without the program name) and
// returns what it printed.
RunResult RunCli(const std::vector<RegisterFn>& groups, std::vector<std::string> args);

// `text` as JSON; a discarded value (is_discarded()) when it does not parse.
nlohmann::json ParseJson(const std::string& text);

// A new empty directory under $TMPDIR (or /tmp) named `<prefix>.XXXXXX`. Aborts if it cannot
// be made.
std::filesystem::path MakeTempDir(std::string_view prefix);

}  // namespace plinth::cli::testing

#endif  // PLINTH_CLI_TESTING_CLI_RUNNER_H_
