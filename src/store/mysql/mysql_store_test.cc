// Tests of what is specific to the mysql backend: URL options, table prefixes, byte order of
// VARBINARY keys, schema migrations racing, reconnecting after a server restart, and failing
// in bounded time when the server cannot be reached. The store contract itself is covered by
// the conformance suite (store_conformance_test --gtest_filter='*/mysql').
#include "store/mysql/mysql_store.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/test_servers.h"
#include "store/mysql/internal/mysql_db.h"

namespace plinth::store::mysql {
namespace {

using namespace std::string_literals;  // NOLINT(build/namespaces): "\0"s keeps embedded NULs
using conformance::ControlTestServer;
using conformance::SharedTestServer;
using conformance::TestServer;
using conformance::UniqueStoreName;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

// Opens a store as OpenStore would for the mysql and mariadb schemes (registered in
// store/open.cc; the conformance suite opens through the registry).
StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view text) {
  PLINTH_ASSIGN_OR_RETURN(StoreUrl url, ParseStoreUrl(text));
  if (url.scheme != "mysql" && url.scheme != "mariadb") {
    return InvalidArgumentError("not a mysql URL: " + url.text);
  }
  return OpenMysqlStore(url, OpenOptions{});
}

TestServer Server() {
  StatusOr<TestServer> server = SharedTestServer("mariadb");
  EXPECT_OK(server);
  return server.ok() ? *server : TestServer{};
}

// A fresh store's URL on the shared server, with extra `options`.
std::string FreshUrl(std::string_view options = "") {
  std::string url = Server().url + "?table_prefix=" + UniqueStoreName() + "_";
  if (!options.empty()) url += "&" + std::string(options);
  return url;
}

// Commits a put of `key` on condition that it is at `mod_revision`.
StatusOr<Revision> CommitOpsFor(Store& store, const std::string& key, Revision mod_revision) {
  TxnRequest txn;
  txn.conditions.push_back(Condition::ModRevisionIs(key, mod_revision));
  txn.ops.push_back(Op::Put(key, "conditional"));
  return store.Commit(txn);
}

TEST(MysqlOptionsTest, BadOptionsAreRejectedBeforeConnecting) {
  // Port 1 on loopback: nothing is contacted, since parsing fails first.
  const std::string base = "mysql://root@127.0.0.1:1/plinth";
  for (const std::string& url : std::vector<std::string>{
           base + "?table_prefix=bad-prefix",
           base + "?table_prefix=x%3Bdrop",
           base + "?table_prefix=" + std::string(49, 'p'),
           base + "?no_such_option=1",
           base + "?pool=0",
           base + "?retention=-1",
           base + "?poll_interval=0ms",
           base + "?timeout=10ms",
           base + "?tls=sometimes",
           base + "?tls_ca=/etc/ssl/ca.pem",
           base + "?max_key_bytes=3073",
           "mysql://root@127.0.0.1:99999/plinth",
           "mysql://root@127.0.0.1:port/plinth",
           "mysql://root@127.0.0.1:3306",
           "mysql://root@127.0.0.1:3306/",
           "mysql://@127.0.0.1/plinth",
           "mysql:///plinth",
       }) {
    EXPECT_THAT(OpenStore(url), StatusIs(StatusCode::kInvalidArgument)) << url;
  }
  EXPECT_THAT(OpenStore(base + "?table_prefix=bad-prefix"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("table_prefix")));
  EXPECT_THAT(OpenStore(base + "?no_such_option=1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no_such_option")));
  // Messages never show a password.
  for (const std::string& url : {std::string("mysql://root:s3cret@127.0.0.1:1/"),
                                 std::string("mysql://root:s3cret@127.0.0.1:1/db?bogus=1"),
                                 std::string("mysql://root:s3cret@127.0.0.1:1/db?timeout=1s")}) {
    StatusOr<std::unique_ptr<Store>> store = OpenStore(url);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_THAT(store.status().message(), Not(HasSubstr("s3cret"))) << store.status();
  }
}

