#include "store/fault/fault_injection_store.h"

#include <utility>

namespace plinth::store {

// Shared between the store and one watch, so BreakWatches reaches watches the caller still
// holds without the store owning them.
struct FaultInjectionStore::WatchBreaker {
  Mutex mu;
  Status broken PLINTH_GUARDED_BY(mu);
  WatchStream* inner PLINTH_GUARDED_BY(mu) = nullptr;  // null once the watch is destroyed
};

class FaultInjectionStore::FaultyWatch final : public WatchStream {
 public:
  FaultyWatch(std::unique_ptr<WatchStream> inner, std::shared_ptr<WatchBreaker> breaker)
      : inner_(std::move(inner)), breaker_(std::move(breaker)) {
    MutexLock lock(&breaker_->mu);
    breaker_->inner = inner_.get();
  }
  ~FaultyWatch() override {
    MutexLock lock(&breaker_->mu);
    breaker_->inner = nullptr;
  }

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    {
      MutexLock lock(&breaker_->mu);
      if (!breaker_->broken.ok()) return breaker_->broken;
    }
    StatusOr<WatchBatch> batch = inner_->Next(timeout);
    MutexLock lock(&breaker_->mu);
    // A watch broken while Next was blocked reports the break, not a batch it may have lost.
    if (!breaker_->broken.ok()) return breaker_->broken;
    return batch;
  }

  void Cancel() override { inner_->Cancel(); }

 private:
  std::unique_ptr<WatchStream> inner_;
  std::shared_ptr<WatchBreaker> breaker_;
};

FaultInjectionStore::FaultInjectionStore(Store* base, Clock* clock) : base_(base), clock_(clock) {}

FaultInjectionStore::FaultInjectionStore(std::unique_ptr<Store> base, Clock* clock)
    : owned_(std::move(base)), base_(owned_.get()), clock_(clock) {}

FaultInjectionStore::~FaultInjectionStore() { ReleaseCommits(); }

void FaultInjectionStore::FailNext(Operation op, Status status, int times) {
  MutexLock lock(&mu_);
  for (int i = 0; i < times; ++i) failures_[op].push_back(status);
}

void FaultInjectionStore::FailAfterNextCommit(Status status, int times) {
  MutexLock lock(&mu_);
  for (int i = 0; i < times; ++i) after_commit_failures_.push_back(status);
}

void FaultInjectionStore::SetLatency(Operation op, std::chrono::nanoseconds latency) {
  MutexLock lock(&mu_);
  latency_[op] = latency;
}

void FaultInjectionStore::HoldCommits() {
  MutexLock lock(&mu_);
  holding_ = true;
}

void FaultInjectionStore::ReleaseCommits() {
  MutexLock lock(&mu_);
  holding_ = false;
  cv_.SignalAll();
}

bool FaultInjectionStore::WaitForHeldCommits(int n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  while (held_ < n) {
    if (!cv_.WaitUntil(deadline) && held_ < n) return false;
  }
  return true;
}

void FaultInjectionStore::BreakWatches(Status status) {
  MutexLock lock(&mu_);
  for (auto& weak : watches_) {
    if (auto breaker = weak.lock()) {
      MutexLock watch_lock(&breaker->mu);
      breaker->broken = status;
      // Wake a blocked Next so that it reports the break.
      if (breaker->inner != nullptr) breaker->inner->Cancel();
    }
  }
  watches_.clear();
}

Status FaultInjectionStore::Inject(Operation op) {
  std::chrono::nanoseconds latency{0};
  {
    MutexLock lock(&mu_);
    if (auto it = latency_.find(op); it != latency_.end()) latency = it->second;
  }
  if (latency.count() > 0) clock_->SleepFor(latency);
  MutexLock lock(&mu_);
  auto it = failures_.find(op);
  if (it == failures_.end() || it->second.empty()) return Status::Ok();
  Status status = it->second.front();
  it->second.erase(it->second.begin());
  return status;
}

StatusOr<KeyValue> FaultInjectionStore::Get(std::string_view key) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kGet));
  return base_->Get(key);
}

StatusOr<RangeResult> FaultInjectionStore::Range(const KeySpan& span, const RangeOptions& options) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kRange));
  return base_->Range(span, options);
}

StatusOr<CountResult> FaultInjectionStore::Count(const KeySpan& span) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kCount));
  return base_->Count(span);
}

StatusOr<std::unique_ptr<Snapshot>> FaultInjectionStore::OpenSnapshot() {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kOpenSnapshot));
  return base_->OpenSnapshot();
}

StatusOr<Revision> FaultInjectionStore::Commit(const TxnRequest& txn) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kCommit));
  {
    MutexLock lock(&mu_);
    if (holding_) {
      ++held_;
      cv_.SignalAll();
      while (holding_) cv_.Wait();
      --held_;
    }
  }
  StatusOr<Revision> result = base_->Commit(txn);
  MutexLock lock(&mu_);
  if (result.ok() && !after_commit_failures_.empty()) {
    Status status = after_commit_failures_.front();
    after_commit_failures_.erase(after_commit_failures_.begin());
    return status;
  }
  return result;
}

StatusOr<std::unique_ptr<WatchStream>> FaultInjectionStore::Watch(const KeySpan& span,
                                                                  Revision from_revision,
                                                                  const WatchOptions& options) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kWatch));
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<WatchStream> inner,
                          base_->Watch(span, from_revision, options));
  auto breaker = std::make_shared<WatchBreaker>();
  {
    MutexLock lock(&mu_);
    std::erase_if(watches_, [](const std::weak_ptr<WatchBreaker>& w) { return w.expired(); });
    watches_.push_back(breaker);
  }
  return std::unique_ptr<WatchStream>(new FaultyWatch(std::move(inner), std::move(breaker)));
}

StatusOr<Revision> FaultInjectionStore::CurrentRevision() {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kCurrentRevision));
  return base_->CurrentRevision();
}

Status FaultInjectionStore::Compact(Revision revision) {
  PLINTH_RETURN_IF_ERROR(Inject(Operation::kCompact));
  return base_->Compact(revision);
}

StatusOr<Revision> FaultInjectionStore::CompactedRevision() { return base_->CompactedRevision(); }

}  // namespace plinth::store
