// The sqlite backend. How it meets the store contract (store.h):
//
//   Revisions   meta.revision is incremented as the first write of every transaction that
//               changes something, under BEGIN IMMEDIATE, so the counter is gap-free and in
//               commit order across every connection and process using the file.
//   Writes      one writer connection per Store, guarded by writer_mu; conditions are checked
//               and operations resolved (internal::ResolveOps, as every backend does) inside
//               the write transaction; any error rolls it back, so nothing is half-written.
//   Reads       a pool of query_only connections; Range and Count read meta and the data in one
//               read transaction, so the revision they return matches the data. A Snapshot
//               keeps its connection and read transaction (WAL snapshot isolation).
//   Watch       watchers tail the `changes` table by revision. They are woken by the Store's
//               own commits directly and by a notifier thread that polls PRAGMA data_version
//               (which changes when any other connection commits) every poll_interval, while
//               at least one watcher exists.
//   Compaction  deletes `changes` rows up to a revision and records it in meta.compacted.
//   Checkpoints run on a background thread with its own connection (internal/checkpointer.h),
//               woken by the writer's WAL hook, instead of inside the commit that fills the WAL.
#include "store/sqlite/sqlite_store.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "store/internal/polling_notifier.h"
#include "store/internal/txn_effects.h"
#include "store/sqlite/internal/checkpointer.h"
#include "store/sqlite/internal/schema.h"
#include "store/sqlite/internal/sqlite_db.h"
#include "store/sqlite/internal/testing.h"

