// Conformance: transactions. All or nothing at one revision, the final state of each key,
// every condition kind, the optimistic Tx, and conflicts between concurrent transactions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using namespace std::string_literals;  // NOLINT(build/namespaces): "\0"s keeps embedded NULs
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The whole store, for before/after comparisons.
std::vector<KeyValue> Everything(Store& store) {
  StatusOr<RangeResult> all = ReadAll(store);
  EXPECT_OK(all);
  return all.ok() ? all->kvs : std::vector<KeyValue>{};
}

// Expects nothing to arrive on `watch` for a short while.
void ExpectQuiet(WatchStream& watch) {
  StatusOr<WatchBatch> batch = watch.Next(kQuiet);
  EXPECT_THAT(batch, StatusIs(StatusCode::kDeadlineExceeded))
      << (batch.ok() ? ::testing::PrintToString(*batch) : "");
}

TEST_P(StoreConformanceTest, MultiOperationTransactionAppliesAllAtOneRevision) {
  ASSERT_OK_AND_ASSIGN(Revision d, store().Put("d", "old"));
  ASSERT_OK(store().Put("e/1", "x"));
  ASSERT_OK(store().Put("e/2", "y"));
  ASSERT_OK_AND_ASSIGN(Revision f, store().Put("f", "kept"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), f + 1));
  ASSERT_OK_AND_ASSIGN(
      Revision rev, CommitOps(store(), {Op::Put("c", "3"), Op::Put("a", "1"), Op::Delete("d"),
                                        Op::Put("e/3", "put, then deleted by the range"),
                                        Op::DeleteRange(KeySpan::Prefix("e/")), Op::Put("b", "2"),
                                        Op::Put("e/4", "put after the range")}));
  EXPECT_EQ(rev, f + 1);
  EXPECT_THAT(
      Everything(store()),
      ElementsAre(KeyValue{"a", "1", rev, rev}, KeyValue{"b", "2", rev, rev},
                  KeyValue{"c", "3", rev, rev}, KeyValue{"e/4", "put after the range", rev, rev},
                  KeyValue{"f", "kept", f, f}));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, rev);
  // One event per changed key, in key order; e/3 never existed outside the transaction.
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("a", "1", rev, rev), PutEvent("b", "2", rev, rev),
                                        PutEvent("c", "3", rev, rev), DeleteEvent("d", rev),
                                        DeleteEvent("e/1", rev), DeleteEvent("e/2", rev),
                                        PutEvent("e/4", "put after the range", rev, rev)));
  ExpectQuiet(*watch);
  EXPECT_LT(d, rev);
}

TEST_P(StoreConformanceTest, FailedConditionLeavesNothingBehindAndCreatesNoRevision) {
  ASSERT_OK(store().Put("d", "old"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().Put("e/1", "x"));
  const std::vector<KeyValue> state = Everything(store());
  const std::vector<Op> ops = {Op::Put("a", "1"), Op::Delete("d"),
                               Op::DeleteRange(KeySpan::Prefix("e/")), Op::Put("b", "2")};
  for (const Condition& failing :
       {Condition::Absent("d"), Condition::ModRevisionIs("d", before + 7),
        Condition::ModRevisionIs("missing", before),
        Condition::UnchangedSince(KeySpan::All(), 0)}) {
    EXPECT_THAT(CommitOps(store(), ops, {Condition::Absent("a"), failing}),
                StatusIs(StatusCode::kAborted));
    EXPECT_THAT(Everything(store()), ::testing::ElementsAreArray(state));
    ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
    EXPECT_EQ(current, before);
  }
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), before + 1));
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("z", "1"));
  EXPECT_EQ(next, before + 1);
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, next);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("z", "1", next, next)));
}

