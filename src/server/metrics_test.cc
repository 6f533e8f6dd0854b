#include "server/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "server/rpc_metrics.h"

namespace plinth::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(MetricsRegistryTest, ExpositionTextIsExact) {
  MetricsRegistry registry;
  CounterFamily& requests = registry.AddCounter(
      "plinth_test_requests_total", "Requests.\nBy \"method\" \\ code.", {"method", "code"});
  requests.WithLabels({"/a.B/C", "OK"}).Increment();
  requests.WithLabels({"/a.B/C", "OK"}).Increment(2);
  requests.WithLabels({"say \"hi\"\\\n", "NOT_FOUND"}).Increment(0.5);
  registry.AddGauge("plinth_test_up", "Up.").WithLabels({}).Set(1);
  HistogramFamily& latency =
      registry.AddHistogram("plinth_test_seconds", "Latency.", {"op"}, {0.1, 1, 2.5});
  latency.WithLabels({"get"}).Observe(0.05);
  latency.WithLabels({"get"}).Observe(0.1);  // bounds are inclusive
  latency.WithLabels({"get"}).Observe(2);
  latency.WithLabels({"get"}).Observe(7);
  int revision = 42;
  CallbackGaugeHandle handle =
      registry.AddCallbackGauge("plinth_test_revision", "Revision.", [&] { return revision; });
  registry.AddCounter("plinth_test_unused_total", "Never incremented.");
  registry.AddGauge("plinth_test_labelled", "No children yet.", {"x"});

  EXPECT_EQ(registry.Exposition(),
            "# HELP plinth_test_labelled No children yet.\n"
            "# TYPE plinth_test_labelled gauge\n"
            "# HELP plinth_test_requests_total Requests.\\nBy \"method\" \\\\ code.\n"
            "# TYPE plinth_test_requests_total counter\n"
            "plinth_test_requests_total{method=\"/a.B/C\",code=\"OK\"} 3\n"
            "plinth_test_requests_total{method=\"say \\\"hi\\\"\\\\\\n\",code=\"NOT_FOUND\"} 0.5\n"
            "# HELP plinth_test_revision Revision.\n"
            "# TYPE plinth_test_revision gauge\n"
            "plinth_test_revision 42\n"
            "# HELP plinth_test_seconds Latency.\n"
            "# TYPE plinth_test_seconds histogram\n"
            "plinth_test_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
            "plinth_test_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
            "plinth_test_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
            "plinth_test_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
            "plinth_test_seconds_sum{op=\"get\"} 9.15\n"
            "plinth_test_seconds_count{op=\"get\"} 4\n"
            "# HELP plinth_test_unused_total Never incremented.\n"
            "# TYPE plinth_test_unused_total counter\n"
            "plinth_test_unused_total 0\n"
            "# HELP plinth_test_up Up.\n"
            "# TYPE plinth_test_up gauge\n"
            "plinth_test_up 1\n");
}

TEST(MetricsRegistryTest, CallbackGaugeIsReadAtScrapeAndGoneAfterReset) {
  MetricsRegistry registry;
  double value = 1;
  CallbackGaugeHandle handle =
      registry.AddCallbackGauge("plinth_test_lag", "Lag.", [&] { return value; });
  EXPECT_THAT(registry.Exposition(), HasSubstr("plinth_test_lag 1\n"));
  value = 2.5;
  EXPECT_THAT(registry.Exposition(), HasSubstr("plinth_test_lag 2.5\n"));
  CallbackGaugeHandle moved = std::move(handle);
  handle.Reset();  // a moved-from handle owns nothing
  EXPECT_THAT(registry.Exposition(), HasSubstr("plinth_test_lag 2.5\n"));
  moved.Reset();
  EXPECT_EQ(registry.Exposition(), "");
  // The name may be registered again.
  CallbackGaugeHandle again =
      registry.AddCallbackGauge("plinth_test_lag", "Lag.", [] { return -1.0; });
  EXPECT_THAT(registry.Exposition(), HasSubstr("plinth_test_lag -1\n"));
}

