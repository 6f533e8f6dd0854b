#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "datastore/datastore.h"
#include "server/admin_socket.h"
#include "server/api/datastore_service.h"
#include "server/api/operator_service.h"
#include "server/api/status.h"
#include "server/internal/deferred_services.h"
#include "server/logging.h"
#include "server/metered_store.h"
#include "server/metrics.h"
#include "server/rpc_metrics.h"
#include "server/tls.h"
#include "store/open.h"
#include "store/url.h"

namespace plinth::server {
namespace {

using Clock = std::chrono::steady_clock;

// How long gRPC may take to send the replies of calls that finished draining.
constexpr std::chrono::milliseconds kFinishSendingGrace(1000);

// The services whose health the gRPC health service reports, besides the server as a whole ("").
constexpr const char* kServiceNames[] = {"plinth.v1.DataStore", "plinth.v1.Operator"};

// Server reflection's methods, open to every SVID of the trust domain (like health checking).
std::set<std::string, std::less<>> OpenMethods() {
  std::set<std::string, std::less<>> methods = HealthMethods();
  methods.insert("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  methods.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
  return methods;
}

// The reflection plugin and the default health service are process-wide gRPC settings that
// must be made before a ServerBuilder is created; they are the same for every Server.
void InitGrpcPlugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::EnableDefaultHealthCheckService(true);
  });
}

// "host:port" with the bound port, IPv6 hosts in brackets.
std::string BoundAddress(const std::string& listen, int port) {
  StatusOr<HostPort> parsed = ParseListenAddress(listen);
  if (!parsed.ok()) return listen;
  const std::string& host = parsed->host;
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

// Creates `dir` and its missing parents; a directory it creates gets mode 0700 (it holds the
// store and the admin socket).
Status MakeDataDirectory(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  if (!std::filesystem::create_directories(dir, ec) && ec) {
    return InternalError("data_dir " + dir + ": cannot create it: " + ec.message());
  }
  if (chmod(dir.c_str(), 0700) != 0) {
    return InternalError("data_dir " + dir + ": chmod: " + std::strerror(errno));
  }
  return Status::Ok();
}

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

class Server::Impl {
 public:
  Impl(const ServerConfig& config, ServerOptions options)
      : config_(config),
        options_(std::move(options)),
        metrics_(&registry_),
        rebuilds_(metrics_.mirror_rebuilds.WithLabels({})),
        policy_{
            config.trust_domain,
            std::set<std::string, std::less<>>(config.admin_ids.begin(), config.admin_ids.end()),
            OpenMethods()},
        gate_(grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kHydratingMessage)),
              grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kShuttingDownMessage))),
        deferred_datastore_(&gate_),
        deferred_operator_(&gate_) {}

  ~Impl() { Shutdown(std::chrono::system_clock::now()); }

  Status Start();
  Status WaitUntilReady(std::chrono::milliseconds timeout);
  bool ready() const { return readiness_.ready(); }
  void Shutdown(std::chrono::system_clock::time_point deadline);
  int tls_port() const { return tls_port_; }
  uint16_t metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }

 private:
  Status OpenStore();
  Status StartGrpc();
  Status StartMetricsHttp();
  void RegisterGauges();

  // The background work: hydration (retried until it succeeds or the server stops), then
  // history retention every maintenance_interval.
  void Run();
  // Returns the hydrated datastore, or nullptr when the server stopped first.
  std::unique_ptr<datastore::DataStore> Hydrate();
  void BecomeReady(std::unique_ptr<datastore::DataStore> datastore);
  void CompactHistory();
  // Waits up to `d`; true when the server is stopping.
  bool WaitForStop(std::chrono::milliseconds d) PLINTH_EXCLUDES(mu_);

  // The authorization every DataStore and Operator RPC checks first: admin-socket callers
  // and admin IDs pass. The credentials' metadata processor has already verified TLS callers'
  // certificates and made this decision; this is the authorization again, in case a call
  // reached a handler another way.
  grpc::Status AuthorizeCall(grpc::ServerContext* context) const {
    return api::ToGrpcStatus(Authorize(*context, policy_));
  }

  const ServerConfig config_;
  const ServerOptions options_;

  MetricsRegistry registry_;
  ServerMetrics metrics_;
  Counter& rebuilds_;
  ReadinessFlag readiness_;
  const AccessPolicy policy_;

  std::unique_ptr<MeteredStore> store_;
  internal::RpcGate gate_;
  internal::DeferredDataStoreService deferred_datastore_;
  internal::DeferredOperatorService deferred_operator_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int tls_port_ = 0;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::vector<CallbackGaugeHandle> gauges_;

  // Written once by the background thread (before `datastore_ptr_` is published), read by
  // Shutdown after joining it.
  std::unique_ptr<datastore::DataStore> datastore_;
  std::unique_ptr<api::DataStoreService> datastore_service_;
  std::unique_ptr<api::OperatorService> operator_service_;
  // The hydrated datastore for the metric callbacks; null until then and after shutdown.
  std::atomic<datastore::DataStore*> datastore_ptr_{nullptr};

  std::thread background_;
  Mutex mu_;
  CondVar cv_{&mu_};
  bool stopping_ PLINTH_GUARDED_BY(mu_) = false;
  bool hydrated_ PLINTH_GUARDED_BY(mu_) = false;
  // Only touched by Start and Shutdown, which never run concurrently.
  bool started_ = false;                // Start succeeded
  bool admin_socket_bound_ = false;     // the socket file at config_.admin_socket is ours...
  struct stat admin_socket_stat_ = {};  // ...as long as it is this file (device and inode)
  bool shut_down_ = false;
};