namespace plinth::store::sqlite {
namespace {

using internal::Connection;
using internal::QuotePath;
using internal::ScopedStatement;
using internal::Statement;

// ---- SQL ------------------------------------------------------------------------------------
// Statements are prepared once per connection and cached (Connection::Prepared). Spans with an
// upper bound and without one use separate statements, so that SQLite can use both bounds of
// the primary key; an "(?2 IS NULL OR key < ?2)" term would be evaluated as a filter only.

constexpr char kBegin[] = "BEGIN";
constexpr char kBeginImmediate[] = "BEGIN IMMEDIATE";
constexpr char kCommit[] = "COMMIT";

constexpr char kReadMeta[] = "SELECT revision, compacted FROM meta WHERE id = 0";
constexpr char kBumpRevision[] =
    "UPDATE meta SET revision = revision + 1 WHERE id = 0 RETURNING revision";
constexpr char kSetCompacted[] = "UPDATE meta SET compacted = ?1 WHERE id = 0";

constexpr char kGetKey[] = "SELECT value, create_rev, mod_rev FROM kv WHERE key = ?1";
constexpr char kGetRevisions[] = "SELECT create_rev, mod_rev FROM kv WHERE key = ?1";
constexpr char kRangeBounded[] =
    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 AND key < ?2 "
    "ORDER BY key LIMIT ?3";
constexpr char kRangeUnbounded[] =
    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?3";
constexpr char kRangeKeysBounded[] =
    "SELECT key, NULL, create_rev, mod_rev FROM kv WHERE key >= ?1 AND key < ?2 "
    "ORDER BY key LIMIT ?3";
constexpr char kRangeKeysUnbounded[] =
    "SELECT key, NULL, create_rev, mod_rev FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?3";
constexpr char kCountBounded[] = "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2";
constexpr char kCountUnbounded[] = "SELECT count(*) FROM kv WHERE key >= ?1";
constexpr char kListKeysBounded[] = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
constexpr char kListKeysUnbounded[] = "SELECT key FROM kv WHERE key >= ?1 ORDER BY key";
// Keeps an existing key's create_rev; ?3 is the new revision.
constexpr char kUpsertKey[] =
    "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev";
constexpr char kDeleteKey[] = "DELETE FROM kv WHERE key = ?1";

// The changes table is keyed (rev, key): revision ranges are index seeks and the key span is a
// filter, which is what both users want (few revisions, any number of keys).
constexpr char kFirstChangeSince[] =
    "SELECT rev, key FROM changes WHERE rev > ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) "
    "ORDER BY rev, key LIMIT 1";
constexpr char kReadChanges[] =
    "SELECT rev, key, op, value, create_rev FROM changes "
    "WHERE rev >= ?1 AND rev <= ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4) "
    "ORDER BY rev, key";
constexpr char kInsertChange[] =
    "INSERT INTO changes (rev, key, op, value, create_rev) VALUES (?1, ?2, ?3, ?4, ?5)";
// Logs a put from the row just written, so the key's create_rev needs no separate lookup.
constexpr char kLogPut[] =
    "INSERT INTO changes (rev, key, op, value, create_rev) "
    "SELECT mod_rev, key, ?2, value, create_rev FROM kv WHERE key = ?1";
constexpr char kDeleteChangesThrough[] = "DELETE FROM changes WHERE rev <= ?1";

constexpr char kDataVersion[] = "PRAGMA data_version";

// How many revisions a watcher reads from the change log per query, bounding its buffer.
constexpr Revision kWatchRevisionsPerRead = 256;

// ---- Configuration -------------------------------------------------------------------------

struct Config {
  std::string path;
  bool synchronous_full = true;
  int64_t retention = kDefaultRetention;
  std::chrono::milliseconds busy_timeout{5000};
  std::chrono::milliseconds poll_interval{10};
  size_t readers = 4;
  Limits limits;
};

StatusOr<Config> ParseConfig(const StoreUrl& url) {
  Config config;
  if (url.location.empty()) {
    return InvalidArgumentError("sqlite store URL \"" + url.text +
                                "\" has no file path; expected e.g. sqlite:///var/lib/plinth/"
                                "plinth.db or sqlite://./plinth.db");
  }
  if (url.location == ":memory:" || url.location.rfind("file:", 0) == 0) {
    return InvalidArgumentError("sqlite store URL \"" + url.text +
                                "\" must name a plain file path (use memory:// for a store in "
                                "memory)");
  }
  config.path = url.location;

  UrlOptions options(url);
  PLINTH_ASSIGN_OR_RETURN(auto synchronous, options.TakeEnum("synchronous", {"full", "normal"}));
  if (synchronous) config.synchronous_full = *synchronous == "full";
  PLINTH_ASSIGN_OR_RETURN(auto retention,
                          options.TakeInt("retention", 0, std::numeric_limits<int64_t>::max() / 4));
  if (retention) config.retention = *retention;
  PLINTH_ASSIGN_OR_RETURN(auto busy_timeout, options.TakeDuration("busy_timeout"));
  if (busy_timeout) {
    if (*busy_timeout > std::chrono::hours(24)) {
      return InvalidArgumentError("option \"busy_timeout\" of sqlite store URL is over 24h");
    }
    config.busy_timeout = *busy_timeout;
  }
  PLINTH_ASSIGN_OR_RETURN(auto poll_interval, options.TakeDuration("poll_interval"));
  if (poll_interval) {
    if (*poll_interval < std::chrono::milliseconds(1) || *poll_interval > std::chrono::hours(1)) {
      return InvalidArgumentError("option \"poll_interval\" of sqlite store URL is not in 1ms..1h");
    }
    config.poll_interval = *poll_interval;
  }
  PLINTH_ASSIGN_OR_RETURN(auto readers, options.TakeInt("readers", 1, 64));
  if (readers) config.readers = static_cast<size_t>(*readers);
  PLINTH_ASSIGN_OR_RETURN(config.limits,
                          TakeLimitOptions(options, DefaultLimits(), LimitCeilings()));
  PLINTH_RETURN_IF_ERROR(options.CheckAllTaken());
  return config;
}

// Checks what SQLite would report vaguely ("unable to open database file") before opening,
// so the error names the actual problem. Nothing is created or modified.
Status CheckPath(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string context = "cannot open sqlite store " + QuotePath(path);
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const fs::file_status dir_status = fs::status(dir, ec);
  if (!fs::exists(dir_status)) {
    return NotFoundError(context + ": directory " + QuotePath(dir.string()) + " does not exist");
  }
  if (!fs::is_directory(dir_status)) {
    return FailedPreconditionError(context + ": " + QuotePath(dir.string()) +
                                   " is not a directory");
  }
  const fs::file_status file_status = fs::status(path, ec);
  if (fs::exists(file_status)) {
    if (fs::is_directory(file_status)) {
      return FailedPreconditionError(context + ": it is a directory, not a database file");
    }
    if (::access(path.c_str(), R_OK | W_OK) != 0) {
      return PermissionDeniedError(context + ": the file is not readable and writable by this " +
                                   "process (" + std::strerror(errno) + ")");
    }
  } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return PermissionDeniedError(context + ": cannot create it in directory " +
                                 QuotePath(dir.string()) + " (" + std::strerror(errno) + ")");
  }
  return Status::Ok();
}

// ---- Small query helpers (any connection) --------------------------------------------------

Status RunCached(Connection& db, const char* sql) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(sql));
  ScopedStatement stmt(raw);
  return stmt->Run();
}

StatusOr<int64_t> QueryInt64(Connection& db, const char* sql) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(sql));
  ScopedStatement stmt(raw);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return InternalError(std::string("no result from \"") + sql + "\"");
  return stmt->ColumnInt64(0);
}

struct Meta {
  Revision current = 0;
  Revision compacted = 0;
};

StatusOr<Meta> ReadMeta(Connection& db) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kReadMeta));
  ScopedStatement stmt(raw);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) {
    return DataLossError("sqlite store " + db.label() +
                         ": the meta table has lost its revision row");
  }
  return Meta{stmt->ColumnInt64(0), stmt->ColumnInt64(1)};
}

