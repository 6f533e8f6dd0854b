// Tests of the mirror over real backends (memory and sqlite): hydration, following, the write
// path, consistent reads, rebuilds, verification, listeners and behaviour while the backend is
// unreachable. Faults come from store::FaultInjectionStore.
#include "mirror/mirror.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "common/thread_annotations.h"
#include "store/conformance/test_servers.h"
#include "store/fault/fault_injection_store.h"
#include "store/open.h"

namespace plinth::mirror {
namespace {

using store::Condition;
using store::Event;
using store::FaultInjectionStore;
using store::Op;
using store::TxnRequest;
using store::WatchBatch;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;
using namespace std::chrono_literals;

// Bound for anything that should take milliseconds; only reached when a test fails.
constexpr std::chrono::milliseconds kWait = 10s;

// ---- A MirrorState for tests -----------------------------------------------------------------

struct Entry {
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  friend bool operator==(const Entry&, const Entry&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Entry& e) {
    return os << "{" << e.value << " c" << e.create_revision << " m" << e.mod_revision << "}";
  }
};
using Contents = std::map<std::string, Entry>;

// key -> {value, revisions}, with its KeyDigest kept as changes apply. `drop` can make the
// state lose chosen events, to simulate a diverged replica.
class MapState final : public MirrorState {
 public:
  using DropFilter = std::function<bool(const Event&)>;
  explicit MapState(DropFilter drop = nullptr) : drop_(std::move(drop)) {}

  void Apply(const WatchBatch& batch) override {
    batches_.push_back(batch);
    for (const Event& event : batch.events) {
      if (drop_ && drop_(event)) continue;
      if (auto it = contents_.find(event.kv.key); it != contents_.end()) {
        digest_.Remove(it->first, it->second.mod_revision);
        contents_.erase(it);
      }
      if (event.type == Event::Type::kPut) {
        contents_[event.kv.key] =
            Entry{event.kv.value, event.kv.create_revision, event.kv.mod_revision};
        digest_.Add(event.kv.key, event.kv.mod_revision);
      }
    }
  }
  uint64_t Digest() const override { return digest_.value(); }

  const Contents& contents() const { return contents_; }
  const std::vector<WatchBatch>& batches() const { return batches_; }

 private:
  DropFilter drop_;
  Contents contents_;
  KeyDigest digest_;
  std::vector<WatchBatch> batches_;
};

Mirror::StateFactory MapFactory() {
  return [] { return std::make_unique<MapState>(); };
}

const MapState& AsMap(const MirrorState& state) { return static_cast<const MapState&>(state); }

struct View {
  Contents contents;
  Revision revision = 0;
};

View ReadView(const Mirror& mirror) {
  return mirror.Read([](const MirrorState& state, Revision revision) {
    return View{AsMap(state).contents(), revision};
  });
}

Contents ReadContents(const Mirror& mirror) { return ReadView(mirror).contents; }

// The store's keys under `prefix`, read directly.
StatusOr<Contents> StoreContents(store::Store* s, std::string_view prefix) {
  PLINTH_ASSIGN_OR_RETURN(store::RangeResult result, s->Range(store::KeySpan::Prefix(prefix), {}));
  Contents contents;
  for (const store::KeyValue& kv : result.kvs) {
    contents[kv.key] = Entry{kv.value, kv.create_revision, kv.mod_revision};
  }
  return contents;
}

// A plan that puts `key` = `value` if the key is still as the state saw it.
Mirror::Plan PutPlan(std::string key, std::string value) {
  return [key = std::move(key), value = std::move(value)](const MirrorState& state,
                                                          Revision) -> StatusOr<TxnRequest> {
    TxnRequest txn;
    const Contents& contents = AsMap(state).contents();
    if (auto it = contents.find(key); it != contents.end()) {
      txn.conditions.push_back(Condition::ModRevisionIs(key, it->second.mod_revision));
    } else {
      txn.conditions.push_back(Condition::Absent(key));
    }
    txn.ops.push_back(Op::Put(key, value));
    return txn;
  };
}

// Records what listeners receive, and lets a test wait for it.
class Recorder {
 public:
  struct Record {
    WatchBatch batch;
    bool reset = false;
  };

  ApplyListener Listener() {
    return [this](const WatchBatch& batch, bool reset) {
      MutexLock lock(&mu_);
      records_.push_back(Record{batch, reset});
      cv_.SignalAll();
    };
  }