TEST_P(StoreConformanceTest, RejectedTransactionLeavesNothingBehindAndCreatesNoRevision) {
  ASSERT_OK_AND_ASSIGN(Revision before, store().Put("d", "old"));
  const std::vector<KeyValue> state = Everything(store());
  const std::string too_long(store().limits().max_key_bytes + 1, 'k');
  EXPECT_THAT(CommitOps(store(), {Op::Put("a", "1"), Op::Delete("d"), Op::Put(too_long, "v")}),
              StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(CommitOps(store(), {Op::Put("a", "1"), Op::Delete("d"), Op::Put("", "v")}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Everything(store()), ::testing::ElementsAreArray(state));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, before);
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("z", "1"));
  EXPECT_EQ(next, before + 1);
}

TEST_P(StoreConformanceTest, RepeatedWritesOfOneKeyInATransactionLeaveOnlyTheLast) {
  ASSERT_OK_AND_ASSIGN(Revision w, store().Put("w", "old"));
  ASSERT_OK(store().Put("x", "old"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), before + 1));
  ASSERT_OK_AND_ASSIGN(Revision rev,
                       CommitOps(store(), {Op::Put("k", "1"), Op::Put("w", "1"), Op::Put("k", "2"),
                                           Op::Put("x", "a"), Op::Delete("x"), Op::Delete("y"),
                                           Op::Put("y", "new"), Op::Put("z", "1"), Op::Delete("z"),
                                           Op::Put("w", "2"), Op::Put("k", "3")}));
  EXPECT_EQ(rev, before + 1);
  EXPECT_THAT(Everything(store()),
              ElementsAre(KeyValue{"k", "3", rev, rev}, KeyValue{"w", "2", w, rev},
                          KeyValue{"y", "new", rev, rev}));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kEventually));
  EXPECT_EQ(batch.revision, rev);
  EXPECT_THAT(batch.events, ElementsAre(PutEvent("k", "3", rev, rev), PutEvent("w", "2", w, rev),
                                        DeleteEvent("x", rev), PutEvent("y", "new", rev, rev)));
  ExpectQuiet(*watch);
}

TEST_P(StoreConformanceTest, DeleteRangeRemovesEveryKeyInItsSpanOnly) {
  for (const std::string& k :
       {"r"s, "r/"s, "r/\0"s, "r/a"s, "r/a/b"s, "r/\xff"s, "r0"s, "q\xff"s, "s"s}) {
    ASSERT_OK(store().Put(k, "v"));
  }
  ASSERT_OK_AND_ASSIGN(Revision rev, CommitOps(store(), {Op::DeleteRange(KeySpan::Prefix("r/"))}));
  EXPECT_THAT(KeysOf(Everything(store())), ElementsAre("q\xff"s, "r", "r0", "s"));
  ASSERT_OK_AND_ASSIGN(Revision between,
                       CommitOps(store(), {Op::DeleteRange(KeySpan::Between("r", "s"))}));
  EXPECT_EQ(between, rev + 1);
  EXPECT_THAT(KeysOf(Everything(store())), ElementsAre("q\xff"s, "s"));
  ASSERT_OK_AND_ASSIGN(Revision everything, CommitOps(store(), {Op::DeleteRange(KeySpan::All())}));
  EXPECT_EQ(everything, between + 1);
  EXPECT_THAT(Everything(store()), ::testing::IsEmpty());
}