void BindSpanEnd(Statement& stmt, int index, const KeySpan& span) {
  if (span.unbounded()) {
    stmt.BindNull(index);
  } else {
    stmt.BindBlob(index, span.end);
  }
}

StatusOr<KeyValue> GetKey(Connection& db, std::string_view key) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kGetKey));
  ScopedStatement stmt(raw);
  stmt->BindBlob(1, key);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return NotFoundError("key " + PrintableKey(key) + " not found");
  return KeyValue{std::string(key), stmt->ColumnBlob(0), stmt->ColumnInt64(1),
                  stmt->ColumnInt64(2)};
}

StatusOr<RangeResult> RangeKeys(Connection& db, const KeySpan& span, const RangeOptions& options,
                                Revision revision) {
  RangeResult result;
  result.revision = revision;
  // `after` continues strictly after a key: the first key > after is after + "\0".
  std::string start = span.start;
  if (!options.after.empty() && CompareKeys(options.after, span.start) >= 0) {
    start = options.after;
    start.push_back('\0');
  }
  if (!span.unbounded() && CompareKeys(start, span.end) >= 0) return result;
  const char* sql = span.unbounded() ? (options.keys_only ? kRangeKeysUnbounded : kRangeUnbounded)
                                     : (options.keys_only ? kRangeKeysBounded : kRangeBounded);
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(sql));
  ScopedStatement stmt(raw);
  stmt->BindBlob(1, start);
  if (!span.unbounded()) stmt->BindBlob(2, span.end);
  // One row beyond the limit tells whether there are more.
  const bool limited = options.limit != 0 &&
                       options.limit < static_cast<size_t>(std::numeric_limits<int64_t>::max());
  stmt->BindInt64(3, limited ? static_cast<int64_t>(options.limit) + 1 : -1);
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    if (limited && result.kvs.size() == options.limit) {
      result.more = true;
      break;
    }
    result.kvs.push_back(KeyValue{stmt->ColumnBlob(0),
                                  options.keys_only ? std::string() : stmt->ColumnBlob(1),
                                  stmt->ColumnInt64(2), stmt->ColumnInt64(3)});
  }
  return result;
}

StatusOr<int64_t> CountKeys(Connection& db, const KeySpan& span) {
  if (span.empty()) return int64_t{0};
  PLINTH_ASSIGN_OR_RETURN(Statement * raw,
                          db.Prepared(span.unbounded() ? kCountUnbounded : kCountBounded));
  ScopedStatement stmt(raw);
  stmt->BindBlob(1, span.start);
  if (!span.unbounded()) stmt->BindBlob(2, span.end);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? stmt->ColumnInt64(0) : int64_t{0};
}

// Checks one condition against the state visible on `db`; Aborted with a reason (naming the
// key) when it does not hold. Messages match the memory backend's.
Status CheckCondition(Connection& db, const Condition& c, const Meta& meta) {
  switch (c.kind) {
    case Condition::Kind::kAbsent:
    case Condition::Kind::kModRevisionIs: {
      PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kGetRevisions));
      ScopedStatement stmt(raw);
      stmt->BindBlob(1, c.key);
      PLINTH_ASSIGN_OR_RETURN(bool exists, stmt->Step());
      if (c.kind == Condition::Kind::kAbsent) {
        if (exists) {
          return AbortedError("condition failed: key " + PrintableKey(c.key) + " exists");
        }
      } else if (!exists || stmt->ColumnInt64(1) != c.revision) {
        return AbortedError("condition failed: key " + PrintableKey(c.key) +
                            " is not at mod_revision " + std::to_string(c.revision));
      }
      return Status::Ok();
    }
    case Condition::Kind::kUnchangedSince: {
      if (c.revision < meta.compacted) {
        return AbortedError("condition failed: history since revision " +
                            std::to_string(c.revision) + " was compacted; re-read");
      }
      if (c.span.empty()) return Status::Ok();
      PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kFirstChangeSince));
      ScopedStatement stmt(raw);
      stmt->BindInt64(1, c.revision);
      stmt->BindBlob(2, c.span.start);
      BindSpanEnd(*stmt, 3, c.span);
      PLINTH_ASSIGN_OR_RETURN(bool changed, stmt->Step());
      if (changed) {
        return AbortedError("condition failed: key " + PrintableKey(stmt->ColumnBlob(1)) +
                            " changed at revision " + std::to_string(stmt->ColumnInt64(0)) +
                            " after " + std::to_string(c.revision));
      }
      return Status::Ok();
    }
  }
  return InternalError("unknown condition kind");
}

