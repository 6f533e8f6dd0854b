// Conformance: what readers see while others write. Every read is one consistent revision
// (never half a transaction), snapshots stay put while writers move on, and a commit is
// visible to every later read through any handle on the store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using ::testing::ElementsAreArray;

// Runs `write(i)` for i = 0, 1, ... on another thread until Stop(); remembers the first error.
class BackgroundWriter {
 public:
  explicit BackgroundWriter(std::function<Status(int)> write)
      : write_(std::move(write)), thread_([this] { Run(); }) {}
  ~BackgroundWriter() { Stop().IgnoreError(); }

  // Stops the writer and returns its first error, if any.
  Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  int commits() const { return commits_; }
  // True once the writer stopped by itself (an error, or its time ran out).
  bool done() const { return done_; }
  // Returns once the writer has made `n` commits, failed, or run out of time.
  void WaitForCommits(int n) const {
    while (commits_ < n && !done_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

 private:
  void Run() {
    const auto deadline = std::chrono::steady_clock::now() + kEventually;
    for (int i = 0; !stop_ && std::chrono::steady_clock::now() < deadline; ++i) {
      Status s = write_(i);
      if (!s.ok()) {
        status_ = s;
        break;
      }
      ++commits_;
    }
    done_ = true;
  }

  const std::function<Status(int)> write_;
  std::atomic<bool> stop_{false};
  std::atomic<int> commits_{0};
  std::atomic<bool> done_{false};
  Status status_;
  std::thread thread_;
};

TEST_P(StoreConformanceTest, ReadsNeverSeeHalfATransaction) {
  // One token moves between two keys, in one transaction each time; every read must find it in
  // exactly one place. A counter key is bumped in the same transactions.
  ASSERT_OK(CommitOps(store(), {Op::Put("token/a", "0"), Op::Put("count", "0")}));
  BackgroundWriter writer([this](int i) -> Status {
    const std::string from = i % 2 == 0 ? "token/a" : "token/b";
    const std::string to = i % 2 == 0 ? "token/b" : "token/a";
    return CommitOps(store(), {Op::Delete(from), Op::Put(to, std::to_string(i + 1)),
                               Op::Put("count", std::to_string(i + 1))})
        .status();
  });
  // Read at least 200 times, and until at least 100 transactions committed meanwhile.
  writer.WaitForCommits(1);
  for (int i = 0; i < 200 || (writer.commits() < 100 && !writer.done()); ++i) {
    ASSERT_OK_AND_ASSIGN(RangeResult all, ReadAll(store()));
    ASSERT_EQ(all.kvs.size(), 2u) << "at revision " << all.revision;
    EXPECT_EQ(all.kvs[0].key, "count");
    EXPECT_EQ(all.kvs[0].value, all.kvs[1].value) << "at revision " << all.revision;
    ASSERT_OK_AND_ASSIGN(CountResult tokens, store().Count(KeySpan::Prefix("token/")));
    EXPECT_EQ(tokens.count, 1) << "at revision " << tokens.revision;
    ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
    const bool at_a = snapshot->Get("token/a").ok();
    const bool at_b = snapshot->Get("token/b").ok();
    EXPECT_NE(at_a, at_b) << "at revision " << snapshot->revision();
  }
  ASSERT_OK(writer.Stop());
  EXPECT_GE(writer.commits(), 100);
}

TEST_P(StoreConformanceTest, SnapshotPagesAreConsistentWhileOthersWrite) {
  std::vector<Op> ops;
  std::vector<KeyValue> expected;
  for (int i = 0; i < 100; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "snap/%03d", i);
    ops.push_back(Op::Put(key, "original " + std::to_string(i)));
  }
  ASSERT_OK_AND_ASSIGN(Revision rev, CommitOps(store(), ops));
  for (const Op& op : ops) expected.push_back(KeyValue{op.key, op.value, rev, rev});
  ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
  BackgroundWriter writer([this](int i) -> Status {
    char key[16];
    std::snprintf(key, sizeof(key), "snap/%03d", (i * 37) % 100);
    if (i % 3 == 0) return store().Delete(key).status();
    return CommitOps(store(), {Op::Put(key, "changed"), Op::Put(std::string(key) + "/new", "x")})
        .status();
  });
  writer.WaitForCommits(5);
  std::vector<KeyValue> seen;
  RangeOptions page;
  page.limit = 7;
  for (int pages = 0; pages < 30; ++pages) {
    ASSERT_OK_AND_ASSIGN(RangeResult r, snapshot->Range(KeySpan::Prefix("snap/"), page));
    EXPECT_EQ(r.revision, rev);
    seen.insert(seen.end(), r.kvs.begin(), r.kvs.end());
    if (!r.more) break;
    page.after = r.kvs.back().key;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_OK(writer.Stop());
  EXPECT_GE(writer.commits(), 5);
  EXPECT_THAT(seen, ElementsAreArray(expected));
  ASSERT_OK_AND_ASSIGN(CountResult count, snapshot->Count(KeySpan::Prefix("snap/")));
  EXPECT_EQ(count.count, 100);
}

TEST_P(StoreConformanceTest, CommitIsVisibleAtOnceThroughAnotherHandle) {
  ASSERT_OK_AND_ASSIGN(auto other, OpenAgain());
  for (int i = 0; i < 50; ++i) {
    Store& writer = i % 2 == 0 ? store() : *other;
    Store& reader = i % 2 == 0 ? *other : store();
    const std::string key = "seen/" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(Revision rev, writer.Put(key, "v"));
    ASSERT_OK_AND_ASSIGN(Revision current, reader.CurrentRevision());
    EXPECT_GE(current, rev) << "commit " << i;
    ASSERT_OK_AND_ASSIGN(KeyValue kv, reader.Get(key));
    EXPECT_EQ(kv.mod_revision, rev);
    ASSERT_OK_AND_ASSIGN(RangeResult r, reader.Range(KeySpan::Prefix("seen/"), {}));
    EXPECT_EQ(r.kvs.size(), static_cast<size_t>(i + 1));
    EXPECT_GE(r.revision, rev);
    ASSERT_OK_AND_ASSIGN(auto snapshot, reader.OpenSnapshot());
    EXPECT_GE(snapshot->revision(), rev);
    // A condition checked through the other handle sees the commit too.
    EXPECT_OK(CommitOps(reader, {}, {Condition::ModRevisionIs(key, rev)}));
  }
}

TEST_P(StoreConformanceTest, CompactionThroughOneHandleAppliesToAnother) {
  ASSERT_OK_AND_ASSIGN(auto other, OpenAgain());
  for (int i = 0; i < 6; ++i) ASSERT_OK(store().Put("k" + std::to_string(i), "v"));
  ASSERT_OK(store().Compact(4));
  ASSERT_OK_AND_ASSIGN(Revision compacted, other->CompactedRevision());
  EXPECT_EQ(compacted, 4);
  EXPECT_THAT(other->Watch(KeySpan::All(), 4), StatusIs(StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(auto watch, other->Watch(KeySpan::All(), 5));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, 6));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_THAT(
      CommitOps(*other, {Op::Put("x", "1")}, {Condition::UnchangedSince(KeySpan::All(), 3)}),
      StatusIs(StatusCode::kAborted));
}

}  // namespace
}  // namespace plinth::store::conformance
