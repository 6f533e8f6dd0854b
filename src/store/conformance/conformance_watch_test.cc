// Conformance: the revision stream. Watch delivers every committed change exactly once, in
// revision order, whole transactions at a time; revisions stay gap-free under concurrent
// writers; progress notices, timeouts and cancellation behave as documented.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using namespace std::string_literals;  // NOLINT(build/namespaces): "\0"s keeps embedded NULs
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// Compares two batch lists, reporting the first difference.
void ExpectSameBatches(const std::vector<WatchBatch>& got, const std::vector<WatchBatch>& want) {
  ASSERT_EQ(got.size(), want.size()) << ::testing::PrintToString(got);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].revision, want[i].revision) << "batch " << i;
    EXPECT_THAT(got[i].events, ElementsAreArray(want[i].events)) << "batch " << i;
  }
}

TEST_P(StoreConformanceTest, WatchFromThePastReplaysEveryChangeInOrder) {
  ASSERT_OK_AND_ASSIGN(Revision r1, store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(Revision r2, store().Put("b", "2"));
  ASSERT_OK_AND_ASSIGN(Revision r3, store().Put("a", "3"));
  ASSERT_OK_AND_ASSIGN(Revision r4, store().Delete("b"));
  ASSERT_OK_AND_ASSIGN(Revision r5, CommitOps(store(), {Op::Put("d", "4"), Op::Put("c", "")}));
  ASSERT_OK_AND_ASSIGN(Revision r6, CommitOps(store(), {Op::DeleteRange(KeySpan::All())}));
  const std::vector<WatchBatch> history = {
      {r1, {PutEvent("a", "1", r1, r1)}},
      {r2, {PutEvent("b", "2", r2, r2)}},
      {r3, {PutEvent("a", "3", r1, r3)}},
      {r4, {DeleteEvent("b", r4)}},
      {r5, {PutEvent("c", "", r5, r5), PutEvent("d", "4", r5, r5)}},
      {r6, {DeleteEvent("a", r6), DeleteEvent("c", r6), DeleteEvent("d", r6)}},
  };
  for (size_t from = 0; from < history.size(); ++from) {
    ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), history[from].revision));
    ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, r6));
    ExpectSameBatches(got, std::vector<WatchBatch>(history.begin() + from, history.end()));
  }
  // The replay continues into live changes.
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(auto replayed, ReadBatchesThrough(*watch, r6));
  EXPECT_EQ(replayed.size(), history.size());
  ASSERT_OK_AND_ASSIGN(Revision r7, store().Put("e", "5"));
  ASSERT_OK_AND_ASSIGN(WatchBatch live, watch->Next(kEventually));
  EXPECT_EQ(live.revision, r7);
  EXPECT_THAT(live.events, ElementsAre(PutEvent("e", "5", r7, r7)));
}

TEST_P(StoreConformanceTest, WatchFromZeroStartsAfterTheCurrentRevision) {
  ASSERT_OK(store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 0));
  EXPECT_THAT(watch->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("b", "2"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, rev);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("b", "2", rev, rev)));
}

TEST_P(StoreConformanceTest, WatchFromAFutureRevisionWaitsForIt) {
  ASSERT_OK_AND_ASSIGN(Revision current, store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), current + 3));
  ASSERT_OK(store().Put("b", "2"));
  ASSERT_OK(store().Put("c", "3"));
  EXPECT_THAT(watch->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("d", "4"));
  ASSERT_EQ(rev, current + 3);
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, rev);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("d", "4", rev, rev)));
}

TEST_P(StoreConformanceTest, WatchDeliversWholeTransactionsWithEventsInKeyOrder) {
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(Revision r1, CommitOps(store(), {Op::Put("\xff"s, "1"), Op::Put("m", "2"),
                                                        Op::Put("\0"s, "3"), Op::Put("a\0"s, "4"),
                                                        Op::Put("a", "5"), Op::Put("\x80"s, "6")}));
  ASSERT_OK_AND_ASSIGN(Revision r2, CommitOps(store(), {Op::Delete("m"), Op::Put("b", "7"),
                                                        Op::Delete("\0"s), Op::Put("a", "8")}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, r2));
  ExpectSameBatches(got, {{r1,
                           {PutEvent("\0"s, "3", r1, r1), PutEvent("a", "5", r1, r1),
                            PutEvent("a\0"s, "4", r1, r1), PutEvent("m", "2", r1, r1),
                            PutEvent("\x80"s, "6", r1, r1), PutEvent("\xff"s, "1", r1, r1)}},
                          {r2,
                           {DeleteEvent("\0"s, r2), PutEvent("a", "8", r1, r2),
                            PutEvent("b", "7", r2, r2), DeleteEvent("m", r2)}}});
}

