#include "cli/serve_command.h"

#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <memory>
#include <optional>
#include <string>

#include "server/config.h"
#include "server/logging.h"
#include "server/server.h"

namespace plinth::cli {
namespace {

// Blocks SIGTERM and SIGINT in this thread (and in every thread it starts afterwards) for its
// lifetime, so that Wait() can take them with sigwait; restores the previous mask at the end.
class BlockedStopSignals {
 public:
  BlockedStopSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
  }
  ~BlockedStopSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  BlockedStopSignals(const BlockedStopSignals&) = delete;
  BlockedStopSignals& operator=(const BlockedStopSignals&) = delete;

  // Blocks until SIGTERM or SIGINT arrives; returns it.
  int Wait() {
    for (;;) {
      int received = 0;
      if (sigwait(&signals_, &received) == 0) return received;
    }
  }

 private:
  sigset_t signals_;
  sigset_t previous_;
};

int RunServe(const std::string& config_file, Console& console) {
  std::optional<std::string> path;
  if (!config_file.empty()) path = config_file;
  StatusOr<server::ServerConfig> config = server::LoadConfig(path, server::ProcessEnvironment());
  if (!config.ok()) {
    console.err << "plinth: invalid configuration: " << config.status().message() << "\n";
    return kExitUsage;
  }
  server::SetUpLogging(config->log_format, config->log_level);

  // A log reader or metrics scraper that goes away must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  BlockedStopSignals stop_signals;
  StatusOr<std::unique_ptr<server::Server>> started = server::Server::Start(*config);
  if (!started.ok()) {
    server::Log(spdlog::level::err, "plinth serve cannot start",
                {{"error", started.status().ToString()}});
    if (started.status().code() == StatusCode::kInvalidArgument) {
      console.err << "plinth: invalid configuration: " << started.status().message() << "\n";
      return kExitUsage;
    }
    return ReportFailure(console, "serve: cannot start", started.status());
  }
  std::unique_ptr<server::Server> server = std::move(started).value();

  const int received = stop_signals.Wait();
  server::Log(spdlog::level::info, "stop signal received",
              {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server->Shutdown(std::chrono::system_clock::now() + kServeShutdownGrace);
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& root, Console& console) {
  auto config_file = std::make_shared<std::string>();
  CLI::App* serve = root.add_subcommand(
      "serve",
      "Run the plinth server: the datastore over gRPC on the admin socket and, if configured,\n"
      "over SPIFFE mutual TLS; Prometheus metrics, health and readiness over HTTP. Runs until\n"
      "SIGTERM or SIGINT, then finishes the calls in flight and exits 0.");
  serve
      ->add_option("-c,--config", *config_file,
                   "TOML configuration file; default $PLINTH_CONFIG, else none (an embedded "
                   "SQLite store in ./plinth-data, admin socket ./plinth-data/admin.sock)")
      ->envname("PLINTH_CONFIG")
      ->option_text("FILE");
  serve->footer(
      "Every configuration key can also be set by a PLINTH_* environment variable (see the\n"
      "configuration reference). Exit codes: 0 stopped by SIGTERM/SIGINT; 1 the server could\n"
      "not start; 2 invalid configuration.");
  serve->callback([config_file, &console] { console.exit_code = RunServe(*config_file, console); });
}

}  // namespace plinth::cli