TEST(MysqlOptionsTest, BothSchemesOpenTheBackendWithItsLimits) {
  const std::string url = FreshUrl("max_value_bytes=1000&max_ops=7&retention=0&pool=2");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(url));
  EXPECT_EQ(store->backend(), "mysql");
  EXPECT_EQ(store->limits().max_key_bytes, 3072u);
  EXPECT_EQ(store->limits().max_value_bytes, 1000u);
  EXPECT_EQ(store->limits().max_ops_per_txn, 7u);
  std::string maria = url;
  maria.replace(0, std::string("mysql").size(), "mariadb");
  ASSERT_OK_AND_ASSIGN(auto again, OpenStore(maria));
  ASSERT_OK_AND_ASSIGN(Revision rev, store->Put("k", "v"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, again->Get("k"));
  EXPECT_EQ(kv.mod_revision, rev);
}

TEST(MysqlOptionsTest, ValueLimitBeyondTheServersPacketSizeFailsTheOpen) {
  // The test server runs with max_allowed_packet=64M.
  EXPECT_THAT(OpenStore(FreshUrl("max_value_bytes=100000000")),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("max_allowed_packet")));
}

TEST(MysqlOptionsTest, TlsRequiredFailsAgainstAServerWithoutTls) {
  // The test server has no certificate, so it offers no TLS.
  EXPECT_THAT(OpenStore(FreshUrl("tls=required")), StatusIs(StatusCode::kUnavailable));
  EXPECT_OK(OpenStore(FreshUrl("tls=preferred")));
}

TEST(MysqlStoreTest, TablePrefixesIsolateStoresInOneDatabase) {
  ASSERT_OK_AND_ASSIGN(auto a, OpenStore(FreshUrl()));
  ASSERT_OK_AND_ASSIGN(auto b, OpenStore(FreshUrl()));
  ASSERT_OK(a->Put("shared/key", "from a"));
  ASSERT_OK(a->Put("only/a", "x"));
  ASSERT_OK_AND_ASSIGN(Revision b_rev, b->Put("shared/key", "from b"));
  EXPECT_EQ(b_rev, 1);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, a->Get("shared/key"));
  EXPECT_EQ(kv.value, "from a");
  ASSERT_OK_AND_ASSIGN(kv, b->Get("shared/key"));
  EXPECT_EQ(kv.value, "from b");
  EXPECT_THAT(b->Get("only/a"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(Revision a_current, a->CurrentRevision());
  ASSERT_OK_AND_ASSIGN(Revision b_current, b->CurrentRevision());
  EXPECT_EQ(a_current, 2);
  EXPECT_EQ(b_current, 1);
  ASSERT_OK(a->Compact(2));
  ASSERT_OK_AND_ASSIGN(Revision b_compacted, b->CompactedRevision());
  EXPECT_EQ(b_compacted, 0);
}

TEST(MysqlStoreTest, KeysCompareAsUnpaddedBytes) {
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(FreshUrl()));
  // memcmp order, including the cases a padded or collated column would get wrong.
  const std::vector<std::string> sorted = {
      "\0"s, "\0\0"s, "A",     "a",     "a\0"s, "a\0\0"s, "a\x01",
      "a ",  "a\x7f", "a\x80", "a\xff", "b",    "\xff",   "\xff\xff",
  };
  for (auto it = sorted.rbegin(); it != sorted.rend(); ++it) {
    ASSERT_OK(store->Put(*it, "value of " + PrintableKey(*it)));
  }
  ASSERT_OK_AND_ASSIGN(RangeResult all, store->Range(KeySpan::All(), {}));
  std::vector<std::string> keys;
  for (const KeyValue& kv : all.kvs) keys.push_back(kv.key);
  EXPECT_THAT(keys, ElementsAreArray(sorted));
  for (const std::string& key : sorted) {
    ASSERT_OK_AND_ASSIGN(KeyValue kv, store->Get(key));
    EXPECT_EQ(kv.value, "value of " + PrintableKey(key));
  }
  // "a" alone is in [a, a\0); a prefix scan of "a\0" does not include "a".
  ASSERT_OK_AND_ASSIGN(RangeResult one, store->Range(KeySpan::Key("a"), {}));
  ASSERT_EQ(one.kvs.size(), 1u);
  EXPECT_EQ(one.kvs[0].key, "a");
  ASSERT_OK_AND_ASSIGN(RangeResult zeros, store->Range(KeySpan::Prefix("a\0"s), {}));
  std::vector<std::string> zero_keys;
  for (const KeyValue& kv : zeros.kvs) zero_keys.push_back(kv.key);
  EXPECT_THAT(zero_keys, ElementsAre("a\0"s, "a\0\0"s));
  ASSERT_OK_AND_ASSIGN(CountResult high, store->Count(KeySpan::Prefix("\xff")));
  EXPECT_EQ(high.count, 2);
  // Trailing zero bytes and spaces are significant in conditions, too.
  ASSERT_OK_AND_ASSIGN(KeyValue a, store->Get("a"));
  EXPECT_THAT(CommitOpsFor(*store, "a\0"s, a.mod_revision), StatusIs(StatusCode::kAborted));
}