TEST_P(StoreConformanceTest, WatchDeliversOnlyKeysInItsSpan) {
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("unrelated", "0"));
  ASSERT_OK_AND_ASSIGN(auto prefix_watch, store().Watch(KeySpan::Prefix("w/"), start + 1));
  ASSERT_OK_AND_ASSIGN(auto key_watch, store().Watch(KeySpan::Key("w/1"), start + 1));
  ASSERT_OK_AND_ASSIGN(auto between_watch,
                       store().Watch(KeySpan::Between("w/0", "w/1"), start + 1));
  ASSERT_OK_AND_ASSIGN(Revision r1, store().Put("x", "outside"));
  ASSERT_OK_AND_ASSIGN(Revision r2, CommitOps(store(), {Op::Put("w/1", "a"), Op::Put("x2", "b"),
                                                        Op::Put("w/0", "c"), Op::Put("w", "d")}));
  ASSERT_OK(store().Put("w", "outside: no slash"));
  ASSERT_OK(store().Put("w0", "outside: after the prefix"));
  ASSERT_OK_AND_ASSIGN(Revision r5, store().Delete("w/1"));
  ASSERT_OK_AND_ASSIGN(Revision r6, CommitOps(store(), {Op::DeleteRange(KeySpan::All())}));
  EXPECT_EQ(r1, start + 1);

  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*prefix_watch, r6));
  ExpectSameBatches(got, {{r2, {PutEvent("w/0", "c", r2, r2), PutEvent("w/1", "a", r2, r2)}},
                          {r5, {DeleteEvent("w/1", r5)}},
                          {r6, {DeleteEvent("w/0", r6)}}});
  ASSERT_OK_AND_ASSIGN(got, ReadBatchesThrough(*key_watch, r5));
  ExpectSameBatches(got, {{r2, {PutEvent("w/1", "a", r2, r2)}}, {r5, {DeleteEvent("w/1", r5)}}});
  ASSERT_OK_AND_ASSIGN(got, ReadBatchesThrough(*between_watch, r6));
  ExpectSameBatches(got, {{r2, {PutEvent("w/0", "c", r2, r2)}}, {r6, {DeleteEvent("w/0", r6)}}});
  for (WatchStream* w : {prefix_watch.get(), key_watch.get(), between_watch.get()}) {
    EXPECT_THAT(w->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
  }
}

TEST_P(StoreConformanceTest, WatchReportsDeletesAsDeleteEvents) {
  ASSERT_OK_AND_ASSIGN(Revision created, store().Put("k", "v1"));
  ASSERT_OK(store().Put("k", "v2"));
  ASSERT_OK(store().Put("l/1", "x"));
  ASSERT_OK(store().Put("l/2", "y"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), created + 1));
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().Delete("k"));
  ASSERT_OK_AND_ASSIGN(Revision ranged,
                       CommitOps(store(), {Op::DeleteRange(KeySpan::Prefix("l/"))}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, ranged));
  ASSERT_GE(got.size(), 2u);
  const std::vector<WatchBatch> deletes(got.end() - 2, got.end());
  ExpectSameBatches(deletes, {{deleted, {DeleteEvent("k", deleted)}},
                              {ranged, {DeleteEvent("l/1", ranged), DeleteEvent("l/2", ranged)}}});
  const Event& e = deletes[0].events[0];
  EXPECT_EQ(e.type, Event::Type::kDelete);
  EXPECT_EQ(e.kv.value, "");
  EXPECT_EQ(e.kv.create_revision, 0);
  EXPECT_EQ(e.kv.mod_revision, deleted);
}

TEST_P(StoreConformanceTest, WatchWithoutProgressNotifyDeliversNoEmptyBatches) {
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("in/"), 0));
  for (int i = 0; i < 5; ++i) ASSERT_OK(store().Put("out/" + std::to_string(i), "x"));
  EXPECT_THAT(watch->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("in/1", "x"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, rev);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("in/1", "x", rev, rev)));
}

TEST_P(StoreConformanceTest, WatchWithProgressNotifyReportsRevisionsOutsideItsSpan) {
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("in/0", "before"));
  WatchOptions options;
  options.progress_notify = true;
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("in/"), start + 1, options));
  ASSERT_OK_AND_ASSIGN(Revision outside, store().Put("out", "x"));
  // Only progress notices until the revision passes the outside write.
  Revision last = start;
  const auto deadline = steady_clock::now() + kEventually;
  while (last < outside && steady_clock::now() < deadline) {
    ASSERT_OK_AND_ASSIGN(WatchBatch notice, watch->Next(kEventually));
    EXPECT_THAT(notice.events, IsEmpty());
    EXPECT_GT(notice.revision, last);
    EXPECT_LE(notice.revision, outside);
    last = notice.revision;
  }
  EXPECT_EQ(last, outside);
  ASSERT_OK_AND_ASSIGN(Revision inside, store().Put("in/1", "y"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, inside);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("in/1", "y", inside, inside)));
  // Nothing moves: no notice.
  EXPECT_THAT(watch->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
}