Status Server::Impl::Start() {
  Log(spdlog::level::info, "starting plinth serve", {{"config", DescribeConfig(config_)}});
  PLINTH_RETURN_IF_ERROR(MakeDataDirectory(config_.data_dir));
  PLINTH_RETURN_IF_ERROR(OpenStore());
  RegisterGauges();
  PLINTH_RETURN_IF_ERROR(StartGrpc());
  PLINTH_RETURN_IF_ERROR(StartMetricsHttp());
  background_ = std::thread([this] { Run(); });
  started_ = true;
  return Status::Ok();
}

Status Server::Impl::OpenStore() {
  StatusOr<std::unique_ptr<store::Store>> store = store::OpenStore(config_.store_url);
  if (!store.ok()) {
    return store.status().WithContext("store.url " + store::RedactUrl(config_.store_url));
  }
  store_ =
      std::make_unique<MeteredStore>(std::move(store).value(), &metrics_.store_operation_duration);
  return Status::Ok();
}

void Server::Impl::RegisterGauges() {
  gauges_.push_back(registry_.AddCallbackGauge(
      std::string(kAppliedRevisionMetric), std::string(kAppliedRevisionHelp), [this] {
        datastore::DataStore* ds = datastore_ptr_.load(std::memory_order_acquire);
        return ds == nullptr ? 0.0 : static_cast<double>(ds->mirror().applied_revision());
      }));
  gauges_.push_back(registry_.AddCallbackGauge(
      std::string(kRevisionLagMetric), std::string(kRevisionLagHelp), [this] {
        datastore::DataStore* ds = datastore_ptr_.load(std::memory_order_acquire);
        if (ds == nullptr) return 0.0;
        mirror::MirrorStatus status = ds->mirror().status();
        return static_cast<double>(
            std::max<store::Revision>(0, status.backend_revision - status.applied_revision));
      }));
}

Status Server::Impl::StartGrpc() {
  InitGrpcPlugins();
  grpc::ServerBuilder builder;
  if (!config_.admin_socket.empty()) {
    PLINTH_RETURN_IF_ERROR(PrepareAdminSocket(config_.admin_socket));
    builder.AddListeningPort(AdminSocketTarget(config_.admin_socket),
                             AdminSocketServerCredentials());
  }
  if (!config_.listen.empty()) {
    SpiffeServerOptions tls;
    tls.files = SvidFiles{config_.tls.cert_file, config_.tls.key_file, config_.tls.bundle_file};
    tls.refresh_interval = config_.tls.refresh_interval;
    tls.policy = policy_;
    tls.on_rejected = [this](std::string_view method, const Status& status) {
      metrics_.RecordRejectedRpc(method, status);
    };
    PLINTH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                            SpiffeServerCredentials(tls));
    builder.AddListeningPort(config_.listen, credentials, &tls_port_);
  }
  builder.RegisterService(&deferred_datastore_);
  builder.RegisterService(&deferred_operator_);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(RpcMetricsInterceptorFactory(&metrics_));
  builder.experimental().SetInterceptorCreators(std::move(factories));

  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr) {
    return UnavailableError("cannot start the gRPC server: binding " +
                            (config_.listen.empty() ? "admin_socket " + config_.admin_socket
                                                    : "listen " + config_.listen) +
                            " failed (see the log above)");
  }
  // The default health service starts out SERVING; say the truth at once.
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(false);
    for (const char* name : kServiceNames) health->SetServingStatus(name, false);
  }
  if (!config_.listen.empty() && tls_port_ == 0) {
    return UnavailableError("listen " + config_.listen + ": cannot bind the address");
  }
  if (!config_.admin_socket.empty()) {
    PLINTH_RETURN_IF_ERROR(SecureAdminSocket(config_.admin_socket));
    admin_socket_bound_ = lstat(config_.admin_socket.c_str(), &admin_socket_stat_) == 0;
    Log(spdlog::level::info, "listening",
        {{"transport", "admin-socket"}, {"address", config_.admin_socket}});
  }
  if (!config_.listen.empty()) {
    Log(spdlog::level::info, "listening",
        {{"transport", "tls"},
         {"address", BoundAddress(config_.listen, tls_port_)},
         {"port", tls_port_}});
  }
  return Status::Ok();
}