Status ListLiveKeys(Connection& db, const KeySpan& span, std::vector<std::string>* keys) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw,
                          db.Prepared(span.unbounded() ? kListKeysUnbounded : kListKeysBounded));
  ScopedStatement stmt(raw);
  stmt->BindBlob(1, span.start);
  if (!span.unbounded()) stmt->BindBlob(2, span.end);
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return Status::Ok();
    keys->push_back(stmt->ColumnBlob(0));
  }
}

// The create_rev of a live key, or nullopt if it does not exist.
StatusOr<std::optional<Revision>> LookupCreateRevision(Connection& db, const std::string& key) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kGetRevisions));
  ScopedStatement stmt(raw);
  stmt->BindBlob(1, key);
  PLINTH_ASSIGN_OR_RETURN(bool exists, stmt->Step());
  if (!exists) return std::optional<Revision>();
  return std::optional<Revision>(stmt->ColumnInt64(0));
}

// Applies the settings every connection of a store shares. PRAGMA synchronous reads the
// schema, so on the writer this runs only after the file was recognised as a database.
Status ApplyConnectionSettings(const Config& config, Connection& db) {
  db.SetBusyTimeout(config.busy_timeout);
  return db.Exec(config.synchronous_full ? "PRAGMA synchronous = FULL"
                                         : "PRAGMA synchronous = NORMAL");
}

// Opens a further connection to an already prepared store file.
StatusOr<std::unique_ptr<Connection>> OpenConnection(const Config& config, int flags) {
  PLINTH_ASSIGN_OR_RETURN(auto db, Connection::Open(config.path, flags, QuotePath(config.path)));
  PLINTH_RETURN_IF_ERROR(ApplyConnectionSettings(config, *db));
  return db;
}

// ---- Reader pool ---------------------------------------------------------------------------

// Read connections, reused across calls. When every pooled connection is in use (for example
// held by Snapshots) a new one is opened rather than waiting, so a thread holding snapshots can
// never deadlock against itself; at most `config.readers` idle connections are kept.
class ReaderPool {
 public:
  explicit ReaderPool(const Config* config) : config_(config) {}

  // A connection outside any transaction.
  StatusOr<std::unique_ptr<Connection>> Acquire() PLINTH_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Connection> db = std::move(idle_.back());
        idle_.pop_back();
        return db;
      }
    }
    PLINTH_ASSIGN_OR_RETURN(auto db, OpenConnection(*config_, SQLITE_OPEN_READWRITE));
    // Readers never write; query_only turns a bug that tries into an error.
    PLINTH_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = 1"));
    return db;
  }

  void Release(std::unique_ptr<Connection> db) PLINTH_EXCLUDES(mu_) {
    db->RollbackQuietly();
    if (!db->autocommit()) return;  // could not end its transaction: close it
    MutexLock lock(&mu_);
    if (idle_.size() < config_->readers) idle_.push_back(std::move(db));
  }

 private:
  const Config* const config_;
  Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ PLINTH_GUARDED_BY(mu_);
};

// A connection borrowed from a ReaderPool for one scope; ends any open transaction and returns
// the connection when destroyed.
class PooledConnection {
 public:
  PooledConnection(ReaderPool* pool, std::unique_ptr<Connection> db)
      : pool_(pool), db_(std::move(db)) {}
  ~PooledConnection() {
    if (db_ != nullptr) pool_->Release(std::move(db_));
  }
  PooledConnection(PooledConnection&& other) noexcept = default;
  PooledConnection& operator=(PooledConnection&&) = delete;

  Connection& operator*() const { return *db_; }
  Connection* operator->() const { return db_.get(); }

 private:
  ReaderPool* pool_;
  std::unique_ptr<Connection> db_;
};

// ---- Change notification -------------------------------------------------------------------

// Commits through other connections (other processes, other Store objects in this process)
// are seen through PRAGMA data_version on the notifier's own connection, which changes for
// every commit but that connection's own.
using ChangeNotifier = store::internal::PollingChangeNotifier;

// ---- Shared state --------------------------------------------------------------------------

// Everything a Store, its Snapshots and its WatchStreams share.
struct Core {
  explicit Core(Config c) : config(std::move(c)), readers(&config) {}

  StatusOr<PooledConnection> Reader() {
    PLINTH_ASSIGN_OR_RETURN(auto db, readers.Acquire());
    return PooledConnection(&readers, std::move(db));
  }

  const Config config;
  ReaderPool readers;
  std::unique_ptr<ChangeNotifier> notifier;
  // Declared before `writer`, so that the writer (whose WAL hook points at it) closes first.
  std::unique_ptr<internal::Checkpointer> checkpointer;
  Mutex writer_mu;
  // The one connection this Store writes through; every write transaction holds writer_mu.
  std::unique_ptr<Connection> writer PLINTH_GUARDED_BY(writer_mu);
};

// ---- Snapshot ------------------------------------------------------------------------------

