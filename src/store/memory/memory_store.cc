#include "store/memory/memory_store.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "store/internal/txn_effects.h"

namespace plinth::store::memory {
namespace {

// One incarnation-or-tombstone of a key at a revision.
struct Version {
  Revision mod_revision;
  Revision create_revision;  // 0 for a tombstone
  std::string value;
  bool tombstone() const { return create_revision == 0; }
};

// State shared by every MemoryStore opened on the same name.
// Invariants (under mu):
//   - versions of each key are in ascending mod_revision;
//   - log holds exactly one batch for each revision in (compacted, current], in order,
//     so the batch of revision r is log[r - compacted - 1];
//   - history needed to read at any revision > compacted is present.
struct State {
  Mutex mu;
  CondVar changed{&mu};
  std::map<std::string, std::vector<Version>> keys PLINTH_GUARDED_BY(mu);
  std::deque<WatchBatch> log PLINTH_GUARDED_BY(mu);
  Revision current PLINTH_GUARDED_BY(mu) = 0;
  Revision compacted PLINTH_GUARDED_BY(mu) = 0;
  int64_t retention = kDefaultRetention;
  Limits limits;

  // The version of `versions` visible at `rev`, or nullptr if the key is absent there.
  static const Version* VisibleAt(const std::vector<Version>& versions, Revision rev) {
    auto it = std::upper_bound(versions.begin(), versions.end(), rev,
                               [](Revision r, const Version& v) { return r < v.mod_revision; });
    if (it == versions.begin()) return nullptr;
    --it;
    return it->tombstone() ? nullptr : &*it;
  }

  const Version* Latest(const std::string& key) PLINTH_REQUIRES(mu) {
    auto it = keys.find(key);
    if (it == keys.end() || it->second.empty() || it->second.back().tombstone()) return nullptr;
    return &it->second.back();
  }

  Status CheckReadable(Revision rev) PLINTH_REQUIRES(mu) {
    if (rev < compacted) {
      return OutOfRangeError("revision " + std::to_string(rev) + " has been compacted (compacted " +
                             "through " + std::to_string(compacted) + ")");
    }
    return Status::Ok();
  }

  StatusOr<KeyValue> GetAt(std::string_view key, Revision rev) PLINTH_REQUIRES(mu) {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, limits));
    PLINTH_RETURN_IF_ERROR(CheckReadable(rev));
    auto it = keys.find(std::string(key));
    const Version* v = it == keys.end() ? nullptr : VisibleAt(it->second, rev);
    if (v == nullptr) return NotFoundError("key " + PrintableKey(key) + " not found");
    return KeyValue{it->first, v->value, v->create_revision, v->mod_revision};
  }

  StatusOr<RangeResult> RangeAt(const KeySpan& span, const RangeOptions& options, Revision rev)
      PLINTH_REQUIRES(mu) {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_RETURN_IF_ERROR(CheckReadable(rev));
    RangeResult result;
    result.revision = rev;
    auto it = keys.lower_bound(span.start);
    if (!options.after.empty() && CompareKeys(options.after, span.start) >= 0) {
      it = keys.upper_bound(options.after);
    }
    for (; it != keys.end() && (span.end.empty() || it->first < span.end); ++it) {
      const Version* v = VisibleAt(it->second, rev);
      if (v == nullptr) continue;
      if (options.limit != 0 && result.kvs.size() == options.limit) {
        result.more = true;
        break;
      }
      result.kvs.push_back(KeyValue{it->first, options.keys_only ? std::string() : v->value,
                                    v->create_revision, v->mod_revision});
    }
    return result;
  }

  StatusOr<CountResult> CountAt(const KeySpan& span, Revision rev) PLINTH_REQUIRES(mu) {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_RETURN_IF_ERROR(CheckReadable(rev));
    CountResult result{0, rev};
    for (auto it = keys.lower_bound(span.start);
         it != keys.end() && (span.end.empty() || it->first < span.end); ++it) {
      if (VisibleAt(it->second, rev) != nullptr) ++result.count;
    }
    return result;
  }