TEST_P(StoreConformanceTest, ConditionsAreCheckedAgainstTheStateBeforeTheOperations) {
  ASSERT_OK_AND_ASSIGN(Revision created,
                       CommitOps(store(), {Op::Put("k", "1")}, {Condition::Absent("k")}));
  EXPECT_THAT(CommitOps(store(), {Op::Put("k", "2")}, {Condition::Absent("k")}),
              StatusIs(StatusCode::kAborted));
  ASSERT_OK(CommitOps(store(), {Op::Delete("k")}, {Condition::ModRevisionIs("k", created)}));
  EXPECT_THAT(store().Get("k"), StatusIs(StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, AbsentConditionHoldsOnlyWhileTheKeyDoesNotExist) {
  EXPECT_OK(CommitOps(store(), {Op::Put("other", "1")}, {Condition::Absent("k")}));
  ASSERT_OK(store().Put("k", ""));
  EXPECT_THAT(CommitOps(store(), {Op::Put("other", "2")}, {Condition::Absent("k")}),
              StatusIs(StatusCode::kAborted));
  EXPECT_OK(CommitOps(store(), {Op::Put("other", "3")}, {Condition::Absent("k\0"s)}));
  ASSERT_OK(store().Delete("k"));
  EXPECT_OK(CommitOps(store(), {Op::Put("other", "4")}, {Condition::Absent("k")}));
  ASSERT_OK_AND_ASSIGN(KeyValue other, store().Get("other"));
  EXPECT_EQ(other.value, "4");
}

TEST_P(StoreConformanceTest, ModRevisionConditionHoldsOnlyAtThatRevision) {
  ASSERT_OK_AND_ASSIGN(Revision r1, store().Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(
      Revision r2, CommitOps(store(), {Op::Put("k", "2")}, {Condition::ModRevisionIs("k", r1)}));
  EXPECT_THAT(CommitOps(store(), {Op::Put("k", "3")}, {Condition::ModRevisionIs("k", r1)}),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(CommitOps(store(), {Op::Put("k", "3")}, {Condition::ModRevisionIs("k", r2 + 1)}),
              StatusIs(StatusCode::kAborted));
  // Compared with mod_revision, not create_revision.
  ASSERT_OK_AND_ASSIGN(Revision created, store().Put("j", "1"));
  ASSERT_OK(store().Put("j", "2"));
  EXPECT_THAT(CommitOps(store(), {Op::Put("j", "3")}, {Condition::ModRevisionIs("j", created)}),
              StatusIs(StatusCode::kAborted));
  // An absent key is at no revision.
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().Delete("k"));
  for (Revision r : {Revision{0}, r2, deleted}) {
    EXPECT_THAT(CommitOps(store(), {Op::Put("k", "4")}, {Condition::ModRevisionIs("k", r)}),
                StatusIs(StatusCode::kAborted))
        << "revision " << r;
  }
  EXPECT_THAT(store().Get("k"), StatusIs(StatusCode::kNotFound));
}

// Sets up keys under "s/" and one outside, returning the revision after them.
Revision SeedSpan(Store& store) {
  for (const char* k : {"s/a", "s/b", "s/c", "t/x"}) EXPECT_OK(store.Put(k, "v"));
  StatusOr<Revision> current = store.CurrentRevision();
  EXPECT_OK(current);
  return current.ok() ? *current : 0;
}

StatusOr<Revision> PutIfUnchanged(Store& store, const KeySpan& span, Revision since) {
  return CommitOps(store, {Op::Put("marker", std::to_string(since))},
                   {Condition::UnchangedSince(span, since)});
}

TEST_P(StoreConformanceTest, UnchangedSinceIsViolatedByAPutInTheSpan) {
  const Revision seeded = SeedSpan(store());
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Prefix("s/"), seeded));
  ASSERT_OK_AND_ASSIGN(Revision base, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(Revision changed, store().Put("s/b", "changed"));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Prefix("s/"), base), StatusIs(StatusCode::kAborted));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Key("s/b"), base), StatusIs(StatusCode::kAborted));
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Prefix("s/"), changed));
}

TEST_P(StoreConformanceTest, UnchangedSinceIsViolatedByADeleteInTheSpan) {
  const Revision seeded = SeedSpan(store());
  ASSERT_OK_AND_ASSIGN(Revision deleted, store().Delete("s/c"));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Prefix("s/"), seeded),
              StatusIs(StatusCode::kAborted));
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Prefix("s/"), deleted));
  ASSERT_OK_AND_ASSIGN(Revision base, store().CurrentRevision());
  ASSERT_OK(CommitOps(store(), {Op::DeleteRange(KeySpan::Prefix("s/"))}));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Between("s/a", "s/a\0"s), base),
              StatusIs(StatusCode::kAborted));
}

