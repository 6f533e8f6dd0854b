#include "mirror/mirror.h"

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

namespace plinth::mirror {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How long one WatchStream::Next blocks. Short, so that the follower notices a rebuild request
// or shutdown promptly even on a backend whose watch cannot be woken early.
constexpr milliseconds kWatchPollTimeout{100};

// Verify re-reads the backend when the prefix changed between the backend's snapshot and the
// revision the mirror had applied when it took its digest; past this many tries it gives up.
constexpr int kMaxVerifyAttempts = 10;

// The splitmix64 finaliser: a bijective 64-bit mix in which every input bit affects every
// output bit, so sums of hashes (KeyDigest) do not cancel out for related keys.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string Hex(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x0000000000000000";
  for (size_t i = out.size() - 1; i >= 2; --i) {
    out[i] = kDigits[value & 0xf];
    value >>= 4;
  }
  return out;
}

std::string Millis(milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

uint64_t KeyDigest::Hash(std::string_view key, Revision mod_revision) {
  // FNV-1a over the key bytes: fixed constants, no seed, so the digest is the same in every
  // process and on every replica.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h ^ Mix64(static_cast<uint64_t>(mod_revision)));
}

// Two locks:
//   state_mu_ (shared/exclusive) guards the state and the revision it reflects. The follower
//     applies batches and swaps in rebuilt states under it exclusively; Read and the plan of
//     Write hold it shared.
//   mu_ guards the follower's progress as seen by waiters (applied_), the status counters,
//     the current watch (so that other threads can cancel it) and the shutdown flag.
// state_mu_ and mu_ are never held together. listeners_mu_ is taken only inside state_mu_
// (exclusive) or alone.
//
// Invariant: applied_ <= state_revision_, and both only grow. The follower sets
// state_revision_ first and then applied_, so a waiter woken for revision R always finds a
// state at R or later.
class Mirror::Impl {
 public:
  Impl(store::Store* store, MirrorOptions options, StateFactory factory)
      : store_(store),
        options_(std::move(options)),
        factory_(std::move(factory)),
        span_(store::KeySpan::Prefix(options_.prefix)) {}

  ~Impl() { Stop(); }

  // Hydrates the first state and starts the follower (and the verifier, if periodic).
  Status Start() PLINTH_EXCLUDES(state_mu_, mu_);

  // Stops the threads, wakes every waiter with Cancelled and waits until calls in progress
  // have returned. Idempotent.
  void Stop() PLINTH_EXCLUDES(state_mu_, mu_);

  Revision applied_revision() const PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return applied_;
  }

  StatusOr<Revision> Write(const Plan& plan) PLINTH_EXCLUDES(state_mu_, mu_);
  Status WaitForRevision(Revision revision, milliseconds timeout) PLINTH_EXCLUDES(mu_);
  Status Sync(milliseconds timeout) PLINTH_EXCLUDES(mu_);
  Status Verify() PLINTH_EXCLUDES(state_mu_, mu_);
  void AddListener(ApplyListener listener) PLINTH_EXCLUDES(listeners_mu_);
  MirrorStatus status() const PLINTH_EXCLUDES(mu_);

  // Read's access (through Mirror::ReadGuard).
  mutable SharedMutex state_mu_;
  std::unique_ptr<MirrorState> state_ PLINTH_GUARDED_BY(state_mu_);
  // The revision state_ reflects.
  Revision state_revision_ PLINTH_GUARDED_BY(state_mu_) = 0;

 private:
  // Counts a public call in progress, so that Stop can wait for it to return before the
  // mirror is destroyed.
  class CallScope {
   public:
    explicit CallScope(Impl* impl) PLINTH_EXCLUDES(impl->mu_) : impl_(impl) {
      MutexLock lock(&impl_->mu_);
      ++impl_->active_calls_;
    }
    ~CallScope() PLINTH_EXCLUDES(impl_->mu_) {
      MutexLock lock(&impl_->mu_);
      if (--impl_->active_calls_ == 0) impl_->progress_cv_.SignalAll();
    }
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

   private:
    Impl* const impl_;
  };

  struct BackendDigest {
    Revision revision = 0;
    uint64_t digest = 0;
  };

  // Loads the prefix at a new snapshot into `state` (which nobody else sees yet) and returns
  // the snapshot's revision.
  StatusOr<Revision> Hydrate(MirrorState& state) PLINTH_EXCLUDES(mu_);

  StatusOr<std::unique_ptr<store::WatchStream>> OpenWatch(Revision from);
  // Follower thread: reads the watch (`watch`, null if none is open yet) and applies;
  // reopens and rebuilds as needed.
  void FollowLoop(std::unique_ptr<store::WatchStream> watch) PLINTH_EXCLUDES(state_mu_, mu_);
  // Applies one batch (or progress notice) and tells waiters and listeners.
  void ApplyBatch(const store::WatchBatch& batch) PLINTH_EXCLUDES(state_mu_, mu_);
  // Hydrates a fresh state beside the current one and swaps it in.
  Status Rebuild() PLINTH_EXCLUDES(state_mu_, mu_);
  // Picks up listeners added since the last call. Called on the follower thread with
  // state_mu_ held exclusively, so that a listener sees every batch applied after AddListener
  // returned.
  void RefreshListeners() PLINTH_EXCLUDES(listeners_mu_);
  void NotifyListeners(const store::WatchBatch& batch, bool reset);
  // Makes `watch` visible to Stop and Verify (which cancel it). False if stopping.
  bool PublishWatch(store::WatchStream* watch) PLINTH_EXCLUDES(mu_);
  void DropWatch(std::unique_ptr<store::WatchStream>& watch) PLINTH_EXCLUDES(mu_);
  void RecordFollowerError(const Status& status) PLINTH_EXCLUDES(mu_);
  // Sleeps retry_backoff, or less if the mirror stops or a rebuild is requested.
  void Backoff() PLINTH_EXCLUDES(mu_);
  // Asks the follower for a rebuild and wakes it.
  void RequestRebuildLocked() PLINTH_REQUIRES(mu_);

  // Verifier thread (only with verify_interval > 0).
  void VerifyLoop() PLINTH_EXCLUDES(state_mu_, mu_);
  StatusOr<BackendDigest> ReadBackendDigest() PLINTH_EXCLUDES(mu_);
  // The state's digest if the state is exactly as it was at `revision`: applied through it,
  // with no change under the prefix since.
  std::optional<uint64_t> MirrorDigestAt(Revision revision) PLINTH_EXCLUDES(state_mu_);

  StatusOr<store::TxnRequest> RunPlan(const Plan& plan, Revision* planned_at)
      PLINTH_EXCLUDES(state_mu_);
  void NoteBackendRevision(Revision revision) PLINTH_EXCLUDES(mu_);
  bool stopping() const PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return stopping_;
  }

  store::Store* const store_;
  const MirrorOptions options_;
  const StateFactory factory_;
  const store::KeySpan span_;

  // Revision of the last batch that changed the state (or of the snapshot it was loaded
  // from). With state_revision_ it tells Verify whether the state at state_revision_ is also
  // the state at an earlier revision.
  Revision last_change_revision_ PLINTH_GUARDED_BY(state_mu_) = 0;

  mutable Mutex mu_;
  // Signalled when applied_ moves, when the mirror stops and when a call returns.
  CondVar progress_cv_{&mu_};
  // Wakes the follower and verifier from their sleeps (stop, rebuild request).
  CondVar wake_cv_{&mu_};
  Revision applied_ PLINTH_GUARDED_BY(mu_) = 0;
  Revision backend_revision_ PLINTH_GUARDED_BY(mu_) = 0;
  bool watching_ PLINTH_GUARDED_BY(mu_) = false;
  bool stopping_ PLINTH_GUARDED_BY(mu_) = false;
  bool rebuild_requested_ PLINTH_GUARDED_BY(mu_) = false;  // not yet taken by the follower
  // From a Verify mismatch until a rebuild completes: a Verify meanwhile sees the same
  // divergence, which is not counted again.
  bool rebuild_pending_ PLINTH_GUARDED_BY(mu_) = false;
  int64_t rebuilds_ PLINTH_GUARDED_BY(mu_) = 0;
  int64_t verify_runs_ PLINTH_GUARDED_BY(mu_) = 0;
  int64_t verify_mismatches_ PLINTH_GUARDED_BY(mu_) = 0;
  int64_t write_retries_ PLINTH_GUARDED_BY(mu_) = 0;
  std::string last_error_ PLINTH_GUARDED_BY(mu_);
  int active_calls_ PLINTH_GUARDED_BY(mu_) = 0;
  // The follower's open watch, owned by FollowLoop; null while none is open.
  store::WatchStream* watch_ PLINTH_GUARDED_BY(mu_) = nullptr;

  Mutex listeners_mu_;
  std::vector<ApplyListener> listeners_ PLINTH_GUARDED_BY(listeners_mu_);
  // The follower's copy of listeners_, so that listeners run without any lock held. Touched
  // only by the follower thread.
  std::vector<ApplyListener> follower_listeners_;

  std::thread follower_;
  std::thread verifier_;
};