class SqliteSnapshot final : public Snapshot {
 public:
  // `db` is inside the read transaction that fixes the snapshot at `revision`.
  SqliteSnapshot(std::shared_ptr<Core> core, PooledConnection db, Revision revision)
      : core_(std::move(core)), db_(std::move(db)), revision_(revision) {}

  Revision revision() const override { return revision_; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, core_->config.limits));
    return GetKey(*db_, key);
  }
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return RangeKeys(*db_, span, options, revision_);
  }
  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_ASSIGN_OR_RETURN(int64_t count, CountKeys(*db_, span));
    return CountResult{count, revision_};
  }

 private:
  std::shared_ptr<Core> core_;  // declared first: outlives db_, which returns to its pool
  PooledConnection db_;
  const Revision revision_;
};

// ---- Watch ---------------------------------------------------------------------------------

// Follows the change log from a revision. State other than cancelled_ belongs to the one
// thread calling Next (the contract allows one at a time).
//
// It behaves exactly as the memory backend's watch: next_ is the first revision not yet
// scanned; each Next scans forward from it and returns the first revision with events in the
// span (or a progress notice when it scanned to the current revision without finding one).
// Batches read from the log but not yet returned are kept in pending_, for revisions in
// [next_, read_through_].
class SqliteWatch final : public WatchStream {
 public:
  SqliteWatch(std::shared_ptr<Core> core, KeySpan span, Revision next, WatchOptions options)
      : core_(std::move(core)),
        span_(std::move(span)),
        next_(next),
        read_through_(next - 1),
        options_(options) {
    core_->notifier->AddWatcher();
  }
  ~SqliteWatch() override { core_->notifier->RemoveWatcher(); }

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (cancelled_.load()) return CancelledError("watch cancelled");
      if (core_->notifier->stopped()) return UnavailableError("the sqlite store was closed");
      // Taken before reading, so a commit that lands after the read still wakes the wait.
      const uint64_t seen = core_->notifier->sequence();
      PLINTH_ASSIGN_OR_RETURN(std::optional<WatchBatch> batch, Scan());
      if (batch) return *std::move(batch);
      if (!core_->notifier->WaitForChange(seen, deadline, cancelled_)) {
        if (cancelled_.load()) return CancelledError("watch cancelled");
        return DeadlineExceededError("no change within the timeout");
      }
    }
  }

  void Cancel() override {
    cancelled_.store(true);
    core_->notifier->Wake();
  }

 private:
  // One pass over the log in one read transaction (ended when `db` returns to the pool): the
  // next batch, a progress notice, or nothing new. Meta and the log are read in the same
  // transaction so that a concurrent compaction cannot remove rows between the check against
  // meta.compacted and the read.
  StatusOr<std::optional<WatchBatch>> Scan() {
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kBegin));
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    if (next_ <= meta.compacted) {
      pending_.clear();
      return OutOfRangeError("watch needs revision " + std::to_string(next_) +
                             ", but history through " + std::to_string(meta.compacted) +
                             " was compacted");
    }
    const Revision first_unseen = next_;
    while (next_ <= meta.current) {
      if (next_ > read_through_) {
        const Revision last = std::min(meta.current, next_ + kWatchRevisionsPerRead - 1);
        PLINTH_RETURN_IF_ERROR(ReadLog(*db, next_, last));
        read_through_ = last;
      }
      const Revision revision = next_++;
      auto it = pending_.find(revision);
      if (it == pending_.end()) continue;
      WatchBatch batch{revision, std::move(it->second)};
      pending_.erase(it);
      return std::optional<WatchBatch>(std::move(batch));
    }
    if (options_.progress_notify && next_ > first_unseen) {
      return std::optional<WatchBatch>(WatchBatch{next_ - 1, {}});
    }
    return std::optional<WatchBatch>();
  }

  // Reads the span's changes with revisions in [first, last] into pending_.
  Status ReadLog(Connection& db, Revision first, Revision last) {
    PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kReadChanges));
    ScopedStatement stmt(raw);
    stmt->BindInt64(1, first);
    stmt->BindInt64(2, last);
    stmt->BindBlob(3, span_.start);
    BindSpanEnd(*stmt, 4, span_);
    while (true) {
      PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) return Status::Ok();
      const Revision revision = stmt->ColumnInt64(0);
      Event event;
      event.kv.key = stmt->ColumnBlob(1);
      event.kv.mod_revision = revision;
      if (stmt->ColumnInt64(2) == internal::kOpDelete) {
        event.type = Event::Type::kDelete;
      } else {
        event.type = Event::Type::kPut;
        event.kv.value = stmt->ColumnBlob(3);
        event.kv.create_revision = stmt->ColumnInt64(4);
      }
      pending_[revision].push_back(std::move(event));
    }
  }

  const std::shared_ptr<Core> core_;
  const KeySpan span_;
  Revision next_;
  Revision read_through_;
  std::map<Revision, std::vector<Event>> pending_;
  const WatchOptions options_;
  std::atomic<bool> cancelled_{false};
};

