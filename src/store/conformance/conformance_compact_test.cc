// Conformance: compaction. History up to the compaction point is gone (OutOfRange for watches
// that need it, Aborted for conditions that need it); live data never changes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// Commits `n` single-key puts ("c/0", "c/1", ...) and returns the last revision.
Revision PutMany(Store& store, int n, const std::string& prefix = "c/") {
  Revision last = 0;
  for (int i = 0; i < n; ++i) {
    StatusOr<Revision> rev = store.Put(prefix + std::to_string(i), std::to_string(i));
    EXPECT_OK(rev);
    if (rev.ok()) last = *rev;
  }
  return last;
}

TEST_P(StoreConformanceTest, WatchFromACompactedRevisionIsOutOfRange) {
  const Revision last = PutMany(store(), 10);
  ASSERT_EQ(last, 10);
  ASSERT_OK(store().Compact(6));
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, 6);
  for (Revision from : {1, 5, 6}) {
    EXPECT_THAT(store().Watch(KeySpan::All(), from), StatusIs(StatusCode::kOutOfRange))
        << "from " << from;
    EXPECT_THAT(store().Watch(KeySpan::Prefix("c/9"), from), StatusIs(StatusCode::kOutOfRange))
        << "from " << from;
  }
  EXPECT_OK(store().Watch(KeySpan::All(), 0));
}

TEST_P(StoreConformanceTest, WatchFromJustAfterTheCompactionPointReplaysTheRest) {
  PutMany(store(), 10);
  ASSERT_OK(store().Compact(6));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 7));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, 10));
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const Revision rev = 7 + i;
    EXPECT_EQ(got[i].revision, rev);
    EXPECT_THAT(got[i].events, ElementsAre(PutEvent("c/" + std::to_string(6 + i),
                                                    std::to_string(6 + i), rev, rev)));
  }
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("after", "x"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, next);
}

TEST_P(StoreConformanceTest, CompactLeavesLiveDataUntouched) {
  ASSERT_OK(store().Put("keep/created-early", "1"));
  PutMany(store(), 5);
  ASSERT_OK(store().Put("keep/overwritten", "old"));
  ASSERT_OK(store().Put("keep/overwritten", "new"));
  ASSERT_OK(store().Put("gone", "x"));
  ASSERT_OK(store().Delete("gone"));
  ASSERT_OK(store().Put("keep/deleted-and-back", "1"));
  ASSERT_OK(store().Delete("keep/deleted-and-back"));
  ASSERT_OK(store().Put("keep/deleted-and-back", "2"));
  ASSERT_OK(CommitOps(store(), {Op::DeleteRange(KeySpan::Prefix("c/3"))}));
  ASSERT_OK_AND_ASSIGN(RangeResult before, ReadAll(store()));
  ASSERT_OK_AND_ASSIGN(CountResult count_before, store().Count(KeySpan::All()));

  ASSERT_OK(store().Compact(before.revision));

  ASSERT_OK_AND_ASSIGN(RangeResult after, ReadAll(store()));
  EXPECT_EQ(after.revision, before.revision);
  EXPECT_THAT(after.kvs, ElementsAreArray(before.kvs));
  ASSERT_OK_AND_ASSIGN(CountResult count_after, store().Count(KeySpan::All()));
  EXPECT_EQ(count_after.count, count_before.count);
  for (const KeyValue& kv : before.kvs) {
    ASSERT_OK_AND_ASSIGN(KeyValue got, store().Get(kv.key));
    EXPECT_EQ(got, kv);
  }
  EXPECT_THAT(store().Get("gone"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("keep/overwritten", "newer"));
  EXPECT_EQ(next, before.revision + 1);
  ASSERT_OK_AND_ASSIGN(KeyValue overwritten, store().Get("keep/overwritten"));
  EXPECT_EQ(overwritten.mod_revision, next);
  ASSERT_OK_AND_ASSIGN(RangeResult keep, store().Range(KeySpan::Prefix("keep/"), {}));
  EXPECT_EQ(keep.kvs.size(), 3u);
}

TEST_P(StoreConformanceTest, CompactToAnOlderRevisionIsANoOp) {
  PutMany(store(), 8);
  ASSERT_OK(store().Compact(5));
  EXPECT_OK(store().Compact(3));
  EXPECT_OK(store().Compact(5));
  EXPECT_OK(store().Compact(0));
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, 5);
  EXPECT_OK(store().Watch(KeySpan::All(), 6));
  EXPECT_THAT(store().Watch(KeySpan::All(), 5), StatusIs(StatusCode::kOutOfRange));
}

TEST_P(StoreConformanceTest, CompactBeyondTheCurrentRevisionIsOutOfRange) {
  EXPECT_OK(store().Compact(0));
  EXPECT_THAT(store().Compact(1), StatusIs(StatusCode::kOutOfRange));
  const Revision last = PutMany(store(), 4);
  EXPECT_THAT(store().Compact(last + 1), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(store().Compact(last + 1000), StatusIs(StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, 0);
  EXPECT_OK(store().Compact(last));
  ASSERT_OK_AND_ASSIGN(compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, last);
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), last + 1));
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("k", "v"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, next);
}