TEST(MysqlStoreTest, LargeTransactionsAreWrittenWholeInBatches) {
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(FreshUrl()));
  TxnRequest bulk;
  for (int i = 0; i < 1000; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "bulk/%04d", i);
    bulk.ops.push_back(Op::Put(key, std::string(100, static_cast<char>(i))));
  }
  ASSERT_OK_AND_ASSIGN(Revision first, store->Commit(bulk));
  // Several values of megabytes, a range delete and overwrites in one transaction.
  TxnRequest mixed;
  for (int i = 0; i < 5; ++i) {
    mixed.ops.push_back(Op::Put("big/" + std::to_string(i), std::string(3 << 20, 'a' + i)));
  }
  mixed.ops.push_back(Op::DeleteRange(KeySpan::Between("bulk/0100", "bulk/0400")));
  mixed.ops.push_back(Op::Put("bulk/0000", "rewritten"));
  ASSERT_OK_AND_ASSIGN(Revision second, store->Commit(mixed));
  EXPECT_EQ(second, first + 1);
  ASSERT_OK_AND_ASSIGN(CountResult bulk_count, store->Count(KeySpan::Prefix("bulk/")));
  EXPECT_EQ(bulk_count.count, 700);
  ASSERT_OK_AND_ASSIGN(KeyValue big, store->Get("big/4"));
  EXPECT_EQ(big.value, std::string(3 << 20, 'e'));
  ASSERT_OK_AND_ASSIGN(KeyValue rewritten, store->Get("bulk/0000"));
  EXPECT_EQ(rewritten, (KeyValue{"bulk/0000", "rewritten", first, second}));

  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), first));
  ASSERT_OK_AND_ASSIGN(WatchBatch one, watch->Next(std::chrono::seconds(20)));
  EXPECT_EQ(one.revision, first);
  ASSERT_EQ(one.events.size(), 1000u);
  EXPECT_EQ(one.events[999].kv.key, "bulk/0999");
  ASSERT_OK_AND_ASSIGN(WatchBatch two, watch->Next(std::chrono::seconds(20)));
  EXPECT_EQ(two.revision, second);
  ASSERT_EQ(two.events.size(), 5u + 1u + 300u);
  for (size_t i = 1; i < two.events.size(); ++i) {
    EXPECT_LT(CompareKeys(two.events[i - 1].kv.key, two.events[i].kv.key), 0);
  }
  EXPECT_EQ(two.events[5].kv.key, "bulk/0000");
  EXPECT_EQ(two.events[6].type, Event::Type::kDelete);
  EXPECT_EQ(two.events[6].kv.key, "bulk/0100");
}