// ---- Hydration and start -------------------------------------------------------------------

StatusOr<Revision> Mirror::Impl::Hydrate(MirrorState& state) {
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<store::Snapshot> snapshot, store_->OpenSnapshot());
  const Revision revision = snapshot->revision();
  store::RangeOptions page_options;
  page_options.limit = static_cast<size_t>(options_.hydrate_page_size);
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(store::RangeResult page, snapshot->Range(span_, page_options));
    if (page.kvs.empty()) break;
    page_options.after = page.kvs.back().key;
    store::WatchBatch batch{revision, {}};
    batch.events.reserve(page.kvs.size());
    for (store::KeyValue& kv : page.kvs) {
      batch.events.push_back(store::Event{store::Event::Type::kPut, std::move(kv)});
    }
    state.Apply(batch);
    if (!page.more) break;
  }
  NoteBackendRevision(revision);
  return revision;
}

Status Mirror::Impl::Start() {
  std::unique_ptr<MirrorState> state = factory_();
  if (state == nullptr) return InvalidArgumentError("mirror: the state factory returned null");
  StatusOr<Revision> revision = Hydrate(*state);
  if (!revision.ok()) {
    return revision.status().WithContext("mirror: hydrating prefix \"" +
                                         store::PrintableKey(options_.prefix) + "\"");
  }
  {
    WriterLock lock(&state_mu_);
    state_ = std::move(state);
    state_revision_ = *revision;
    last_change_revision_ = *revision;
  }
  {
    MutexLock lock(&mu_);
    applied_ = *revision;
  }
  // The first watch is opened here rather than on the follower thread, so that a mirror that
  // Open returned is already watching (status().watching) unless the store refused; the
  // follower retries in that case, as after any broken watch.
  std::unique_ptr<store::WatchStream> watch;
  StatusOr<std::unique_ptr<store::WatchStream>> opened = OpenWatch(*revision + 1);
  if (opened.ok()) {
    watch = *std::move(opened);
    PublishWatch(watch.get());
  } else {
    RecordFollowerError(opened.status().WithContext("opening the watch"));
  }
  follower_ = std::thread(
      [this, first_watch = std::move(watch)]() mutable { FollowLoop(std::move(first_watch)); });
  if (options_.verify_interval.count() > 0) verifier_ = std::thread([this] { VerifyLoop(); });
  return Status::Ok();
}