Status Server::Impl::StartMetricsHttp() {
  if (config_.metrics_listen.empty()) return Status::Ok();
  StatusOr<std::unique_ptr<MetricsHttpServer>> http =
      MetricsHttpServer::Start(config_.metrics_listen, &registry_, &readiness_);
  if (!http.ok()) return http.status().WithContext("metrics.listen " + config_.metrics_listen);
  metrics_http_ = std::move(http).value();
  Log(spdlog::level::info, "listening",
      {{"transport", "http-metrics"},
       {"address", BoundAddress(config_.metrics_listen, metrics_http_->port())},
       {"port", static_cast<int>(metrics_http_->port())}});
  return Status::Ok();
}

void Server::Impl::Run() {
  std::unique_ptr<datastore::DataStore> datastore = Hydrate();
  if (datastore == nullptr) return;
  BecomeReady(std::move(datastore));
  do {
    CompactHistory();
  } while (!WaitForStop(options_.maintenance_interval));
}

std::unique_ptr<datastore::DataStore> Server::Impl::Hydrate() {
  datastore::DataStoreOptions options;
  options.consistent_read_timeout = config_.consistent_read_timeout;
  std::chrono::milliseconds backoff = options_.hydration_retry_initial;
  for (int attempt = 1;; ++attempt) {
    Log(spdlog::level::info, "hydrating the datastore",
        {{"store", store::RedactUrl(config_.store_url)}, {"attempt", attempt}});
    const Clock::time_point start = Clock::now();
    StatusOr<std::unique_ptr<datastore::DataStore>> datastore =
        datastore::DataStore::Open(store_.get(), options);
    if (datastore.ok()) {
      const mirror::MirrorStatus status = (*datastore)->mirror().status();
      Log(spdlog::level::info, "datastore hydrated",
          {{"revision", status.applied_revision},
           {"duration_ms", Millis(Clock::now() - start)},
           {"attempt", attempt}});
      return std::move(datastore).value();
    }
    Log(spdlog::level::err, "hydrating the datastore failed; retrying",
        {{"error", datastore.status().ToString()},
         {"attempt", attempt},
         {"retry_in_ms", static_cast<int64_t>(backoff.count())}});
    if (WaitForStop(backoff)) return nullptr;
    backoff = std::min(backoff * 2, options_.hydration_retry_max);
  }
}

void Server::Impl::BecomeReady(std::unique_ptr<datastore::DataStore> datastore) {
  // Only this thread touches these members until Shutdown joins it.
  datastore_ = std::move(datastore);
  datastore_->mirror().AddListener([this](const store::WatchBatch&, bool reset) {
    if (reset) rebuilds_.Increment();
  });
  auto authorize = [this](grpc::ServerContext* context) { return AuthorizeCall(context); };
  datastore_service_ = std::make_unique<api::DataStoreService>(datastore_.get(), authorize);
  operator_service_ = std::make_unique<api::OperatorService>(
      store_.get(), datastore_.get(), store::RedactUrl(config_.store_url),
      config_.history_retention, [this] { return readiness_.ready(); }, authorize);
  {
    MutexLock lock(&mu_);
    if (stopping_) return;  // Shutdown tears the datastore down after joining this thread.
    deferred_datastore_.Attach(datastore_service_.get());
    deferred_operator_.Attach(operator_service_.get());
    gate_.Open();
    datastore_ptr_.store(datastore_.get(), std::memory_order_release);
    if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
      health->SetServingStatus(true);
    }
    readiness_.Set(true);
    hydrated_ = true;
    cv_.SignalAll();
  }
  Log(spdlog::level::info, "serving");
}