// ---- Store ---------------------------------------------------------------------------------

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~SqliteStore() override { core_->notifier->Stop(); }

  std::string_view backend() const override { return "sqlite"; }
  Limits limits() const override { return core_->config.limits; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, core_->config.limits));
    // One statement reads one consistent state; no explicit transaction is needed.
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    return GetKey(*db, key);
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kBegin));
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    PLINTH_ASSIGN_OR_RETURN(RangeResult result, RangeKeys(*db, span, options, meta.current));
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kCommit));
    return result;
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kBegin));
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    PLINTH_ASSIGN_OR_RETURN(int64_t count, CountKeys(*db, span));
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kCommit));
    return CountResult{count, meta.current};
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    // The first read after BEGIN fixes the WAL snapshot the transaction sees until it ends.
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kBegin));
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    return std::unique_ptr<Snapshot>(new SqliteSnapshot(core_, std::move(db), meta.current));
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    PLINTH_RETURN_IF_ERROR(ValidateTxn(txn, core_->config.limits));
    // Nothing to write: check the conditions in a read transaction and leave the write lock
    // to writers.
    if (txn.ops.empty()) return CheckConditionsOnly(txn);

    Revision revision = 0;
    {
      MutexLock lock(&core_->writer_mu);
      Connection& db = *core_->writer;
      db.RollbackQuietly();  // in case an earlier failure left a transaction open
      PLINTH_RETURN_IF_ERROR(RunCached(db, kBeginImmediate));
      StatusOr<Applied> applied = ApplyLocked(db, txn);
      if (!applied.ok()) {
        db.RollbackQuietly();
        return applied.status();
      }
      if (!applied->changed) {
        db.RollbackQuietly();
        return applied->revision;
      }
      if (Status status = RunCached(db, kCommit); !status.ok()) {
        if (!db.autocommit()) {
          // The transaction is still open, so it did not commit: undo it.
          db.RollbackQuietly();
          return Status(status.code(), std::string(status.message()) + "; nothing was applied");
        }
        return Status(status.code(),
                      std::string(status.message()) + "; the outcome of the commit is unknown");
      }
      revision = applied->revision;
      core_->notifier->Notify();
      // Automatic retention, amortised: only when the history has doubled past the setting.
      const int64_t retention = core_->config.retention;
      if (retention > 0 && revision - applied->compacted > 2 * retention) {
        // The commit already succeeded; a failed compaction is retried by a later commit.
        CompactLocked(db, revision - retention).IgnoreError();
      }
    }
    return revision;
  }

  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    if (from_revision < 0) return InvalidArgumentError("from_revision is negative");
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    if (from_revision == 0) from_revision = meta.current + 1;
    if (from_revision <= meta.compacted) {
      return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                             ": history through " + std::to_string(meta.compacted) +
                             " was compacted");
    }
    return std::unique_ptr<WatchStream>(new SqliteWatch(core_, span, from_revision, options));
  }

  StatusOr<Revision> CurrentRevision() override {
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    return meta.current;
  }

  Status Compact(Revision revision) override {
    MutexLock lock(&core_->writer_mu);
    return CompactLocked(*core_->writer, revision);
  }

  StatusOr<Revision> CompactedRevision() override {
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    return meta.compacted;
  }

  Core& core() { return *core_; }

 private:
  struct Applied {
    Revision revision;   // the new revision, or the current one when nothing changed
    bool changed;        // false: nothing to commit
    Revision compacted;  // the compaction point the transaction saw
  };

  StatusOr<Revision> CheckConditionsOnly(const TxnRequest& txn) {
    PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Reader());
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kBegin));
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db));
    for (const Condition& c : txn.conditions) {
      PLINTH_RETURN_IF_ERROR(CheckCondition(*db, c, meta));
    }
    PLINTH_RETURN_IF_ERROR(RunCached(*db, kCommit));
    return meta.current;
  }

  // Checks the conditions and writes the transaction's effects; `db` is inside BEGIN
  // IMMEDIATE. The caller commits or rolls back.
  StatusOr<Applied> ApplyLocked(Connection& db, const TxnRequest& txn)
      PLINTH_REQUIRES(core_->writer_mu) {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
    for (const Condition& c : txn.conditions) {
      PLINTH_RETURN_IF_ERROR(CheckCondition(db, c, meta));
    }
    PLINTH_ASSIGN_OR_RETURN(
        store::internal::Overlay overlay,
        store::internal::ResolveOps(txn.ops,
                                    [&db](const KeySpan& span, std::vector<std::string>* keys) {
                                      return ListLiveKeys(db, span, keys);
                                    }));

    // Holding the write lock, the new revision is the current one plus one.
    const Revision revision = meta.current + 1;
    struct Effect {
      const std::string* key;
      const std::string* value;  // nullptr: delete
    };
    std::vector<Effect> effects;
    effects.reserve(overlay.size());
    for (const auto& [key, value] : overlay) {
      if (value) {
        effects.push_back(Effect{&key, &*value});  // a put always changes the store
        continue;
      }
      PLINTH_ASSIGN_OR_RETURN(std::optional<Revision> created, LookupCreateRevision(db, key));
      if (created) effects.push_back(Effect{&key, nullptr});
    }
    if (effects.empty()) return Applied{meta.current, false, meta.compacted};

    {
      PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kBumpRevision));
      ScopedStatement bump(raw);
      PLINTH_ASSIGN_OR_RETURN(bool row, bump->Step());
      if (!row || bump->ColumnInt64(0) != revision) {
        return InternalError("sqlite store " + db.label() +
                             ": the revision counter moved under the write lock");
      }
    }
    PLINTH_ASSIGN_OR_RETURN(Statement * upsert, db.Prepared(kUpsertKey));
    PLINTH_ASSIGN_OR_RETURN(Statement * remove, db.Prepared(kDeleteKey));
    PLINTH_ASSIGN_OR_RETURN(Statement * log_put, db.Prepared(kLogPut));
    PLINTH_ASSIGN_OR_RETURN(Statement * log, db.Prepared(kInsertChange));
    // Two statements per key: write the row, then log it (a put is logged from the row just
    // written, which carries the create_rev an existing key keeps).
    for (const Effect& e : effects) {
      if (e.value != nullptr) {
        {
          ScopedStatement stmt(upsert);
          stmt->BindBlob(1, *e.key);
          stmt->BindBlob(2, *e.value);
          stmt->BindInt64(3, revision);
          PLINTH_RETURN_IF_ERROR(stmt->Run());
        }
        ScopedStatement change(log_put);
        change->BindBlob(1, *e.key);
        change->BindInt64(2, internal::kOpPut);
        PLINTH_RETURN_IF_ERROR(change->Run());
        continue;
      }
      {
        ScopedStatement stmt(remove);
        stmt->BindBlob(1, *e.key);
        PLINTH_RETURN_IF_ERROR(stmt->Run());
      }
      ScopedStatement change(log);
      change->BindInt64(1, revision);
      change->BindBlob(2, *e.key);
      change->BindInt64(3, internal::kOpDelete);
      change->BindNull(4);
      change->BindNull(5);
      PLINTH_RETURN_IF_ERROR(change->Run());
    }
    return Applied{revision, true, meta.compacted};
  }

  // Compact in its own write transaction on the writer connection (outside any transaction).
  Status CompactLocked(Connection& db, Revision revision) PLINTH_REQUIRES(core_->writer_mu) {
    db.RollbackQuietly();
    PLINTH_RETURN_IF_ERROR(RunCached(db, kBeginImmediate));
    auto compact = [&]() -> StatusOr<bool> {
      PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
      if (revision > meta.current) {
        return OutOfRangeError("cannot compact to revision " + std::to_string(revision) +
                               " beyond the current revision " + std::to_string(meta.current));
      }
      if (revision <= meta.compacted) return false;
      {
        PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kDeleteChangesThrough));
        ScopedStatement stmt(raw);
        stmt->BindInt64(1, revision);
        PLINTH_RETURN_IF_ERROR(stmt->Run());
      }
      PLINTH_ASSIGN_OR_RETURN(Statement * raw, db.Prepared(kSetCompacted));
      ScopedStatement stmt(raw);
      stmt->BindInt64(1, revision);
      PLINTH_RETURN_IF_ERROR(stmt->Run());
      return true;
    };
    StatusOr<bool> compacted = compact();
    if (!compacted.ok() || !*compacted) {
      db.RollbackQuietly();
      return compacted.status();
    }
    if (Status status = RunCached(db, kCommit); !status.ok()) {
      db.RollbackQuietly();
      return status;
    }
    core_->notifier->Notify();  // watchers behind the new compaction point must fail now
    return Status::Ok();
  }

  const std::shared_ptr<Core> core_;
};

