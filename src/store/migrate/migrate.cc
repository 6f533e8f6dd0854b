#include "store/migrate/migrate.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/check.h"

namespace plinth::store {

// ---- ContentHasher ----------------------------------------------------------------------------

struct ContentHasher::State {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
};

ContentHasher::ContentHasher() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  PLINTH_CHECK(state_->ctx != nullptr) << "EVP_MD_CTX_new failed";
  PLINTH_CHECK(EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) == 1)
      << "SHA-256 initialisation failed";
}

ContentHasher::~ContentHasher() { EVP_MD_CTX_free(state_->ctx); }

namespace {

void FeedLengthPrefixed(EVP_MD_CTX* ctx, std::string_view bytes) {
  unsigned char length[8];
  uint64_t n = bytes.size();
  for (int i = 7; i >= 0; --i) {
    length[i] = static_cast<unsigned char>(n & 0xFF);
    n >>= 8;
  }
  PLINTH_CHECK(EVP_DigestUpdate(ctx, length, sizeof(length)) == 1) << "SHA-256 update failed";
  PLINTH_CHECK(EVP_DigestUpdate(ctx, bytes.data(), bytes.size()) == 1) << "SHA-256 update failed";
}

}  // namespace

void ContentHasher::Add(std::string_view key, std::string_view value) {
  PLINTH_CHECK(!state_->finished) << "ContentHasher::Add after HexDigest";
  FeedLengthPrefixed(state_->ctx, key);
  FeedLengthPrefixed(state_->ctx, value);
}