TEST_P(StoreConformanceTest, UnchangedSinceIsViolatedByACreateInTheSpan) {
  const Revision seeded = SeedSpan(store());
  ASSERT_OK(store().Put("s/bb", "new"));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Prefix("s/"), seeded),
              StatusIs(StatusCode::kAborted));
  // A span over keys that do not exist yet is still guarded.
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Between("s/b\0"s, "s/c"), seeded),
              StatusIs(StatusCode::kAborted));
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Between("s/c", "s/z"), seeded));
}

TEST_P(StoreConformanceTest, UnchangedSinceHoldsWhenOnlyKeysOutsideTheSpanChanged) {
  const Revision seeded = SeedSpan(store());
  ASSERT_OK(store().Put("t/x", "changed"));
  ASSERT_OK(store().Put("s", "just before the prefix"));
  ASSERT_OK(store().Put("s0", "just after the prefix"));
  ASSERT_OK(store().Put("s/c", "changed at the end of a half-open span"));
  ASSERT_OK(store().Delete("s/absent"));  // changes nothing
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Between("s/", "s/c"), seeded));
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Key("s/a"), seeded));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Prefix("s/"), seeded),
              StatusIs(StatusCode::kAborted));
}

TEST_P(StoreConformanceTest, UnchangedSinceCountsOnlyChangesAfterItsRevision) {
  SeedSpan(store());
  ASSERT_OK_AND_ASSIGN(Revision at, store().Put("s/a", "changed"));
  EXPECT_THAT(PutIfUnchanged(store(), KeySpan::Prefix("s/"), at - 1),
              StatusIs(StatusCode::kAborted));
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::Prefix("s/"), at));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_OK(PutIfUnchanged(store(), KeySpan::All(), current));
}

