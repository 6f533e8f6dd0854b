// Tests of the etcd backend beyond the conformance suite: URL options, several stores on one
// cluster, the etcd-specific traps (deletes under UnchangedSince, the operation limit), and
// faults (a member killed, the cluster restarted under a watch, no endpoint reachable).
#include "store/etcd/etcd_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/test_servers.h"

namespace plinth::store::etcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

StatusOr<std::unique_ptr<Store>> Open(const std::string& url) {
  PLINTH_ASSIGN_OR_RETURN(StoreUrl parsed, ParseStoreUrl(url));
  return OpenEtcdStore(parsed, OpenOptions{});
}

// A fresh store URL on the shared test cluster, with `options` appended.
StatusOr<std::string> FreshUrl(const std::string& options = "") {
  PLINTH_ASSIGN_OR_RETURN(conformance::TestServer server, conformance::SharedTestServer("etcd"));
  std::string url = server.url + "/plinth-etcd-test/" + conformance::UniqueStoreName();
  if (!options.empty()) url += "?" + options;
  return url;
}

StatusOr<Revision> CommitOps(Store& store, std::vector<Op> ops,
                             std::vector<Condition> conditions = {}) {
  TxnRequest txn;
  txn.ops = std::move(ops);
  txn.conditions = std::move(conditions);
  return store.Commit(txn);
}

TEST(EtcdOptionsTest, AcceptsEveryOptionAndDeclaresEtcdsLimits) {
  ASSERT_OK_AND_ASSIGN(auto store, Open("etcd://127.0.0.1:1,localhost:2/p?timeout=2s"
                                        "&retention=10&username=u&password=p&tls=false"));
  EXPECT_EQ(store->backend(), "etcd");
  const Limits limits = store->limits();
  EXPECT_EQ(limits.max_ops_per_txn, 126u);  // etcd's 128 less the counter and the log entry
  EXPECT_EQ(limits.max_key_bytes, 4096u);
  EXPECT_GT(limits.max_txn_bytes, 900'000u);
  EXPECT_LT(limits.max_txn_bytes, 1'572'864u);
  EXPECT_LE(limits.max_value_bytes + limits.max_key_bytes, limits.max_txn_bytes);
  ASSERT_OK_AND_ASSIGN(store, Open("etcd://h:1/p?max_ops=3&max_value_bytes=10"));
  EXPECT_EQ(store->limits().max_ops_per_txn, 3u);
  EXPECT_EQ(store->limits().max_value_bytes, 10u);
}

TEST(EtcdOptionsTest, RejectsBadUrlsNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"etcd://127.0.0.1:2379/p?bogus=1", "bogus"},
      {"etcd://127.0.0.1:2379", "prefix"},
      {"etcd://127.0.0.1:2379/", "prefix"},
      {"etcd:///p", "endpoint"},
      {"etcd://127.0.0.1/p", "host:port"},
      {"etcd://127.0.0.1:2379,/p", "host:port"},
      {"etcd://127.0.0.1:x/p", "host:port"},
      {"etcd://h:1/p?password=secret", "username"},
      {"etcd://h:1/p?tls_cert=/c.pem", "tls_key"},
      {"etcd://h:1/p?tls=false&tls_ca=/ca.pem", "tls"},
      {"etcd://h:1/p?tls_ca=/nonexistent/ca.pem", "ca.pem"},
      {"etcd://h:1/p?timeout=0", "timeout"},
      {"etcd://h:1/p?timeout=soon", "timeout"},
      {"etcd://h:1/p?retention=-1", "retention"},
      {"etcd://h:1/p?max_ops=127", "max_ops"},
      {"etcd://h:1/p?tls=maybe", "tls"},
  };
  for (const auto& [url, names] : cases) {
    EXPECT_THAT(Open(url), StatusIs(StatusCode::kInvalidArgument, HasSubstr(names))) << url;
  }
}

TEST(EtcdStoreTest, UnreachableEndpointsAreUnavailableWithinTheTimeout) {
  // Port 1 refuses connections; 10.255.255.1 (if routed at all) never answers.
  for (const std::string url :
       {"etcd://127.0.0.1:1,127.0.0.1:2/p?timeout=1s", "etcd://10.255.255.1:2379/p?timeout=1s"}) {
    ASSERT_OK_AND_ASSIGN(auto store, Open(url));
    const auto start = steady_clock::now();
    EXPECT_THAT(store->Get("k"), StatusIs(StatusCode::kUnavailable)) << url;
    EXPECT_THAT(store->Put("k", "v"), StatusIs(StatusCode::kUnavailable)) << url;
    EXPECT_THAT(store->CurrentRevision(), StatusIs(StatusCode::kUnavailable)) << url;
    EXPECT_THAT(store->Watch(KeySpan::All(), 0), StatusIs(StatusCode::kUnavailable)) << url;
    EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(12)) << url;
  }
}

