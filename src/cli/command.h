// What every `plinth` command group shares: the exit codes scripts rely on, the console a
// command writes to, the --output flag, error reporting, and running a configured CLI11 app.
// A command group (store_command.h, later entry, secret, ...) registers its verbs on the root
// app; main.cc only wires the groups together.
#ifndef PLINTH_CLI_COMMAND_H_
#define PLINTH_CLI_COMMAND_H_

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace plinth::cli {

// Process exit codes. Stable: scripts depend on them.
inline constexpr int kExitOk = 0;        // success
inline constexpr int kExitFailed = 1;    // the operation failed (a store error)
inline constexpr int kExitUsage = 2;     // usage or configuration error (flags, store URL)
inline constexpr int kExitNotFound = 3;  // the key (or object) does not exist

// The footer every command's --help ends with.
inline constexpr std::string_view kExitCodesHelp =
    "Exit codes: 0 success; 1 the operation failed (message on stderr); 2 usage or\n"
    "configuration error (bad flags, bad store URL or options); 3 not found.";

enum class OutputFormat { kText, kJson };

// Where a command writes, and the exit code it chose. One per invocation; not thread-safe.
struct Console {
  std::ostream& out;
  std::ostream& err;
  int exit_code = kExitOk;
};

// Names the root app "plinth" and adds its description, help footer and parsing rules.
// `console` must outlive `app`.
void ConfigureRootApp(CLI::App& app, Console& console);

// Makes `group` (the root app or a command group) a usage error, naming its commands, when it
// is invoked without one. `console` must outlive `group`.
void RequireCommand(CLI::App& group, Console& console);

// Adds `--output text|json` (default text) to `command`, stored in `*format`, which must
// outlive `command`.
CLI::Option* AddOutputFlag(CLI::App& command, OutputFormat* format);

// Prints "plinth: <what>: <status>" to console.err and returns `exit_code`.
int ReportFailure(Console& console, std::string_view what, const Status& status,
                  int exit_code = kExitFailed);

// Prints "plinth: <message>" to console.err and returns kExitUsage.
int ReportUsageError(Console& console, std::string_view message);

// Parses `args` (without the program name) into `app`, which runs the chosen command's
// callback; returns the exit code it set. --help prints help to console.out and returns 0;
// a parse error prints the problem to console.err and returns kExitUsage. Never throws.
// Single-dash long flags are accepted (NormalizeSingleDashFlags).
int RunApp(CLI::App& app, Console& console, std::vector<std::string> args);

// spire-server style flags: rewrites "-name" and "-name=value" to "--name" and
// "--name=value" when `name` (two or more characters) is the long name of an option somewhere
// in `app`'s command tree, because CLI11 takes multi-letter names only after two dashes.
// Single-letter and combined short flags, other words, and everything after "--" are
// returned unchanged.
std::vector<std::string> NormalizeSingleDashFlags(const CLI::App& app,
                                                  std::vector<std::string> args);

// "250ms", "10s", "2m", "1h" or "0" (no limit). InvalidArgument otherwise.
StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_COMMAND_H_