TEST(MysqlStoreTest, CommitsThroughAnotherHandleInThisProcessWakeWatchersAtOnce) {
  // With polling effectively off, only the in-process signal can deliver the change in time.
  const std::string url = FreshUrl("poll_interval=1h");
  ASSERT_OK_AND_ASSIGN(auto writer, OpenStore(url));
  ASSERT_OK_AND_ASSIGN(auto reader, OpenStore(url));
  ASSERT_OK_AND_ASSIGN(auto watch, reader->Watch(KeySpan::All(), 0));
  EXPECT_THAT(watch->Next(milliseconds(100)), StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(Revision rev, writer->Put("k", "v"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(std::chrono::seconds(5)));
  EXPECT_EQ(batch.revision, rev);
}

TEST(MysqlStoreTest, ConcurrentFirstOpensMigrateOnce) {
  const std::string url = FreshUrl();
  constexpr int kOpeners = 8;
  std::vector<StatusOr<std::unique_ptr<Store>>> stores;
  for (int i = 0; i < kOpeners; ++i) stores.emplace_back(UnknownError("not run"));
  {
    std::vector<std::jthread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        stores[i] = OpenStore(url);
      });
    }
    go = true;
  }
  std::vector<Revision> revisions;
  for (int i = 0; i < kOpeners; ++i) {
    ASSERT_OK(stores[i]) << "opener " << i;
    ASSERT_OK_AND_ASSIGN(Revision rev, (*stores[i])->Put("k" + std::to_string(i), "v"));
    revisions.push_back(rev);
  }
  EXPECT_THAT(revisions, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
}

TEST(MysqlStoreTest, ForeignTablesWithThePrefixAreLeftAlone) {
  const std::string prefix = UniqueStoreName() + "_";
  ASSERT_OK_AND_ASSIGN(StoreUrl parsed, ParseStoreUrl(Server().url));
  internal::ConnectOptions connect;
  // Server().url is mysql://root@127.0.0.1:PORT/plinth.
  const std::string loc = parsed.location;
  const size_t at = loc.find('@'), colon = loc.rfind(':'), slash = loc.find('/');
  connect.user = loc.substr(0, at);
  connect.host = loc.substr(at + 1, colon - at - 1);
  connect.port = static_cast<unsigned>(std::stoi(loc.substr(colon + 1, slash - colon - 1)));
  connect.database = loc.substr(slash + 1);
  connect.label = "test";
  ASSERT_OK_AND_ASSIGN(auto db, internal::Connection::Open(connect));
  ASSERT_OK(db->Exec("CREATE TABLE `" + prefix + "kv` (id INT PRIMARY KEY)"));
  EXPECT_THAT(OpenStore(Server().url + "?table_prefix=" + prefix),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("not a plinth store")));
  // Nothing was added beside it.
  int64_t tables = -1;
  ASSERT_OK(
      db->Run("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
              "DATABASE() AND table_name LIKE ?",
              {internal::Param::Bytes(prefix + "%")}, [&](internal::Row& row) {
                tables = row.Int(0);
                return Status::Ok();
              }));
  EXPECT_EQ(tables, 1);
}

// A port on loopback with nothing listening.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(MysqlStoreTest, UnreachableServerIsUnavailableInBoundedTime) {
  // Nothing listening: refused at once.
  auto started = steady_clock::now();
  EXPECT_THAT(
      OpenStore("mysql://root@127.0.0.1:" + std::to_string(ClosedPort()) + "/plinth?timeout=2s"),
      StatusIs(StatusCode::kUnavailable));
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(10));

  // A listener that never answers the handshake: the timeout bounds the wait.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  started = steady_clock::now();
  EXPECT_THAT(OpenStore("mysql://root@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
                        "/plinth?timeout=2s"),
              StatusIs(StatusCode::kUnavailable));
  const auto waited = steady_clock::now() - started;
  EXPECT_LT(waited, std::chrono::seconds(15));
  close(fd);
}

