// The store contract: the one small interface every plinth backend implements (memory,
// sqlite, and later postgres, mysql, etcd and plugins). Keys and values are byte strings;
// every committed write gets the next revision of a single gap-free, commit-ordered counter,
// and Watch replays those revisions in order. Everything above this layer (the mirror, the
// datastore, secrets) is written against this header only.
//
// Modelled on etcd v3's KV/Txn/Watch API and leveldb's include/leveldb/db.h.
#ifndef PLINTH_STORE_STORE_H_
#define PLINTH_STORE_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/key_span.h"

namespace plinth::store {

// A store's revision counter. An empty store is at revision 0; the first committed write
// transaction makes it 1. Every committed transaction that changes at least one key takes
// exactly previous+1, in commit order: there are no gaps and no reordering, ever.
using Revision = int64_t;

// One live key with its value and revisions.
struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // revision of the transaction that created this incarnation
  Revision mod_revision = 0;     // revision of the transaction that last wrote it

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// What a backend accepts. Exceeding a limit fails with ResourceExhausted, naming the limit's
// value; nothing is written. Every backend declares all four (0 would mean "unlimited" to
// ValidateTxn, but no backend is unlimited). A Get of an oversized key is ResourceExhausted.
struct Limits {
  size_t max_key_bytes = 0;  // keys must also be non-empty
  size_t max_value_bytes = 0;
  size_t max_ops_per_txn = 0;  // Put/Delete/DeleteRange operations in one transaction
  size_t max_txn_bytes = 0;    // sum of key and value sizes in one transaction
};

// Options for Range. Results are in ascending byte order of key.
struct RangeOptions {
  size_t limit = 0;  // at most this many results; 0 = no limit
  // Continuation: return only keys strictly greater than this one (pass the last key of the
  // previous page). Empty = start at the span's beginning.
  std::string after;
  bool keys_only = false;  // leave KeyValue::value empty
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;      // true if the span holds further keys beyond `kvs`
  Revision revision = 0;  // the snapshot the result was read at
};

struct CountResult {
  int64_t count = 0;
  Revision revision = 0;
};

// A condition a transaction asserts; Commit applies the transaction only if every condition
// holds at commit time, otherwise it fails with Aborted.
struct Condition {
  enum class Kind {
    kAbsent,          // `key` does not exist
    kModRevisionIs,   // `key` exists and its mod_revision == `revision`
    kUnchangedSince,  // no key in `span` was created, modified or deleted after `revision`
  };
  Kind kind = Kind::kAbsent;
  std::string key;
  KeySpan span;
  Revision revision = 0;

  static Condition Absent(std::string key);
  static Condition ModRevisionIs(std::string key, Revision revision);
  static Condition UnchangedSince(KeySpan span, Revision revision);
};

// A buffered write. Operations of one transaction apply in order: a later Put of a key
// overrides an earlier one, a Delete after a Put removes it. Only each key's final state
// counts: a key that existed and ends as a Put is an overwrite (its create_revision is kept,
// even if the transaction deleted it in between); a key that did not exist and ends deleted
// is untouched.
struct Op {
  enum class Kind { kPut, kDelete, kDeleteRange };
  Kind kind = Kind::kPut;
  std::string key;    // kPut, kDelete
  std::string value;  // kPut
  KeySpan span;       // kDeleteRange

  static Op Put(std::string key, std::string value);
  static Op Delete(std::string key);
  static Op DeleteRange(KeySpan span);
};

// A whole transaction as the backend receives it: conditions, then operations.
struct TxnRequest {
  std::vector<Condition> conditions;
  std::vector<Op> ops;
};

// One key's change, as Watch delivers it.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // For kPut: the key's new state. For kDelete: key, empty value, create_revision 0 and
  // mod_revision = the revision of the deleting transaction.
  KeyValue kv;

  friend bool operator==(const Event&, const Event&) = default;
};