TEST_P(StoreConformanceTest, WatchNextTimesOutWithDeadlineExceededWhenNothingHappens) {
  ASSERT_OK(store().Put("a", "1"));
  WatchOptions notify;
  notify.progress_notify = true;
  for (const WatchOptions& options : {WatchOptions{}, notify}) {
    ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 0, options));
    for (int i = 0; i < 2; ++i) {
      const auto started = steady_clock::now();
      EXPECT_THAT(watch->Next(milliseconds(150)), StatusIs(StatusCode::kDeadlineExceeded));
      const auto waited = steady_clock::now() - started;
      EXPECT_GE(waited, milliseconds(140));
      EXPECT_LT(waited, milliseconds(150) + kEventually / 4);
    }
    // The stream is still usable after timing out.
    ASSERT_OK_AND_ASSIGN(Revision rev, store().Put("a", "2"));
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
    EXPECT_EQ(batch.revision, rev);
    EXPECT_EQ(batch.events.size(), 1u);
  }
}

TEST_P(StoreConformanceTest, CancelFromAnotherThreadWakesABlockedNext) {
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 0));
  StatusOr<WatchBatch> result = UnknownError("not run");
  steady_clock::duration blocked{};
  std::atomic<bool> started{false};
  {
    std::jthread waiter([&] {
      started = true;
      const auto t0 = steady_clock::now();
      result = watch->Next(kEventually);
      blocked = steady_clock::now() - t0;
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(milliseconds(100));
    watch->Cancel();
  }
  EXPECT_THAT(result, StatusIs(StatusCode::kCancelled));
  EXPECT_LT(blocked, kEventually / 2);
  // Every later call is Cancelled at once, even with changes available; Cancel is idempotent.
  ASSERT_OK(store().Put("a", "1"));
  watch->Cancel();
  EXPECT_THAT(watch->Next(kEventually), StatusIs(StatusCode::kCancelled));
  EXPECT_THAT(watch->Next(milliseconds(0)), StatusIs(StatusCode::kCancelled));
}

TEST_P(StoreConformanceTest, CancelledWatchReturnsCancelledWithChangesPending) {
  for (int i = 0; i < 3; ++i) ASSERT_OK(store().Put("k" + std::to_string(i), "v"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 1));
  watch->Cancel();
  EXPECT_THAT(watch->Next(kEventually), StatusIs(StatusCode::kCancelled));
  // Other watches are unaffected.
  ASSERT_OK_AND_ASSIGN(auto other, store().Watch(KeySpan::All(), 1));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*other, 3));
  EXPECT_EQ(got.size(), 3u);
}

TEST_P(StoreConformanceTest, SeveralWatchersOnOneSpanSeeTheSameStream) {
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("seed", "0"));
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto w, store().Watch(KeySpan::Prefix("s/"), start + 1));
    watches.push_back(std::move(w));
  }
  Revision last = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK_AND_ASSIGN(last, CommitOps(store(), {Op::Put("s/" + std::to_string(i % 4), "v"),
                                                   Op::Put("t/" + std::to_string(i), "v")}));
  }
  ASSERT_OK_AND_ASSIGN(auto first, ReadBatchesThrough(*watches[0], last));
  EXPECT_EQ(first.size(), 10u);
  EXPECT_TRUE(CheckBatchShape(first));
  for (size_t i = 1; i < watches.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watches[i], last));
    ExpectSameBatches(got, first);
  }
}

TEST_P(StoreConformanceTest, WatchFollowsLiveCommitsFromAnotherThread) {
  ASSERT_OK_AND_ASSIGN(Revision start, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("live/"), start + 1));
  constexpr int kCommits = 60;
  CommitLog log;
  Status writer_status;
  std::jthread writer([&] {
    for (int i = 0; i < kCommits; ++i) {
      std::vector<std::string> keys = {"live/" + std::to_string(i) + "/b",
                                       "live/" + std::to_string(i) + "/a"};
      StatusOr<Revision> rev = CommitOps(store(), {Op::Put(keys[0], "b"), Op::Put(keys[1], "a")});
      if (!rev.ok()) {
        writer_status = rev.status();
        return;
      }
      log.Record(*rev, keys);
      if (i % 10 == 0) std::this_thread::sleep_for(milliseconds(5));
    }
  });
  std::vector<WatchBatch> got;
  while (got.size() < static_cast<size_t>(kCommits)) {
    StatusOr<WatchBatch> batch = watch->Next(kEventually);
    ASSERT_OK(batch) << "after " << got.size() << " batches";
    got.push_back(std::move(batch).value());
  }
  writer.join();
  ASSERT_OK(writer_status);
  ExpectBatchesMatchLog(got, log.by_revision());
  EXPECT_EQ(got.front().revision, start + 1);
}

