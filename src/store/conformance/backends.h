// The store conformance suite's shared fixture: the backends every test runs against, a
// per-test temporary directory and store, and helpers the test files share. In the spirit of
// rocksdb's env/env_basic_test.cc and Vault's sdk/physical/testing.go (ExerciseBackend).
//
// Adding a backend is one line: append a BackendUnderTest to the list in AllBackends()
// (backends.cc). Suites that need a capability (persistence, several processes) are
// instantiated only with the backends that declare it; nothing is ever skipped.
#ifndef PLINTH_STORE_CONFORMANCE_BACKENDS_H_
#define PLINTH_STORE_CONFORMANCE_BACKENDS_H_

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace plinth::store {

// Readable gtest output for the contract's value types (found by ADL).
void PrintTo(const KeyValue& kv, std::ostream* os);
void PrintTo(const Event& event, std::ostream* os);
void PrintTo(const WatchBatch& batch, std::ostream* os);

}  // namespace plinth::store

namespace plinth::store::conformance {

// One backend as the suite sees it.
struct BackendUnderTest {
  std::string name;  // suffix of the test names: letters, digits and '_' only
  // Returns the URL of a fresh, empty store that keeps whatever files it needs under
  // `temp_dir`, an existing empty directory owned by one test and removed after it (a
  // server-backed backend uses UniqueStoreName() for its schema or key prefix). Called again
  // with another directory, it returns another, independent store. Opening the same URL again
  // while the test runs opens the same store. An error (e.g. the backend's test server could
  // not be started) fails the test.
  std::function<StatusOr<std::string>(const std::string& temp_dir)> make_url;
  bool persistent = false;     // closing every handle and reopening the URL finds the data
  bool multi_process = false;  // several processes may open the URL at once
  // For server-backed backends: the test server kind (see test_servers.h), else empty.
  std::string server_kind;
};

// gtest prints a test's parameter by its name.
inline void PrintTo(const BackendUnderTest& backend, std::ostream* os) { *os << backend.name; }

// Every backend the suite runs against.
const std::vector<BackendUnderTest>& AllBackends();
std::vector<BackendUnderTest> PersistentBackends();
std::vector<BackendUnderTest> MultiProcessBackends();
std::vector<BackendUnderTest> ServerBackends();

// Names the instantiated tests after the backend: StoreConformanceTest.Foo/sqlite.
std::string BackendName(const ::testing::TestParamInfo<BackendUnderTest>& info);

// `url` with `options` ("a=1&b=2") appended to its query string.
std::string WithUrlOptions(std::string_view url, std::string_view options);

// Bounded waits. kEventually bounds anything that should happen soon; kQuiet is how long a
// test waits to be confident that something does not happen.
inline constexpr std::chrono::milliseconds kEventually{20'000};
inline constexpr std::chrono::milliseconds kQuiet{200};

// Fixture: a fresh temporary directory and an open store per test.
class StoreTestBase : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }
  const std::string& url() const { return url_; }
  const std::string& temp_dir() const { return temp_dir_; }

  // Another handle on this test's store.
  StatusOr<std::unique_ptr<Store>> OpenAgain() const;
  // A different, empty store of the same backend, opened with extra URL `options`.
  StatusOr<std::unique_ptr<Store>> OpenFreshStore(std::string_view options = "");

  std::unique_ptr<Store> store_;

 private:
  std::string temp_dir_;
  std::string url_;
  int fresh_stores_ = 0;
};

// The suite every backend runs, whatever its capabilities.
class StoreConformanceTest : public StoreTestBase {};
// Instantiated only with persistent backends.
class StorePersistenceTest : public StoreTestBase {};
// Instantiated only with backends that several processes can share.
class StoreProcessTest : public StoreTestBase {};
// Instantiated only with backends served by a test server (server_kind set): restarts,
// outages.
class StoreServerTest : public StoreTestBase {};

// Helpers. They never block without a deadline.

// Commits one transaction made of `ops` under `conditions`.
StatusOr<Revision> CommitOps(Store& store, std::vector<Op> ops,
                             std::vector<Condition> conditions = {});

// Every live key and value in the store, read at one revision.
StatusOr<RangeResult> ReadAll(Store& store);

// The keys of `kvs`, in order.
std::vector<std::string> KeysOf(const std::vector<KeyValue>& kvs);

// The events a Watch should deliver.
Event PutEvent(std::string key, std::string value, Revision create_revision, Revision mod_revision);
Event DeleteEvent(std::string key, Revision revision);

// Reads batches until one at or beyond `through`, failing with the watch's error, or with
// DeadlineExceeded if that takes longer than `limit`. Batches are returned as delivered.
StatusOr<std::vector<WatchBatch>> ReadBatchesThrough(WatchStream& watch, Revision through,
                                                     std::chrono::milliseconds limit = kEventually);

// Checks that `batches` are non-empty, in strictly increasing revision order, each with its
// events in strictly ascending key order and at the batch's revision; reports failures as
// gtest failures and returns whether all held.
bool CheckBatchShape(const std::vector<WatchBatch>& batches);

// The transactions a test committed, recorded from several threads: revision -> the keys it
// put, sorted. Thread-safe.
class CommitLog {
 public:
  void Record(Revision revision, std::vector<std::string> keys);
  std::map<Revision, std::vector<std::string>> by_revision() const;
  // How many revisions were recorded twice (must be 0: revisions are unique).
  int duplicates() const;

 private:
  mutable std::mutex mu_;
  std::map<Revision, std::vector<std::string>> by_revision_;
  int duplicates_ = 0;
};

// Checks that `batches` are exactly the transactions of `log`, in order, each whole: one
// batch per logged revision holding a put event for each of its keys and nothing else.
void ExpectBatchesMatchLog(const std::vector<WatchBatch>& batches,
                           const std::map<Revision, std::vector<std::string>>& log);

// Reads a watch on its own thread, so that a test can watch while it writes. Reads until a
// target revision (given later to Finish) is reached, the watch fails, or kEventually * 3
// passes.
class WatchReader {
 public:
  explicit WatchReader(std::unique_ptr<WatchStream> watch);
  ~WatchReader();

  // Waits until the reader has read a batch at or beyond `through` (or stopped) and returns
  // every batch it read. `through` 0 stops the reader at once.
  std::vector<WatchBatch> Finish(Revision through);
  // Why the reader stopped early; OK if it reached its target. Call after Finish.
  Status status() const { return status_; }

 private:
  void Run();

  std::unique_ptr<WatchStream> watch_;
  std::atomic<Revision> target_{0};  // 0: not set yet; -1: stop
  std::vector<WatchBatch> batches_;  // owned by the thread until it is joined
  Status status_;
  std::thread thread_;
};

// `size` bytes covering every byte value (0x00 and 0xFF included), varied by `seed`.
std::string PatternBytes(size_t size, int seed = 0);

}  // namespace plinth::store::conformance

#endif  // PLINTH_STORE_CONFORMANCE_BACKENDS_H_