void Mirror::Impl::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (watch_ != nullptr) watch_->Cancel();
    progress_cv_.SignalAll();
    wake_cv_.SignalAll();
  }
  if (follower_.joinable()) follower_.join();
  if (verifier_.joinable()) verifier_.join();
  // Calls in progress see stopping_ at their next wait and return Cancelled; one blocked in a
  // store call returns when the store does.
  MutexLock lock(&mu_);
  while (active_calls_ > 0) progress_cv_.Wait();
}

// ---- The follower ----------------------------------------------------------------------------

StatusOr<std::unique_ptr<store::WatchStream>> Mirror::Impl::OpenWatch(Revision from) {
  store::WatchOptions watch_options;
  // Progress notices move the applied revision past changes outside the prefix, which Sync
  // and Write's catch-up after Aborted wait for.
  watch_options.progress_notify = true;
  return store_->Watch(span_, from, watch_options);
}

void Mirror::Impl::FollowLoop(std::unique_ptr<store::WatchStream> watch) {
  bool rebuild = false;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stopping_) break;
      if (rebuild_requested_) {
        rebuild_requested_ = false;
        rebuild = true;
      }
    }
    if (rebuild) {
      DropWatch(watch);
      if (Status s = Rebuild(); !s.ok()) {
        // The old state keeps serving reads; try again with a newer snapshot.
        RecordFollowerError(s.WithContext("rebuild"));
        Backoff();
        continue;
      }
      rebuild = false;
      continue;
    }
    if (watch == nullptr) {
      StatusOr<std::unique_ptr<store::WatchStream>> opened = OpenWatch(applied_revision() + 1);
      if (!opened.ok()) {
        RecordFollowerError(opened.status().WithContext("opening the watch"));
        if (opened.status().code() == StatusCode::kOutOfRange) {
          rebuild = true;
        } else {
          Backoff();
        }
        continue;
      }
      watch = *std::move(opened);
      if (!PublishWatch(watch.get())) break;
    }

    StatusOr<store::WatchBatch> batch = watch->Next(kWatchPollTimeout);
    if (batch.ok()) {
      ApplyBatch(*batch);
      continue;
    }
    switch (batch.status().code()) {
      case StatusCode::kDeadlineExceeded:
        break;
      case StatusCode::kOutOfRange:
        // The history between the applied revision and now is gone: only a new snapshot can
        // bring the state up to date.
        DropWatch(watch);
        RecordFollowerError(batch.status().WithContext("watch"));
        rebuild = true;
        break;
      case StatusCode::kCancelled: {
        // Stop and RequestRebuildLocked cancel the watch to wake us; anything else that cancels
        // it is a broken watch like any other.
        DropWatch(watch);
        bool expected;
        {
          MutexLock lock(&mu_);
          expected = stopping_ || rebuild_requested_;
        }
        if (!expected) {
          RecordFollowerError(batch.status().WithContext("watch"));
          Backoff();
        }
        break;
      }
      default:
        // Unavailable or anything unexpected: the watch is dead; reopen it from the applied
        // revision + 1 after a pause, which loses nothing.
        DropWatch(watch);
        RecordFollowerError(batch.status().WithContext("watch"));
        Backoff();
        break;
    }
  }
  DropWatch(watch);
}

