#include "store/conformance/test_servers.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "store/conformance/child_process.h"

namespace plinth::store::conformance {
namespace {

constexpr std::chrono::seconds kScriptTimeout{180};

std::string ScriptPath(std::string_view kind) {
  return std::string(PLINTH_SOURCE_DIR) + "/scripts/servers/" + std::string(kind) + ".sh";
}

StatusOr<std::string> RunScript(std::string_view kind, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", ScriptPath(kind)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string what = ScriptPath(kind);
  for (const std::string& a : args) what += " " + a;
  const std::string stderr_path = (std::filesystem::temp_directory_path() /
                                   ("plinth-server-script-" + std::to_string(getpid()) + ".err"))
                                      .string();
  PLINTH_ASSIGN_OR_RETURN(auto child, ChildProcess::Spawn(argv, stderr_path));
  const auto deadline = std::chrono::steady_clock::now() + kScriptTimeout;
  std::string out;
  while (true) {
    StatusOr<std::string> line = child->ReadLine(deadline);
    if (!line.ok()) {
      if (line.status().code() == StatusCode::kOutOfRange) break;  // stdout closed
      return line.status().WithContext(what);
    }
    out += *line + "\n";
  }
  PLINTH_ASSIGN_OR_RETURN(int wait_status, child->Wait(deadline));
  std::string err = child->Stderr();
  std::error_code ignored;
  std::filesystem::remove(stderr_path, ignored);
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return UnavailableError(what + " " + DescribeWaitStatus(wait_status) + ": " + err);
  }
  return out;
}

struct Registry {
  std::mutex mu;
  std::map<std::string, StatusOr<TestServer>, std::less<>> servers;

  ~Registry() {
    for (auto& [kind, server] : servers) {
      if (server.ok() && !server->dir.empty()) {
        RunScript(kind, {"stop", server->dir}).status().IgnoreError();
        std::error_code ignored;
        std::filesystem::remove_all(server->dir, ignored);
      }
    }
  }
};

Registry& Servers() {
  static Registry registry;  // destroyed at exit: stops every server started
  return registry;
}

StatusOr<TestServer> Start(std::string_view kind) {
  std::string env_name = "PLINTH_TEST_" + std::string(kind) + "_URL";
  std::transform(env_name.begin(), env_name.end(), env_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (const char* url = std::getenv(env_name.c_str()); url != nullptr && *url != '\0') {
    return TestServer{std::string(kind), "", url};
  }
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("plinth-" + std::string(kind) + "-XXXXXX"))
          .string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return InternalError("mkdtemp(" + pattern + ") failed");
  }
  StatusOr<std::string> started = RunScript(kind, {"start", pattern});
  if (!started.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(pattern, ignored);
    return started.status();
  }
  std::string out = *std::move(started);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const size_t last_line = out.rfind('\n');
  std::string url = last_line == std::string::npos ? out : out.substr(last_line + 1);
  if (url.find("://") == std::string::npos) {
    return InternalError(ScriptPath(kind) + " start printed no store URL; it printed: " + out);
  }
  return TestServer{std::string(kind), pattern, url};
}

}  // namespace

StatusOr<TestServer> SharedTestServer(std::string_view kind) {
  Registry& registry = Servers();
  std::lock_guard<std::mutex> lock(registry.mu);
  auto it = registry.servers.find(kind);
  if (it == registry.servers.end()) {
    it = registry.servers.emplace(std::string(kind), Start(kind)).first;
  }
  return it->second;
}

StatusOr<std::string> ControlTestServer(const TestServer& server, std::string_view verb,
                                        const std::vector<std::string>& args) {
  if (server.dir.empty()) {
    return FailedPreconditionError("the " + server.kind +
                                   " server was given by environment variable; tests that "
                                   "restart or stop it need a server the suite started");
  }
  std::vector<std::string> all = {std::string(verb), server.dir};
  all.insert(all.end(), args.begin(), args.end());
  return RunScript(server.kind, all);
}

std::string UniqueStoreName() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(getpid()) + "_" + std::to_string(counter.fetch_add(1));
}

}  // namespace plinth::store::conformance
