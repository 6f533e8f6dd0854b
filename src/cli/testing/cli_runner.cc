#include "cli/testing/cli_runner.h"

#include <stdlib.h>

#include <sstream>
#include <utility>

#include "common/check.h"

namespace plinth::cli::testing {

RunResult RunCli(const std::vector<RegisterFn>& groups, std::vector<std::string> args) {
  std::ostringstream out, err;
  Console console{out, err};
  CLI::App app;
  ConfigureRootApp(app, console);
  for (RegisterFn add : groups) add(app, console);
  RunResult result;
  result.code = RunApp(app, console, std::move(args));
  result.out = out.str();
  result.err = err.str();
  return result;
}

nlohmann::json ParseJson(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::filesystem::path MakeTempDir(std::string_view prefix) {
  const char* base = getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                        std::string(prefix) + ".XXXXXX";
  PLINTH_CHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp " << pattern << " failed";
  return pattern;
}

}  // namespace plinth::cli::testing