  // Waits until `done(records)` holds; false after `timeout`.
  bool WaitUntil(const std::function<bool(const std::vector<Record>&)>& done,
                 std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mu_);
    while (!done(records_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      cv_.WaitUntil(deadline);
    }
    return true;
  }

  bool WaitForReset() {
    return WaitUntil([](const std::vector<Record>& records) {
      for (const Record& r : records) {
        if (r.reset) return true;
      }
      return false;
    });
  }

  std::vector<Record> records() {
    MutexLock lock(&mu_);
    return records_;
  }

 private:
  Mutex mu_;
  CondVar cv_{&mu_};
  std::vector<Record> records_ PLINTH_GUARDED_BY(mu_);
};

// A gate that blocks whoever waits on it until the test opens it.
class Gate {
 public:
  // Marks someone as waiting, then blocks until Open() (or a generous bound, so that a
  // failing test cannot hang).
  void Wait() {
    MutexLock lock(&mu_);
    waiting_ = true;
    cv_.SignalAll();
    const auto deadline = std::chrono::steady_clock::now() + 3 * kWait;
    while (!open_ && std::chrono::steady_clock::now() < deadline) cv_.WaitUntil(deadline);
  }
  bool WaitForWaiter() {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    MutexLock lock(&mu_);
    while (!waiting_ && std::chrono::steady_clock::now() < deadline) cv_.WaitUntil(deadline);
    return waiting_;
  }
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }

 private:
  Mutex mu_;
  CondVar cv_{&mu_};
  bool waiting_ PLINTH_GUARDED_BY(mu_) = false;
  bool open_ PLINTH_GUARDED_BY(mu_) = false;
};

// Polls `condition` for conditions that have no notification of their own (status fields).
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// ---- Fixture: one store, by URL, so that tests can open further handles on it ---------------

class MirrorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      url_ = "memory://" + store::conformance::UniqueStoreName();
    } else {
      std::string dir_template =
          (std::filesystem::temp_directory_path() / "plinth_mirror_test_XXXXXX").string();
      ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
      dir_ = dir_template;
      url_ = "sqlite://" + dir_ + "/store.db";
    }
    ASSERT_OK_AND_ASSIGN(store_, OpenHandle());
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  // Another handle on the same store: for memory the same in-process store, for sqlite another
  // connection set on the same file, which sees this one's commits only by polling, as another
  // process would.
  StatusOr<std::unique_ptr<store::Store>> OpenHandle() { return store::OpenStore(url_); }

  static MirrorOptions Options() {
    MirrorOptions options;
    options.prefix = "app/";
    options.wait_timeout = kWait;
    options.retry_backoff = 10ms;
    return options;
  }

  std::string url_;
  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, MirrorTest, ::testing::Values("memory", "sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST_P(MirrorTest, HydratesOnlyKeysUnderThePrefixAtOneRevision) {
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK(store_->Put("app/b", "2").status());
  ASSERT_OK(store_->Put("app/a", "3").status());
  ASSERT_OK(store_->Put("app/gone", "x").status());
  ASSERT_OK(store_->Delete("app/gone").status());
  ASSERT_OK(store_->Put("app", "not under app/").status());
  ASSERT_OK(store_->Put("apq/x", "not under app/").status());
  ASSERT_OK(store_->Put("other/x", "y").status());
  ASSERT_OK_AND_ASSIGN(Revision current, store_->CurrentRevision());

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));

  EXPECT_EQ(mirror->applied_revision(), current);
  View view = ReadView(*mirror);
  EXPECT_EQ(view.revision, current);
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(view.contents, expected);
  EXPECT_EQ(view.contents.size(), 2u);
  EXPECT_EQ(view.contents["app/a"], (Entry{"3", 1, 3}));
}

TEST_P(MirrorTest, HydratesALargePrefixPageByPage) {
  constexpr int kKeys = 250;
  for (int i = 0; i < kKeys; i += 50) {
    TxnRequest txn;
    for (int j = i; j < i + 50; ++j) {
      txn.ops.push_back(Op::Put("app/key" + std::to_string(1000 + j), std::to_string(j)));
    }
    ASSERT_OK(store_->Commit(txn).status());
  }
  ASSERT_OK(store_->Put("zzz", "outside").status());
  MirrorOptions options = Options();
  options.hydrate_page_size = 7;

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), options, MapFactory()));

  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  ASSERT_EQ(expected.size(), static_cast<size_t>(kKeys));
  const Revision applied = mirror->applied_revision();
  mirror->Read([&](const MirrorState& state, Revision) {
    EXPECT_EQ(AsMap(state).contents(), expected);
    // Delivered in pages of at most hydrate_page_size puts, all at the snapshot revision.
    const std::vector<WatchBatch>& batches = AsMap(state).batches();
    EXPECT_GE(batches.size(), static_cast<size_t>((kKeys + 6) / 7));
    for (const WatchBatch& batch : batches) {
      EXPECT_EQ(batch.revision, applied);
      EXPECT_LE(batch.events.size(), 7u);
    }
    return 0;
  });
}