TEST_P(StoreConformanceTest, EveryConditionMustHold) {
  ASSERT_OK_AND_ASSIGN(Revision a, store().Put("a", "1"));
  const std::vector<Condition> holding = {Condition::ModRevisionIs("a", a), Condition::Absent("b"),
                                          Condition::UnchangedSince(KeySpan::Prefix("a"), a)};
  for (size_t i = 0; i < holding.size(); ++i) {
    std::vector<Condition> conditions = holding;
    conditions.insert(conditions.begin() + static_cast<std::ptrdiff_t>(i), Condition::Absent("a"));
    EXPECT_THAT(CommitOps(store(), {Op::Put("c", "1")}, conditions),
                StatusIs(StatusCode::kAborted));
  }
  EXPECT_THAT(store().Get("c"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(CommitOps(store(), {Op::Put("c", "1")}, holding));
}

TEST_P(StoreConformanceTest, TxCommitsWhenWhatItReadStillHolds) {
  ASSERT_OK(store().Put("acct/a", "10"));
  ASSERT_OK(store().Put("acct/b", "5"));
  auto tx = store().Begin();
  ASSERT_OK_AND_ASSIGN(KeyValue a, tx->Get("acct/a"));
  EXPECT_THAT(tx->Get("acct/c"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(RangeResult all, tx->Range(KeySpan::Prefix("acct/")));
  EXPECT_EQ(all.kvs.size(), 2u);
  ASSERT_OK(store().Put("elsewhere", "unrelated write"));
  ASSERT_OK(tx->Put("acct/a", "7"));
  ASSERT_OK(tx->Put("acct/c", "3"));
  ASSERT_OK_AND_ASSIGN(Revision before, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(Revision rev, tx->Commit());
  EXPECT_EQ(rev, before + 1);
  ASSERT_OK_AND_ASSIGN(KeyValue after, store().Get("acct/a"));
  EXPECT_EQ(after, (KeyValue{"acct/a", "7", a.create_revision, rev}));
  ASSERT_OK_AND_ASSIGN(KeyValue c, store().Get("acct/c"));
  EXPECT_EQ(c.mod_revision, rev);
}

TEST_P(StoreConformanceTest, TxGetInvalidatedByAConcurrentWriterIsAborted) {
  ASSERT_OK(store().Put("mod", "1"));
  ASSERT_OK(store().Put("del", "1"));
  struct Case {
    std::string read;
    Op concurrent;
  };
  for (const Case& c : {Case{"mod", Op::Put("mod", "2")}, Case{"del", Op::Delete("del")},
                        Case{"new", Op::Put("new", "created")}}) {
    auto tx = store().Begin();
    (void)tx->Get(c.read);
    ASSERT_OK(CommitOps(store(), {c.concurrent}));
    ASSERT_OK(tx->Put("result", "tx committed"));
    EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kAborted)) << "read " << c.read;
    EXPECT_THAT(store().Get("result"), StatusIs(StatusCode::kNotFound));
  }
}

TEST_P(StoreConformanceTest, TxRangeInvalidatedByAConcurrentWriterIsAborted) {
  for (const char* k : {"r/1", "r/3", "r/5"}) ASSERT_OK(store().Put(k, "v"));
  for (const Op& concurrent : {Op::Put("r/3", "changed"), Op::Delete("r/5"), Op::Put("r/2", "new"),
                               Op::Put("r/9", "new at the end")}) {
    auto tx = store().Begin();
    ASSERT_OK(tx->Range(KeySpan::Prefix("r/")));
    ASSERT_OK(CommitOps(store(), {concurrent}));
    ASSERT_OK(tx->Put("result", "tx committed"));
    EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kAborted))
        << "concurrent write to " << concurrent.key;
    EXPECT_THAT(store().Get("result"), StatusIs(StatusCode::kNotFound));
  }
  // A write outside the range does not conflict.
  auto tx = store().Begin();
  ASSERT_OK(tx->Range(KeySpan::Prefix("r/")));
  ASSERT_OK(store().Put("r0", "outside"));
  ASSERT_OK(tx->Put("result", "tx committed"));
  EXPECT_OK(tx->Commit());
}

TEST_P(StoreConformanceTest, TxReadsSeeCommittedStateNotItsOwnWrites) {
  ASSERT_OK(store().Put("k", "committed"));
  auto tx = store().Begin();
  ASSERT_OK(tx->Put("k", "buffered"));
  ASSERT_OK(tx->Put("n", "buffered"));
  ASSERT_OK_AND_ASSIGN(KeyValue k, tx->Get("k"));
  EXPECT_EQ(k.value, "committed");
  EXPECT_THAT(tx->Get("n"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(tx->Commit());
  ASSERT_OK_AND_ASSIGN(k, store().Get("k"));
  EXPECT_EQ(k.value, "buffered");
}

TEST_P(StoreConformanceTest, TxAbortWritesNothing) {
  ASSERT_OK_AND_ASSIGN(Revision before, store().Put("d", "1"));
  const std::vector<KeyValue> state = Everything(store());
  {
    auto tx = store().Begin();
    ASSERT_OK(tx->Put("a", "1"));
    ASSERT_OK(tx->Delete("d"));
    ASSERT_OK(tx->DeleteRange(KeySpan::All()));
    tx->Abort();
    tx->Abort();
    EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kFailedPrecondition));
  }
  {
    auto tx = store().Begin();
    ASSERT_OK(tx->Put("b", "1"));
    ASSERT_OK(tx->Delete("d"));
    // Destroyed without Commit.
  }
  EXPECT_THAT(Everything(store()), ::testing::ElementsAreArray(state));
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, before);
}

