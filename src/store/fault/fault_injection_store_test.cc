#include "store/fault/fault_injection_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/status_matchers.h"
#include "store/open.h"

namespace plinth::store {
namespace {

using ::testing::HasSubstr;
using Op = FaultInjectionStore::Operation;

class FaultInjectionStoreTest : public ::testing::Test {
 protected:
  FaultInjectionStoreTest() : store_(std::move(OpenStore("memory://").value()), &clock_) {}
  FakeClock clock_;
  FaultInjectionStore store_;
};

TEST_F(FaultInjectionStoreTest, FailNextFailsExactlyThatManyCallsWithoutReachingTheBase) {
  store_.FailNext(Op::kCommit, UnavailableError("injected"), 2);
  EXPECT_THAT(store_.Put("a", "1"), StatusIs(StatusCode::kUnavailable, HasSubstr("injected")));
  EXPECT_THAT(store_.Put("a", "1"), StatusIs(StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN(Revision r, store_.base()->CurrentRevision());
  EXPECT_EQ(r, 0);
  EXPECT_OK(store_.Put("a", "1"));
}

TEST_F(FaultInjectionStoreTest, FailuresAreScopedToTheirOperation) {
  store_.FailNext(Op::kGet, UnavailableError("injected"));
  ASSERT_OK(store_.Put("a", "1"));
  EXPECT_OK(store_.Range(KeySpan::All(), {}));
  EXPECT_THAT(store_.Get("a"), StatusIs(StatusCode::kUnavailable));
  EXPECT_OK(store_.Get("a"));
}

TEST_F(FaultInjectionStoreTest, FailAfterCommitAppliesButReportsFailure) {
  store_.FailAfterNextCommit(UnavailableError("outcome unknown"));
  EXPECT_THAT(store_.Put("a", "1"), StatusIs(StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store_.Get("a"));
  EXPECT_EQ(kv.value, "1");
}

TEST_F(FaultInjectionStoreTest, LatencyAdvancesTheInjectedClock) {
  store_.SetLatency(Op::kGet, std::chrono::milliseconds(250));
  const auto before = clock_.Now();
  EXPECT_THAT(store_.Get("missing"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(clock_.Now() - before, std::chrono::milliseconds(250));
}

TEST_F(FaultInjectionStoreTest, HeldCommitsWaitUntilReleased) {
  store_.HoldCommits();
  StatusOr<Revision> result = InternalError("not run");
  std::thread writer([&] { result = store_.Put("a", "1"); });
  ASSERT_TRUE(store_.WaitForHeldCommits(1, std::chrono::seconds(10)));
  EXPECT_THAT(store_.base()->Get("a"), StatusIs(StatusCode::kNotFound));
  store_.ReleaseCommits();
  writer.join();
  EXPECT_OK(result);
  EXPECT_OK(store_.base()->Get("a"));
}

TEST_F(FaultInjectionStoreTest, BreakWatchesWakesABlockedNextWithTheStatus) {
  ASSERT_OK_AND_ASSIGN(auto watch, store_.Watch(KeySpan::All(), 0, {}));
  StatusOr<WatchBatch> got = InternalError("not run");
  std::thread reader([&] { got = watch->Next(std::chrono::seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  store_.BreakWatches(UnavailableError("stream broken"));
  reader.join();
  EXPECT_THAT(got, StatusIs(StatusCode::kUnavailable, HasSubstr("stream broken")));
  EXPECT_THAT(watch->Next(std::chrono::milliseconds(1)), StatusIs(StatusCode::kUnavailable));
}

TEST_F(FaultInjectionStoreTest, WatchesOpenedAfterABreakWork) {
  store_.BreakWatches(UnavailableError("old"));
  ASSERT_OK_AND_ASSIGN(auto watch, store_.Watch(KeySpan::All(), 0, {}));
  ASSERT_OK(store_.Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(std::chrono::seconds(5)));
  EXPECT_EQ(batch.revision, 1);
}

}  // namespace
}  // namespace plinth::store