TEST_P(MirrorTest, FollowsWritesMadeDirectlyOnTheStore) {
  ASSERT_OK(store_->Put("app/kept", "0").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));

  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK(store_->Put("app/b", "2").status());
  ASSERT_OK(store_->Put("app/a", "overwritten").status());
  ASSERT_OK(store_->Delete("app/b").status());
  ASSERT_OK(store_->Put("other/ignored", "x").status());
  ASSERT_OK_AND_ASSIGN(Revision last, store_->Put("app/c", "3"));

  ASSERT_OK(mirror->WaitForRevision(last, kWait));
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  EXPECT_THAT(ReadContents(*mirror), Not(Contains(Key("app/b"))));
}

TEST_P(MirrorTest, FollowsWritesMadeThroughAnotherHandleAndAnotherMirror) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> other_handle, OpenHandle());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> other_mirror,
                       Mirror::Open(other_handle.get(), Options(), MapFactory()));

  ASSERT_OK_AND_ASSIGN(Revision direct, other_handle->Put("app/direct", "d"));
  ASSERT_OK(mirror->WaitForRevision(direct, kWait));
  EXPECT_THAT(ReadContents(*mirror), Contains(Key("app/direct")));

  ASSERT_OK_AND_ASSIGN(Revision written, other_mirror->Write(PutPlan("app/via-mirror", "m")));
  ASSERT_OK(mirror->WaitForRevision(written, kWait));
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  EXPECT_EQ(ReadContents(*other_mirror), expected);
  EXPECT_EQ(expected["app/via-mirror"].mod_revision, written);
}

TEST_P(MirrorTest, WriteReturnsOnlyOnceItsChangeIsVisibleThroughRead) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  for (int i = 0; i < 10; ++i) {
    const std::string key = "app/k" + std::to_string(i % 3);
    ASSERT_OK_AND_ASSIGN(Revision revision, mirror->Write(PutPlan(key, std::to_string(i))));
    // No wait in between: the write's own return is the barrier.
    View view = ReadView(*mirror);
    EXPECT_GE(view.revision, revision);
    ASSERT_THAT(view.contents, Contains(Key(key)));
    EXPECT_EQ(view.contents[key].value, std::to_string(i));
    EXPECT_EQ(view.contents[key].mod_revision, revision);
    ASSERT_OK_AND_ASSIGN(store::KeyValue stored, store_->Get(key));
    EXPECT_EQ(stored.mod_revision, revision);
  }
}

TEST_P(MirrorTest, WriteWithNoOpsCommitsNothingAndReturnsTheAppliedRevision) {
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  ASSERT_OK_AND_ASSIGN(Revision before, store_->CurrentRevision());

  ASSERT_OK_AND_ASSIGN(Revision result,
                       mirror->Write([](const MirrorState&, Revision) -> StatusOr<TxnRequest> {
                         TxnRequest nothing;
                         nothing.conditions.push_back(Condition::Absent("app/a"));
                         return nothing;
                       }));

  EXPECT_EQ(result, before);
  EXPECT_THAT(store_->CurrentRevision(), IsOk());
  EXPECT_EQ(*store_->CurrentRevision(), before);
}

TEST_P(MirrorTest, WriteReturnsThePlansErrorWithoutCommitting) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  ASSERT_OK_AND_ASSIGN(Revision before, store_->CurrentRevision());

  StatusOr<Revision> result =
      mirror->Write([](const MirrorState&, Revision) -> StatusOr<TxnRequest> {
        return FailedPreconditionError("entry is locked");
      });

  EXPECT_THAT(result, StatusIs(StatusCode::kFailedPrecondition, HasSubstr("entry is locked")));
  EXPECT_EQ(*store_->CurrentRevision(), before);
}

