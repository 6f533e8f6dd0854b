// Cases that distributed backends make necessary: the server restarting under an open
// watch, and the server being unreachable. Run on every backend served by a test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"
#include "store/conformance/test_servers.h"
#include "store/open.h"

namespace plinth::store::conformance {
namespace {

// Puts key=value, retrying while the backend is Unavailable (as a client must after a
// restart). An Unavailable commit may still have been applied ("outcome unknown"), so
// before retrying it checks whether the value landed. Returns the key's revision.
StatusOr<Revision> PutSurvivingOutages(Store& store, const std::string& key,
                                       const std::string& value) {
  const auto deadline = std::chrono::steady_clock::now() + kEventually * 3;
  while (true) {
    StatusOr<Revision> put = store.Put(key, value);
    if (put.ok() || put.status().code() != StatusCode::kUnavailable) return put;
    StatusOr<KeyValue> landed = store.Get(key);
    if (landed.ok() && landed->value == value) return landed->mod_revision;
    if (std::chrono::steady_clock::now() > deadline) return put.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_P(StoreServerTest, RestartUnderAnOpenWatchMissesAndRepeatsNothing) {
  ASSERT_OK_AND_ASSIGN(TestServer server, SharedTestServer(GetParam().server_kind));
  ASSERT_OK_AND_ASSIGN(Revision start, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("r/"), start + 1, {}));

  std::map<Revision, std::string> written;  // revision -> key
  auto write = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = "r/" + std::to_string(1000 + i);
      StatusOr<Revision> rev = PutSurvivingOutages(store(), key, "v" + std::to_string(i));
      ASSERT_TRUE(rev.ok()) << key << ": " << rev.status();
      written[*rev] = key;
    }
  };
  write(0, 20);
  ASSERT_OK(ControlTestServer(server, "restart").status());
  write(20, 40);
  ASSERT_EQ(written.size(), 40u);

  // Follow the stream to the last write. A watch may die with Unavailable across the
  // restart; the contract then lets the client resume from the last delivered revision + 1.
  std::vector<WatchBatch> seen;
  Revision next = start + 1;
  const Revision last = written.rbegin()->first;
  const auto deadline = std::chrono::steady_clock::now() + kEventually * 3;
  while (next <= last && std::chrono::steady_clock::now() < deadline) {
    StatusOr<WatchBatch> batch = watch->Next(std::chrono::seconds(1));
    if (batch.ok()) {
      ASSERT_GE(batch->revision, next) << "a batch was repeated or went backwards";
      next = batch->revision + 1;
      seen.push_back(*std::move(batch));
      continue;
    }
    if (batch.status().code() == StatusCode::kDeadlineExceeded) continue;
    ASSERT_THAT(batch, StatusIs(StatusCode::kUnavailable));
    StatusOr<std::unique_ptr<WatchStream>> resumed = store().Watch(KeySpan::Prefix("r/"), next, {});
    if (resumed.ok()) {
      watch = *std::move(resumed);
    } else {
      ASSERT_THAT(resumed, StatusIs(StatusCode::kUnavailable));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_GT(next, last) << "the watch did not reach revision " << last;

  std::map<Revision, std::string> delivered;
  for (const WatchBatch& batch : seen) {
    ASSERT_EQ(batch.events.size(), 1u);
    EXPECT_TRUE(delivered.emplace(batch.revision, batch.events[0].kv.key).second);
  }
  EXPECT_EQ(delivered, written);
}

TEST_P(StoreServerTest, UnreachableServerIsUnavailableWithinABoundedTime) {
  // The same URL with every endpoint moved to a closed loopback port.
  const std::string unreachable = WithUrlOptions(
      std::regex_replace(url(), std::regex(R"(127\.0\.0\.1:[0-9]+)"), "127.0.0.1:1"), "timeout=2s");
  ASSERT_NE(unreachable, url()) << "the test URL names no loopback endpoint";
  const auto started = std::chrono::steady_clock::now();
  StatusOr<std::unique_ptr<Store>> store = OpenStore(unreachable);
  if (store.ok()) {
    EXPECT_THAT((*store)->Put("k", "v"), StatusIs(StatusCode::kUnavailable));
    EXPECT_THAT((*store)->Get("k"), StatusIs(StatusCode::kUnavailable));
    EXPECT_THAT((*store)->CurrentRevision(), StatusIs(StatusCode::kUnavailable));
  } else {
    EXPECT_THAT(store, StatusIs(StatusCode::kUnavailable));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

}  // namespace
}  // namespace plinth::store::conformance
