#include "cli/command.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <utility>

namespace plinth::cli {

void ConfigureRootApp(CLI::App& app, Console& console) {
  app.name("plinth");
  app.description(
      "plinth: the storage layer of a SPIFFE control plane. Keys and values live in a\n"
      "pluggable backend (memory, SQLite, ...) behind one gap-free revision stream.");
  app.footer(std::string(kExitCodesHelp));
  RequireCommand(app, console);
}

void RequireCommand(CLI::App& group, Console& console) {
  // Not CLI11's require_subcommand(): it would also answer "plinth store frobnicate" with
  // "a subcommand is required" instead of naming the unexpected word.
  CLI::App* g = &group;
  group.callback([g, &console] {
    if (!g->get_subcommands().empty()) return;
    std::string names;
    const CLI::App* view = g;
    for (const CLI::App* sub : view->get_subcommands([](const CLI::App*) { return true; })) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    std::string path = g->get_name();
    for (const CLI::App* p = g->get_parent(); p != nullptr; p = p->get_parent()) {
      path = p->get_name() + " " + path;
    }
    console.exit_code = ReportUsageError(console, path + " needs a command: one of " + names);
  });
}

CLI::Option* AddOutputFlag(CLI::App& command, OutputFormat* format) {
  static const std::map<std::string, OutputFormat> kFormats = {{"text", OutputFormat::kText},
                                                               {"json", OutputFormat::kJson}};
  *format = OutputFormat::kText;
  return command.add_option("-o,--output", *format, "Output format: text (default) or json")
      ->transform(CLI::CheckedTransformer(kFormats, CLI::ignore_case))
      ->option_text("text|json");
}

int ReportFailure(Console& console, std::string_view what, const Status& status, int exit_code) {
  console.err << "plinth: " << what << ": " << status.ToString() << "\n";
  return exit_code;
}

int ReportUsageError(Console& console, std::string_view message) {
  console.err << "plinth: " << message << "\nRun with --help for usage.\n";
  return kExitUsage;
}

namespace {

void CollectLongNames(const CLI::App& app, std::set<std::string, std::less<>>* names) {
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) names->insert(name);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    CollectLongNames(*sub, names);
  }
}

}  // namespace

std::vector<std::string> NormalizeSingleDashFlags(const CLI::App& app,
                                                  std::vector<std::string> args) {
  std::set<std::string, std::less<>> names;
  CollectLongNames(app, &names);
  for (std::string& arg : args) {
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-' || arg[1] == '-') continue;
    const std::string_view name = std::string_view(arg).substr(1, arg.find('=') - 1);
    if (name.size() >= 2 && names.count(name) > 0) arg.insert(0, "-");
  }
  return args;
}

int RunApp(CLI::App& app, Console& console, std::vector<std::string> args) {
  args = NormalizeSingleDashFlags(app, std::move(args));
  // CLI11 consumes a vector from the back.
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // Help and version requests are "errors" with exit code 0.
    if (e.get_exit_code() == 0) return app.exit(e, console.out, console.err);
    console.err << "plinth: " << e.what() << "\nRun with --help for usage.\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    // Commands catch their own third-party exceptions; this is the last line.
    console.err << "plinth: internal error: " << e.what() << "\n";
    return kExitFailed;
  }
  return console.exit_code;
}

StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not a duration; use e.g. 500ms, 10s, 2m, 1h, or 0 for none");
  };
  int64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || n < 0) return bad();
  std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  int64_t factor = 0;
  if (unit == "ms" || (unit.empty() && n == 0)) {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else {
    return bad();
  }
  if (n > std::numeric_limits<int64_t>::max() / factor) return bad();
  return std::chrono::milliseconds(n * factor);
}

}  // namespace plinth::cli