TEST_P(MirrorTest, WriteReplansAfterAConflictAndCountsTheRetry) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> other_handle, OpenHandle());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  int plans = 0;
  Mirror::Plan increment = [&](const MirrorState& state, Revision applied) -> StatusOr<TxnRequest> {
    if (++plans == 1) {
      // Another replica changes the counter after this plan read it: the commit must abort.
      EXPECT_OK(other_handle->Put("app/counter", "41").status());
    }
    StatusOr<TxnRequest> txn = PutPlan("app/counter", "?")(state, applied);
    const Contents& contents = AsMap(state).contents();
    auto it = contents.find("app/counter");
    const int value = it == contents.end() ? 0 : std::stoi(it->second.value);
    if (txn.ok()) txn->ops[0].value = std::to_string(value + 1);
    return txn;
  };

  ASSERT_OK_AND_ASSIGN(Revision revision, mirror->Write(increment));

  EXPECT_EQ(plans, 2);
  EXPECT_EQ(mirror->status().write_retries, 1);
  ASSERT_OK_AND_ASSIGN(store::KeyValue stored, store_->Get("app/counter"));
  EXPECT_EQ(stored.value, "42");
  EXPECT_EQ(stored.mod_revision, revision);
}

TEST_P(MirrorTest, ConcurrentIncrementsOnTwoMirrorsLoseNoUpdate) {
  constexpr int kThreadsPerMirror = 2;
  constexpr int kIncrementsPerThread = 20;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> other_handle, OpenHandle());
  MirrorOptions options = Options();
  options.max_write_attempts = 1000;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror_a,
                       Mirror::Open(store_.get(), options, MapFactory()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror_b,
                       Mirror::Open(other_handle.get(), options, MapFactory()));
  std::atomic<int> plans{0};
  const Mirror::Plan increment = [&](const MirrorState& state,
                                     Revision applied) -> StatusOr<TxnRequest> {
    ++plans;
    const Contents& contents = AsMap(state).contents();
    auto it = contents.find("app/counter");
    const int value = it == contents.end() ? 0 : std::stoi(it->second.value);
    return PutPlan("app/counter", std::to_string(value + 1))(state, applied);
  };

  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (Mirror* mirror : {mirror_a.get(), mirror_b.get()}) {
    for (int t = 0; t < kThreadsPerMirror; ++t) {
      threads.emplace_back([&, mirror] {
        for (int i = 0; i < kIncrementsPerThread; ++i) {
          StatusOr<Revision> result = mirror->Write(increment);
          if (!result.ok()) {
            ADD_FAILURE() << result.status();
            ++failures;
          }
        }
      });
    }
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int kTotal = 2 * kThreadsPerMirror * kIncrementsPerThread;
  ASSERT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(store::KeyValue stored, store_->Get("app/counter"));
  EXPECT_EQ(stored.value, std::to_string(kTotal));
  ASSERT_OK(mirror_a->Sync(kWait));
  ASSERT_OK(mirror_b->Sync(kWait));
  EXPECT_EQ(ReadContents(*mirror_a)["app/counter"].value, std::to_string(kTotal));
  EXPECT_EQ(ReadContents(*mirror_b)["app/counter"].value, std::to_string(kTotal));
  // Every plan beyond one per increment followed an Aborted commit, and was counted.
  EXPECT_EQ(mirror_a->status().write_retries + mirror_b->status().write_retries,
            plans.load() - kTotal);
}

TEST_P(MirrorTest, WriteGivesUpWithAbortedAfterMaxWriteAttempts) {
  MirrorOptions options = Options();
  options.max_write_attempts = 3;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), options, MapFactory()));
  int plans = 0;
  // A plan whose condition can never hold, as if it always read a stale object.
  Mirror::Plan stale = [&](const MirrorState&, Revision) -> StatusOr<TxnRequest> {
    ++plans;
    TxnRequest txn;
    txn.conditions.push_back(Condition::ModRevisionIs("app/missing", 999999));
    txn.ops.push_back(Op::Put("app/missing", "x"));
    return txn;
  };

  EXPECT_THAT(mirror->Write(stale), StatusIs(StatusCode::kAborted, HasSubstr("3 attempts")));
  EXPECT_EQ(plans, 3);
  EXPECT_EQ(mirror->status().write_retries, 2);
  EXPECT_THAT(store_->Get("app/missing"), StatusIs(StatusCode::kNotFound));
}

TEST_P(MirrorTest, SyncWaitsForWritesMadeOnAnotherHandle) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> other_handle, OpenHandle());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));

  ASSERT_OK_AND_ASSIGN(Revision inside, other_handle->Put("app/x", "1"));
  ASSERT_OK(mirror->Sync(kWait));
  View view = ReadView(*mirror);
  EXPECT_GE(view.revision, inside);
  EXPECT_EQ(view.contents["app/x"].mod_revision, inside);

  // A change outside the prefix moves the store's revision too; Sync must still finish.
  ASSERT_OK_AND_ASSIGN(Revision outside, other_handle->Put("other/y", "2"));
  ASSERT_OK(mirror->Sync(kWait));
  EXPECT_GE(mirror->applied_revision(), outside);
  EXPECT_GE(mirror->status().backend_revision, outside);
}

