// In-process tests of the server wiring: the store decorator, the stand-in services used
// during hydration, and a Server on a memory store (the e2e suite runs real processes).
#include "server/server.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "common/status_matchers.h"
#include "plinth/v1/datastore_service.grpc.pb.h"
#include "server/admin_socket.h"
#include "server/internal/deferred_services.h"
#include "server/logging.h"
#include "server/metered_store.h"
#include "server/rpc_metrics.h"
#include "server/testing/grpc_client.h"
#include "store/open.h"

namespace plinth::server {
namespace {

using ::testing::HasSubstr;
using testing::HealthCheck;
using ::testing::Not;
using testing::ServingStatus;

class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "plinth_server_test_XXXXXX").string();
    PLINTH_CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint64_t SampleCount(const Histogram& histogram) { return histogram.snapshot().count; }

TEST(MeteredStore, ForwardsEveryCallAndRecordsItsLatencyByOperation) {
  MetricsRegistry registry;
  ServerMetrics metrics(&registry);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> inner, store::OpenStore("memory://"));
  MeteredStore store(std::move(inner), &metrics.store_operation_duration);
  auto& family = metrics.store_operation_duration;

  EXPECT_EQ(store.backend(), "memory");
  ASSERT_OK_AND_ASSIGN(store::Revision r1, store.Put("a", "1"));
  EXPECT_EQ(r1, 1);
  ASSERT_OK_AND_ASSIGN(store::KeyValue kv, store.Get("a"));
  EXPECT_EQ(kv.value, "1");
  EXPECT_THAT(store.Get("missing"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(store::RangeResult range, store.Range(store::KeySpan::Prefix(""), {}));
  EXPECT_EQ(range.kvs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Snapshot> snapshot, store.OpenSnapshot());
  ASSERT_OK_AND_ASSIGN(store::KeyValue at_snapshot, snapshot->Get("a"));
  EXPECT_EQ(at_snapshot.mod_revision, 1);
  ASSERT_OK_AND_ASSIGN(store::Revision current, store.CurrentRevision());
  EXPECT_EQ(current, 1);
  EXPECT_THAT(store.Compact(1), IsOk());
  ASSERT_OK_AND_ASSIGN(store::Revision compacted, store.CompactedRevision());
  EXPECT_EQ(compacted, 1);

  EXPECT_EQ(SampleCount(family.WithLabels({"txn"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"get"})), 2u);
  EXPECT_EQ(SampleCount(family.WithLabels({"range"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"snapshot_open"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"snapshot_get"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"current_revision"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"compact"})), 1u);
  EXPECT_EQ(SampleCount(family.WithLabels({"compacted_revision"})), 1u);
  EXPECT_THAT(registry.Exposition(),
              HasSubstr("plinth_store_operation_duration_seconds_count{operation=\"txn\"} 1"));
}

// Every method of a service, as "/package.Service/Method".
std::vector<std::string> MethodsOf(const std::string& service_name) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
  PLINTH_CHECK(service != nullptr) << service_name;
  std::vector<std::string> methods;
  for (int i = 0; i < service->method_count(); ++i) {
    methods.push_back("/" + service_name + "/" + service->method(i)->name());
  }
  return methods;
}

// A stand-in that forgot a method would answer it with UNIMPLEMENTED for good.
TEST(DeferredServices, AnswerEveryMethodWithTheGatesStatusBeforeOpenAndAfterClose) {
  TempDir dir;
  const std::string socket = dir.path() + "/s.sock";
  internal::RpcGate gate(grpc::Status(grpc::StatusCode::UNAVAILABLE, "not ready"),
                         grpc::Status(grpc::StatusCode::UNAVAILABLE, "closed"));
  internal::DeferredDataStoreService datastore(&gate);
  internal::DeferredOperatorService op(&gate);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(AdminSocketTarget(socket), AdminSocketServerCredentials());
  builder.RegisterService(&datastore);
  builder.RegisterService(&op);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  std::vector<std::string> methods = MethodsOf("plinth.v1.DataStore");
  for (const std::string& m : MethodsOf("plinth.v1.Operator")) methods.push_back(m);
  EXPECT_EQ(methods.size(), 50u);
  std::shared_ptr<grpc::Channel> channel = AdminSocketChannel(socket);
  for (const std::string& method : methods) {
    SCOPED_TRACE(method);
    testing::GenericCallResult result =
        testing::GenericUnaryCall(channel, method, "", std::chrono::seconds(10));
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(result.status.error_message(), "not ready");
  }
  gate.Close();
  gate.Open();  // too late: a closed gate stays closed
  for (const std::string& method : {methods.front(), methods.back()}) {
    testing::GenericCallResult result =
        testing::GenericUnaryCall(channel, method, "", std::chrono::seconds(10));
    EXPECT_EQ(result.status.error_message(), "closed") << method;
  }
  server->Shutdown();
}

TEST(RpcGate, CountsAdmittedCallsUntilTheyFinish) {
  internal::RpcGate gate(grpc::Status(grpc::StatusCode::UNAVAILABLE, "not ready"),
                         grpc::Status(grpc::StatusCode::UNAVAILABLE, "closed"));
  {
    internal::RpcGate::Pass early(&gate);
    EXPECT_FALSE(early.ok());
    EXPECT_EQ(early.status().error_message(), "not ready");
  }
  EXPECT_TRUE(gate.WaitUntilIdle(std::chrono::system_clock::now()));
  gate.Open();
  auto running = std::make_unique<internal::RpcGate::Pass>(&gate);
  ASSERT_TRUE(running->ok());
  gate.Close();
  internal::RpcGate::Pass late(&gate);
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(late.status().error_message(), "closed");
  EXPECT_FALSE(
      gate.WaitUntilIdle(std::chrono::system_clock::now() + std::chrono::milliseconds(20)));
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    running.reset();
  });
  EXPECT_TRUE(gate.WaitUntilIdle(std::chrono::system_clock::now() + std::chrono::seconds(30)));
  finisher.join();
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetUpLogging(LogFormat::kText, LogLevel::kInfo); }

  ServerConfig Config(const std::string& store_url) const {
    ServerConfig config;
    config.data_dir = dir_.path() + "/data";
    config.store_url = store_url;
    config.admin_socket = config.data_dir + "/admin.sock";
    config.metrics_listen = "127.0.0.1:0";
    return config;
  }

  std::string HttpGet(uint16_t port, const std::string& path, int* status) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(std::chrono::seconds(5));
    client.set_read_timeout(std::chrono::seconds(5));
    httplib::Result result = client.Get(path);
    if (!result) {
      *status = -1;
      return "";
    }
    *status = result->status;
    return result->body;
  }

  TempDir dir_;
};