// The changes one committed transaction made under a watched span. Events are in ascending
// key order with at most one event per key (its final state in that transaction). A batch
// with no events is a progress notice (WatchOptions::progress_notify): every change under the
// span with revision <= `revision` has been delivered.
struct WatchBatch {
  Revision revision = 0;
  std::vector<Event> events;
};

struct WatchOptions {
  // Also deliver progress notices when the store's revision moves past changes that did not
  // touch the span, so a follower can tell "caught up to R" without writing.
  bool progress_notify = false;
};

// A stream of committed changes under one span, from a starting revision onwards.
// Next() is called by one thread at a time; Cancel() may be called from any thread.
class WatchStream {
 public:
  virtual ~WatchStream() = default;

  // Blocks until the next batch is available, `timeout` passes, or Cancel() is called.
  // Batches come in strictly increasing revision order; every committed transaction that
  // changed a key in the span is delivered exactly once, whole, never skipped.
  // How soon a commit made elsewhere becomes available is backend-defined (e.g. sqlite polls
  // for other processes' commits every poll_interval), so a short timeout can expire while
  // such a commit already exists; the next call delivers it.
  // Errors:
  //   DeadlineExceeded - nothing arrived within `timeout`; calling Next again is fine.
  //   Cancelled        - Cancel() was called; every later call returns Cancelled.
  //   OutOfRange       - the history needed to continue was compacted away; the caller must
  //                      re-read a snapshot and watch again from snapshot revision + 1. A
  //                      watch may first hand out batches it had already received, in order;
  //                      it never skips one to get past the compaction.
  //   Unavailable      - the backend cannot be reached; the watch is dead, and the caller may
  //                      open a new one from (last delivered revision + 1).
  virtual StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) = 0;

  // Makes a blocked or later Next() return Cancelled. Idempotent.
  virtual void Cancel() = 0;
};

// A consistent, read-only view of the store at one revision. Holds backend resources (e.g. a
// read transaction or a pooled connection) until destroyed: keep it short-lived.
// Reads may fail with OutOfRange once a Compact passes revision() (memory, etcd); backends
// whose snapshots pin their view (sqlite, SQL servers) keep serving them.
// Not thread-safe; use from one thread.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
  virtual Revision revision() const = 0;
  // NotFound if the key does not exist at this revision.
  virtual StatusOr<KeyValue> Get(std::string_view key) = 0;
  virtual StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) = 0;
  virtual StatusOr<CountResult> Count(const KeySpan& span) = 0;
};

class Tx;

// A backend. All methods are thread-safe. A Store must outlive its WatchStreams, Snapshots and Txs.
// Common errors for every method:
//   Unavailable       - the backend cannot be reached right now; retry the call.
//   InvalidArgument   - an empty key or an inverted span; the message names it.
//   ResourceExhausted - a declared limit was exceeded; the message names the limit.
class Store {
 public:
  virtual ~Store() = default;

  // The backend's name ("memory", "sqlite", ...) as used in store URLs.
  virtual std::string_view backend() const = 0;
  virtual Limits limits() const = 0;

  // Reads one key at the latest committed revision. NotFound if it does not exist.
  virtual StatusOr<KeyValue> Get(std::string_view key) = 0;