// Opens the writer connection and prepares the file: recognises it as a SQLite database
// before anything is written, switches it to WAL and migrates the schema.
StatusOr<std::unique_ptr<Connection>> OpenWriter(const Config& config) {
  PLINTH_RETURN_IF_ERROR(CheckPath(config.path));
  PLINTH_ASSIGN_OR_RETURN(auto db,
                          Connection::Open(config.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                           QuotePath(config.path)));
  db->SetBusyTimeout(config.busy_timeout);
  if (sqlite3_db_readonly(db->get(), "main") == 1) {
    return PermissionDeniedError("cannot open sqlite store " + QuotePath(config.path) +
                                 ": SQLite opened it read-only");
  }
  // Reading the schema reads the file header and the schema pages: a file that is not a
  // SQLite database, or whose schema is damaged, fails here, while nothing has been written.
  if (StatusOr<std::string> probe = db->QueryText("SELECT count(*) FROM sqlite_schema");
      !probe.ok()) {
    const std::string problem =
        probe.status().code() == StatusCode::kFailedPrecondition ? "it is not a SQLite database"
        : probe.status().code() == StatusCode::kDataLoss         ? "the database is corrupt"
                                                                 : "it cannot be read";
    return Status(probe.status().code(), "cannot open sqlite store " + QuotePath(config.path) +
                                             ": " + problem + "; the file was left unchanged (" +
                                             std::string(probe.status().message()) + ")");
  }
  PLINTH_ASSIGN_OR_RETURN(std::string mode, db->QueryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return FailedPreconditionError("cannot open sqlite store " + QuotePath(config.path) +
                                   ": it cannot use WAL mode (journal_mode is \"" + mode +
                                   "\"); is it on a filesystem without shared memory support?");
  }
  PLINTH_RETURN_IF_ERROR(ApplyConnectionSettings(config, *db));
  PLINTH_RETURN_IF_ERROR(internal::EnsureSchema(*db));
  PLINTH_RETURN_IF_ERROR(ReadMeta(*db).status());
  return db;
}

}  // namespace