TEST_P(MirrorTest, WaitForRevisionTimesOutWithUnavailable) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  const Revision applied = mirror->applied_revision();

  EXPECT_THAT(
      mirror->WaitForRevision(applied + 5, 50ms),
      StatusIs(StatusCode::kUnavailable, AllOf(HasSubstr("revision " + std::to_string(applied + 5)),
                                               HasSubstr("applied " + std::to_string(applied)))));
  EXPECT_OK(mirror->WaitForRevision(applied, 0ms));
}

TEST_P(MirrorTest, RebuildsFromANewSnapshotWhenTheHistoryItNeedsWasCompacted) {
  FaultInjectionStore fault(store_.get());
  Gate rebuild_gate;
  Recorder recorder;
  std::atomic<int> states_made{0};
  Mirror::StateFactory factory = [&] {
    // The first state is the initial hydration; a later one is a rebuild, which waits.
    if (++states_made > 1) rebuild_gate.Wait();
    return std::make_unique<MapState>();
  };
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK(store_->Put("app/b", "2").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror, Mirror::Open(&fault, Options(), factory));
  mirror->AddListener(recorder.Listener());
  const Revision before = mirror->applied_revision();

  // Holding the shared lock keeps the follower from applying anything while the watch breaks
  // and the history it would need is compacted away, so the reopened watch (or the old one)
  // must report OutOfRange.
  mirror->Read([&](const MirrorState&, Revision) {
    fault.BreakWatches(UnavailableError("injected: connection reset"));
    EXPECT_OK(store_->Put("app/c", "3").status());
    EXPECT_OK(store_->Delete("app/a").status());
    EXPECT_OK(store_->Put("other/x", "outside").status());
    StatusOr<Revision> current = store_->CurrentRevision();
    EXPECT_OK(current);
    if (current.ok()) {
      EXPECT_OK(store_->Compact(*current));
    }
    return 0;
  });

  ASSERT_TRUE(rebuild_gate.WaitForWaiter());
  // While the new state hydrates, reads are served from the old one.
  View during = ReadView(*mirror);
  EXPECT_THAT(during.contents, Contains(Key("app/a")));
  EXPECT_LT(during.revision, *store_->CurrentRevision());
  EXPECT_EQ(mirror->status().rebuilds, 0);
  rebuild_gate.Open();

  ASSERT_TRUE(recorder.WaitForReset());
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  MirrorStatus status = mirror->status();
  EXPECT_EQ(status.rebuilds, 1);
  EXPECT_THAT(status.last_error, HasSubstr("OUT_OF_RANGE"));
  std::vector<Recorder::Record> records = recorder.records();
  auto reset_it = std::find_if(records.begin(), records.end(),
                               [](const Recorder::Record& r) { return r.reset; });
  ASSERT_NE(reset_it, records.end());
  const Recorder::Record reset = *reset_it;
  EXPECT_TRUE(reset.batch.events.empty());
  EXPECT_GT(reset.batch.revision, before);
  EXPECT_EQ(reset.batch.revision, ReadView(*mirror).revision);

  // And it follows the store again from the new snapshot.
  ASSERT_OK_AND_ASSIGN(Revision after, store_->Put("app/d", "4"));
  ASSERT_OK(mirror->WaitForRevision(after, kWait));
  ASSERT_OK_AND_ASSIGN(expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  EXPECT_TRUE(mirror->status().watching);
}

TEST_P(MirrorTest, ReopensABrokenWatchWithoutLosingAChange) {
  FaultInjectionStore fault(store_.get());
  Recorder recorder;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(&fault, Options(), MapFactory()));
  mirror->AddListener(recorder.Listener());
  std::vector<Revision> written;
  // The first two attempts to reopen fail too.
  fault.FailNext(FaultInjectionStore::Operation::kWatch,
                 UnavailableError("injected: watch refused"), 2);

  mirror->Read([&](const MirrorState&, Revision) {
    fault.BreakWatches(UnavailableError("injected: connection reset"));
    for (const char* key : {"app/a", "app/b", "app/a"}) {
      StatusOr<Revision> revision = store_->Put(key, "v");
      EXPECT_OK(revision);
      if (revision.ok()) {
        written.push_back(*revision);
      }
    }
    return 0;
  });
  ASSERT_OK_AND_ASSIGN(Revision last, store_->Delete("app/b"));
  written.push_back(last);

  ASSERT_OK(mirror->WaitForRevision(last, kWait));
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  // Listeners run just after waiters are woken.
  ASSERT_TRUE(recorder.WaitUntil([&](const std::vector<Recorder::Record>& records) {
    return records.size() >= written.size();
  }));
  std::vector<Revision> delivered;
  for (const Recorder::Record& record : recorder.records()) {
    delivered.push_back(record.batch.revision);
  }
  EXPECT_THAT(delivered, ElementsAreArray(written));
  MirrorStatus status = mirror->status();
  EXPECT_TRUE(status.watching);
  EXPECT_EQ(status.rebuilds, 0);
  EXPECT_THAT(status.last_error, HasSubstr("injected"));
}