// Runs etcdctl against the shared test cluster (this test process's own cluster).
Status Etcdctl(const conformance::TestServer& server, const std::string& args) {
  const std::string endpoints = server.url.substr(server.url.find("://") + 3);
  const std::string command =
      "ETCDCTL_API=3 etcdctl --endpoints=" + endpoints + " " + args + " > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) return InternalError("failed: " + command);
  return Status::Ok();
}

TEST(EtcdStoreTest, UsernameAndPasswordAuthenticateWhenTheClusterRequiresIt) {
  ASSERT_OK_AND_ASSIGN(conformance::TestServer server, conformance::SharedTestServer("etcd"));
  ASSERT_OK_AND_ASSIGN(std::string url, FreshUrl());
  ASSERT_OK(Etcdctl(server, "user add root:plinth-pw"));
  ASSERT_OK(Etcdctl(server, "auth enable"));
  struct DisableAuth {
    const conformance::TestServer& server;
    ~DisableAuth() {
      EXPECT_OK(Etcdctl(server, "--user root:plinth-pw auth disable"));
      EXPECT_OK(Etcdctl(server, "user delete root"));
    }
  } disable_auth{server};

  ASSERT_OK_AND_ASSIGN(auto store, Open(url + "?username=root&password=plinth-pw&timeout=3s"));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(Revision rev, store->Put("k", "v"));
  EXPECT_EQ(rev, 1);
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store->Get("k"));
  EXPECT_EQ(kv.value, "v");
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(milliseconds(10'000)));
  EXPECT_EQ(batch.revision, 1);

  ASSERT_OK_AND_ASSIGN(auto wrong, Open(url + "?username=root&password=wrong&timeout=3s"));
  EXPECT_THAT(wrong->Get("k"), StatusIs(StatusCode::kUnauthenticated));
  ASSERT_OK_AND_ASSIGN(auto anonymous, Open(url + "?timeout=3s"));
  EXPECT_THAT(anonymous->Put("k", "x"), StatusIs(StatusCode::kUnauthenticated));
}

TEST(EtcdStoreTest, TwoPrefixesOnOneClusterAreIndependentAndEachGapFree) {
  ASSERT_OK_AND_ASSIGN(std::string url_a, FreshUrl());
  ASSERT_OK_AND_ASSIGN(std::string url_b, FreshUrl());
  ASSERT_OK_AND_ASSIGN(auto a, Open(url_a));
  ASSERT_OK_AND_ASSIGN(auto b, Open(url_b));
  ASSERT_OK_AND_ASSIGN(auto watch_a, a->Watch(KeySpan::All(), 1));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK_AND_ASSIGN(Revision ra, a->Put("k", "a" + std::to_string(i)));
    EXPECT_EQ(ra, i);
    ASSERT_OK_AND_ASSIGN(Revision rb, CommitOps(*b, {Op::Put("k", "b"), Op::Put("x", "b")}));
    EXPECT_EQ(rb, 2 * i - 1);
    ASSERT_OK_AND_ASSIGN(rb, b->Delete("x"));
    EXPECT_EQ(rb, 2 * i);
  }
  ASSERT_OK_AND_ASSIGN(KeyValue kv, a->Get("k"));
  EXPECT_EQ(kv, (KeyValue{"k", "a10", 1, 10}));
  ASSERT_OK_AND_ASSIGN(RangeResult all_b, b->Range(KeySpan::All(), {}));
  EXPECT_EQ(all_b.revision, 20);
  ASSERT_EQ(all_b.kvs.size(), 1u);
  EXPECT_EQ(all_b.kvs[0], (KeyValue{"k", "b", 1, 19}));
  // A's watch sees exactly A's ten transactions.
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch_a->Next(milliseconds(10'000)));
    EXPECT_EQ(batch.revision, i);
    ASSERT_EQ(batch.events.size(), 1u);
    EXPECT_EQ(batch.events[0].kv.value, "a" + std::to_string(i));
  }
  EXPECT_THAT(watch_a->Next(milliseconds(300)), StatusIs(StatusCode::kDeadlineExceeded));
  // Compacting one store does not move the other's compaction point.
  ASSERT_OK(a->Compact(5));
  ASSERT_OK_AND_ASSIGN(Revision compacted_b, b->CompactedRevision());
  EXPECT_EQ(compacted_b, 0);
}

TEST(EtcdStoreTest, UnchangedSinceIsViolatedByADeleteEvenThoughTheKeyIsGone) {
  ASSERT_OK_AND_ASSIGN(std::string url, FreshUrl());
  ASSERT_OK_AND_ASSIGN(auto store, Open(url));
  ASSERT_OK(store->Put("s/a", "1"));
  ASSERT_OK_AND_ASSIGN(Revision seeded, store->Put("s/b", "2"));
  auto tx = store->Begin();
  ASSERT_OK_AND_ASSIGN(RangeResult r, tx->Range(KeySpan::Prefix("s/")));
  EXPECT_EQ(r.kvs.size(), 2u);
  // The only change under s/ is a delete: no key in the span is newer than `seeded`, so an
  // etcd range compare on mod_revision alone would not notice.
  ASSERT_OK(store->Delete("s/b"));
  ASSERT_OK(tx->Put("t/result", "x"));
  EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kAborted));
  EXPECT_THAT(CommitOps(*store, {Op::Put("t/result", "x")},
                        {Condition::UnchangedSince(KeySpan::Key("s/b"), seeded)}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(CommitOps(*store, {Op::Put("t/result", "x")},
                        {Condition::UnchangedSince(KeySpan::Prefix("s/"), seeded)}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(store->Get("t/result"), StatusIs(StatusCode::kNotFound));
  // A DeleteRange is caught the same way.
  ASSERT_OK_AND_ASSIGN(Revision before, store->CurrentRevision());
  ASSERT_OK(CommitOps(*store, {Op::DeleteRange(KeySpan::Prefix("s/"))}));
  EXPECT_THAT(CommitOps(*store, {Op::Put("t/result", "x")},
                        {Condition::UnchangedSince(KeySpan::Key("s/a"), before)}),
              StatusIs(StatusCode::kAborted));
  // Unrelated spans still hold.
  EXPECT_OK(CommitOps(*store, {Op::Put("t/result", "x")},
                      {Condition::UnchangedSince(KeySpan::Prefix("u/"), seeded)}));
}

TEST(EtcdStoreTest, TransactionOverEtcdsOperationLimitIsRefusedWhole) {
  ASSERT_OK_AND_ASSIGN(std::string url, FreshUrl());
  ASSERT_OK_AND_ASSIGN(auto store, Open(url));
  const size_t max_ops = store->limits().max_ops_per_txn;
  // Over the declared limit: refused before etcd sees it.
  std::vector<Op> ops;
  for (size_t i = 0; i <= max_ops; ++i) ops.push_back(Op::Put("over/" + std::to_string(i), "v"));
  EXPECT_THAT(CommitOps(*store, ops),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr(std::to_string(max_ops))));
  ops.pop_back();
  ASSERT_OK_AND_ASSIGN(Revision full, CommitOps(*store, ops));  // exactly at the limit
  EXPECT_EQ(full, 1);
  ASSERT_OK(CommitOps(*store, {Op::Put("more/1", "v"), Op::Put("more/2", "v")}));
  ASSERT_OK_AND_ASSIGN(Revision before, store->CurrentRevision());
  // Within max_ops, but a DeleteRange of 126 live keys interleaved with 125 new keys needs 251
  // etcd operations (each put splits the range): refused whole, never split.
  ops.clear();
  ops.push_back(Op::DeleteRange(KeySpan::Prefix("over/")));
  for (size_t i = 0; i + 1 < max_ops; ++i) {
    ops.push_back(Op::Put("over/" + std::to_string(i) + std::string(1, '\0'), "v"));
  }
  EXPECT_THAT(CommitOps(*store, ops), StatusIs(StatusCode::kResourceExhausted, HasSubstr("126")));
  ASSERT_OK_AND_ASSIGN(Revision after, store->CurrentRevision());
  EXPECT_EQ(after, before);
  ASSERT_OK_AND_ASSIGN(CountResult count, store->Count(KeySpan::All()));
  EXPECT_EQ(count.count, static_cast<int64_t>(max_ops) + 2);
  // An uninterrupted DeleteRange is one etcd operation however many keys it deletes.
  ASSERT_OK_AND_ASSIGN(Revision deleted,
                       CommitOps(*store, {Op::Put("new", "v"), Op::DeleteRange(KeySpan::All()),
                                          Op::Put("z/new", "v")}));
  EXPECT_EQ(deleted, before + 1);
  ASSERT_OK_AND_ASSIGN(RangeResult left, store->Range(KeySpan::All(), {}));
  ASSERT_EQ(left.kvs.size(), 1u);
  EXPECT_EQ(left.kvs[0].key, "z/new");
  EXPECT_THAT(CommitOps(*store, {Op::Put("x", "v")},
                        {Condition::UnchangedSince(KeySpan::Key("over/7"), before)}),
              StatusIs(StatusCode::kAborted));
  // A key repeated in one transaction is one etcd operation.
  ASSERT_OK(CommitOps(
      *store, {Op::Put("dup", "1"), Op::Put("dup", "2"), Op::Delete("dup"), Op::Put("dup", "3")}));
  ASSERT_OK_AND_ASSIGN(KeyValue dup, store->Get("dup"));
  EXPECT_EQ(dup.value, "3");
}

TEST(EtcdStoreTest, KilledMemberFailsOverWithoutLosingAnAcknowledgedWrite) {
  ASSERT_OK_AND_ASSIGN(conformance::TestServer server, conformance::SharedTestServer("etcd"));
  ASSERT_OK_AND_ASSIGN(std::string url, FreshUrl());
  ASSERT_OK_AND_ASSIGN(auto store, Open(url));
  // The watch's stream starts on member 1 too, and must move to a survivor.
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::Prefix("w/"), 1));
  std::map<Revision, std::string> acked;
  Status writer_status;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const std::string key = "w/" + std::to_string(i);
      StatusOr<Revision> rev = store->Put(key, "v");
      if (!rev.ok()) {
        writer_status = rev.status();
        return;
      }
      acked[*rev] = key;
    }
  });
  std::this_thread::sleep_for(milliseconds(500));
  // Member 1 is the first endpoint, the one the client starts with.
  Status killed = conformance::ControlTestServer(server, "kill-member", {"1"}).status();
  std::this_thread::sleep_for(milliseconds(2000));
  stop = true;
  writer.join();
  ASSERT_OK(killed);
  EXPECT_OK(writer_status);
  // Reads keep working on the survivors, and every acknowledged write is there.
  ASSERT_OK_AND_ASSIGN(auto reopened, Open(url));
  ASSERT_OK_AND_ASSIGN(Revision current, reopened->CurrentRevision());
  ASSERT_FALSE(acked.empty());
  EXPECT_EQ(current, acked.rbegin()->first);
  EXPECT_EQ(static_cast<Revision>(acked.size()), current) << "revisions have a gap";
  for (const auto& [rev, key] : acked) {
    ASSERT_OK_AND_ASSIGN(KeyValue kv, reopened->Get(key));
    EXPECT_EQ(kv.mod_revision, rev);
  }
  // The watch saw every acknowledged commit once, in order.
  std::vector<WatchBatch> got;
  while (got.empty() || got.back().revision < current) {
    StatusOr<WatchBatch> batch = watch->Next(milliseconds(30'000));
    ASSERT_OK(batch) << "after " << got.size() << " batches";
    got.push_back(*std::move(batch));
  }
  ASSERT_EQ(got.size(), acked.size());
  auto it = acked.begin();
  for (const WatchBatch& batch : got) {
    EXPECT_EQ(batch.revision, it->first);
    ASSERT_EQ(batch.events.size(), 1u);
    EXPECT_EQ(batch.events[0].kv.key, it->second);
    ++it;
  }
  ASSERT_OK(conformance::ControlTestServer(server, "start-member", {"1"}));
  ASSERT_OK_AND_ASSIGN(Revision next, reopened->Put("after", "x"));
  EXPECT_EQ(next, current + 1);
}

TEST(EtcdStoreTest, WatchResumesAcrossAClusterRestartWithNothingMissedOrRepeated) {
  ASSERT_OK_AND_ASSIGN(conformance::TestServer server, conformance::SharedTestServer("etcd"));
  ASSERT_OK_AND_ASSIGN(std::string url, FreshUrl());
  ASSERT_OK_AND_ASSIGN(auto store, Open(url + "?timeout=10s"));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::Prefix("r/"), 1));
  for (int i = 0; i < 5; ++i) ASSERT_OK(store->Put("r/" + std::to_string(i), "before"));
  std::vector<WatchBatch> got;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(milliseconds(10'000)));
    got.push_back(batch);
  }
  ASSERT_OK(conformance::ControlTestServer(server, "restart"));
  Revision last = 0;
  for (int i = 5; i < 10; ++i) {
    StatusOr<Revision> rev = store->Put("r/" + std::to_string(i), "after");
    for (int retry = 0; !rev.ok() && retry < 20; ++retry) {  // the cluster may still elect
      std::this_thread::sleep_for(milliseconds(250));
      rev = store->Put("r/" + std::to_string(i), "after");
    }
    ASSERT_OK(rev);
    last = *rev;
  }
  EXPECT_EQ(last, 10);
  while (got.empty() || got.back().revision < last) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(milliseconds(30'000)));
    got.push_back(batch);
  }
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].revision, static_cast<Revision>(i + 1));
    ASSERT_EQ(got[i].events.size(), 1u);
    EXPECT_EQ(got[i].events[0].kv.key, "r/" + std::to_string(i));
    EXPECT_EQ(got[i].events[0].kv.value, i < 5 ? "before" : "after");
  }
  EXPECT_THAT(watch->Next(milliseconds(300)), StatusIs(StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace plinth::store::etcd