// Reads a watch on its own thread until it has seen `through` or failed.
struct WatchThread {
  explicit WatchThread(std::unique_ptr<WatchStream> w) : watch(std::move(w)) {
    thread = std::jthread([this] {
      const auto deadline = steady_clock::now() + std::chrono::seconds(120);
      while (steady_clock::now() < deadline) {
        const Revision target = through.load();
        if (target < 0 || (target > 0 && !batches.empty() && batches.back().revision >= target)) {
          return;
        }
        StatusOr<WatchBatch> batch = watch->Next(milliseconds(50));
        if (batch.ok()) {
          batches.push_back(*std::move(batch));
        } else if (batch.status().code() != StatusCode::kDeadlineExceeded) {
          status = batch.status();
          return;
        }
      }
      status = DeadlineExceededError("watch thread gave up");
    });
  }
  std::vector<WatchBatch> Finish(Revision target) {
    through = target;
    thread.join();
    return batches;
  }

  std::unique_ptr<WatchStream> watch;
  std::atomic<Revision> through{0};
  std::vector<WatchBatch> batches;
  Status status;
  std::jthread thread;
};

TEST(MysqlStoreTest, WatchRidesOutAServerRestartMissingAndRepeatingNothing) {
  const TestServer server = Server();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(FreshUrl("timeout=30s")));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 1));
  WatchThread reader(std::move(watch));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK_AND_ASSIGN(Revision rev, store->Put("before/" + std::to_string(i), "v"));
    ASSERT_EQ(rev, i);
  }
  ASSERT_OK(ControlTestServer(server, "restart"));
  // Pooled connections are stale now; the store reconnects on its own.
  for (int i = 6; i <= 10; ++i) {
    ASSERT_OK_AND_ASSIGN(Revision rev, store->Put("after/" + std::to_string(i), "v"));
    ASSERT_EQ(rev, i);
  }
  const std::vector<WatchBatch> batches = reader.Finish(10);
  ASSERT_OK(reader.status);
  ASSERT_EQ(batches.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(batches[i].revision, i + 1);
    ASSERT_EQ(batches[i].events.size(), 1u);
    EXPECT_EQ(batches[i].events[0].kv.key, (i < 5 ? "before/" : "after/") + std::to_string(i + 1));
  }
}

TEST(MysqlStoreTest, StoppedServerMakesCallsUnavailableAndTheStoreRecovers) {
  const TestServer server = Server();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(FreshUrl("timeout=2s")));
  ASSERT_OK_AND_ASSIGN(Revision first, store->Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), first + 1));
  ASSERT_OK(ControlTestServer(server, "stop"));
  auto started = steady_clock::now();
  EXPECT_THAT(store->Get("k"), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(store->Put("k", "2"), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(store->Range(KeySpan::All(), {}), StatusIs(StatusCode::kUnavailable));
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(15));
  // The watch waits out `timeout`, then gives up with Unavailable (never a hang).
  started = steady_clock::now();
  StatusOr<WatchBatch> batch = DeadlineExceededError("not yet");
  while (!batch.ok() && batch.status().code() == StatusCode::kDeadlineExceeded &&
         steady_clock::now() - started < std::chrono::seconds(30)) {
    batch = watch->Next(milliseconds(500));
  }
  EXPECT_THAT(batch, StatusIs(StatusCode::kUnavailable));
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_THAT(watch->Next(milliseconds(10)), StatusIs(StatusCode::kUnavailable));

  ASSERT_OK(ControlTestServer(server, "restart"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store->Get("k"));
  EXPECT_EQ(kv.value, "1");
  ASSERT_OK_AND_ASSIGN(Revision next, store->Put("k", "3"));
  EXPECT_EQ(next, first + 1);
  ASSERT_OK_AND_ASSIGN(auto again, store->Watch(KeySpan::All(), first + 1));
  ASSERT_OK_AND_ASSIGN(WatchBatch got, again->Next(std::chrono::seconds(20)));
  EXPECT_EQ(got.revision, next);
}

}  // namespace
}  // namespace plinth::store::mysql