TEST_P(MirrorTest, VerifySucceedsOnAHealthyMirror) {
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  ASSERT_OK(mirror->Write(PutPlan("app/b", "2")).status());
  ASSERT_OK(store_->Put("app/a", "3").status());
  ASSERT_OK(store_->Put("other/x", "outside").status());

  EXPECT_OK(mirror->Verify());
  EXPECT_OK(mirror->Verify());

  MirrorStatus status = mirror->status();
  EXPECT_EQ(status.verify_runs, 2);
  EXPECT_EQ(status.verify_mismatches, 0);
  EXPECT_EQ(status.rebuilds, 0);
}

// Runs `write(i)` for i = 0, 1, ... on a thread until the returned guard is destroyed.
class BackgroundWriter {
 public:
  explicit BackgroundWriter(std::function<Status(int)> write)
      : thread_([this, write = std::move(write)] {
          for (int i = 0; !stop_.load(); ++i) {
            if (Status s = write(i); !s.ok()) {
              ADD_FAILURE() << s;
              return;
            }
          }
        }) {}
  ~BackgroundWriter() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_P(MirrorTest, VerifyIsNotDisturbedByChangesOutsideThePrefix) {
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  {
    BackgroundWriter busy(
        [&](int i) { return store_->Put("other/x", std::to_string(i)).status(); });
    for (int i = 0; i < 5; ++i) EXPECT_OK(mirror->Verify());
  }
  EXPECT_EQ(mirror->status().verify_mismatches, 0);
}

TEST_P(MirrorTest, VerifyReportsNoFalseMismatchWhileThePrefixIsBusy) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  {
    BackgroundWriter busy([&](int i) {
      return store_->Put("app/k" + std::to_string(i % 10), std::to_string(i)).status();
    });
    for (int i = 0; i < 5; ++i) {
      // Either it found a moment to compare, or it gave up; never a mismatch.
      Status verified = mirror->Verify();
      if (!verified.ok()) {
        EXPECT_THAT(verified, StatusIs(StatusCode::kAborted, HasSubstr("too busy")));
      }
    }
  }
  EXPECT_EQ(mirror->status().verify_mismatches, 0);
  EXPECT_EQ(mirror->status().rebuilds, 0);
  EXPECT_OK(mirror->Verify());
}

// A state factory whose states lose the first change to `key` that any of them sees.
Mirror::StateFactory FactoryDroppingOnce(std::string key,
                                         std::shared_ptr<std::atomic<bool>> dropped) {
  return [key = std::move(key), dropped = std::move(dropped)] {
    return std::make_unique<MapState>([key, dropped](const Event& event) {
      return event.kv.key == key && !dropped->exchange(true);
    });
  };
}

TEST_P(MirrorTest, VerifyDetectsADivergedMirrorAndRebuildsIt) {
  Recorder recorder;
  auto dropped = std::make_shared<std::atomic<bool>>(false);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Mirror> mirror,
      Mirror::Open(store_.get(), Options(), FactoryDroppingOnce("app/lost", dropped)));
  mirror->AddListener(recorder.Listener());
  ASSERT_OK(store_->Put("app/kept", "1").status());
  ASSERT_OK_AND_ASSIGN(Revision lost, store_->Put("app/lost", "2"));
  ASSERT_OK(mirror->WaitForRevision(lost, kWait));
  ASSERT_THAT(ReadContents(*mirror), Not(Contains(Key("app/lost"))));

  EXPECT_THAT(mirror->Verify(),
              StatusIs(StatusCode::kDataLoss,
                       AllOf(HasSubstr("digest"), HasSubstr("revision " + std::to_string(lost)))));
  EXPECT_EQ(mirror->status().verify_mismatches, 1);

  ASSERT_TRUE(recorder.WaitForReset());
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  EXPECT_OK(mirror->Verify());
  MirrorStatus status = mirror->status();
  EXPECT_EQ(status.verify_runs, 2);
  EXPECT_EQ(status.verify_mismatches, 1);
  EXPECT_EQ(status.rebuilds, 1);
}