TEST_P(StoreConformanceTest, CompactFailsAnOpenWatchThatFellBehind) {
  const Revision last = PutMany(store(), 20);
  ASSERT_OK_AND_ASSIGN(auto unread, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(auto started, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(WatchBatch first, started->Next(kEventually));
  EXPECT_EQ(first.revision, 1);
  ASSERT_OK(store().Compact(last));
  // A stream may still hand out batches it already had, in order, but must fail before it
  // could skip the compacted history.
  for (WatchStream* watch : {unread.get(), started.get()}) {
    Revision expected = watch == unread.get() ? 1 : 2;
    StatusOr<WatchBatch> batch = watch->Next(kEventually);
    while (batch.ok() && batch->revision == expected && expected < last) {
      ++expected;
      batch = watch->Next(kEventually);
    }
    EXPECT_THAT(batch, StatusIs(StatusCode::kOutOfRange))
        << "after delivering up to revision " << expected - 1;
  }
}

TEST_P(StoreConformanceTest, CompactDoesNotDisturbAWatchThatIsCaughtUp) {
  const Revision last = PutMany(store(), 5);
  ASSERT_OK_AND_ASSIGN(auto live, store().Watch(KeySpan::All(), 0));
  ASSERT_OK_AND_ASSIGN(auto replayed, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*replayed, last));
  EXPECT_EQ(got.size(), 5u);
  ASSERT_OK(store().Compact(last));
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("after", "x"));
  for (WatchStream* watch : {live.get(), replayed.get()}) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
    EXPECT_EQ(batch.revision, next);
  }
}

TEST_P(StoreConformanceTest, SnapshotPastACompactionReadsItsRevisionOrFailsOutOfRange) {
  ASSERT_OK_AND_ASSIGN(Revision a, store().Put("snap/a", "old a"));
  ASSERT_OK_AND_ASSIGN(Revision b, store().Put("snap/b", "old b"));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store().OpenSnapshot());
  ASSERT_OK(store().Put("snap/a", "new a"));
  ASSERT_OK(store().Delete("snap/b"));
  ASSERT_OK(store().Put("snap/c", "new c"));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  ASSERT_OK(store().Compact(current));
  // Either the snapshot still shows its own revision, or it says it cannot: never newer data.
  StatusOr<KeyValue> got_a = snapshot->Get("snap/a");
  if (got_a.ok()) {
    EXPECT_EQ(*got_a, (KeyValue{"snap/a", "old a", a, a}));
  } else {
    EXPECT_THAT(got_a, StatusIs(StatusCode::kOutOfRange));
  }
  StatusOr<KeyValue> got_b = snapshot->Get("snap/b");
  if (got_b.ok()) {
    EXPECT_EQ(got_b->value, "old b");
  } else {
    EXPECT_THAT(got_b, StatusIs(StatusCode::kOutOfRange));
  }
  StatusOr<RangeResult> range = snapshot->Range(KeySpan::Prefix("snap/"), {});
  if (range.ok()) {
    EXPECT_EQ(range->revision, b);
    EXPECT_THAT(range->kvs,
                ElementsAre(KeyValue{"snap/a", "old a", a, a}, KeyValue{"snap/b", "old b", b, b}));
  } else {
    EXPECT_THAT(range, StatusIs(StatusCode::kOutOfRange));
  }
  StatusOr<CountResult> count = snapshot->Count(KeySpan::Prefix("snap/"));
  if (count.ok()) {
    EXPECT_EQ(count->count, 2);
  } else {
    EXPECT_THAT(count, StatusIs(StatusCode::kOutOfRange));
  }
  EXPECT_EQ(snapshot->revision(), b);
}

TEST_P(StoreConformanceTest, UnchangedSinceBelowTheCompactionPointIsAborted) {
  ASSERT_OK(store().Put("quiet/a", "untouched"));
  PutMany(store(), 9, "busy/");
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  ASSERT_EQ(current, 10);
  auto tx = store().Begin();
  ASSERT_OK(tx->Range(KeySpan::Prefix("quiet/")));  // records UnchangedSince(quiet/, 10)
  ASSERT_OK(store().Put("busy/more", "x"));         // revision 11
  ASSERT_OK(store().Compact(11));
  ASSERT_OK(tx->Put("quiet/b", "from the tx"));
  // The span did not change, but the history that would prove it is gone.
  EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kAborted));
  const KeySpan quiet = KeySpan::Prefix("quiet/");
  for (Revision since : {1, 8, 10}) {
    EXPECT_THAT(
        CommitOps(store(), {Op::Put("quiet/c", "x")}, {Condition::UnchangedSince(quiet, since)}),
        StatusIs(StatusCode::kAborted))
        << "since " << since;
  }
  EXPECT_THAT(store().Get("quiet/b"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Get("quiet/c"), StatusIs(StatusCode::kNotFound));
  // History after the compaction point is all there.
  EXPECT_OK(CommitOps(store(), {Op::Put("quiet/c", "x")}, {Condition::UnchangedSince(quiet, 11)}));
}

TEST_P(StoreConformanceTest, ConcurrentCompactionsSettleOnTheHighest) {
  const Revision last = PutMany(store(), 40);
  ASSERT_OK_AND_ASSIGN(auto other, OpenAgain());
  std::vector<Status> failures(3);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        Store& s = t == 0 ? store() : *other;
        for (Revision r = 1 + t; r <= last; r += 3) {
          Status status = s.Compact(r);
          if (!status.ok()) failures[t] = status;
        }
      });
    }
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        StatusOr<Revision> rev = store().Put("during/" + std::to_string(i), "x");
        if (!rev.ok()) failures[2] = rev.status();
      }
    });
  }
  for (const Status& s : failures) EXPECT_OK(s);
  Revision highest = 0;
  for (int t = 0; t < 2; ++t) {
    for (Revision r = 1 + t; r <= last; r += 3) highest = std::max(highest, r);
  }
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, highest);
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), highest + 1));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, last + 20));
  EXPECT_EQ(got.size(), static_cast<size_t>(last + 20 - highest));
  EXPECT_TRUE(CheckBatchShape(got));
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::All()));
  EXPECT_EQ(count.count, 60);
}

}  // namespace
}  // namespace plinth::store::conformance
