// The metrics `plinth serve` exports, registered in one place so that their names and labels
// are fixed, and a gRPC server interceptor that counts and times every RPC by method and
// status code.
//
//   MetricsRegistry registry;
//   ServerMetrics metrics(&registry);
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(RpcMetricsInterceptorFactory(&metrics));
//   builder.experimental().SetInterceptorCreators(std::move(f));
//   // Calls the AccessPolicy rejects never reach interceptors; count them with
//   // SpiffeServerOptions::on_rejected = [&](auto method, auto s) {
//   //   metrics.RecordRejectedRpc(method, s); };
#ifndef PLINTH_SERVER_RPC_METRICS_H_
#define PLINTH_SERVER_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <memory>
#include <string_view>

#include "common/status.h"
#include "server/metrics.h"

namespace plinth::server {

// Names of the metrics whose values the server wiring provides through
// MetricsRegistry::AddCallbackGauge (they read the mirror at scrape time).
inline constexpr std::string_view kAppliedRevisionMetric = "plinth_mirror_applied_revision";
inline constexpr std::string_view kAppliedRevisionHelp =
    "Newest store revision the in-memory mirror has applied.";
inline constexpr std::string_view kRevisionLagMetric = "plinth_mirror_lag_revisions";
inline constexpr std::string_view kRevisionLagHelp =
    "Revisions the mirror is behind the backend's newest revision.";

// The families below, registered in `registry` (which must outlive this). Thread-safe.
class ServerMetrics {
 public:
  explicit ServerMetrics(MetricsRegistry* registry);

  // plinth_rpc_requests_total{method,code}: RPCs finished, by full method name and code.
  CounterFamily& rpc_requests;
  // plinth_rpc_duration_seconds{method,code}: time from the call's arrival to its status.
  HistogramFamily& rpc_duration;
  // plinth_mirror_rebuilds_total: times the mirror reloaded everything from the store.
  CounterFamily& mirror_rebuilds;
  // plinth_store_operation_duration_seconds{operation}: latency of store calls ("get",
  // "range", "txn", "watch_open", "compact", ...).
  HistogramFamily& store_operation_duration;

  // Counts one finished RPC.
  void RecordRpc(std::string_view method, StatusCode code, std::chrono::nanoseconds duration);
  // Counts an RPC the access policy rejected before it was dispatched (no duration).
  void RecordRejectedRpc(std::string_view method, const Status& status);
  // Records one store call's latency.
  void RecordStoreOperation(std::string_view operation, std::chrono::nanoseconds duration);
};

// A server interceptor factory that calls metrics->RecordRpc for every RPC, with the code of
// the status the server sends (CANCELLED when the call ends without one). `metrics` must
// outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptorFactory(
    ServerMetrics* metrics);

}  // namespace plinth::server

#endif  // PLINTH_SERVER_RPC_METRICS_H_