TEST_P(MirrorTest, PeriodicVerificationRepairsADivergedMirror) {
  Recorder recorder;
  auto dropped = std::make_shared<std::atomic<bool>>(false);
  MirrorOptions options = Options();
  options.verify_interval = 20ms;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Mirror> mirror,
      Mirror::Open(store_.get(), options, FactoryDroppingOnce("app/lost", dropped)));
  mirror->AddListener(recorder.Listener());
  ASSERT_OK(store_->Put("app/lost", "2").status());

  ASSERT_TRUE(recorder.WaitForReset());
  ASSERT_OK_AND_ASSIGN(Contents expected, StoreContents(store_.get(), "app/"));
  EXPECT_EQ(ReadContents(*mirror), expected);
  MirrorStatus status = mirror->status();
  EXPECT_GE(status.verify_runs, 1);
  EXPECT_GE(status.verify_mismatches, 1);
  EXPECT_GE(status.rebuilds, 1);
}

TEST_P(MirrorTest, ListenersReceiveEveryBatchInRevisionOrder) {
  Recorder recorder;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(store_.get(), Options(), MapFactory()));
  mirror->AddListener(recorder.Listener());
  std::vector<WatchBatch> expected;
  for (int i = 0; i < 20; ++i) {
    TxnRequest txn;
    txn.ops.push_back(Op::Put("app/x" + std::to_string(i % 4), std::to_string(i)));
    txn.ops.push_back(Op::Put("app/y", std::to_string(i)));
    txn.ops.push_back(Op::Put("other/z", std::to_string(i)));
    ASSERT_OK_AND_ASSIGN(Revision revision, store_->Commit(txn));
    ASSERT_OK_AND_ASSIGN(store::KeyValue x, store_->Get("app/x" + std::to_string(i % 4)));
    ASSERT_OK_AND_ASSIGN(store::KeyValue y, store_->Get("app/y"));
    expected.push_back(
        WatchBatch{revision, {Event{Event::Type::kPut, x}, Event{Event::Type::kPut, y}}});
    // Changes outside the prefix reach no listener.
    ASSERT_OK(store_->Put("other/only", std::to_string(i)).status());
  }
  ASSERT_TRUE(recorder.WaitUntil([&](const std::vector<Recorder::Record>& records) {
    return records.size() >= expected.size();
  }));
  ASSERT_OK(mirror->Sync(kWait));

  std::vector<Recorder::Record> records = recorder.records();
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_FALSE(records[i].reset);
    EXPECT_EQ(records[i].batch.revision, expected[i].revision);
    EXPECT_EQ(records[i].batch.events, expected[i].events);
  }
}

TEST_P(MirrorTest, ServesReadsButFailsWritesWhileTheBackendIsUnreachable) {
  FaultInjectionStore fault(store_.get());
  ASSERT_OK(store_->Put("app/a", "1").status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror,
                       Mirror::Open(&fault, Options(), MapFactory()));
  EXPECT_TRUE(mirror->status().watching);
  const Status down = UnavailableError("injected: backend down");
  // Long enough to outlast the test at one reopen per retry_backoff.
  fault.FailNext(FaultInjectionStore::Operation::kWatch, down, 5000);
  fault.FailNext(FaultInjectionStore::Operation::kCommit, down);
  fault.FailNext(FaultInjectionStore::Operation::kCurrentRevision, down);
  fault.BreakWatches(down);

  ASSERT_TRUE(Eventually([&] { return !mirror->status().watching; }));
  EXPECT_THAT(mirror->Write(PutPlan("app/b", "2")),
              StatusIs(StatusCode::kUnavailable, HasSubstr("backend down")));
  EXPECT_THAT(mirror->Sync(kWait), StatusIs(StatusCode::kUnavailable, HasSubstr("backend down")));
  EXPECT_THAT(ReadContents(*mirror), Contains(Key("app/a")));
  MirrorStatus status = mirror->status();
  EXPECT_THAT(status.last_error, HasSubstr("backend down"));
  // A wait that cannot finish says why.
  EXPECT_THAT(mirror->WaitForRevision(status.applied_revision + 1, 10ms),
              StatusIs(StatusCode::kUnavailable, HasSubstr("watch down")));
}

