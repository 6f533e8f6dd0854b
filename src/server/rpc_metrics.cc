#include "server/rpc_metrics.h"

#include <grpcpp/support/interceptor.h>

#include <string>

namespace plinth::server {
namespace {

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(ServerMetrics* metrics, const char* method)
      : metrics_(metrics),
        method_(method != nullptr ? method : ""),
        start_(std::chrono::steady_clock::now()) {}

  // A call that ends without sending a status was cancelled.
  ~RpcMetricsInterceptor() override {
    if (!recorded_) Record(StatusCode::kCancelled);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(static_cast<StatusCode>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Record(StatusCode code) {
    recorded_ = true;
    metrics_->RecordRpc(method_, code, std::chrono::steady_clock::now() - start_);
  }

  ServerMetrics* const metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class RpcMetricsInterceptorFactoryImpl final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactoryImpl(ServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, info->method());
  }

 private:
  ServerMetrics* const metrics_;
};

}  // namespace

ServerMetrics::ServerMetrics(MetricsRegistry* registry)
    : rpc_requests(registry->AddCounter("plinth_rpc_requests_total",
                                        "RPCs finished, by full method name and status code.",
                                        {"method", "code"})),
      rpc_duration(registry->AddHistogram(
          "plinth_rpc_duration_seconds",
          "Time from an RPC's arrival to its status, by full method name and status code.",
          {"method", "code"})),
      mirror_rebuilds(
          registry->AddCounter("plinth_mirror_rebuilds_total",
                               "Times the in-memory mirror reloaded everything from the store.")),
      store_operation_duration(registry->AddHistogram("plinth_store_operation_duration_seconds",
                                                      "Latency of store calls, by operation.",
                                                      {"operation"})) {}

void ServerMetrics::RecordRpc(std::string_view method, StatusCode code,
                              std::chrono::nanoseconds duration) {
  std::vector<std::string> labels{std::string(method), std::string(StatusCodeName(code))};
  rpc_requests.WithLabels(labels).Increment();
  rpc_duration.WithLabels(labels).Observe(Seconds(duration));
}

void ServerMetrics::RecordRejectedRpc(std::string_view method, const Status& status) {
  rpc_requests.WithLabels({std::string(method), std::string(StatusCodeName(status.code()))})
      .Increment();
}

void ServerMetrics::RecordStoreOperation(std::string_view operation,
                                         std::chrono::nanoseconds duration) {
  store_operation_duration.WithLabels({std::string(operation)}).Observe(Seconds(duration));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptorFactory(
    ServerMetrics* metrics) {
  return std::make_unique<RpcMetricsInterceptorFactoryImpl>(metrics);
}

}  // namespace plinth::server
