// Tx records what it read as conditions; these tests pin down exactly which ones, so that
// every backend inherits the same optimistic-concurrency behaviour.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"
#include "store/memory/memory_store.h"
#include "store/store.h"

namespace plinth::store {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Store> NewStore() {
  auto url = ParseStoreUrl("memory://");
  return std::move(memory::OpenMemoryStore(*url, {})).value();
}

TEST(Tx, GetRecordsModRevisionOrAbsence) {
  auto store = NewStore();
  ASSERT_OK_AND_ASSIGN(Revision r, store->Put("a", "1"));
  auto tx = store->Begin();
  ASSERT_OK(tx->Get("a"));
  EXPECT_THAT(tx->Get("b"), StatusIs(StatusCode::kNotFound));
  ASSERT_EQ(tx->request().conditions.size(), 2u);
  EXPECT_EQ(tx->request().conditions[0].kind, Condition::Kind::kModRevisionIs);
  EXPECT_EQ(tx->request().conditions[0].revision, r);
  EXPECT_EQ(tx->request().conditions[1].kind, Condition::Kind::kAbsent);
}

TEST(Tx, LimitedRangeOnlyGuardsWhatItReturned) {
  auto store = NewStore();
  for (const char* k : {"p/1", "p/2", "p/3"}) ASSERT_OK(store->Put(k, "v"));
  auto tx = store->Begin();
  RangeOptions page;
  page.limit = 2;
  ASSERT_OK_AND_ASSIGN(RangeResult r, tx->Range(KeySpan::Prefix("p/"), page));
  EXPECT_TRUE(r.more);
  // A change beyond the page does not conflict; a change inside it does.
  ASSERT_OK(store->Put("p/3", "changed"));
  ASSERT_OK(tx->Put("x", "1"));
  EXPECT_OK(tx->Commit());

  auto tx2 = store->Begin();
  ASSERT_OK(tx2->Range(KeySpan::Prefix("p/"), page));
  ASSERT_OK(store->Put("p/15", "new key inside the page"));
  ASSERT_OK(tx2->Put("x", "2"));
  EXPECT_THAT(tx2->Commit(), StatusIs(StatusCode::kAborted, HasSubstr("p/15")));
}

TEST(Tx, ContinuationRangeGuardsFromTheContinuationPoint) {
  auto store = NewStore();
  for (const char* k : {"p/1", "p/2", "p/3"}) ASSERT_OK(store->Put(k, "v"));
  auto tx = store->Begin();
  RangeOptions page;
  page.after = "p/1";
  ASSERT_OK(tx->Range(KeySpan::Prefix("p/"), page));
  ASSERT_OK(store->Put("p/1", "before the page"));
  ASSERT_OK(tx->Put("x", "1"));
  EXPECT_OK(tx->Commit());
}

TEST(Tx, CommitTwiceIsFailedPrecondition) {
  auto store = NewStore();
  auto tx = store->Begin();
  ASSERT_OK(tx->Put("a", "1"));
  ASSERT_OK(tx->Commit());
  EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(tx->Put("b", "2"), StatusIs(StatusCode::kFailedPrecondition));
}

TEST(Tx, AbortDiscardsBufferedWrites) {
  auto store = NewStore();
  auto tx = store->Begin();
  ASSERT_OK(tx->Put("a", "1"));
  tx->Abort();
  EXPECT_THAT(tx->Commit(), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(store->Get("a"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(Revision r, store->CurrentRevision());
  EXPECT_EQ(r, 0);
}

TEST(Tx, BufferingRejectsEmptyKeysAndOversizedValuesButStaysUsable) {
  auto url = ParseStoreUrl("memory://?max_value_bytes=4&max_ops=2");
  auto store = std::move(memory::OpenMemoryStore(*url, {})).value();
  auto tx = store->Begin();
  EXPECT_THAT(tx->Put("", "v"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(tx->Put("k", "12345"),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("limit is 4")));
  ASSERT_OK(tx->Put("k", "1234"));
  ASSERT_OK(tx->Put("l", "1"));
  EXPECT_THAT(tx->Put("m", "1"),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("2 operations")));
  EXPECT_OK(tx->Commit());
}

}  // namespace
}  // namespace plinth::store