TEST_F(ServerTest, ServesTheDataStoreOnTheAdminSocketWithHealthMetricsAndCleanShutdown) {
  ServerConfig config = Config("memory://");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Server> server, Server::Start(config));
  ASSERT_THAT(server->WaitUntilReady(std::chrono::seconds(30)), IsOk());
  EXPECT_TRUE(server->ready());
  EXPECT_EQ(server->tls_port(), 0);
  ASSERT_NE(server->metrics_port(), 0);

  // The data directory was created private.
  struct stat st;
  ASSERT_EQ(stat(config.data_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  std::shared_ptr<grpc::Channel> channel = AdminSocketChannel(config.admin_socket);
  ASSERT_OK_AND_ASSIGN(ServingStatus server_health, HealthCheck(channel));
  EXPECT_EQ(server_health, ServingStatus::kServing);
  ASSERT_OK_AND_ASSIGN(ServingStatus datastore_health, HealthCheck(channel, "plinth.v1.DataStore"));
  EXPECT_EQ(datastore_health, ServingStatus::kServing);

  auto stub = v1::DataStore::NewStub(channel);
  v1::RegistrationEntry entry;
  entry.set_spiffe_id("spiffe://example.org/workload");
  entry.set_parent_id("spiffe://example.org/agent");
  entry.add_selectors()->set_type("unix");
  entry.mutable_selectors(0)->set_value("uid:1000");
  v1::RegistrationEntry created;
  grpc::ClientContext create_context;
  ASSERT_TRUE(stub->CreateRegistrationEntry(&create_context, entry, &created).ok());
  EXPECT_FALSE(created.entry_id().empty());

  auto op = v1::Operator::NewStub(channel);
  grpc::ClientContext status_context;
  v1::StoreStatus status;
  ASSERT_TRUE(op->GetStoreStatus(&status_context, {}, &status).ok());
  EXPECT_TRUE(status.ready());
  EXPECT_GE(status.applied_revision(), 1);

  int code = 0;
  EXPECT_EQ(HttpGet(server->metrics_port(), "/readyz", &code), "ready\n");
  EXPECT_EQ(code, 200);
  std::string metrics = HttpGet(server->metrics_port(), "/metrics", &code);
  EXPECT_EQ(code, 200);
  EXPECT_THAT(metrics, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/"
                                 "CreateRegistrationEntry\",code=\"OK\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("plinth_store_operation_duration_seconds_count{operation=\"txn\"}"));
  EXPECT_THAT(metrics, Not(HasSubstr("plinth_mirror_applied_revision 0\n")));
  EXPECT_THAT(metrics, HasSubstr("plinth_mirror_lag_revisions "));
  EXPECT_THAT(metrics, HasSubstr("plinth_mirror_rebuilds_total 0"));

  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(server->ready());
  EXPECT_FALSE(std::filesystem::exists(config.admin_socket));
  server->Shutdown(std::chrono::system_clock::now());  // idempotent
}

TEST_F(ServerTest, CompactsHistoryToTheRetentionAfterHydrationAndPeriodically) {
  const std::string url = "memory://server_test_retention?retention=0";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> store, store::OpenStore(url));
  for (int i = 0; i < 20; ++i) ASSERT_THAT(store->Put("x/" + std::to_string(i), "v"), IsOk());

  ServerConfig config = Config(url);
  config.history_retention = 5;
  ServerOptions options;
  options.maintenance_interval = std::chrono::milliseconds(50);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Server> server, Server::Start(config, options));
  ASSERT_THAT(server->WaitUntilReady(std::chrono::seconds(30)), IsOk());

  auto compacted_to = [&](store::Revision want) {
    for (int i = 0; i < 200; ++i) {
      StatusOr<store::Revision> compacted = store->CompactedRevision();
      if (compacted.ok() && *compacted >= want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_OK_AND_ASSIGN(store::Revision current, store->CurrentRevision());
  EXPECT_TRUE(compacted_to(current - 5));
  for (int i = 0; i < 10; ++i) ASSERT_THAT(store->Put("y/" + std::to_string(i), "v"), IsOk());
  ASSERT_OK_AND_ASSIGN(current, store->CurrentRevision());
  EXPECT_TRUE(compacted_to(current - 5));
  ASSERT_OK_AND_ASSIGN(store::Revision compacted, store->CompactedRevision());
  EXPECT_EQ(compacted, current - 5);  // never beyond current - retention
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

TEST_F(ServerTest, AStoreUrlThatCannotBeUsedStopsStartUpNamingTheKey) {
  ServerConfig config = Config("nosuchbackend://x");
  EXPECT_THAT(Server::Start(config),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("store.url nosuchbackend://x")));
  EXPECT_FALSE(std::filesystem::exists(config.admin_socket));
}

TEST_F(ServerTest, AnAdminSocketInUseByAnotherServerStopsStartUpAndIsLeftAlone) {
  ServerConfig config = Config("memory://");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Server> first, Server::Start(config));
  config.metrics_listen = "";
  EXPECT_THAT(Server::Start(config), StatusIs(StatusCode::kFailedPrecondition));
  // The first server still answers on its socket.
  EXPECT_TRUE(HealthCheck(AdminSocketChannel(config.admin_socket)).ok());
  first->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace
}  // namespace plinth::server