TEST_P(StoreConformanceTest, TwoTransactionsThatReadOneKeyCannotBothCommit) {
  ASSERT_OK(store().Put("counter", "0"));
  auto first = store().Begin();
  auto second = store().Begin();
  ASSERT_OK(first->Get("counter"));
  ASSERT_OK(second->Get("counter"));
  ASSERT_OK(first->Put("counter", "1"));
  ASSERT_OK(second->Put("counter", "1"));
  EXPECT_OK(first->Commit());
  EXPECT_THAT(second->Commit(), StatusIs(StatusCode::kAborted));
  // The same when the key did not exist yet.
  auto third = store().Begin();
  auto fourth = store().Begin();
  EXPECT_THAT(third->Get("fresh"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(fourth->Get("fresh"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(fourth->Put("fresh", "fourth"));
  ASSERT_OK(third->Put("fresh", "third"));
  EXPECT_OK(fourth->Commit());
  EXPECT_THAT(third->Commit(), StatusIs(StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(KeyValue fresh, store().Get("fresh"));
  EXPECT_EQ(fresh.value, "fourth");
}

TEST_P(StoreConformanceTest, RacingTransactionsOnOneKeyCommitExactlyOnce) {
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    std::latch both_read(2);
    StatusOr<Revision> results[2] = {UnknownError("not run"), UnknownError("not run")};
    {
      std::vector<std::jthread> threads;
      for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
          auto tx = store().Begin();
          StatusOr<KeyValue> read = tx->Get("race");
          both_read.arrive_and_wait();
          if (!read.ok() && read.status().code() != StatusCode::kNotFound) {
            results[t] = read.status();
            return;
          }
          Status put =
              tx->Put("race", "round " + std::to_string(round) + " thread " + std::to_string(t));
          results[t] = put.ok() ? tx->Commit() : StatusOr<Revision>(put);
        });
      }
    }
    const int committed = results[0].ok() + results[1].ok();
    EXPECT_EQ(committed, 1) << "round " << round << ": " << results[0].status() << " / "
                            << results[1].status();
    for (const StatusOr<Revision>& r : results) {
      if (!r.ok()) {
        EXPECT_THAT(r, StatusIs(StatusCode::kAborted)) << "round " << round;
      }
    }
    if (committed != 1) break;
    const int winner = results[0].ok() ? 0 : 1;
    ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get("race"));
    EXPECT_EQ(kv.value, "round " + std::to_string(round) + " thread " + std::to_string(winner));
    EXPECT_EQ(kv.mod_revision, *results[winner]);
  }
}

TEST_P(StoreConformanceTest, ConcurrentReadModifyWriteTransactionsNeverLoseAnUpdate) {
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 25;
  constexpr int kMaxAttempts = 1000;
  std::vector<std::vector<Revision>> revisions(kThreads);
  std::vector<Status> failures(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        int attempts = 0;
        while (static_cast<int>(revisions[t].size()) < kIncrementsPerThread) {
          if (++attempts > kMaxAttempts) {
            failures[t] = DeadlineExceededError("too many aborted attempts");
            return;
          }
          auto tx = store().Begin();
          StatusOr<KeyValue> kv = tx->Get("counter");
          int64_t value = 0;
          if (kv.ok()) {
            value = std::stoll(kv->value);
          } else if (kv.status().code() != StatusCode::kNotFound) {
            failures[t] = kv.status();
            return;
          }
          Status put = tx->Put("counter", std::to_string(value + 1));
          if (!put.ok()) {
            failures[t] = put;
            return;
          }
          StatusOr<Revision> rev = tx->Commit();
          if (rev.ok()) {
            revisions[t].push_back(*rev);
          } else if (rev.status().code() != StatusCode::kAborted) {
            failures[t] = rev.status();
            return;
          }
        }
      });
    }
  }
  std::set<Revision> all;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_OK(failures[t]) << "thread " << t;
    for (size_t i = 1; i < revisions[t].size(); ++i) {
      EXPECT_LT(revisions[t][i - 1], revisions[t][i]) << "thread " << t;
    }
    all.insert(revisions[t].begin(), revisions[t].end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kIncrementsPerThread));
  ASSERT_OK_AND_ASSIGN(KeyValue counter, store().Get("counter"));
  EXPECT_EQ(counter.value, std::to_string(kThreads * kIncrementsPerThread));
  EXPECT_EQ(counter.mod_revision, *all.rbegin());
}

}  // namespace
}  // namespace plinth::store::conformance