TEST(MetricsRegistryTest, SpecialValuesUsePrometheusSpelling) {
  MetricsRegistry registry;
  GaugeFamily& g = registry.AddGauge("g", "G.", {"k"});
  g.WithLabels({"inf"}).Set(std::numeric_limits<double>::infinity());
  g.WithLabels({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  g.WithLabels({"neg"}).Set(-std::numeric_limits<double>::infinity());
  g.WithLabels({"big"}).Set(1e21);
  std::string text = registry.Exposition();
  EXPECT_THAT(text, HasSubstr("g{k=\"inf\"} +Inf\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"nan\"} NaN\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"neg\"} -Inf\n"));
  EXPECT_THAT(text, HasSubstr("g{k=\"big\"} 1e+21\n"));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  CounterFamily& counter = registry.AddCounter("c_total", "C.", {"thread"});
  HistogramFamily& histogram = registry.AddHistogram("h", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        counter.WithLabels({std::to_string(t % 2)}).Increment();
        histogram.WithLabels({}).Observe(0.5);
        if (i % 100 == 0) registry.Exposition().size();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter.WithLabels({"0"}).value() + counter.WithLabels({"1"}).value(), 4000);
  EXPECT_EQ(histogram.WithLabels({}).snapshot().count, 4000u);
}

TEST(ServerMetricsTest, RecordsRpcsAndStoreOperations) {
  MetricsRegistry registry;
  ServerMetrics metrics(&registry);
  metrics.RecordRpc("/plinth.v1.DataStore/GetNode", StatusCode::kNotFound,
                    std::chrono::milliseconds(3));
  metrics.RecordRejectedRpc("/plinth.v1.DataStore/GetNode", PermissionDeniedError("no"));
  metrics.RecordStoreOperation("txn", std::chrono::microseconds(700));
  metrics.mirror_rebuilds.WithLabels({}).Increment();
  std::string text = registry.Exposition();
  EXPECT_THAT(text, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/GetNode\","
                              "code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/GetNode\","
                              "code=\"PERMISSION_DENIED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("plinth_rpc_duration_seconds_bucket{method=\"/plinth.v1.DataStore/"
                              "GetNode\",code=\"NOT_FOUND\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("plinth_store_operation_duration_seconds_bucket{operation=\"txn\","
                              "le=\"0.001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("plinth_mirror_rebuilds_total 1\n"));
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("plinth_test_total", "Test.").WithLabels({}).Increment(7);
    ASSERT_OK_AND_ASSIGN(server_, MetricsHttpServer::Start("127.0.0.1:0", &registry_, &ready_));
    ASSERT_NE(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(5);
    client_->set_read_timeout(5);
  }

  MetricsRegistry registry_;
  ReadinessFlag ready_;
  std::unique_ptr<MetricsHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(MetricsHttpServerTest, ServesTheExposition) {
  httplib::Result result = client_->Get("/metrics");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, registry_.Exposition());
  EXPECT_THAT(result->body, HasSubstr("plinth_test_total 7\n"));
  EXPECT_THAT(result->get_header_value("Content-Type"), StartsWith("text/plain; version=0.0.4"));
}

TEST_F(MetricsHttpServerTest, ReadyzIs503UntilReady) {
  httplib::Result result = client_->Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  ready_.Set(true);
  result = client_->Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  ready_.Set(false);
  result = client_->Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
}

TEST_F(MetricsHttpServerTest, HealthzIsAlways200AndOtherPathsAre404) {
  httplib::Result result = client_->Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  result = client_->Get("/nope");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
}

TEST_F(MetricsHttpServerTest, StopsAndFreesThePort) {
  uint16_t port = server_->port();
  server_->Stop();
  server_->Stop();  // idempotent
  EXPECT_FALSE(client_->Get("/healthz"));
  // The port can be bound again.
  ASSERT_OK_AND_ASSIGN(auto again, MetricsHttpServer::Start("127.0.0.1:" + std::to_string(port),
                                                            &registry_, &ready_));
  EXPECT_EQ(again->port(), port);
}

TEST(MetricsHttpServerStartTest, ReportsBadAndBusyAddresses) {
  MetricsRegistry registry;
  ReadinessFlag ready;
  EXPECT_THAT(MetricsHttpServer::Start("nowhere", &registry, &ready),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(auto first, MetricsHttpServer::Start("127.0.0.1:0", &registry, &ready));
  EXPECT_THAT(
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string(first->port()), &registry, &ready),
      StatusIs(StatusCode::kUnavailable, HasSubstr("cannot listen")));
}

}  // namespace
}  // namespace plinth::server