Limits DefaultLimits() {
  Limits l;
  l.max_key_bytes = 4096;
  l.max_value_bytes = 16 << 20;
  l.max_ops_per_txn = 100'000;
  l.max_txn_bytes = 256 << 20;
  return l;
}

Limits LimitCeilings() {
  Limits l;
  l.max_key_bytes = 64 << 10;
  l.max_value_bytes = 64 << 20;
  l.max_ops_per_txn = 1'000'000;
  l.max_txn_bytes = size_t{1} << 30;
  return l;
}

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const StoreUrl& url, const OpenOptions&) {
  PLINTH_ASSIGN_OR_RETURN(Config config, ParseConfig(url));
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, OpenWriter(config));
  auto core = std::make_shared<Core>(std::move(config));
  PLINTH_ASSIGN_OR_RETURN(auto checkpoint_db, OpenConnection(core->config, SQLITE_OPEN_READWRITE));
  core->checkpointer = std::make_unique<internal::Checkpointer>(std::move(checkpoint_db));
  {
    MutexLock lock(&core->writer_mu);
    core->checkpointer->Attach(*writer);
    core->writer = std::move(writer);
  }
  // Open one reader now, so that a file readers cannot use fails the open, not a later read.
  PLINTH_ASSIGN_OR_RETURN(auto reader, core->readers.Acquire());
  core->readers.Release(std::move(reader));
  PLINTH_ASSIGN_OR_RETURN(auto poller, OpenConnection(core->config, SQLITE_OPEN_READWRITE));
  core->notifier = std::make_unique<ChangeNotifier>(
      core->config.poll_interval,
      [db = std::shared_ptr<Connection>(std::move(poller))]() -> StatusOr<std::string> {
        PLINTH_ASSIGN_OR_RETURN(int64_t version, QueryInt64(*db, kDataVersion));
        return std::to_string(version);
      });
  core->notifier->Start();
  return std::unique_ptr<Store>(new SqliteStore(std::move(core)));
}

namespace internal {
namespace {

StatusOr<SqliteStore*> AsSqlite(Store& store) {
  // dynamic_cast, not backend(): a wrapper store (fault injection) may report its target's name.
  auto* sqlite = dynamic_cast<SqliteStore*>(&store);
  if (sqlite == nullptr) {
    return InvalidArgumentError("not a sqlite store: " + std::string(store.backend()));
  }
  return sqlite;
}

}  // namespace

StatusOr<std::string> WriterPragmaForTesting(Store& store, const std::string& name) {
  PLINTH_ASSIGN_OR_RETURN(SqliteStore * sqlite, AsSqlite(store));
  Core& core = sqlite->core();
  MutexLock lock(&core.writer_mu);
  return core.writer->QueryText(("PRAGMA " + name).c_str());
}

StatusOr<int64_t> CheckpointsForTesting(Store& store) {
  PLINTH_ASSIGN_OR_RETURN(SqliteStore * sqlite, AsSqlite(store));
  return sqlite->core().checkpointer->runs();
}

StatusOr<std::string> ReaderPragmaForTesting(Store& store, const std::string& name) {
  PLINTH_ASSIGN_OR_RETURN(SqliteStore * sqlite, AsSqlite(store));
  PLINTH_ASSIGN_OR_RETURN(PooledConnection db, sqlite->core().Reader());
  return db->QueryText(("PRAGMA " + name).c_str());
}

}  // namespace internal
}  // namespace plinth::store::sqlite
