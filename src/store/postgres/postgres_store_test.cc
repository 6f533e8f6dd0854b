// Tests of the postgres backend beyond the conformance suite: URL options, schema isolation,
// server restarts under an open Watch, an unreachable server, NOTIFY wake-up latency and
// concurrent first-time migrations. They run against a throwaway server started by
// scripts/servers/postgres.sh (or PLINTH_TEST_POSTGRES_URL).
#include "store/postgres/postgres_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/test_servers.h"

namespace plinth::store::postgres {
namespace {

using conformance::ControlTestServer;
using conformance::SharedTestServer;
using conformance::TestServer;
using conformance::UniqueStoreName;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

MATCHER_P(IsOkAndHolds, value, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return *arg == value;
}

StatusOr<std::unique_ptr<Store>> Open(const std::string& url) {
  PLINTH_ASSIGN_OR_RETURN(StoreUrl parsed, ParseStoreUrl(url));
  return OpenPostgresStore(parsed, OpenOptions());
}

// Reads batches until one at or beyond `through`, or an error other than DeadlineExceeded, or
// `limit` passes.
StatusOr<std::vector<WatchBatch>> ReadThrough(WatchStream& watch, Revision through,
                                              milliseconds limit = milliseconds(30'000)) {
  const auto deadline = steady_clock::now() + limit;
  std::vector<WatchBatch> batches;
  while (batches.empty() || batches.back().revision < through) {
    if (steady_clock::now() >= deadline) {
      return DeadlineExceededError("watch did not reach revision " + std::to_string(through));
    }
    StatusOr<WatchBatch> batch = watch.Next(milliseconds(50));
    if (batch.ok()) {
      batches.push_back(std::move(batch).value());
    } else if (batch.status().code() != StatusCode::kDeadlineExceeded) {
      return batch.status();
    }
  }
  return batches;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<TestServer> server = SharedTestServer("postgres");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
  }

  // A URL for a fresh schema, with extra options.
  std::string FreshUrl(const std::string& options = "") {
    return server_.url + "?schema=" + UniqueStoreName() + (options.empty() ? "" : "&" + options);
  }

  // Runs one SQL statement through libpq directly.
  void Sql(const std::string& sql) {
    std::string uri = server_.url;
    uri.replace(0, uri.find("://"), "postgresql");
    PGconn* conn = PQconnectdb(uri.c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PGresult* r = PQexec(conn, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
  }

  // Restarts the server; fails the test if it cannot.
  void Restart() {
    StatusOr<std::string> out = ControlTestServer(server_, "restart");
    ASSERT_TRUE(out.ok()) << out.status();
  }

  TestServer server_;
};

TEST_F(PostgresStoreTest, UnknownAndBadOptionsAreRejectedBeforeConnecting) {
  // Port 1 is closed: every one of these must fail on the URL, not on the connection.
  const std::string base = "postgres://u@127.0.0.1:1/db";
  struct Case {
    std::string options;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{{"bogus=1", "bogus"},
                                         {"schema=has-dash", "schema"},
                                         {"schema=pg_catalog", "schema"},
                                         {"schema=", "schema"},
                                         {"pool=0", "pool"},
                                         {"pool=x", "pool"},
                                         {"timeout=1ms", "timeout"},
                                         {"poll_interval=0", "poll_interval"},
                                         {"retention=-1", "retention"},
                                         {"max_key_bytes=0", "max_key_bytes"},
                                         {"max_value_bytes=999999999999", "max_value_bytes"},
                                         {"replication=1", "replication"}}) {
    auto store = Open(base + "?" + c.options);
    ASSERT_FALSE(store.ok()) << c.options;
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << store.status();
    EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr(c.mentions));
  }
  // A libpq parameter with a value libpq rejects.
  auto store = Open(base + "?sslmode=sometimes");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << store.status();
}

TEST_F(PostgresStoreTest, MessagesNeverShowThePassword) {
  for (const std::string url :
       {"postgres://u:s3cret@127.0.0.1:1/db?bogus=1", "postgres://u:s3cret@127.0.0.1:1x/db",
        "postgres://u:s3cret@127.0.0.1:1/db?timeout=500ms"}) {
    auto store = Open(url);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_THAT(std::string(store.status().message()),
                ::testing::Not(::testing::HasSubstr("s3cret")));
  }
}

TEST_F(PostgresStoreTest, PasswordAndDatabaseArePercentDecoded) {
  if (server_.dir.empty()) GTEST_FAIL() << "needs a server started by the test";
  // Trust authentication ignores the password; the URL must still parse and connect.
  std::string url = server_.url;
  url.insert(url.find("postgres@") + 8, ":p%40ss%2Fw%3Ard");
  auto store = Open(url + "?schema=" + UniqueStoreName());
  ASSERT_TRUE(store.ok()) << store.status();
  auto missing = Open(server_.url + "_missing?schema=x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status();
}

TEST_F(PostgresStoreTest, LibpqParametersArePassedThrough) {
  // sslmode=disable works against the test server (no TLS); sslmode=require does not.
  auto store =
      Open(FreshUrl("sslmode=disable&application_name=plinth_test&connect_timeout=3&pool=2"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT((*store)->Put("k", "v"), IsOkAndHolds(1));
  auto tls = Open(FreshUrl("sslmode=require"));
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().code(), StatusCode::kUnavailable) << tls.status();
  EXPECT_THAT(std::string(tls.status().message()), ::testing::HasSubstr("SSL"));
}

TEST_F(PostgresStoreTest, HostMayBeAUnixSocketDirectory) {
  if (server_.dir.empty()) GTEST_FAIL() << "needs a server started by the test";
  // The test server's socket directory, percent-encoded as the URL's host.
  std::string host;
  for (char c : server_.dir + "/sock") host += c == '/' ? std::string("%2F") : std::string(1, c);
  const std::string port = server_.url.substr(server_.url.rfind(':') + 1,
                                              server_.url.rfind('/') - server_.url.rfind(':') - 1);
  auto store =
      Open("postgres://postgres@" + host + ":" + port + "/plinth?schema=" + UniqueStoreName());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT((*store)->Put("k", "v"), IsOkAndHolds(1));
}

TEST_F(PostgresStoreTest, DefaultsAreDeclared) {
  auto store = Open(FreshUrl());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->backend(), "postgres");
  EXPECT_EQ((*store)->limits().max_key_bytes, 4096u);
  EXPECT_EQ((*store)->limits().max_value_bytes, size_t{16} << 20);
  EXPECT_EQ((*store)->limits().max_ops_per_txn, 100'000u);
  EXPECT_EQ((*store)->limits().max_txn_bytes, size_t{256} << 20);
}

TEST_F(PostgresStoreTest, SchemasInOneDatabaseAreIndependent) {
  const std::string a_url = FreshUrl(), b_url = FreshUrl();
  auto a = Open(a_url);
  auto b = Open(b_url);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_THAT((*a)->Put("k", "in a"), IsOkAndHolds(1));
  ASSERT_THAT((*a)->Put("k2", "in a"), IsOkAndHolds(2));
  auto watch_b = (*b)->Watch(KeySpan::All(), 1);
  ASSERT_TRUE(watch_b.ok()) << watch_b.status();
  ASSERT_THAT((*b)->Put("k", "in b"), IsOkAndHolds(1));
  EXPECT_EQ((*a)->Get("k")->value, "in a");
  EXPECT_EQ((*b)->Get("k")->value, "in b");
  EXPECT_THAT((*b)->Get("k2"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT((*a)->CurrentRevision(), IsOkAndHolds(2));
  EXPECT_THAT((*b)->CurrentRevision(), IsOkAndHolds(1));
  // b's watch sees only b's commit.
  auto batch = (*watch_b)->Next(milliseconds(5000));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->revision, 1);
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].kv.value, "in b");
  EXPECT_THAT((*watch_b)->Next(milliseconds(300)), StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_TRUE((*a)->Compact(2).ok());
  EXPECT_THAT((*b)->CompactedRevision(), IsOkAndHolds(0));
}

TEST_F(PostgresStoreTest, KeysSortBytewise) {
  auto store = Open(FreshUrl());
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<std::string> keys = {std::string("\x00", 1),
                                         std::string("\x00\x00", 2),
                                         std::string("\x00\xff", 2),
                                         "a",
                                         "a\x7f",
                                         "a\x80",
                                         "\xff",
                                         std::string("\xff\x00", 2),
                                         "\xff\xff"};
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    ASSERT_TRUE((*store)->Put(*it, *it).ok());
  }
  auto all = (*store)->Range(KeySpan::All(), {});
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> got;
  for (const KeyValue& kv : all->kvs) got.push_back(kv.key);
  EXPECT_EQ(got, keys);
  auto high = (*store)->Range(KeySpan::Prefix("\xff"), {});
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high->kvs.size(), 3u);
}

TEST_F(PostgresStoreTest, ForeignTablesInTheSchemaAreNotTouched) {
  const std::string schema = UniqueStoreName();
  Sql("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema + ".kv (x int)");
  auto store = Open(server_.url + "?schema=" + schema);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("not a plinth store"));
}

TEST_F(PostgresStoreTest, ConcurrentFirstOpensMigrateOnce) {
  const std::string url = FreshUrl();
  constexpr int kOpeners = 6;
  std::vector<std::unique_ptr<Store>> stores(kOpeners);
  std::vector<Status> errors(kOpeners);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto opened = Open(url);
      if (opened.ok()) {
        stores[i] = std::move(opened).value();
      } else {
        errors[i] = opened.status();
      }
    });
  }
  go.store(true);
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) {
    ASSERT_TRUE(errors[i].ok()) << "opener " << i << ": " << errors[i];
  }
  for (int i = 0; i < kOpeners; ++i) {
    EXPECT_THAT(stores[i]->Put("k" + std::to_string(i), "v"), IsOkAndHolds(i + 1));
  }
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailableWithinTheTimeout) {
  // A closed port: refused at once.
  auto start = steady_clock::now();
  auto refused = Open("postgres://postgres@127.0.0.1:1/plinth?timeout=1s");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  // An address that never answers (TEST-NET-1): bounded by timeout.
  start = steady_clock::now();
  auto silent = Open("postgres://postgres@192.0.2.1:5432/plinth?timeout=500ms");
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.status().code(), StatusCode::kUnavailable) << silent.status();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(PostgresStoreTest, NotifyWakesAWatcherInAnotherStoreLongBeforeThePollInterval) {
  const std::string url = FreshUrl();
  auto watcher_store = Open(url + "&poll_interval=30s");
  auto writer = Open(url);
  ASSERT_TRUE(watcher_store.ok()) << watcher_store.status();
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto watch = (*watcher_store)->Watch(KeySpan::All(), 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  // Let the listener connect and LISTEN.
  EXPECT_THAT((*watch)->Next(milliseconds(500)), StatusIs(StatusCode::kDeadlineExceeded));
  constexpr int kRounds = 10;
  steady_clock::duration total{};
  for (int i = 1; i <= kRounds; ++i) {
    const auto before = steady_clock::now();
    ASSERT_THAT((*writer)->Put("k", std::to_string(i)), IsOkAndHolds(i));
    auto batch = (*watch)->Next(milliseconds(20'000));
    total += steady_clock::now() - before;
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_EQ(batch->revision, i);
  }
  const auto average = std::chrono::duration_cast<milliseconds>(total / kRounds);
  EXPECT_LT(average, milliseconds(500)) << "average wake-up " << average.count() << " ms";
}

TEST_F(PostgresStoreTest, WatchResumesAcrossAServerRestartWithNothingMissedOrRepeated) {
  if (server_.dir.empty()) GTEST_FAIL() << "needs a server started by the test";
  auto store = Open(FreshUrl("timeout=20s"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto other = Open(FreshUrl());  // another store on the server, idle across the restart
  ASSERT_TRUE(other.ok()) << other.status();
  auto watch = (*store)->Watch(KeySpan::All(), 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto snapshot_before = (*store)->OpenSnapshot();
  ASSERT_TRUE(snapshot_before.ok());
  snapshot_before->reset();

  ASSERT_THAT((*store)->Put("a", "1"), IsOkAndHolds(1));
  ASSERT_THAT((*store)->Put("b", "2"), IsOkAndHolds(2));
  auto first = ReadThrough(**watch, 2);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);

  // Another thread keeps calling Next while the server goes away and comes back.
  StatusOr<std::vector<WatchBatch>> rest = InternalError("not read");
  std::thread reader([&] { rest = ReadThrough(**watch, 4); });
  // No ASSERT until the reader is joined.
  StatusOr<std::string> restarted = ControlTestServer(server_, "restart");
  EXPECT_TRUE(restarted.ok()) << restarted.status();
  // Pooled connections died with the server: the next calls reconnect.
  EXPECT_THAT((*store)->Put("c", "3"), IsOkAndHolds(3));
  EXPECT_THAT((*store)->Put("d", "4"), IsOkAndHolds(4));
  EXPECT_THAT((*other)->Put("x", "1"), IsOkAndHolds(1));
  reader.join();
  ASSERT_TRUE(rest.ok()) << rest.status();
  std::vector<Revision> revisions;
  for (const WatchBatch& b : *rest) revisions.push_back(b.revision);
  EXPECT_EQ(revisions, (std::vector<Revision>{3, 4}));
  EXPECT_THAT((*watch)->Next(milliseconds(300)), StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_EQ((*store)->Get("a")->value, "1");
}

TEST_F(PostgresStoreTest, NotificationsWakeWatchersAgainAfterARestart) {
  if (server_.dir.empty()) GTEST_FAIL() << "needs a server started by the test";
  const std::string url = FreshUrl();
  auto watcher_store = Open(url + "&poll_interval=60s&timeout=20s");
  auto writer = Open(url);
  ASSERT_TRUE(watcher_store.ok()) << watcher_store.status();
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto watch = (*watcher_store)->Watch(KeySpan::All(), 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_THAT((*watch)->Next(milliseconds(300)), StatusIs(StatusCode::kDeadlineExceeded));
  Restart();
  // Give the listener time to reconnect (it retries every 250 ms).
  EXPECT_THAT((*watch)->Next(milliseconds(1500)), StatusIs(StatusCode::kDeadlineExceeded));
  const auto before = steady_clock::now();
  ASSERT_THAT((*writer)->Put("k", "v"), IsOkAndHolds(1));
  auto batch = (*watch)->Next(milliseconds(30'000));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->revision, 1);
  // Far below the 60 s poll interval: woken by a notification on the new LISTEN connection.
  EXPECT_LT(steady_clock::now() - before, std::chrono::seconds(5));
}

TEST_F(PostgresStoreTest, WatchFailsUnavailableWhenTheServerStaysAway) {
  if (server_.dir.empty()) GTEST_FAIL() << "needs a server started by the test";
  auto store = Open(FreshUrl("timeout=1s&poll_interval=100ms"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto watch = (*store)->Watch(KeySpan::All(), 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_THAT((*store)->Put("a", "1"), IsOkAndHolds(1));
  ASSERT_TRUE((*watch)->Next(milliseconds(5000)).ok());

  ASSERT_TRUE(ControlTestServer(server_, "stop").ok());
  const auto start = steady_clock::now();
  Status status;
  while (steady_clock::now() - start < std::chrono::seconds(20)) {
    StatusOr<WatchBatch> batch = (*watch)->Next(milliseconds(200));
    ASSERT_FALSE(batch.ok()) << "a batch while the server is down";
    if (batch.status().code() != StatusCode::kDeadlineExceeded) {
      status = batch.status();
      break;
    }
  }
  const auto took = steady_clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
  EXPECT_LT(took, std::chrono::seconds(8));
  EXPECT_THAT((*store)->Put("b", "2"), StatusIs(StatusCode::kUnavailable));
  Restart();
  // The watch stays dead; the store works again.
  EXPECT_THAT((*watch)->Next(milliseconds(100)), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT((*store)->Put("b", "2"), IsOkAndHolds(2));
}

}  // namespace
}  // namespace plinth::store::postgres