std::string ContentHasher::HexDigest() {
  PLINTH_CHECK(!state_->finished) << "ContentHasher::HexDigest called twice";
  state_->finished = true;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  PLINTH_CHECK(EVP_DigestFinal_ex(state_->ctx, digest, &size) == 1) << "SHA-256 final failed";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

// ---- Migrate ----------------------------------------------------------------------------------

namespace {

// A page holding more value bytes than this makes the following pages smaller.
constexpr size_t kPageBytesBudget = size_t{32} << 20;
// How often a destination transaction is retried when it aborts although none of its keys
// exists (it lost to concurrent writers of other keys, which Aborted asks us to retry).
constexpr int kCommitAttempts = 5;

using Phase = MigrateProgress::Phase;

std::string Plural(int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// The smaller of two limits where 0 means "none".
size_t MinLimit(size_t a, size_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

size_t EntryBytes(const KeyValue& kv) { return kv.key.size() + kv.value.size(); }

// Reads every key of a snapshot in ascending order, one Range page at a time, continuing
// after the last key of the previous page. Pages shrink when their values are large (see
// kPageBytesBudget) and grow back up to `page_size`.
class SnapshotCursor {
 public:
  SnapshotCursor(Snapshot* snapshot, size_t page_size, bool keys_only)
      : snapshot_(snapshot), page_size_(page_size), limit_(page_size), keys_only_(keys_only) {}

  // The next pair, or nullptr after the last one. The pointer stays valid until the next call.
  StatusOr<const KeyValue*> Next() {
    if (pos_ < page_.size()) return &page_[pos_++];
    if (!more_) return static_cast<const KeyValue*>(nullptr);
    PLINTH_RETURN_IF_ERROR(Fetch());
    if (page_.empty()) return static_cast<const KeyValue*>(nullptr);
    return &page_[pos_++];
  }

  // True right after Next() handed out the last pair of a page.
  bool at_page_end() const { return pos_ == page_.size(); }

 private:
  Status Fetch() {
    RangeOptions options;
    options.limit = limit_;
    options.after = after_;
    options.keys_only = keys_only_;
    PLINTH_ASSIGN_OR_RETURN(RangeResult result, snapshot_->Range(KeySpan::All(), options));
    page_ = std::move(result.kvs);
    pos_ = 0;
    more_ = result.more && !page_.empty();
    size_t bytes = 0;
    // The hash and the collision check rely on strictly ascending keys; a backend that broke
    // that would otherwise pass verification against itself.
    for (const KeyValue& kv : page_) {
      if (!after_.empty() && CompareKeys(after_, kv.key) >= 0) {
        return InternalError("snapshot at revision " + std::to_string(snapshot_->revision()) +
                             " returned key " + PrintableKey(kv.key) + " after " +
                             PrintableKey(after_) + ": keys out of order");
      }
      after_ = kv.key;
      bytes += EntryBytes(kv);
    }
    if (bytes > kPageBytesBudget) {
      limit_ = std::max<size_t>(
          1, static_cast<size_t>(static_cast<double>(page_.size()) * kPageBytesBudget / bytes));
    } else if (bytes < kPageBytesBudget / 4 && limit_ < page_size_) {
      limit_ = std::min(page_size_, limit_ * 2);
    }
    return Status::Ok();
  }

  Snapshot* const snapshot_;
  const size_t page_size_;
  size_t limit_;
  const bool keys_only_;
  std::vector<KeyValue> page_;
  size_t pos_ = 0;
  bool more_ = true;
  std::string after_;
};

// Why `kv` cannot be written to a store with `limits`, or nullopt if it can.
std::optional<std::string> LimitProblem(const KeyValue& kv, const Limits& limits) {
  if (limits.max_key_bytes != 0 && kv.key.size() > limits.max_key_bytes) {
    return "key " + PrintableKey(kv.key) + " is " + std::to_string(kv.key.size()) +
           " bytes; the destination's max_key_bytes is " + std::to_string(limits.max_key_bytes);
  }
  if (limits.max_value_bytes != 0 && kv.value.size() > limits.max_value_bytes) {
    return "key " + PrintableKey(kv.key) + " has a " + std::to_string(kv.value.size()) +
           "-byte value; the destination's max_value_bytes is " +
           std::to_string(limits.max_value_bytes);
  }
  if (limits.max_txn_bytes != 0 && EntryBytes(kv) > limits.max_txn_bytes) {
    return "key " + PrintableKey(kv.key) + " with its value is " + std::to_string(EntryBytes(kv)) +
           " bytes; the destination's max_txn_bytes is " + std::to_string(limits.max_txn_bytes);
  }
  return std::nullopt;
}

// `status` with `context`; a snapshot compacted away gets advice on what to do about it.
Status InContext(const Status& status, std::string_view context) {
  Status out = status.WithContext(context);
  if (status.code() == StatusCode::kOutOfRange) {
    out = Status(out.code(), std::string(out.message()) +
                                 " (the snapshot was compacted while it was read: stop writers or "
                                 "raise the store's history retention, then run again)");
  }
  return out;
}

template <typename T>
StatusOr<T> InContext(StatusOr<T> result, std::string_view context) {
  if (!result.ok()) return InContext(result.status(), context);
  return result;
}

// One run of Migrate: the stores, the options, the source snapshot, and the tally.
class Migration {
 public:
  Migration(Store& from, Store& to, const MigrateOptions& options)
      : from_(from), to_(to), options_(options) {}

  StatusOr<MigrateReport> Run() {
    if (options_.page_size == 0)
      return InvalidArgumentError("migrate: page_size must be at least 1");
    if (options_.clock == nullptr) return InvalidArgumentError("migrate: clock must be set");
    if (&from_ == &to_) {
      return InvalidArgumentError("migrate: the source and the destination are the same store");
    }
    const auto start = options_.clock->Now();
    PLINTH_ASSIGN_OR_RETURN(source_,
                            InContext(from_.OpenSnapshot(), "opening a snapshot of the source"));
    report_.source_revision = source_->revision();
    source_context_ =
        "reading the source snapshot at revision " + std::to_string(report_.source_revision);
    PLINTH_ASSIGN_OR_RETURN(CountResult count,
                            InContext(source_->Count(KeySpan::All()), source_context_));
    total_keys_ = count.count;

    PLINTH_ASSIGN_OR_RETURN(CountResult existing, InContext(to_.Count(KeySpan::All()),
                                                            "counting the destination's keys"));
    destination_initial_keys_ = existing.count;
    if (existing.count > 0 && !options_.allow_non_empty_destination) {
      return FailedPreconditionError(
          "the destination already holds " + Plural(existing.count, "key", "keys") +
          " (at its revision " + std::to_string(existing.revision) +
          "); migrate copies only into an empty store so that nothing is overwritten. Empty "
          "it, or allow a non-empty destination (plinth migrate --allow-non-empty) if its keys "
          "do not overlap the source's");
    }

    PLINTH_RETURN_IF_ERROR(Validate());
    PLINTH_RETURN_IF_ERROR(Copy());
    PLINTH_RETURN_IF_ERROR(Verify());
    report_.content_sha256 = source_sha256_;
    report_.elapsed = options_.clock->Now() - start;
    return report_;
  }

 private:
  void Notify(Phase phase, int64_t keys, int64_t bytes) const {
    if (!options_.progress) return;
    MigrateProgress p;
    p.phase = phase;
    p.keys = keys;
    p.bytes = bytes;
    p.total_keys = total_keys_;
    p.total_bytes = total_bytes_;
    p.transactions = report_.transactions;
    options_.progress(p);
  }

  // Step 3: one pass over the source snapshot that finds everything that would stop the copy
  // halfway (a pair the destination cannot hold, a key it already has), so that such a
  // migration fails before it writes anything. Also computes the content hash.
  Status Validate() {
    Notify(Phase::kValidating, 0, 0);
    const Limits limits = to_.limits();
    // Keys already in the destination, walked in step with the source's.
    std::unique_ptr<Snapshot> destination;
    std::optional<SnapshotCursor> existing;
    const KeyValue* next_existing = nullptr;
    const std::string destination_context = "reading the destination's existing keys";
    if (destination_initial_keys_ > 0) {
      PLINTH_ASSIGN_OR_RETURN(destination, InContext(to_.OpenSnapshot(), destination_context));
      existing.emplace(destination.get(), options_.page_size, /*keys_only=*/true);
      PLINTH_ASSIGN_OR_RETURN(next_existing, InContext(existing->Next(), destination_context));
    }

    SnapshotCursor source(source_.get(), options_.page_size, /*keys_only=*/false);
    ContentHasher hasher;
    int64_t keys = 0, bytes = 0, unfit = 0, collisions = 0;
    std::string first_unfit, first_collision;
    while (true) {
      PLINTH_ASSIGN_OR_RETURN(const KeyValue* kv, InContext(source.Next(), source_context_));
      if (kv == nullptr) break;
      hasher.Add(kv->key, kv->value);
      ++keys;
      bytes += static_cast<int64_t>(EntryBytes(*kv));
      if (std::optional<std::string> problem = LimitProblem(*kv, limits)) {
        if (unfit++ == 0) first_unfit = std::move(*problem);
      }
      if (existing) {
        while (next_existing != nullptr && CompareKeys(next_existing->key, kv->key) < 0) {
          PLINTH_ASSIGN_OR_RETURN(next_existing, InContext(existing->Next(), destination_context));
        }
        if (next_existing != nullptr && next_existing->key == kv->key) {
          if (collisions++ == 0) first_collision = kv->key;
        }
      }
      if (source.at_page_end()) Notify(Phase::kValidating, keys, bytes);
    }
    if (keys != total_keys_) {
      return InternalError("the source snapshot at revision " +
                           std::to_string(report_.source_revision) + " counted " +
                           Plural(total_keys_, "key", "keys") + " but a scan of it found " +
                           std::to_string(keys));
    }
    if (unfit > 0) {
      return ResourceExhaustedError(Plural(unfit, "source key does", "source keys do") +
                                    " not fit the destination's limits; nothing was written. " +
                                    (unfit > 1 ? "The first: " : "") + first_unfit);
    }
    if (collisions > 0) {
      return FailedPreconditionError(
          Plural(collisions, "source key exists", "source keys exist") +
          " in the destination already" + (collisions > 1 ? ", the first " : ": ") +
          PrintableKey(first_collision) + "; migrate never overwrites, so nothing was written");
    }
    source_sha256_ = hasher.HexDigest();
    total_bytes_ = bytes;
    return Status::Ok();
  }

  // Step 4: the copy, in destination transactions bounded by the destination's limits and
  // the options.
  Status Copy() {
    Notify(Phase::kCopying, 0, 0);
    const Limits limits = to_.limits();
    const size_t max_ops = MinLimit(limits.max_ops_per_txn, options_.max_keys_per_txn);
    const size_t max_bytes = MinLimit(limits.max_txn_bytes, options_.max_txn_bytes);
    SnapshotCursor source(source_.get(), options_.page_size, /*keys_only=*/false);
    TxnRequest txn;
    size_t txn_bytes = 0;
    while (true) {
      PLINTH_ASSIGN_OR_RETURN(const KeyValue* kv, InContext(source.Next(), source_context_));
      if (kv == nullptr) break;
      const size_t entry = EntryBytes(*kv);
      const bool full = (max_ops != 0 && txn.ops.size() >= max_ops) ||
                        (max_bytes != 0 && txn_bytes + entry > max_bytes);
      if (!txn.ops.empty() && full) {
        PLINTH_RETURN_IF_ERROR(CommitBatch(txn, txn_bytes));
        txn = TxnRequest();
        txn_bytes = 0;
      }
      txn.conditions.push_back(Condition::Absent(kv->key));
      txn.ops.push_back(Op::Put(kv->key, kv->value));
      txn_bytes += entry;
    }
    if (!txn.ops.empty()) PLINTH_RETURN_IF_ERROR(CommitBatch(txn, txn_bytes));
    if (report_.keys != total_keys_) {
      return InternalError("copied " + Plural(report_.keys, "key", "keys") +
                           " but the source snapshot holds " + std::to_string(total_keys_));
    }
    return Status::Ok();
  }

  // What has reached the destination so far, for messages about a failed step.
  std::string Committed() const {
    return Plural(report_.keys, "key", "keys") + " in " +
           Plural(report_.transactions, "transaction", "transactions") +
           " had been committed to the destination before";
  }

  // Commits one destination transaction, all of whose conditions are Absent.
  Status CommitBatch(const TxnRequest& txn, size_t txn_bytes) {
    const std::string what = "writing " +
                             Plural(static_cast<int64_t>(txn.ops.size()), "key", "keys") + " " +
                             PrintableKey(txn.ops.front().key) + " .. " +
                             PrintableKey(txn.ops.back().key) + " to the destination";
    for (int attempt = 1;; ++attempt) {
      StatusOr<Revision> committed = to_.Commit(txn);
      if (committed.ok()) {
        ++report_.transactions;
        report_.keys += static_cast<int64_t>(txn.ops.size());
        report_.bytes += static_cast<int64_t>(txn_bytes);
        Notify(Phase::kCopying, report_.keys, report_.bytes);
        return Status::Ok();
      }
      if (committed.status().code() != StatusCode::kAborted || attempt == kCommitAttempts) {
        return committed.status().WithContext(what + " (" + Committed() + ")");
      }
      // Aborted: either a key now exists (someone wrote it after validation) or the
      // transaction lost to writers of other keys and may be retried.
      for (const Op& op : txn.ops) {
        StatusOr<KeyValue> got = to_.Get(op.key);
        if (got.ok()) {
          return FailedPreconditionError(
              "key " + PrintableKey(op.key) +
              " appeared in the destination after validation (another writer?); migrate never "
              "overwrites, so it stopped. " +
              Committed());
        }
        if (got.status().code() != StatusCode::kNotFound) {
          return got.status().WithContext(what + ": checking why it aborted (" + Committed() + ")");
        }
      }
    }
  }

  // Step 5: reads the destination back at one revision and compares it with the source
  // snapshot. For a destination that held keys before, only the source's keys take part.
  Status Verify() {
    Notify(Phase::kVerifying, 0, 0);
    const std::string context = "reading the destination back";
    PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Snapshot> destination,
                            InContext(to_.OpenSnapshot(), context));
    report_.destination_revision = destination->revision();
    const bool only_source_keys = destination_initial_keys_ > 0;
    std::optional<SnapshotCursor> source;
    const KeyValue* next_source = nullptr;
    if (only_source_keys) {
      source.emplace(source_.get(), options_.page_size, /*keys_only=*/true);
      PLINTH_ASSIGN_OR_RETURN(next_source, InContext(source->Next(), source_context_));
    }

    SnapshotCursor copy(destination.get(), options_.page_size, /*keys_only=*/false);
    ContentHasher hasher;
    int64_t keys = 0, bytes = 0;
    while (true) {
      PLINTH_ASSIGN_OR_RETURN(const KeyValue* kv, InContext(copy.Next(), context));
      if (kv == nullptr) break;
      bool counts = true;
      if (only_source_keys) {
        while (next_source != nullptr && CompareKeys(next_source->key, kv->key) < 0) {
          PLINTH_ASSIGN_OR_RETURN(next_source, InContext(source->Next(), source_context_));
        }
        counts = next_source != nullptr && next_source->key == kv->key;
      }
      if (counts) {
        hasher.Add(kv->key, kv->value);
        ++keys;
        bytes += static_cast<int64_t>(EntryBytes(*kv));
      }
      if (copy.at_page_end()) Notify(Phase::kVerifying, keys, bytes);
    }
    int64_t counted = keys;
    if (!only_source_keys) {
      PLINTH_ASSIGN_OR_RETURN(CountResult count,
                              InContext(destination->Count(KeySpan::All()), context));
      counted = count.count;
    }
    const std::string sha256 = hasher.HexDigest();
    if (counted != total_keys_ || keys != total_keys_ || sha256 != source_sha256_) {
      return DataLossError(
          "verification failed: the source snapshot (revision " +
          std::to_string(report_.source_revision) + ") holds " +
          Plural(total_keys_, "key", "keys") + " with content SHA-256 " + source_sha256_ +
          "; the destination (revision " + std::to_string(report_.destination_revision) +
          ") holds " + Plural(counted, "key", "keys") +
          (only_source_keys ? " of the source's" : "") + " with content SHA-256 " + sha256 +
          ". The " + Plural(report_.keys, "key", "keys") + " written remain in the destination");
    }
    return Status::Ok();
  }

  Store& from_;
  Store& to_;
  const MigrateOptions& options_;
  std::unique_ptr<Snapshot> source_;
  std::string source_context_;
  int64_t total_keys_ = 0;
  int64_t total_bytes_ = 0;
  int64_t destination_initial_keys_ = 0;
  std::string source_sha256_;
  MigrateReport report_;
};

}  // namespace

StatusOr<MigrateReport> Migrate(Store& from, Store& to, const MigrateOptions& options) {
  return Migration(from, to, options).Run();
}

}  // namespace plinth::store