void Mirror::Impl::ApplyBatch(const store::WatchBatch& batch) {
  const bool has_events = !batch.events.empty();
  {
    WriterLock lock(&state_mu_);
    // A watch never repeats a revision, but a rebuild's snapshot may already cover batches a
    // reopened watch delivers again; applying them twice would corrupt the state.
    if (batch.revision <= state_revision_) return;
    if (has_events) {
      state_->Apply(batch);
      last_change_revision_ = batch.revision;
    }
    state_revision_ = batch.revision;
    RefreshListeners();
  }
  {
    MutexLock lock(&mu_);
    applied_ = batch.revision;
    backend_revision_ = std::max(backend_revision_, batch.revision);
    progress_cv_.SignalAll();
  }
  // Progress notices change nothing a listener could see.
  if (has_events) NotifyListeners(batch, /*reset=*/false);
}

Status Mirror::Impl::Rebuild() {
  std::unique_ptr<MirrorState> fresh = factory_();
  if (fresh == nullptr) return InternalError("the state factory returned null");
  // Hydrated without any lock: readers and writers keep using the old state meanwhile.
  PLINTH_ASSIGN_OR_RETURN(Revision revision, Hydrate(*fresh));
  {
    WriterLock lock(&state_mu_);
    if (revision < state_revision_) {
      return AbortedError("snapshot at revision " + std::to_string(revision) +
                          " is older than the applied revision " + std::to_string(state_revision_));
    }
    state_.swap(fresh);
    state_revision_ = revision;
    last_change_revision_ = revision;
    RefreshListeners();
  }
  fresh.reset();  // the old state, freed outside the lock
  {
    MutexLock lock(&mu_);
    applied_ = revision;
    ++rebuilds_;
    rebuild_pending_ = false;
    progress_cv_.SignalAll();
  }
  NotifyListeners(store::WatchBatch{revision, {}}, /*reset=*/true);
  return Status::Ok();
}

