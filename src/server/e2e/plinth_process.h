// Helpers of the end-to-end tests: real `plinth serve` processes (the built binary, spawned
// with posix_spawn), each with its own directory, configuration file and loopback ports, and
// one-shot `plinth` CLI runs. Every wait takes a deadline.
#ifndef PLINTH_SERVER_E2E_PLINTH_PROCESS_H_
#define PLINTH_SERVER_E2E_PLINTH_PROCESS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/tls.h"
#include "store/conformance/child_process.h"

namespace plinth::server::e2e {

using Deadline = std::chrono::steady_clock::time_point;

// now + `d`.
Deadline After(std::chrono::milliseconds d);

// The built `plinth` binary.
std::string PlinthBinary();

// A fresh directory under the system's temporary directory, removed with its contents at
// destruction. Paths stay short (admin sockets must fit in 107 bytes).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes `content` to `path` (not atomically); aborts the test on failure.
void WriteFile(const std::string& path, const std::string& content);

// What goes into a test server's plinth.toml. data_dir, admin_socket and JSON logs at info
// are always set.
struct ServeOptions {
  std::string store_url;  // "" = the default (SQLite in data_dir)
  // TLS listener on 127.0.0.1:0 when set.
  std::optional<SvidFiles> tls;
  std::string trust_domain;
  std::vector<std::string> admin_ids;
  std::string tls_refresh_interval = "1s";
  bool metrics = false;    // metrics HTTP on 127.0.0.1:0
  std::string extra_toml;  // appended at the end (e.g. a [store] key besides url)
};

// A running `plinth serve`; killed (SIGKILL) at destruction if still running.
class PlinthServe {
 public:
  // Writes <dir>/plinth.toml, runs `plinth serve --config <dir>/plinth.toml` with stderr in
  // <dir>/serve-<n>.log, and waits until every configured listener was logged (so ports are
  // known). Does not wait for hydration. The data directory is <dir>/data; the admin socket
  // <dir>/data/admin.sock. An error carries the server's log.
  static StatusOr<std::unique_ptr<PlinthServe>> Start(const std::string& dir,
                                                      const ServeOptions& options,
                                                      Deadline deadline);

  // Polls the gRPC health service over the admin socket until it reports SERVING.
  // DeadlineExceeded (with the log) otherwise, or FailedPrecondition if the process exited.
  Status WaitUntilServing(Deadline deadline);

  std::shared_ptr<grpc::Channel> AdminChannel() const;
  // A channel to the TLS port presenting the SVID in `client` (SvidChannelCredentials).
  std::shared_ptr<grpc::Channel> TlsChannel(const SvidFiles& client) const;
  std::string TlsTarget() const { return "127.0.0.1:" + std::to_string(tls_port_); }

  const std::string& admin_socket() const { return admin_socket_; }
  const std::string& config_file() const { return config_file_; }
  int tls_port() const { return tls_port_; }
  int metrics_port() const { return metrics_port_; }

  // What the server logged so far.
  std::string Log() const { return process_->Stderr(); }
  // Whether a log line has `msg` (exactly).
  bool Logged(const std::string& msg) const;

  void Signal(int signal) { process_->Kill(signal); }
  // The wait status (see waitpid) once the process exited.
  StatusOr<int> Wait(Deadline deadline) { return process_->Wait(deadline); }

 private:
  PlinthServe() = default;
  std::unique_ptr<store::conformance::ChildProcess> process_;
  std::string config_file_;
  std::string admin_socket_;
  int tls_port_ = 0;
  int metrics_port_ = 0;
};

// The config file text PlinthServe::Start writes for `options` in `dir`.
std::string ServeConfigToml(const std::string& dir, const ServeOptions& options);

// The result of a finished `plinth` command.
struct CliResult {
  int exit_code = -1;  // -1 when it did not exit normally (see wait_status)
  int wait_status = 0;
  std::string out;
  std::string err;
};

// Runs `plinth <args>` to completion (killed at `deadline`); stderr goes to a file in `dir`.
StatusOr<CliResult> RunPlinth(const std::vector<std::string>& args, const std::string& dir,
                              Deadline deadline);

// Channel arguments that keep each channel's connections to itself, so that a new channel
// makes a new TLS handshake.
grpc::ChannelArguments FreshConnectionArgs();

// A TLS channel to `target` that trusts `root_pem` for the server (any name, any SPIFFE ID)
// and presents `cert_pem`/`key_pem` if given: for clients SvidChannelCredentials refuses to
// build (no certificate, or one that does not chain to the bundle).
std::shared_ptr<grpc::Channel> RawTlsChannel(const std::string& target, const std::string& root_pem,
                                             const std::string& cert_pem = "",
                                             const std::string& key_pem = "");

// GET http://127.0.0.1:<port><path>: the status code and body; -1 when no response came.
std::pair<int, std::string> HttpGet(int port, const std::string& path);

}  // namespace plinth::server::e2e

#endif  // PLINTH_SERVER_E2E_PLINTH_PROCESS_H_