  // Checks one condition against the latest state; Aborted with a reason when it fails.
  Status CheckCondition(const Condition& c) PLINTH_REQUIRES(mu) {
    switch (c.kind) {
      case Condition::Kind::kAbsent:
        if (Latest(c.key) != nullptr) {
          return AbortedError("condition failed: key " + PrintableKey(c.key) + " exists");
        }
        return Status::Ok();
      case Condition::Kind::kModRevisionIs: {
        const Version* v = Latest(c.key);
        if (v == nullptr || v->mod_revision != c.revision) {
          return AbortedError("condition failed: key " + PrintableKey(c.key) +
                              " is not at mod_revision " + std::to_string(c.revision));
        }
        return Status::Ok();
      }
      case Condition::Kind::kUnchangedSince: {
        if (c.revision < compacted) {
          return AbortedError("condition failed: history since revision " +
                              std::to_string(c.revision) + " was compacted; re-read");
        }
        for (Revision r = std::max<Revision>(c.revision + 1, compacted + 1); r <= current; ++r) {
          for (const Event& e : log[static_cast<size_t>(r - compacted - 1)].events) {
            if (c.span.Contains(e.kv.key)) {
              return AbortedError("condition failed: key " + PrintableKey(e.kv.key) +
                                  " changed at revision " + std::to_string(r) + " after " +
                                  std::to_string(c.revision));
            }
          }
        }
        return Status::Ok();
      }
    }
    return InternalError("unknown condition kind");
  }

  // Discards history through `rev`. Only keys touched by discarded batches can hold
  // superseded versions, so the work is proportional to the discarded history.
  void CompactTo(Revision rev) PLINTH_REQUIRES(mu) {
    while (compacted < rev && !log.empty()) {
      for (const Event& e : log.front().events) {
        auto it = keys.find(e.kv.key);
        if (it == keys.end()) continue;
        std::vector<Version>& versions = it->second;
        // Keep the newest version at or below `rev` (reads above `rev` need it) unless it is
        // a tombstone; drop everything older.
        auto keep =
            std::upper_bound(versions.begin(), versions.end(), rev,
                             [](Revision r, const Version& v) { return r < v.mod_revision; });
        if (keep != versions.begin()) {
          --keep;
          if (keep->tombstone()) ++keep;
          versions.erase(versions.begin(), keep);
        }
        if (versions.empty()) keys.erase(it);
      }
      log.pop_front();
      ++compacted;
    }
  }
};

Mutex g_named_mu;
std::map<std::string, std::weak_ptr<State>>& NamedStores() {
  static auto* stores = new std::map<std::string, std::weak_ptr<State>>();
  return *stores;
}

class MemorySnapshot final : public Snapshot {
 public:
  MemorySnapshot(std::shared_ptr<State> state, Revision rev)
      : state_(std::move(state)), rev_(rev) {}
  Revision revision() const override { return rev_; }
  StatusOr<KeyValue> Get(std::string_view key) override {
    MutexLock lock(&state_->mu);
    return state_->GetAt(key, rev_);
  }
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    MutexLock lock(&state_->mu);
    return state_->RangeAt(span, options, rev_);
  }
  StatusOr<CountResult> Count(const KeySpan& span) override {
    MutexLock lock(&state_->mu);
    return state_->CountAt(span, rev_);
  }

 private:
  std::shared_ptr<State> state_;
  const Revision rev_;
};