void Mirror::Impl::RefreshListeners() {
  MutexLock lock(&listeners_mu_);
  // Listeners are only ever appended.
  for (size_t i = follower_listeners_.size(); i < listeners_.size(); ++i) {
    follower_listeners_.push_back(listeners_[i]);
  }
}

void Mirror::Impl::NotifyListeners(const store::WatchBatch& batch, bool reset) {
  for (const ApplyListener& listener : follower_listeners_) listener(batch, reset);
}

bool Mirror::Impl::PublishWatch(store::WatchStream* watch) {
  MutexLock lock(&mu_);
  if (stopping_) return false;
  watch_ = watch;
  watching_ = true;
  return true;
}

void Mirror::Impl::DropWatch(std::unique_ptr<store::WatchStream>& watch) {
  {
    MutexLock lock(&mu_);
    watch_ = nullptr;
  }
  watch.reset();
}

void Mirror::Impl::RecordFollowerError(const Status& status) {
  MutexLock lock(&mu_);
  watching_ = false;
  last_error_ = status.ToString();
}

void Mirror::Impl::Backoff() {
  const auto deadline = steady_clock::now() + options_.retry_backoff;
  MutexLock lock(&mu_);
  while (!stopping_ && !rebuild_requested_ && steady_clock::now() < deadline) {
    wake_cv_.WaitUntil(deadline);
  }
}

void Mirror::Impl::RequestRebuildLocked() {
  rebuild_requested_ = true;
  rebuild_pending_ = true;
  if (watch_ != nullptr) watch_->Cancel();
  wake_cv_.SignalAll();
}

// ---- Waiting and writing -------------------------------------------------------------------

Status Mirror::Impl::WaitForRevision(Revision revision, milliseconds timeout) {
  CallScope scope(this);
  const auto deadline = steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  while (applied_ < revision) {
    if (stopping_) return CancelledError("the mirror is shutting down");
    if (steady_clock::now() >= deadline) {
      std::string message = "the mirror has not applied revision " + std::to_string(revision) +
                            " within " + Millis(timeout) + "; it has applied " +
                            std::to_string(applied_);
      if (!watching_ && !last_error_.empty()) message += " (watch down: " + last_error_ + ")";
      return UnavailableError(message);
    }
    progress_cv_.WaitUntil(deadline);
  }
  return Status::Ok();
}

Status Mirror::Impl::Sync(milliseconds timeout) {
  CallScope scope(this);
  StatusOr<Revision> current = store_->CurrentRevision();
  if (!current.ok()) {
    return current.status().WithContext("sync: reading the store's current revision");
  }
  NoteBackendRevision(*current);
  return WaitForRevision(*current, timeout);
}

StatusOr<store::TxnRequest> Mirror::Impl::RunPlan(const Plan& plan, Revision* planned_at) {
  ReaderLock lock(&state_mu_);
  *planned_at = state_revision_;
  return plan(*state_, state_revision_);
}

