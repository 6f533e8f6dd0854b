// Conformance for persistent backends: closing every handle and reopening the URL finds the
// same keys, revisions, history and compaction point, and revisions continue without a gap.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"

namespace plinth::store::conformance {
namespace {

using namespace std::string_literals;  // NOLINT(build/namespaces): "\0"s keeps embedded NULs
using ::testing::ElementsAreArray;

// Writes a varied history: binary keys and values, overwrites, deletes, a DeleteRange, an
// empty value and multi-key transactions.
Revision WriteHistory(Store& store) {
  Revision last = 0;
  auto commit = [&](std::vector<Op> ops) {
    StatusOr<Revision> rev = CommitOps(store, std::move(ops));
    EXPECT_OK(rev);
    if (rev.ok()) last = *rev;
  };
  for (int i = 0; i < 10; ++i) {
    commit({Op::Put("p/" + std::to_string(i), PatternBytes(100 + i, i)),
            Op::Put("q/\0"s + std::to_string(i), "\xff\0"s)});
  }
  commit({Op::Put("p/3", "overwritten")});
  commit({Op::Delete("p/4")});
  commit({Op::DeleteRange(KeySpan::Prefix("q/\0"s)), Op::Put("empty", "")});
  commit({Op::Put("\xff\xff"s, PatternBytes(5000, 9))});
  return last;
}

TEST_P(StorePersistenceTest, DataRevisionsAndCompactionSurviveReopen) {
  const Revision last = WriteHistory(store());
  ASSERT_OK(store().Compact(5));
  ASSERT_OK_AND_ASSIGN(RangeResult before, ReadAll(store()));
  ASSERT_EQ(before.revision, last);

  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenAgain());

  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, last);
  ASSERT_OK_AND_ASSIGN(Revision compacted, store().CompactedRevision());
  EXPECT_EQ(compacted, 5);
  ASSERT_OK_AND_ASSIGN(RangeResult after, ReadAll(store()));
  EXPECT_EQ(after.revision, last);
  EXPECT_THAT(after.kvs, ElementsAreArray(before.kvs));
  for (const KeyValue& kv : before.kvs) {
    ASSERT_OK_AND_ASSIGN(KeyValue got, store().Get(kv.key));
    EXPECT_EQ(got, kv);
  }
  EXPECT_THAT(store().Get("p/4"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store().Watch(KeySpan::All(), 5), StatusIs(StatusCode::kOutOfRange));
  // Revisions continue from where they were, without a gap.
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("after/reopen", "x"));
  EXPECT_EQ(next, last + 1);
}

TEST_P(StorePersistenceTest, WatchFromAnOldRevisionReplaysHistoryAfterReopen) {
  const Revision last = WriteHistory(store());
  ASSERT_OK(store().Compact(3));
  std::vector<WatchBatch> history;
  {
    ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 4));
    ASSERT_OK_AND_ASSIGN(history, ReadBatchesThrough(*watch, last));
  }
  ASSERT_EQ(history.size(), static_cast<size_t>(last - 3));
  EXPECT_TRUE(CheckBatchShape(history));

  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenAgain());

  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::All(), 4));
  ASSERT_OK_AND_ASSIGN(auto replayed, ReadBatchesThrough(*watch, last));
  ASSERT_EQ(replayed.size(), history.size());
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(replayed[i].revision, history[i].revision);
    EXPECT_THAT(replayed[i].events, ElementsAreArray(history[i].events)) << "batch " << i;
  }
  // The same stream then follows new commits.
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("after/reopen", "x"));
  ASSERT_OK_AND_ASSIGN(WatchBatch live, watch->Next(kEventually));
  EXPECT_EQ(live.revision, next);
}

TEST_P(StorePersistenceTest, AbortedAndUncommittedWritesDoNotSurviveReopen) {
  ASSERT_OK_AND_ASSIGN(Revision last, store().Put("k", "committed"));
  EXPECT_THAT(CommitOps(store(), {Op::Put("k", "aborted"), Op::Put("x", "aborted")},
                        {Condition::Absent("k")}),
              StatusIs(StatusCode::kAborted));
  {
    auto tx = store().Begin();
    ASSERT_OK(tx->Put("y", "never committed"));
  }

  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenAgain());

  ASSERT_OK_AND_ASSIGN(RangeResult all, ReadAll(store()));
  EXPECT_THAT(all.kvs, ElementsAreArray({KeyValue{"k", "committed", last, last}}));
  EXPECT_EQ(all.revision, last);
}

}  // namespace
}  // namespace plinth::store::conformance