class MemoryWatch final : public WatchStream {
 public:
  MemoryWatch(std::shared_ptr<State> state, KeySpan span, Revision next, WatchOptions options)
      : state_(std::move(state)), span_(std::move(span)), next_(next), options_(options) {}

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&state_->mu);
    while (true) {
      if (cancelled_) return CancelledError("watch cancelled");
      if (next_ <= state_->compacted) {
        return OutOfRangeError("watch needs revision " + std::to_string(next_) +
                               ", but history through " + std::to_string(state_->compacted) +
                               " was compacted");
      }
      const Revision first_unseen = next_;
      while (next_ <= state_->current) {
        const WatchBatch& batch = state_->log[static_cast<size_t>(next_ - state_->compacted - 1)];
        ++next_;
        WatchBatch out;
        out.revision = batch.revision;
        for (const Event& e : batch.events) {
          if (span_.Contains(e.kv.key)) out.events.push_back(e);
        }
        if (!out.events.empty()) return out;
      }
      if (options_.progress_notify && next_ > first_unseen) {
        return WatchBatch{next_ - 1, {}};
      }
      if (!state_->changed.WaitUntil(deadline) && next_ > state_->current) {
        if (cancelled_) return CancelledError("watch cancelled");
        return DeadlineExceededError("no change within the timeout");
      }
    }
  }

  void Cancel() override {
    MutexLock lock(&state_->mu);
    cancelled_ = true;
    state_->changed.SignalAll();
  }

 private:
  std::shared_ptr<State> state_;
  const KeySpan span_;
  Revision next_;  // guarded by state_->mu
  const WatchOptions options_;
  bool cancelled_ = false;  // guarded by state_->mu
};

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::string_view backend() const override { return "memory"; }
  Limits limits() const override { return state_->limits; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    MutexLock lock(&state_->mu);
    return state_->GetAt(key, state_->current);
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    MutexLock lock(&state_->mu);
    return state_->RangeAt(span, options, state_->current);
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    MutexLock lock(&state_->mu);
    return state_->CountAt(span, state_->current);
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    MutexLock lock(&state_->mu);
    return std::unique_ptr<Snapshot>(new MemorySnapshot(state_, state_->current));
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    PLINTH_RETURN_IF_ERROR(ValidateTxn(txn, state_->limits));
    State& s = *state_;
    MutexLock lock(&s.mu);
    for (const Condition& c : txn.conditions) PLINTH_RETURN_IF_ERROR(s.CheckCondition(c));
    PLINTH_ASSIGN_OR_RETURN(
        internal::Overlay overlay,
        internal::ResolveOps(txn.ops, [&](const KeySpan& span, std::vector<std::string>* out)
                                          PLINTH_NO_THREAD_SAFETY_ANALYSIS {
                                            for (auto it = s.keys.lower_bound(span.start);
                                                 it != s.keys.end() && span.Contains(it->first);
                                                 ++it) {
                                              if (!it->second.back().tombstone())
                                                out->push_back(it->first);
                                            }
                                            return Status::Ok();
                                          }));
    const Revision rev = s.current + 1;
    WatchBatch batch{rev, {}};
    for (auto& [key, value] : overlay) {
      const Version* before = s.Latest(key);
      if (value) {
        Revision create = before ? before->create_revision : rev;
        s.keys[key].push_back(Version{rev, create, *value});
        batch.events.push_back(Event{Event::Type::kPut, KeyValue{key, *value, create, rev}});
      } else if (before != nullptr) {
        s.keys[key].push_back(Version{rev, 0, {}});
        batch.events.push_back(Event{Event::Type::kDelete, KeyValue{key, {}, 0, rev}});
      }
    }
    if (batch.events.empty()) return s.current;
    s.current = rev;
    s.log.push_back(std::move(batch));
    if (s.retention > 0 && s.current - s.compacted > 2 * s.retention) {
      s.CompactTo(s.current - s.retention);
    }
    s.changed.SignalAll();
    return rev;
  }

  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    MutexLock lock(&state_->mu);
    if (from_revision < 0) return InvalidArgumentError("from_revision is negative");
    if (from_revision == 0) from_revision = state_->current + 1;
    if (from_revision <= state_->compacted) {
      return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                             ": history through " + std::to_string(state_->compacted) +
                             " was compacted");
    }
    return std::unique_ptr<WatchStream>(new MemoryWatch(state_, span, from_revision, options));
  }

  StatusOr<Revision> CurrentRevision() override {
    MutexLock lock(&state_->mu);
    return state_->current;
  }

  Status Compact(Revision revision) override {
    MutexLock lock(&state_->mu);
    if (revision > state_->current) {
      return OutOfRangeError("cannot compact to revision " + std::to_string(revision) +
                             " beyond the current revision " + std::to_string(state_->current));
    }
    state_->CompactTo(revision);
    state_->changed.SignalAll();  // watchers behind the new compaction point must fail now
    return Status::Ok();
  }

  StatusOr<Revision> CompactedRevision() override {
    MutexLock lock(&state_->mu);
    return state_->compacted;
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

Limits DefaultLimits() {
  Limits l;
  l.max_key_bytes = 4096;
  l.max_value_bytes = 4 << 20;
  l.max_ops_per_txn = 100'000;
  l.max_txn_bytes = 256 << 20;
  return l;
}

StatusOr<std::unique_ptr<Store>> OpenMemoryStore(const StoreUrl& url, const OpenOptions&) {
  UrlOptions options(url);
  PLINTH_ASSIGN_OR_RETURN(auto retention,
                          options.TakeInt("retention", 0, std::numeric_limits<int64_t>::max() / 4));
  PLINTH_ASSIGN_OR_RETURN(Limits limits,
                          TakeLimitOptions(options, DefaultLimits(), DefaultLimits()));
  PLINTH_RETURN_IF_ERROR(options.CheckAllTaken());
  auto fresh = [&] {
    auto state = std::make_shared<State>();
    state->retention = retention.value_or(kDefaultRetention);
    state->limits = limits;
    return state;
  };
  if (url.location.empty()) return std::unique_ptr<Store>(new MemoryStore(fresh()));
  MutexLock lock(&g_named_mu);
  std::shared_ptr<State> state = NamedStores()[url.location].lock();
  if (!state) {
    state = fresh();
    NamedStores()[url.location] = state;
  }
  return std::unique_ptr<Store>(new MemoryStore(std::move(state)));
}

}  // namespace plinth::store::memory