StatusOr<Revision> Mirror::Impl::Write(const Plan& plan) {
  CallScope scope(this);
  Status last_conflict;
  for (int attempt = 1; attempt <= options_.max_write_attempts; ++attempt) {
    if (stopping()) return CancelledError("the mirror is shutting down");
    Revision planned_at = 0;
    PLINTH_ASSIGN_OR_RETURN(store::TxnRequest txn, RunPlan(plan, &planned_at));
    if (txn.ops.empty()) return planned_at;
    StatusOr<Revision> committed = store_->Commit(txn);
    if (committed.ok()) {
      NoteBackendRevision(*committed);
      if (Status s = WaitForRevision(*committed, options_.wait_timeout); !s.ok()) {
        return s.WithContext("write committed at revision " + std::to_string(*committed) +
                             " but not yet visible here");
      }
      return *committed;
    }
    if (committed.status().code() != StatusCode::kAborted) return committed.status();
    last_conflict = committed.status();
    if (attempt == options_.max_write_attempts) break;
    {
      MutexLock lock(&mu_);
      ++write_retries_;
    }
    // Whatever made the conditions fail is committed; plan again once the state includes it.
    // The store's current revision is at least that change's, even when it touched no key
    // under the prefix (progress notices move the applied revision past such changes).
    PLINTH_RETURN_IF_ERROR(Sync(options_.wait_timeout));
  }
  return AbortedError("write still conflicted after " +
                      std::to_string(options_.max_write_attempts) +
                      " attempts; last: " + std::string(last_conflict.message()));
}

void Mirror::Impl::NoteBackendRevision(Revision revision) {
  MutexLock lock(&mu_);
  backend_revision_ = std::max(backend_revision_, revision);
}

// ---- Verification --------------------------------------------------------------------------

StatusOr<Mirror::Impl::BackendDigest> Mirror::Impl::ReadBackendDigest() {
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<store::Snapshot> snapshot, store_->OpenSnapshot());
  BackendDigest result;
  result.revision = snapshot->revision();
  KeyDigest digest;
  store::RangeOptions page_options;
  page_options.limit = static_cast<size_t>(options_.hydrate_page_size);
  page_options.keys_only = true;
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(store::RangeResult page, snapshot->Range(span_, page_options));
    for (const store::KeyValue& kv : page.kvs) digest.Add(kv.key, kv.mod_revision);
    if (page.kvs.empty() || !page.more) break;
    page_options.after = page.kvs.back().key;
  }
  result.digest = digest.value();
  NoteBackendRevision(result.revision);
  return result;
}

std::optional<uint64_t> Mirror::Impl::MirrorDigestAt(Revision revision) {
  ReaderLock lock(&state_mu_);
  if (state_revision_ < revision || last_change_revision_ > revision) return std::nullopt;
  return state_->Digest();
}

Status Mirror::Impl::Verify() {
  CallScope scope(this);
  {
    MutexLock lock(&mu_);
    ++verify_runs_;
  }
  for (int attempt = 0; attempt < kMaxVerifyAttempts; ++attempt) {
    PLINTH_ASSIGN_OR_RETURN(BackendDigest backend, ReadBackendDigest());
    PLINTH_RETURN_IF_ERROR(WaitForRevision(backend.revision, options_.wait_timeout));
    std::optional<uint64_t> mirrored = MirrorDigestAt(backend.revision);
    if (!mirrored.has_value()) continue;  // the prefix changed since; compare afresh
    if (*mirrored == backend.digest) return Status::Ok();
    {
      MutexLock lock(&mu_);
      if (!rebuild_pending_) {
        ++verify_mismatches_;
        RequestRebuildLocked();
      }
    }
    return DataLossError("mirror of prefix \"" + store::PrintableKey(options_.prefix) +
                         "\" has digest " + Hex(*mirrored) + " but the store has " +
                         Hex(backend.digest) + " at revision " + std::to_string(backend.revision) +
                         "; rebuilding from a new snapshot");
  }
  return AbortedError("store too busy to verify: prefix \"" + store::PrintableKey(options_.prefix) +
                      "\" changed during each of " + std::to_string(kMaxVerifyAttempts) +
                      " attempts");
}