void Server::Impl::CompactHistory() {
  if (config_.history_retention <= 0) return;
  StatusOr<store::Revision> current = store_->CurrentRevision();
  if (!current.ok()) {
    Log(spdlog::level::warn, "history retention: cannot read the current revision",
        {{"error", current.status().ToString()}});
    return;
  }
  const store::Revision target = *current - config_.history_retention;
  if (target <= 0) return;
  StatusOr<store::Revision> compacted = store_->CompactedRevision();
  if (compacted.ok() && *compacted >= target) return;
  // Idempotent: another replica compacting at the same time, or further, is harmless.
  if (Status status = store_->Compact(target); !status.ok()) {
    Log(spdlog::level::warn, "history retention: compaction failed",
        {{"revision", target}, {"error", status.ToString()}});
    return;
  }
  Log(spdlog::level::info, "history compacted",
      {{"revision", target}, {"retention", config_.history_retention}});
}

bool Server::Impl::WaitForStop(std::chrono::milliseconds d) {
  const Clock::time_point until = Clock::now() + d;
  MutexLock lock(&mu_);
  while (!stopping_ && Clock::now() < until) cv_.WaitUntil(until);
  return stopping_;
}

Status Server::Impl::WaitUntilReady(std::chrono::milliseconds timeout) {
  const Clock::time_point until = Clock::now() + timeout;
  MutexLock lock(&mu_);
  while (!hydrated_ && !stopping_) {
    if (!cv_.WaitUntil(until) && Clock::now() >= until) break;
  }
  if (stopping_) return CancelledError("the server is shutting down");
  if (!hydrated_) {
    return DeadlineExceededError("the datastore is still hydrating after " +
                                 FormatDuration(timeout));
  }
  return Status::Ok();
}

void Server::Impl::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  const Clock::time_point start = Clock::now();
  if (started_) {
    Log(spdlog::level::info, "shutting down",
        {{"grace_ms", std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               deadline - std::chrono::system_clock::now())
                                               .count())}});
  }
  readiness_.Set(false);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    // Under mu_, so that BecomeReady cannot report SERVING again after this.
    if (grpc_server_ != nullptr) {
      if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
        health->SetServingStatus(false);
      }
    }
    cv_.SignalAll();
  }
  // The background thread is at most finishing a hydration or a compaction.
  if (background_.joinable()) background_.join();

  if (grpc_server_ != nullptr) {
    // New DataStore and Operator calls fail from now on; watch streams end (they would hold
    // the server until the deadline); the other calls in flight, e.g. writes, may finish.
    gate_.Close();
    if (datastore_service_ != nullptr) datastore_service_->Shutdown();
    const bool drained = gate_.WaitUntilIdle(deadline);
    if (!drained) {
      Log(spdlog::level::warn, "calls still running at the shutdown deadline are cancelled");
    }
    // Then gRPC stops listening, sends the last replies and cancels what is left (health
    // checks, reflection). Its own Shutdown would otherwise also wait, until the deadline,
    // for idle client connections to go away.
    grpc_server_->Shutdown(
        std::min(deadline, std::chrono::system_clock::now() + kFinishSendingGrace));
    grpc_server_->Wait();
  }
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  gauges_.clear();
  datastore_ptr_.store(nullptr, std::memory_order_release);
  // No RPC runs any more: the services, then what they use, can go.
  grpc_server_.reset();
  operator_service_.reset();
  datastore_service_.reset();
  datastore_.reset();
  store_.reset();
  // Unless gRPC already did, remove our socket file; never one a newer server bound since.
  if (admin_socket_bound_) {
    struct stat st;
    if (lstat(config_.admin_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == admin_socket_stat_.st_dev && st.st_ino == admin_socket_stat_.st_ino) {
      unlink(config_.admin_socket.c_str());
    }
  }
  if (started_) {
    Log(spdlog::level::info, "stopped", {{"duration_ms", Millis(Clock::now() - start)}});
  }
}

StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config, ServerOptions options) {
  auto impl = std::make_unique<Impl>(config, std::move(options));
  if (Status status = impl->Start(); !status.ok()) {
    impl->Shutdown(std::chrono::system_clock::now());
    return status;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Status Server::WaitUntilReady(std::chrono::milliseconds timeout) {
  return impl_->WaitUntilReady(timeout);
}
bool Server::ready() const { return impl_->ready(); }
void Server::Shutdown(std::chrono::system_clock::time_point deadline) { impl_->Shutdown(deadline); }
int Server::tls_port() const { return impl_->tls_port(); }
uint16_t Server::metrics_port() const { return impl_->metrics_port(); }

}  // namespace plinth::server
