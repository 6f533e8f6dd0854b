// `plinth serve` as a library: the gRPC server (DataStore and Operator services, gRPC health
// checking, reflection) on the admin Unix socket and, if configured, on a SPIFFE mutual-TLS
// address; the Prometheus/readiness HTTP endpoint; the datastore hydrated from the configured
// store; history retention; graceful shutdown. src/cli/serve_command.cc wraps it in a process
// with signal handling.
//
// Lifecycle:
//   Start ──► listening, NOT_SERVING ──(hydrated)──► SERVING ──Shutdown──► stopped
// The listeners open first, so that health probes and /readyz answer while the datastore
// hydrates (which takes seconds for millions of entries). Until hydration is done every
// DataStore and Operator RPC fails with UNAVAILABLE "plinth is starting: hydrating the
// datastore", the gRPC health service reports NOT_SERVING and /readyz 503. A hydration that
// fails (e.g. the backend is down) is retried with backoff until it succeeds or the server
// shuts down; each failure is logged.
#ifndef PLINTH_SERVER_SERVER_H_
#define PLINTH_SERVER_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "server/config.h"

namespace plinth::server {

// The message of the UNAVAILABLE status RPCs get before the datastore is hydrated.
inline constexpr std::string_view kHydratingMessage = "plinth is starting: hydrating the datastore";
// The message of the UNAVAILABLE status new RPCs get once shutdown has begun.
inline constexpr std::string_view kShuttingDownMessage = "plinth is shutting down";

// Tuning of Server that is not part of the configuration file (tests shorten the periods).
struct ServerOptions {
  // Period of history retention (compaction to current revision - history_retention). The
  // first run follows hydration.
  std::chrono::milliseconds maintenance_interval{std::chrono::minutes(1)};
  // Pause after a failed hydration; doubles after each failure up to the maximum.
  std::chrono::milliseconds hydration_retry_initial{500};
  std::chrono::milliseconds hydration_retry_max{std::chrono::seconds(30)};
};

class Server {
 public:
  // Creates config.data_dir (mode 0700 when it is created), opens the store at
  // config.store_url, starts the gRPC listeners (admin socket: every caller is an admin; TLS:
  // callers authorized by AccessPolicy{trust_domain, admin_ids, health and reflection methods
  // open to every SVID of the trust domain}) and the metrics HTTP endpoint, then returns while
  // the datastore hydrates in the background (see WaitUntilReady).
  // Errors (nothing keeps running then): InvalidArgument for a store URL or TLS files that
  // cannot be used (the message names them); FailedPrecondition when the admin socket is in
  // use or unsafe; Unavailable when an address cannot be bound or the store cannot be
  // reached; Internal for other system errors.
  static StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                 ServerOptions options = {});

  // Shutdown(now) unless Shutdown was called.
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Blocks until the datastore is hydrated and the server reports SERVING. OK once ready;
  // DeadlineExceeded after `timeout`; Cancelled if the server shuts down first.
  Status WaitUntilReady(std::chrono::milliseconds timeout);

  // Whether the datastore is hydrated and the server is not shutting down.
  bool ready() const;

  // Graceful shutdown: stops reporting ready (health NOT_SERVING, /readyz 503) and history
  // retention; fails new DataStore and Operator calls with UNAVAILABLE kShuttingDownMessage;
  // ends open WatchChanges streams with UNAVAILABLE; lets the calls in flight (e.g. writes)
  // finish until `deadline` and cancels those still running then; stops listening (gRPC gets
  // at most a second more to send the last replies); then stops the metrics endpoint, the
  // datastore and the store, and removes the admin socket. Returns when all of that is done;
  // a write a client saw succeed is committed. Idempotent; not concurrently with itself.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  // The bound TLS port (the chosen one when `listen` had port 0); 0 without a TLS listener.
  int tls_port() const;
  // The bound metrics HTTP port; 0 without a metrics listener.
  uint16_t metrics_port() const;

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plinth::server

#endif  // PLINTH_SERVER_SERVER_H_
