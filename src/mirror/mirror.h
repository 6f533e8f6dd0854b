// The mirror: a memory-first copy of one store prefix that follows the store's revision stream.
// Domain layers (datastore, secrets) keep their objects and indexes in a MirrorState; every
// read is served from it, every write goes to the store as one conditional transaction and
// returns only once this replica has applied it. See DESIGN.md, "The mirror".
#ifndef PLINTH_MIRROR_MIRROR_H_
#define PLINTH_MIRROR_MIRROR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace plinth::mirror {

using store::Revision;

// What a domain layer keeps in memory for one mirror: its decoded objects and indexes.
//
// The mirror calls Apply from its one follower thread, in strictly increasing revision order,
// holding its exclusive lock; readers see the state only through Mirror::Read and the plan of
// Mirror::Write, under the shared lock. A state therefore needs no locking of its own.
class MirrorState {
 public:
  virtual ~MirrorState() = default;

  // Applies one committed transaction's changes under the mirror's prefix (or, while
  // hydrating, a chunk of the snapshot delivered as puts with their real create/mod
  // revisions and batch.revision = the snapshot revision). Must not fail: a value the domain
  // cannot decode is skipped and counted by the domain, so that bad data never stops a replica.
  virtual void Apply(const store::WatchBatch& batch) = 0;

  // An order-independent digest of (key, mod_revision) over every key the state holds,
  // maintained as changes apply (see KeyDigest). Mirror::Verify compares it with the same
  // digest computed from the backend at the same revision.
  virtual uint64_t Digest() const = 0;
};

// Helper for MirrorState::Digest: a sum of per-key hashes, so keys can be added and removed in
// any order. Add(k, r) then Remove(k, r) leaves the value unchanged.
class KeyDigest {
 public:
  static uint64_t Hash(std::string_view key, Revision mod_revision);
  void Add(std::string_view key, Revision mod_revision) { value_ += Hash(key, mod_revision); }
  void Remove(std::string_view key, Revision mod_revision) { value_ -= Hash(key, mod_revision); }
  uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

struct MirrorOptions {
  // The mirrored key prefix, e.g. "ds/". Must not be empty.
  std::string prefix;
  // Keys per Range call while hydrating.
  int hydrate_page_size = 10000;
  // How many times Write re-plans after Aborted before giving up with Aborted.
  int max_write_attempts = 16;
  // Default bound for Write's wait for its own commit, for Sync and for catching up after an
  // Aborted commit. Past it the call fails with Unavailable.
  std::chrono::milliseconds wait_timeout{5000};
  // Pause between attempts to re-open a broken watch or rebuild after a failure.
  std::chrono::milliseconds retry_backoff{100};
  // Period of automatic Verify (0 = only when called).
  std::chrono::milliseconds verify_interval{0};
  // Clock for timeouts and the status report; nullptr = RealClock().
  Clock* clock = nullptr;
};

// What Mirror::status() reports, for health and metrics.
struct MirrorStatus {
  Revision applied_revision = 0;  // everything up to here is in the state
  Revision backend_revision = 0;  // highest store revision this mirror has heard of
  bool watching = false;          // false while the watch is broken (reads go on from memory)
  int64_t rebuilds = 0;           // fresh snapshots loaded after OutOfRange or a broken watch
  int64_t verify_runs = 0;
  int64_t verify_mismatches = 0;  // each one also triggered a rebuild
  int64_t write_retries = 0;      // Aborted commits that were re-planned
  std::string last_error;         // most recent follower error, "" if none
};

// Called after each applied batch (and after a rebuild's swap, with `reset` = true: listeners
// that keep derived state must then re-read it, since changes between the old and the new
// snapshot are not delivered one by one). Runs on the follower thread after the exclusive lock
// is released, in revision order; must not call Write or wait on the mirror.
using ApplyListener = std::function<void(const store::WatchBatch& batch, bool reset)>;

// A memory-first copy of one store prefix. Thread-safe: any number of threads may Read, Write
// and Sync concurrently.
class Mirror {
 public:
  using StateFactory = std::function<std::unique_ptr<MirrorState>()>;
  // Plans a write from the state at the applied revision. Runs under the shared lock, so it
  // must be quick and must not call back into the mirror. Returns the transaction to commit;
  // its conditions must make it valid only if everything the plan read is unchanged since
  // `applied` (e.g. Condition::ModRevisionIs on each object it read, Absent on keys it
  // expects missing, UnchangedSince on spans it scanned). A transaction with no ops means
  // "nothing to write" and is not committed. A non-OK status ends Write with that status.
  using Plan =
      std::function<StatusOr<store::TxnRequest>(const MirrorState& state, Revision applied)>;

  // Hydrates `options.prefix` of `store` at one snapshot revision into a state made by
  // `factory`, then starts following the store's watch from the next revision. `store` must
  // outlive the mirror. Returns once hydrated: the mirror serves reads from then on.
  // Errors: InvalidArgument (bad options); the store's error if the snapshot cannot be read.
  static StatusOr<std::unique_ptr<Mirror>> Open(store::Store* store, MirrorOptions options,
                                                StateFactory factory);

  // Stops the follower; pending Writes and Syncs fail with Cancelled.
  ~Mirror();

  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // The revision the state reflects: every change under the prefix up to it has been applied.
  Revision applied_revision() const;

  // Runs `fn(state, applied_revision)` under the shared lock and returns its result. `fn` must
  // not call back into the mirror. The state reference is valid only inside `fn`.
  template <typename Fn>
  auto Read(Fn&& fn) const {
    ReadGuard guard(this);
    return fn(*guard.state, guard.revision);
  }

  // The write path: plan at the applied revision R, commit, and return once the state has
  // applied the commit. Returns the commit's revision (or R if the plan had no ops).
  // On Aborted, waits until the mirror has caught up with the store and plans again, up to
  // max_write_attempts times, then fails with Aborted.
  // Errors: the plan's status; the store's commit error (Unavailable, InvalidArgument,
  // ResourceExhausted, ...); Unavailable if the commit is not applied within wait_timeout
  // (the write may have been committed: the caller cannot tell, as with any lost reply).
  StatusOr<Revision> Write(const Plan& plan);

  // Waits until applied_revision() >= revision. Unavailable after `timeout`.
  Status WaitForRevision(Revision revision, std::chrono::milliseconds timeout);

  // Consistent read barrier: takes the store's CurrentRevision() and waits until the mirror
  // has applied it. Unavailable if the store cannot be reached or the wait times out.
  Status Sync(std::chrono::milliseconds timeout);

  // Compares the state's digest with the digest of the backend's prefix at one revision.
  // OK if they match; DataLoss if they differ (the mirror then rebuilds itself and counts a
  // mismatch); the store's error if the backend could not be read.
  Status Verify();

  // Registers a listener (see ApplyListener). Listeners cannot be removed; register them
  // before serving. The listener sees every batch applied after it was added.
  void AddListener(ApplyListener listener);

  MirrorStatus status() const;

 private:
  class Impl;
  struct ReadGuard {
    explicit ReadGuard(const Mirror* mirror);
    ~ReadGuard();
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;
    const Mirror* mirror;
    const MirrorState* state;
    Revision revision;
  };

  explicit Mirror(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plinth::mirror

#endif  // PLINTH_MIRROR_MIRROR_H_