  // Reads keys in `span` at one consistent revision, returned in RangeResult::revision.
  // Successive pages of one logical scan may come from different revisions; use OpenSnapshot
  // when a multi-page scan must be consistent.
  virtual StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) = 0;

  // Counts live keys in `span` at one consistent revision.
  virtual StatusOr<CountResult> Count(const KeySpan& span) = 0;

  // Pins the latest committed revision for a series of consistent reads.
  virtual StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() = 0;

  // Applies `txn` atomically: if every condition holds, all operations are applied and the
  // transaction gets revision CurrentRevision()+1, which is returned; otherwise nothing is
  // applied. A transaction whose operations change nothing (no operations, deletes of absent
  // keys, or puts of new keys that it deletes again) creates no revision and returns the
  // revision at which its conditions were checked. A kUnchangedSince condition at exactly the
  // compaction point can still be checked; below it, it is Aborted. When this returns OK the change
  // is durable to the backend's stated guarantee and visible to every later read and Watch, in this
  // process and in any other. Errors:
  //   Aborted     - a condition did not hold (also when history needed to check a
  //                 kUnchangedSince condition was compacted); nothing was applied. Re-read and
  //                 retry the whole transaction.
  //   Unavailable - the outcome is unknown only if the message says so; otherwise nothing was
  //                 applied.
  virtual StatusOr<Revision> Commit(const TxnRequest& txn) = 0;

  // Opens a stream of changes under `span` starting at `from_revision` (inclusive).
  // from_revision 0 means "changes after the current revision"; a negative one is
  // InvalidArgument. Fails with OutOfRange if from_revision <= CompactedRevision().
  virtual StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                                       const WatchOptions& options = {}) = 0;

  // The latest committed revision, as cheaply as the backend allows.
  virtual StatusOr<Revision> CurrentRevision() = 0;

  // Discards change history up to and including `revision`: afterwards Watch from any
  // revision <= `revision` fails with OutOfRange. Live keys are never affected. Compacting to
  // a revision at or below the current compaction point is a no-op; beyond the current
  // revision is OutOfRange. Safe to call concurrently from several processes or replicas.
  virtual Status Compact(Revision revision) = 0;

  // The highest revision whose history has been discarded (0 if none).
  virtual StatusOr<Revision> CompactedRevision() = 0;

  // Convenience single-operation transactions. They return the new revision.
  StatusOr<Revision> Put(std::string_view key, std::string_view value);
  StatusOr<Revision> Delete(std::string_view key);

  // Starts an optimistic transaction (see Tx). Cheap: no backend call is made until the Tx
  // reads or commits.
  std::unique_ptr<Tx> Begin();
};

// An optimistic transaction over a Store: reads go to the store and record what they saw as
// conditions; writes are buffered; Commit sends conditions and writes in one TxnRequest, so
// it succeeds only if nothing it read has changed since (serializable). Reads see committed
// state, not this transaction's own buffered writes.
// Not thread-safe: use from one thread. Destroying an uncommitted Tx aborts it.
class Tx {
 public:
  explicit Tx(Store* store);
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  // Reads a key and records Condition::ModRevisionIs (or Absent on NotFound).
  StatusOr<KeyValue> Get(std::string_view key);
  // Reads a span and records Condition::UnchangedSince over the part of the span covered by
  // the result (up to the last returned key when the result is limited).
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options = {});

  // Buffer a write. Fail at once (and buffer nothing) when the key is empty or a limit of
  // the store would be exceeded; the transaction stays usable.
  Status Put(std::string_view key, std::string_view value);
  Status Delete(std::string_view key);
  Status DeleteRange(const KeySpan& span);

  // Adds an explicit condition.
  void Require(Condition condition);

  // Commits as Store::Commit does. FailedPrecondition if already committed or aborted.
  StatusOr<Revision> Commit();
  // Discards everything buffered. Idempotent.
  void Abort();

  const TxnRequest& request() const { return request_; }

 private:
  Status CheckOpen() const;
  Status AddOp(Op op, size_t bytes);

  Store* const store_;
  TxnRequest request_;
  size_t bytes_ = 0;
  bool done_ = false;
};

// Checks `txn` against `limits`: non-empty keys, key/value sizes, op count, total bytes,
// well-formed spans. Backends call it at the top of Commit.
Status ValidateTxn(const TxnRequest& txn, const Limits& limits);
// InvalidArgument for an empty key or one over the limit (ResourceExhausted).
Status ValidateKey(std::string_view key, const Limits& limits);
// InvalidArgument for a span whose end sorts before its start.
Status ValidateSpan(const KeySpan& span);

}  // namespace plinth::store

#endif  // PLINTH_STORE_STORE_H_