void Mirror::Impl::VerifyLoop() {
  while (true) {
    {
      const auto deadline = steady_clock::now() + options_.verify_interval;
      MutexLock lock(&mu_);
      while (!stopping_ && steady_clock::now() < deadline) wake_cv_.WaitUntil(deadline);
      if (stopping_) return;
    }
    // A mismatch has already requested a rebuild and been counted; every failure is kept for
    // the status report.
    if (Status s = Verify(); !s.ok() && s.code() != StatusCode::kCancelled) {
      MutexLock lock(&mu_);
      last_error_ = s.WithContext("verify").ToString();
    }
  }
}

// ---- Listeners and status ------------------------------------------------------------------

void Mirror::Impl::AddListener(ApplyListener listener) {
  MutexLock lock(&listeners_mu_);
  listeners_.push_back(std::move(listener));
}

MirrorStatus Mirror::Impl::status() const {
  MutexLock lock(&mu_);
  MirrorStatus s;
  s.applied_revision = applied_;
  s.backend_revision = std::max(backend_revision_, applied_);
  s.watching = watching_;
  s.rebuilds = rebuilds_;
  s.verify_runs = verify_runs_;
  s.verify_mismatches = verify_mismatches_;
  s.write_retries = write_retries_;
  s.last_error = last_error_;
  return s;
}

// ---- Mirror --------------------------------------------------------------------------------

StatusOr<std::unique_ptr<Mirror>> Mirror::Open(store::Store* store, MirrorOptions options,
                                               StateFactory factory) {
  if (store == nullptr) return InvalidArgumentError("mirror: store must not be null");
  if (options.prefix.empty()) return InvalidArgumentError("mirror: prefix must not be empty");
  if (options.hydrate_page_size <= 0) {
    return InvalidArgumentError("mirror: hydrate_page_size must be positive, got " +
                                std::to_string(options.hydrate_page_size));
  }
  if (options.max_write_attempts <= 0) {
    return InvalidArgumentError("mirror: max_write_attempts must be positive, got " +
                                std::to_string(options.max_write_attempts));
  }
  if (options.wait_timeout.count() <= 0) {
    return InvalidArgumentError("mirror: wait_timeout must be positive, got " +
                                Millis(options.wait_timeout));
  }
  if (options.retry_backoff.count() <= 0) {
    return InvalidArgumentError("mirror: retry_backoff must be positive, got " +
                                Millis(options.retry_backoff));
  }
  if (options.verify_interval.count() < 0) {
    return InvalidArgumentError("mirror: verify_interval must not be negative, got " +
                                Millis(options.verify_interval));
  }
  if (!factory) return InvalidArgumentError("mirror: state factory must not be empty");
  if (options.clock == nullptr) options.clock = RealClock();
  auto impl = std::make_unique<Impl>(store, std::move(options), std::move(factory));
  PLINTH_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Mirror>(new Mirror(std::move(impl)));
}

Mirror::Mirror(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Mirror::~Mirror() { impl_->Stop(); }

Revision Mirror::applied_revision() const { return impl_->applied_revision(); }

StatusOr<Revision> Mirror::Write(const Plan& plan) { return impl_->Write(plan); }

Status Mirror::WaitForRevision(Revision revision, std::chrono::milliseconds timeout) {
  return impl_->WaitForRevision(revision, timeout);
}

Status Mirror::Sync(std::chrono::milliseconds timeout) { return impl_->Sync(timeout); }

Status Mirror::Verify() { return impl_->Verify(); }

void Mirror::AddListener(ApplyListener listener) { impl_->AddListener(std::move(listener)); }

MirrorStatus Mirror::status() const { return impl_->status(); }

// The shared lock is taken here and released in the destructor, which the analysis cannot
// follow across two functions.
Mirror::ReadGuard::ReadGuard(const Mirror* m) PLINTH_NO_THREAD_SAFETY_ANALYSIS : mirror(m) {
  m->impl_->state_mu_.LockShared();
  state = m->impl_->state_.get();
  revision = m->impl_->state_revision_;
}

Mirror::ReadGuard::~ReadGuard() PLINTH_NO_THREAD_SAFETY_ANALYSIS {
  mirror->impl_->state_mu_.UnlockShared();
}

}  // namespace plinth::mirror