TEST_P(StoreConformanceTest, RevisionsAreGapFreeUnderConcurrentWriters) {
  constexpr int kThreads = 4;
  constexpr int kCommitsPerThread = 40;
  ASSERT_OK(store().Put("seed", "0"));
  ASSERT_OK_AND_ASSIGN(Revision start, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("g/"), start + 1));
  WatchReader reader(std::move(watch));
  CommitLog log;
  std::vector<Status> failures(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Revision previous = 0;
        for (int i = 0; i < kCommitsPerThread; ++i) {
          const std::string base = "g/" + std::to_string(t) + "/" + std::to_string(i);
          std::vector<std::string> keys = {base + "/x", base + "/y", base + "/z"};
          StatusOr<Revision> rev = CommitOps(
              store(), {Op::Put(keys[2], "z"), Op::Put(keys[0], "x"), Op::Put(keys[1], "y")});
          if (!rev.ok()) {
            failures[t] = rev.status();
            return;
          }
          if (*rev <= previous) {
            failures[t] = InternalError("revision " + std::to_string(*rev) + " after " +
                                        std::to_string(previous) + " on one thread");
            return;
          }
          previous = *rev;
          log.Record(*rev, keys);
        }
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_OK(failures[t]) << "writer " << t;
  constexpr Revision kTotal = kThreads * kCommitsPerThread;
  const auto by_revision = log.by_revision();
  EXPECT_EQ(log.duplicates(), 0);
  ASSERT_EQ(static_cast<Revision>(by_revision.size()), kTotal);
  EXPECT_EQ(by_revision.begin()->first, start + 1);
  EXPECT_EQ(by_revision.rbegin()->first, start + kTotal);
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, start + kTotal);
  const std::vector<WatchBatch> got = reader.Finish(start + kTotal);
  ASSERT_OK(reader.status());
  ExpectBatchesMatchLog(got, by_revision);
}

TEST_P(StoreConformanceTest, SecondHandleOnTheSameUrlSharesTheStore) {
  ASSERT_OK_AND_ASSIGN(auto other, OpenAgain());
  EXPECT_EQ(other->backend(), store().backend());
  ASSERT_OK_AND_ASSIGN(Revision first, store().Put("h/first", "1"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, other->Get("h/first"));
  EXPECT_EQ(kv, (KeyValue{"h/first", "1", first, first}));
  ASSERT_OK_AND_ASSIGN(Revision current, other->CurrentRevision());
  EXPECT_EQ(current, first);

  ASSERT_OK_AND_ASSIGN(auto watch_other, other->Watch(KeySpan::Prefix("h/"), first + 1));
  ASSERT_OK_AND_ASSIGN(auto watch_this, store().Watch(KeySpan::Prefix("h/"), first + 1));
  constexpr int kCommitsPerHandle = 30;
  CommitLog log;
  std::vector<Status> failures(2);
  {
    std::vector<std::jthread> threads;
    for (int h = 0; h < 2; ++h) {
      threads.emplace_back([&, h] {
        Store& s = h == 0 ? store() : *other;
        for (int i = 0; i < kCommitsPerHandle; ++i) {
          const std::string key = "h/" + std::to_string(h) + "/" + std::to_string(i);
          StatusOr<Revision> rev = s.Put(key, "v");
          if (!rev.ok()) {
            failures[h] = rev.status();
            return;
          }
          log.Record(*rev, {key});
        }
      });
    }
  }
  EXPECT_OK(failures[0]);
  EXPECT_OK(failures[1]);
  const auto by_revision = log.by_revision();
  ASSERT_EQ(by_revision.size(), 2u * kCommitsPerHandle);
  EXPECT_EQ(by_revision.rbegin()->first, first + 2 * kCommitsPerHandle);
  for (WatchStream* w : {watch_other.get(), watch_this.get()}) {
    ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*w, first + 2 * kCommitsPerHandle));
    ExpectBatchesMatchLog(got, by_revision);
  }
  ASSERT_OK_AND_ASSIGN(CountResult count, other->Count(KeySpan::Prefix("h/")));
  EXPECT_EQ(count.count, 1 + 2 * kCommitsPerHandle);
}

}  // namespace
}  // namespace plinth::store::conformance