TEST_P(MirrorTest, StoppingTheMirrorCancelsAPendingWrite) {
  FaultInjectionStore fault(store_.get());
  MirrorOptions options = Options();
  options.wait_timeout = 60s;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Mirror> mirror, Mirror::Open(&fault, options, MapFactory()));
  fault.HoldCommits();
  std::optional<StatusOr<Revision>> result;
  std::thread writer([&] { result = mirror->Write(PutPlan("app/a", "1")); });
  EXPECT_TRUE(fault.WaitForHeldCommits(1, kWait));
  // The commit will land, but this mirror will never see it applied.
  const Status down = UnavailableError("injected: backend down");
  fault.FailNext(FaultInjectionStore::Operation::kWatch, down, 5000);
  fault.BreakWatches(down);
  fault.ReleaseCommits();

  mirror.reset();
  writer.join();

  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(StatusCode::kCancelled));
}

// ---- Open's argument checks ----------------------------------------------------------------

TEST(MirrorOpenTest, RejectsBadOptionsNamingTheOption) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> s, store::OpenStore("memory://"));
  auto open_with = [&](auto change) {
    MirrorOptions options;
    options.prefix = "app/";
    change(options);
    return Mirror::Open(s.get(), options, MapFactory()).status();
  };
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.prefix = ""; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("prefix")));
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.hydrate_page_size = 0; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("hydrate_page_size")));
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.max_write_attempts = 0; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("max_write_attempts")));
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.wait_timeout = 0ms; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("wait_timeout")));
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.retry_backoff = -1ms; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("retry_backoff")));
  EXPECT_THAT(open_with([](MirrorOptions& o) { o.verify_interval = -1ms; }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("verify_interval")));

  MirrorOptions good;
  good.prefix = "app/";
  EXPECT_THAT(Mirror::Open(nullptr, good, MapFactory()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("store")));
  EXPECT_THAT(Mirror::Open(s.get(), good, nullptr),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("factory")));
  EXPECT_THAT(Mirror::Open(s.get(), good, [] { return std::unique_ptr<MirrorState>(); }),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("factory")));
}

TEST(MirrorOpenTest, ReturnsTheStoresErrorWhenTheSnapshotCannotBeRead) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> s, store::OpenStore("memory://"));
  FaultInjectionStore fault(s.get());
  fault.FailNext(FaultInjectionStore::Operation::kOpenSnapshot,
                 UnavailableError("injected: no connection"));
  MirrorOptions options;
  options.prefix = "app/";

  EXPECT_THAT(Mirror::Open(&fault, options, MapFactory()),
              StatusIs(StatusCode::kUnavailable, HasSubstr("injected: no connection")));
}

// ---- KeyDigest -----------------------------------------------------------------------------

TEST(KeyDigestTest, IsASumThatIgnoresOrderAndUndoesRemovals) {
  KeyDigest forward;
  forward.Add("a", 1);
  forward.Add("b", 2);
  forward.Add("c", 3);
  KeyDigest backward;
  backward.Add("c", 3);
  backward.Add("b", 2);
  backward.Add("a", 1);
  EXPECT_EQ(forward.value(), backward.value());

  forward.Add("d", 4);
  forward.Remove("d", 4);
  EXPECT_EQ(forward.value(), backward.value());
  forward.Remove("a", 1);
  forward.Remove("b", 2);
  forward.Remove("c", 3);
  EXPECT_EQ(forward.value(), 0u);
}

TEST(KeyDigestTest, HashDependsOnKeyAndRevision) {
  const uint64_t base = KeyDigest::Hash("ds/entry/1", 7);
  EXPECT_NE(base, KeyDigest::Hash("ds/entry/1", 8));
  EXPECT_NE(base, KeyDigest::Hash("ds/entry/2", 7));
  EXPECT_NE(base, KeyDigest::Hash("ds/entry/", 7));
  EXPECT_NE(KeyDigest::Hash("", 0), 0u);
  // Swapping revisions between two keys changes the digest.
  KeyDigest a;
  a.Add("x", 1);
  a.Add("y", 2);
  KeyDigest b;
  b.Add("x", 2);
  b.Add("y", 1);
  EXPECT_NE(a.value(), b.value());
}

TEST(KeyDigestTest, IsStableAcrossProcesses) {
  // Replicas compare digests computed in different processes and builds: the hash is fixed.
  EXPECT_EQ(KeyDigest::Hash("ds/entry/1", 42), 0xdf5ab2470d554e97u);
}

}  // namespace
}  // namespace plinth::mirror
