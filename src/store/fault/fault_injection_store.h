// A Store wrapper that injects faults into any backend, for tests of everything above the
// store (the mirror, the datastore): fail the next calls of an operation, add latency, hold
// commits until the test releases them, break open watches, or apply a commit and then
// report it as failed (the "outcome unknown" case every client of a remote store must handle).
#ifndef PLINTH_STORE_FAULT_FAULT_INJECTION_STORE_H_
#define PLINTH_STORE_FAULT_FAULT_INJECTION_STORE_H_

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "store/store.h"

namespace plinth::store {

// Thread-safe, like every Store. The wrapped store must outlive the wrapper unless owned.
class FaultInjectionStore final : public Store {
 public:
  enum class Operation {
    kGet,
    kRange,
    kCount,
    kOpenSnapshot,
    kCommit,
    kWatch,  // opening a watch
    kCurrentRevision,
    kCompact,
  };

  // Wraps `base` without owning it.
  explicit FaultInjectionStore(Store* base, Clock* clock = RealClock());
  // Wraps and owns `base`.
  explicit FaultInjectionStore(std::unique_ptr<Store> base, Clock* clock = RealClock());
  ~FaultInjectionStore() override;

  // The next `times` calls of `op` return `status` without reaching the wrapped store.
  void FailNext(Operation op, Status status, int times = 1) PLINTH_EXCLUDES(mu_);
  // The next `times` commits are applied to the wrapped store, then reported as `status`
  // (e.g. Unavailable "outcome unknown"): the caller cannot tell that they happened.
  void FailAfterNextCommit(Status status, int times = 1) PLINTH_EXCLUDES(mu_);
  // Every later call of `op` first sleeps `latency` on the clock.
  void SetLatency(Operation op, std::chrono::nanoseconds latency) PLINTH_EXCLUDES(mu_);

  // From now on, Commit blocks before reaching the wrapped store until ReleaseCommits().
  void HoldCommits() PLINTH_EXCLUDES(mu_);
  // Lets every held and later commit through.
  void ReleaseCommits() PLINTH_EXCLUDES(mu_);
  // Waits until at least `n` commits are blocked in HoldCommits; false on timeout.
  bool WaitForHeldCommits(int n, std::chrono::milliseconds timeout) PLINTH_EXCLUDES(mu_);

  // Every watch opened so far fails its next Next() with `status` (then behaves as dead:
  // every later Next returns the same status).
  void BreakWatches(Status status) PLINTH_EXCLUDES(mu_);

  Store* base() const { return base_; }

  std::string_view backend() const override { return base_->backend(); }
  Limits limits() const override { return base_->limits(); }
  StatusOr<KeyValue> Get(std::string_view key) override;
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override;
  StatusOr<CountResult> Count(const KeySpan& span) override;
  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override;
  StatusOr<Revision> Commit(const TxnRequest& txn) override;
  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override;
  StatusOr<Revision> CurrentRevision() override;
  Status Compact(Revision revision) override;
  StatusOr<Revision> CompactedRevision() override;

 private:
  class FaultyWatch;
  struct WatchBreaker;

  // Applies latency and returns the injected failure for `op`, if any.
  Status Inject(Operation op) PLINTH_EXCLUDES(mu_);

  std::unique_ptr<Store> owned_;
  Store* const base_;
  Clock* const clock_;

  Mutex mu_;
  CondVar cv_{&mu_};
  std::map<Operation, std::vector<Status>> failures_ PLINTH_GUARDED_BY(mu_);
  std::vector<Status> after_commit_failures_ PLINTH_GUARDED_BY(mu_);
  std::map<Operation, std::chrono::nanoseconds> latency_ PLINTH_GUARDED_BY(mu_);
  bool holding_ PLINTH_GUARDED_BY(mu_) = false;
  int held_ PLINTH_GUARDED_BY(mu_) = 0;
  std::vector<std::weak_ptr<WatchBreaker>> watches_ PLINTH_GUARDED_BY(mu_);
};

}  // namespace plinth::store

#endif  // PLINTH_STORE_FAULT_FAULT_INJECTION_STORE_H_
