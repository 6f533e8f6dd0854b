// The mysql backend. How it meets the store contract (store.h):
//
//   Revisions   every write transaction locks <p>meta's one row first (SELECT ... FOR
//               UPDATE, READ COMMITTED) and holds the lock until COMMIT; the new revision is
//               the locked value + 1, so revisions are gap-free and in commit order across
//               every connection, process and host. A transaction that changes nothing rolls
//               back and makes no revision.
//   Writes      conditions are checked and operations resolved (internal::ResolveOps, as every
//               backend does) under that lock; any error rolls back, so nothing is
//               half-written. Only a failure of COMMIT itself leaves the outcome unknown.
//   Reads       Get is one statement; Range, Count and Watch scans read meta and the data in
//               one consistent-snapshot read-only transaction, so the revision they return
//               matches the data. A Snapshot keeps such a transaction on its own connection.
//   Watch       watchers tail <p>changes by revision. They are woken by this Store's own
//               commits directly and by a notifier thread that polls meta every
//               poll_interval while at least one watcher exists. A scan that fails because
//               the server is unreachable is retried until `timeout` has passed.
//   Compaction  records the point in meta (under the revision lock), then deletes the log
//               rows at or below it in batches outside the lock; readers never look below the
//               recorded point, and each read sees meta and the log at one snapshot.
//   Connections a pool; a connection that reports a lost connection is discarded. A call
//               that fails on a reused (possibly stale) connection before anything could have
//               been applied is retried once on a fresh one.
#include "store/mysql/mysql_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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
#include "store/mysql/internal/mysql_db.h"
#include "store/mysql/internal/schema.h"

namespace plinth::store::mysql {
namespace {

using internal::Connection;
using internal::Param;
using internal::Row;

// How many revisions a watcher reads from the change log per query, bounding its buffer.
constexpr Revision kWatchRevisionsPerRead = 256;
// Change log rows deleted per statement when compacting.
constexpr int64_t kCompactBatchRows = 10'000;
// Room left in max_allowed_packet beside one key and one value.
constexpr size_t kPacketOverhead = 4096;
constexpr size_t kMaxPrefixLength = 48;

// ---- Configuration -------------------------------------------------------------------------

struct Config {
  internal::ConnectOptions connect;
  std::string prefix = "plinth_";
  int64_t retention = kDefaultRetention;
  size_t pool = 4;
  std::chrono::milliseconds poll_interval{50};
  Limits limits;
  bool max_value_given = false;
  // Keys and values per multi-row statement; set from the server's max_allowed_packet.
  size_t batch_bytes = size_t{1} << 20;
};

Status BadUrl(const StoreUrl& url, std::string_view problem) {
  return InvalidArgumentError("mysql store URL \"" + url.redacted + "\" " + std::string(problem) +
                              "; expected mysql://user[:password]@host[:port]/database");
}

Status ParseLocation(const StoreUrl& url, Config& config) {
  std::string_view loc = url.location;
  std::string_view hostport = loc;
  if (size_t at = loc.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = loc.substr(0, at);
    hostport = loc.substr(at + 1);
    if (size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
      config.connect.user = std::string(userinfo.substr(0, colon));
      config.connect.password = std::string(userinfo.substr(colon + 1));
    } else {
      config.connect.user = std::string(userinfo);
    }
    if (config.connect.user->empty()) return BadUrl(url, "has an empty user name");
  }
  const size_t slash = hostport.find('/');
  if (slash == std::string_view::npos || slash + 1 == hostport.size()) {
    return BadUrl(url, "names no database");
  }
  config.connect.database = std::string(hostport.substr(slash + 1));
  if (config.connect.database.find('/') != std::string::npos) {
    return BadUrl(url, "has a database name with '/'");
  }
  hostport = hostport.substr(0, slash);
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "has an unclosed '[' in its host");
    config.connect.host = std::string(hostport.substr(1, close - 1));
    std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return BadUrl(url, "has text after its host");
      port = rest.substr(1);
    }
  } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    config.connect.host = std::string(hostport.substr(0, colon));
    port = hostport.substr(colon + 1);
  } else {
    config.connect.host = std::string(hostport);
  }
  if (!port.empty() || (hostport.size() > 0 && hostport.back() == ':')) {
    unsigned value = 0;
    bool ok = !port.empty() && port.size() <= 5;
    for (char c : port) {
      if (c < '0' || c > '9') ok = false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || value == 0 || value > 65535) {
      return BadUrl(url, "has port \"" + std::string(port) + "\"; expected 1..65535");
    }
    config.connect.port = value;
  }
  return Status::Ok();
}

StatusOr<Config> ParseConfig(const StoreUrl& url) {
  Config config;
  PLINTH_RETURN_IF_ERROR(ParseLocation(url, config));

  UrlOptions options(url);
  if (auto prefix = options.TakeString("table_prefix")) {
    if (prefix->size() > kMaxPrefixLength) {
      return InvalidArgumentError("option \"table_prefix\" of mysql store URL is longer than " +
                                  std::to_string(kMaxPrefixLength) + " characters");
    }
    for (char c : *prefix) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_')) {
        return InvalidArgumentError("option \"table_prefix\" of mysql store URL is \"" + *prefix +
                                    "\"; expected letters, digits and '_' only");
      }
    }
    config.prefix = *prefix;
  }
  PLINTH_ASSIGN_OR_RETURN(auto retention,
                          options.TakeInt("retention", 0, std::numeric_limits<int64_t>::max() / 4));
  if (retention) config.retention = *retention;
  PLINTH_ASSIGN_OR_RETURN(auto pool, options.TakeInt("pool", 1, 64));
  if (pool) config.pool = static_cast<size_t>(*pool);
  PLINTH_ASSIGN_OR_RETURN(auto poll_interval, options.TakeDuration("poll_interval"));
  if (poll_interval) {
    if (*poll_interval < std::chrono::milliseconds(1) || *poll_interval > std::chrono::hours(1)) {
      return InvalidArgumentError("option \"poll_interval\" of mysql store URL is not in 1ms..1h");
    }
    config.poll_interval = *poll_interval;
  }
  PLINTH_ASSIGN_OR_RETURN(auto timeout, options.TakeDuration("timeout"));
  if (timeout) {
    if (*timeout < std::chrono::seconds(1) || *timeout > std::chrono::hours(1)) {
      return InvalidArgumentError("option \"timeout\" of mysql store URL is not in 1s..1h");
    }
    config.connect.timeout = *timeout;
  }
  if (auto socket = options.TakeString("socket")) {
    if (socket->empty())
      return InvalidArgumentError("option \"socket\" of mysql store URL is empty");
    config.connect.unix_socket = *socket;
  }
  PLINTH_ASSIGN_OR_RETURN(
      auto tls, options.TakeEnum("tls", {"disabled", "preferred", "required", "verify_identity"}));
  if (tls) {
    config.connect.tls = *tls == "disabled"    ? internal::TlsMode::kDisabled
                         : *tls == "preferred" ? internal::TlsMode::kPreferred
                         : *tls == "required"  ? internal::TlsMode::kRequired
                                               : internal::TlsMode::kVerifyIdentity;
  }
  for (auto [name, field] : {std::pair{"tls_ca", &config.connect.tls_ca},
                             std::pair{"tls_cert", &config.connect.tls_cert},
                             std::pair{"tls_key", &config.connect.tls_key}}) {
    if (auto value = options.TakeString(name)) {
      if (config.connect.tls == internal::TlsMode::kDisabled) {
        return InvalidArgumentError(std::string("option \"") + name +
                                    "\" of mysql store URL needs tls=preferred, required or "
                                    "verify_identity");
      }
      *field = *value;
    }
  }
  if (config.connect.host.empty() && config.connect.unix_socket.empty()) {
    return BadUrl(url, "names no host (and no socket option)");
  }
  config.max_value_given = url.options.count("max_value_bytes") != 0;
  PLINTH_ASSIGN_OR_RETURN(config.limits,
                          TakeLimitOptions(options, DefaultLimits(), LimitCeilings()));
  PLINTH_RETURN_IF_ERROR(options.CheckAllTaken());

  config.connect.label = (config.connect.unix_socket.empty()
                              ? config.connect.host + ":" + std::to_string(config.connect.port)
                              : config.connect.unix_socket) +
                         "/" + config.connect.database + " (table prefix \"" + config.prefix +
                         "\")";
  return config;
}

// ---- SQL ------------------------------------------------------------------------------------
// Spans with an upper bound and without one use separate statements, so that InnoDB can use
// both bounds of the primary key.

struct Sql {
  explicit Sql(const std::string& p) {
    const std::string kv = "`" + p + "kv`", changes = "`" + p + "changes`",
                      meta = "`" + p + "meta`";
    read_meta = "SELECT revision, compacted FROM " + meta + " WHERE id = 0";
    lock_meta = read_meta + " FOR UPDATE";
    set_revision = "UPDATE " + meta + " SET revision = ? WHERE id = 0";
    set_compacted = "UPDATE " + meta + " SET compacted = ? WHERE id = 0";
    get_key = "SELECT v, create_rev, mod_rev FROM " + kv + " WHERE k = ?";
    get_revisions = "SELECT create_rev, mod_rev FROM " + kv + " WHERE k = ?";
    range_bounded = "SELECT k, v, create_rev, mod_rev FROM " + kv +
                    " WHERE k >= ? AND k < ? ORDER BY k LIMIT ?";
    range_unbounded =
        "SELECT k, v, create_rev, mod_rev FROM " + kv + " WHERE k >= ? ORDER BY k LIMIT ?";
    range_keys_bounded = "SELECT k, NULL, create_rev, mod_rev FROM " + kv +
                         " WHERE k >= ? AND k < ? ORDER BY k LIMIT ?";
    range_keys_unbounded =
        "SELECT k, NULL, create_rev, mod_rev FROM " + kv + " WHERE k >= ? ORDER BY k LIMIT ?";
    count_bounded = "SELECT COUNT(*) FROM " + kv + " WHERE k >= ? AND k < ?";
    count_unbounded = "SELECT COUNT(*) FROM " + kv + " WHERE k >= ?";
    list_keys_bounded = "SELECT k FROM " + kv + " WHERE k >= ? AND k < ? ORDER BY k";
    list_keys_unbounded = "SELECT k FROM " + kv + " WHERE k >= ? ORDER BY k";
    lookup_head = "SELECT k, create_rev FROM " + kv + " WHERE k IN (";
    upsert_head = "INSERT INTO " + kv + " (k, v, create_rev, mod_rev) VALUES ";
    upsert_tail =
        " ON DUPLICATE KEY UPDATE v = VALUES(v), create_rev = VALUES(create_rev), "
        "mod_rev = VALUES(mod_rev)";
    delete_head = "DELETE FROM " + kv + " WHERE k IN (";
    first_change_bounded = "SELECT rev, k FROM " + changes +
                           " WHERE rev > ? AND k >= ? AND k < ? ORDER BY rev, seq LIMIT 1";
    first_change_unbounded =
        "SELECT rev, k FROM " + changes + " WHERE rev > ? AND k >= ? ORDER BY rev, seq LIMIT 1";
    read_changes_bounded = "SELECT rev, k, op, v, create_rev FROM " + changes +
                           " WHERE rev >= ? AND rev <= ? AND k >= ? AND k < ? ORDER BY rev, seq";
    read_changes_unbounded = "SELECT rev, k, op, v, create_rev FROM " + changes +
                             " WHERE rev >= ? AND rev <= ? AND k >= ? ORDER BY rev, seq";
    change_head = "INSERT INTO " + changes + " (rev, seq, k, op, v, create_rev) VALUES ";
    delete_changes_through = "DELETE FROM " + changes + " WHERE rev <= ? ORDER BY rev, seq LIMIT " +
                             std::to_string(kCompactBatchRows);
  }

  std::string read_meta, lock_meta, set_revision, set_compacted;
  std::string get_key, get_revisions;
  std::string range_bounded, range_unbounded, range_keys_bounded, range_keys_unbounded;
  std::string count_bounded, count_unbounded, list_keys_bounded, list_keys_unbounded;
  std::string lookup_head, upsert_head, upsert_tail, delete_head;
  std::string first_change_bounded, first_change_unbounded;
  std::string read_changes_bounded, read_changes_unbounded, change_head, delete_changes_through;
};

constexpr char kReadOnlySnapshotIsolation[] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ";
constexpr char kStartSnapshot[] = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
// Connections run at READ COMMITTED (set when they open): after the revision lock is granted,
// every statement of a write transaction sees every earlier commit.
constexpr char kStartWrite[] = "START TRANSACTION";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";

// Writes go in multi-row statements of at most kMaxBatchRows rows and `max_bytes` of keys and
// values (one row alone may be larger). Batches hold a power of two of rows, so that each
// connection prepares at most a few distinct statements of each kind. Returns how many of
// the items [from, total) go in the next batch; `bytes(i)` is item i's size.
constexpr size_t kMaxBatchRows = 128;

template <typename Bytes>
size_t NextBatch(size_t from, size_t total, size_t max_bytes, const Bytes& bytes) {
  size_t n = 1;
  while (n * 2 <= kMaxBatchRows && from + n * 2 <= total) n *= 2;
  while (n > 1) {
    size_t sum = 0;
    for (size_t i = from; i < from + n; ++i) sum += bytes(i);
    if (sum <= max_bytes) break;
    n /= 2;
  }
  return n;
}

// head + n copies of tuple separated by ", " + tail.
std::string Tuples(std::string_view head, std::string_view tuple, size_t n, std::string_view tail) {
  std::string sql(head);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) sql += ", ";
    sql += tuple;
  }
  sql += tail;
  return sql;
}

// ---- Query helpers (any connection) ---------------------------------------------------------

struct Meta {
  Revision current = 0;
  Revision compacted = 0;
};

StatusOr<Meta> ReadMeta(Connection& db, const std::string& sql) {
  std::optional<Meta> meta;
  PLINTH_RETURN_IF_ERROR(db.Run(sql, {}, [&](Row& row) {
                             meta = Meta{row.Int(0), row.Int(1)};
                             return Status::Ok();
                           }).status());
  if (!meta) {
    return DataLossError("mysql store " + db.label() +
                         ": the meta table has lost its revision row");
  }
  return *meta;
}

// Starts a consistent-snapshot read-only transaction.
Status StartSnapshot(Connection& db) {
  PLINTH_RETURN_IF_ERROR(db.Exec(kReadOnlySnapshotIsolation));
  return db.Exec(kStartSnapshot);
}

// Ends a transaction on an error path; a connection that cannot is not reused.
void RollbackQuietly(Connection& db) {
  if (db.broken()) return;
  if (!db.Exec(kRollback).ok()) db.MarkBroken();
}

StatusOr<KeyValue> GetKey(Connection& db, const Sql& sql, std::string_view key) {
  std::optional<KeyValue> kv;
  PLINTH_RETURN_IF_ERROR(
      db.Run(sql.get_key, {Param::Bytes(key)}, [&](Row& row) {
          kv = KeyValue{std::string(key), std::move(row.Bytes(0)), row.Int(1), row.Int(2)};
          return Status::Ok();
        }).status());
  if (!kv) return NotFoundError("key " + PrintableKey(key) + " not found");
  return *std::move(kv);
}

StatusOr<RangeResult> RangeKeys(Connection& db, const Sql& sql, const KeySpan& span,
                                const RangeOptions& options, Revision revision) {
  RangeResult result;
  result.revision = revision;
  // `after` continues strictly after a key: the first key > after is after + "\0".
  std::string start = span.start;
  if (!options.after.empty() && CompareKeys(options.after, span.start) >= 0) {
    start = options.after;
    start.push_back('\0');
  }
  if (!span.unbounded() && CompareKeys(start, span.end) >= 0) return result;
  // One row beyond the limit tells whether there are more.
  const bool limited = options.limit != 0 &&
                       options.limit < static_cast<size_t>(std::numeric_limits<int64_t>::max());
  const int64_t limit =
      limited ? static_cast<int64_t>(options.limit) + 1 : std::numeric_limits<int64_t>::max();
  auto on_row = [&](Row& row) {
    if (limited && result.kvs.size() == options.limit) {
      result.more = true;
      return Status::Ok();
    }
    result.kvs.push_back(KeyValue{std::move(row.Bytes(0)),
                                  options.keys_only ? std::string() : std::move(row.Bytes(1)),
                                  row.Int(2), row.Int(3)});
    return Status::Ok();
  };
  if (span.unbounded()) {
    PLINTH_RETURN_IF_ERROR(
        db.Run(options.keys_only ? sql.range_keys_unbounded : sql.range_unbounded,
               {Param::Bytes(start), Param::Int(limit)}, on_row)
            .status());
  } else {
    PLINTH_RETURN_IF_ERROR(db.Run(options.keys_only ? sql.range_keys_bounded : sql.range_bounded,
                                  {Param::Bytes(start), Param::Bytes(span.end), Param::Int(limit)},
                                  on_row)
                               .status());
  }
  return result;
}

StatusOr<int64_t> CountKeys(Connection& db, const Sql& sql, const KeySpan& span) {
  if (span.empty()) return int64_t{0};
  int64_t count = 0;
  auto on_row = [&](Row& row) {
    count = row.Int(0);
    return Status::Ok();
  };
  if (span.unbounded()) {
    PLINTH_RETURN_IF_ERROR(
        db.Run(sql.count_unbounded, {Param::Bytes(span.start)}, on_row).status());
  } else {
    PLINTH_RETURN_IF_ERROR(
        db.Run(sql.count_bounded, {Param::Bytes(span.start), Param::Bytes(span.end)}, on_row)
            .status());
  }
  return count;
}

// The create_rev and mod_rev of a live key, or nullopt if it does not exist.
StatusOr<std::optional<std::pair<Revision, Revision>>> LookupRevisions(Connection& db,
                                                                       const Sql& sql,
                                                                       std::string_view key) {
  std::optional<std::pair<Revision, Revision>> revisions;
  PLINTH_RETURN_IF_ERROR(db.Run(sql.get_revisions, {Param::Bytes(key)}, [&](Row& row) {
                             revisions = std::pair{row.Int(0), row.Int(1)};
                             return Status::Ok();
                           }).status());
  return revisions;
}

// Checks one condition against the state visible on `db`; Aborted with a reason (naming the
// key) when it does not hold. Messages match the other backends'.
Status CheckCondition(Connection& db, const Sql& sql, const Condition& c, const Meta& meta) {
  switch (c.kind) {
    case Condition::Kind::kAbsent:
    case Condition::Kind::kModRevisionIs: {
      PLINTH_ASSIGN_OR_RETURN(auto revisions, LookupRevisions(db, sql, c.key));
      if (c.kind == Condition::Kind::kAbsent) {
        if (revisions) {
          return AbortedError("condition failed: key " + PrintableKey(c.key) + " exists");
        }
      } else if (!revisions || revisions->second != c.revision) {
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
      std::optional<std::pair<Revision, std::string>> changed;
      auto on_row = [&](Row& row) {
        changed = std::pair{row.Int(0), std::move(row.Bytes(1))};
        return Status::Ok();
      };
      if (c.span.unbounded()) {
        PLINTH_RETURN_IF_ERROR(db.Run(sql.first_change_unbounded,
                                      {Param::Int(c.revision), Param::Bytes(c.span.start)}, on_row)
                                   .status());
      } else {
        PLINTH_RETURN_IF_ERROR(
            db.Run(sql.first_change_bounded,
                   {Param::Int(c.revision), Param::Bytes(c.span.start), Param::Bytes(c.span.end)},
                   on_row)
                .status());
      }
      if (changed) {
        return AbortedError("condition failed: key " + PrintableKey(changed->second) +
                            " changed at revision " + std::to_string(changed->first) + " after " +
                            std::to_string(c.revision));
      }
      return Status::Ok();
    }
  }
  return InternalError("unknown condition kind");
}

Status ListLiveKeys(Connection& db, const Sql& sql, const KeySpan& span,
                    std::vector<std::string>* keys) {
  auto on_row = [&](Row& row) {
    keys->push_back(std::move(row.Bytes(0)));
    return Status::Ok();
  };
  if (span.unbounded()) {
    return db.Run(sql.list_keys_unbounded, {Param::Bytes(span.start)}, on_row).status();
  }
  return db.Run(sql.list_keys_bounded, {Param::Bytes(span.start), Param::Bytes(span.end)}, on_row)
      .status();
}

// ---- Connection pool -----------------------------------------------------------------------

// Connections, reused across calls. When every pooled connection is in use (for example held
// by Snapshots) a new one is opened rather than waiting, so a thread holding snapshots can
// never deadlock against itself; at most `config.pool` idle connections are kept.
class ConnectionPool {
 public:
  explicit ConnectionPool(const Config* config) : config_(config) {}

  // A connection outside any transaction; *reused says whether it was idle in the pool (and
  // so may have gone stale, e.g. across a server restart).
  StatusOr<std::unique_ptr<Connection>> Acquire(bool* reused) PLINTH_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Connection> db = std::move(idle_.back());
        idle_.pop_back();
        *reused = true;
        return db;
      }
    }
    *reused = false;
    return Connection::Open(config_->connect);
  }

  void Release(std::unique_ptr<Connection> db) PLINTH_EXCLUDES(mu_) {
    if (db->broken()) return;
    MutexLock lock(&mu_);
    if (idle_.size() < config_->pool) idle_.push_back(std::move(db));
  }

  // Closes every idle connection (after one turned out stale, the others likely are too).
  void DiscardIdle() PLINTH_EXCLUDES(mu_) {
    std::vector<std::unique_ptr<Connection>> idle;
    {
      MutexLock lock(&mu_);
      idle.swap(idle_);
    }
  }

 private:
  const Config* const config_;
  Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ PLINTH_GUARDED_BY(mu_);
};

// A connection borrowed from a pool for one scope.
class PooledConnection {
 public:
  PooledConnection(ConnectionPool* pool, std::unique_ptr<Connection> db, bool reused)
      : pool_(pool), db_(std::move(db)), reused_(reused) {}
  ~PooledConnection() {
    if (db_ != nullptr) pool_->Release(std::move(db_));
  }
  PooledConnection(PooledConnection&& other) noexcept = default;
  PooledConnection& operator=(PooledConnection&&) = delete;

  Connection& operator*() const { return *db_; }
  Connection* operator->() const { return db_.get(); }
  bool reused() const { return reused_; }

 private:
  ConnectionPool* pool_;
  std::unique_ptr<Connection> db_;
  bool reused_;
};

// ---- Change notification -------------------------------------------------------------------

// Commits through other Store objects or processes are seen by polling the meta row
// (revision and compaction point) on the notifier's own connection.
using ChangeNotifier = store::internal::PollingChangeNotifier;

// ---- In-process commit signal ----------------------------------------------------------------

// Every Store handle open on one store (same server, database and table prefix) in this
// process shares a CommitSignal, so that a commit or compaction through one handle wakes the
// watchers of every other at once instead of at their next poll.
class CommitSignal {
 public:
  static std::shared_ptr<CommitSignal> For(const std::string& store_key) {
    static Mutex registry_mu;
    static auto* registry = new std::map<std::string, std::weak_ptr<CommitSignal>>();
    MutexLock lock(&registry_mu);
    std::weak_ptr<CommitSignal>& slot = (*registry)[store_key];
    std::shared_ptr<CommitSignal> signal = slot.lock();
    if (signal == nullptr) {
      signal = std::make_shared<CommitSignal>();
      slot = signal;
    }
    // Forget the keys of closed stores.
    for (auto it = registry->begin(); it != registry->end();) {
      it = it->second.expired() ? registry->erase(it) : std::next(it);
    }
    return signal;
  }

  void Add(ChangeNotifier* notifier) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    notifiers_.push_back(notifier);
  }
  void Remove(ChangeNotifier* notifier) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    notifiers_.erase(std::remove(notifiers_.begin(), notifiers_.end(), notifier), notifiers_.end());
  }
  void NotifyAll() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    for (ChangeNotifier* notifier : notifiers_) notifier->Notify();
  }

 private:
  Mutex mu_;
  std::vector<ChangeNotifier*> notifiers_ PLINTH_GUARDED_BY(mu_);
};

// ---- Shared state --------------------------------------------------------------------------

// Everything a Store, its Snapshots and its WatchStreams share.
struct Core {
  explicit Core(Config c) : config(std::move(c)), sql(config.prefix), pool(&config) {}

  StatusOr<PooledConnection> Acquire() {
    bool reused = false;
    PLINTH_ASSIGN_OR_RETURN(auto db, pool.Acquire(&reused));
    return PooledConnection(&pool, std::move(db), reused);
  }

  // Runs `f(connection)`; if it fails on a reused connection that turned out to be lost, and
  // `retryable()` says nothing can have been applied, runs it once more on a fresh connection.
  template <typename F, typename R>
  auto WithConnection(F f, R retryable) -> decltype(f(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      PLINTH_ASSIGN_OR_RETURN(PooledConnection db, Acquire());
      auto result = f(*db);
      if (result.ok() || attempt > 0 || !db.reused() || !db->broken() || !retryable()) {
        return result;
      }
      pool.DiscardIdle();
    }
  }
  template <typename F>
  auto WithConnection(F f) -> decltype(f(std::declval<Connection&>())) {
    return WithConnection(std::move(f), [] { return true; });
  }

  // Wakes the watchers of every handle on this store in this process.
  void NotifyCommit() { signal->NotifyAll(); }

  const Config config;
  const Sql sql;
  ConnectionPool pool;
  std::unique_ptr<ChangeNotifier> notifier;
  std::shared_ptr<CommitSignal> signal;
};

// ---- Snapshot ------------------------------------------------------------------------------

class MysqlSnapshot final : public Snapshot {
 public:
  // `db` is inside the read transaction that fixes the snapshot at `revision`.
  MysqlSnapshot(std::shared_ptr<Core> core, PooledConnection db, Revision revision)
      : core_(std::move(core)), db_(std::move(db)), revision_(revision) {}
  ~MysqlSnapshot() override { RollbackQuietly(*db_); }

  Revision revision() const override { return revision_; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, core_->config.limits));
    return GetKey(*db_, core_->sql, key);
  }
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return RangeKeys(*db_, core_->sql, span, options, revision_);
  }
  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    PLINTH_ASSIGN_OR_RETURN(int64_t count, CountKeys(*db_, core_->sql, span));
    return CountResult{count, revision_};
  }

 private:
  std::shared_ptr<Core> core_;  // declared first: outlives db_, which returns to its pool
  PooledConnection db_;
  const Revision revision_;
};

// ---- Watch ---------------------------------------------------------------------------------

// Follows the change log from a revision, exactly as the sqlite backend's watch does: next_
// is the first revision not yet scanned; each Next scans forward from it and returns the
// first revision with events in the span (or a progress notice when it scanned to the current
// revision without finding one). Batches read from the log but not yet returned are kept in
// pending_, for revisions in [next_, read_through_]. State other than cancelled_ belongs to
// the one thread calling Next.
//
// A scan that fails with Unavailable (server down or restarting) changes no state; Next keeps
// retrying it every poll_interval, and fails the watch with Unavailable only once the server
// has been unreachable for longer than `timeout`. So a restart within `timeout` is invisible:
// the stream resumes at next_, missing and repeating nothing.
class MysqlWatch final : public WatchStream {
 public:
  MysqlWatch(std::shared_ptr<Core> core, KeySpan span, Revision next, WatchOptions options)
      : core_(std::move(core)),
        span_(std::move(span)),
        next_(next),
        read_through_(next - 1),
        options_(options) {
    core_->notifier->AddWatcher();
  }
  ~MysqlWatch() override { core_->notifier->RemoveWatcher(); }

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (cancelled_.load()) return CancelledError("watch cancelled");
      if (!dead_.ok()) return dead_;
      if (core_->notifier->stopped()) return UnavailableError("the mysql store was closed");
      // Taken before reading, so a commit that lands after the read still wakes the wait.
      const uint64_t seen = core_->notifier->sequence();
      StatusOr<std::optional<WatchBatch>> batch = Scan();
      auto wait_until = deadline;
      if (!batch.ok()) {
        if (batch.status().code() != StatusCode::kUnavailable) return batch.status();
        const auto now = Clock::now();
        if (!failing_since_) failing_since_ = now;
        if (now - *failing_since_ >= core_->config.connect.timeout) {
          dead_ = Status(StatusCode::kUnavailable,
                         "watch gave up after the server was unreachable for " +
                             std::to_string(core_->config.connect.timeout.count()) +
                             " ms: " + std::string(batch.status().message()) +
                             "; watch again from revision " + std::to_string(next_));
          return dead_;
        }
        wait_until = std::min(deadline, now + core_->config.poll_interval);
      } else {
        failing_since_.reset();
        if (*batch) return **std::move(batch);
      }
      if (!core_->notifier->WaitForChange(seen, wait_until, cancelled_) &&
          Clock::now() >= deadline) {
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
  // One pass over the log in one snapshot transaction: the next batch, a progress notice, or
  // nothing new. Meta and the log are read at the same snapshot, so that a concurrent
  // compaction cannot remove rows between the check against meta.compacted and the read.
  StatusOr<std::optional<WatchBatch>> Scan() {
    return core_->WithConnection([this](Connection& db) -> StatusOr<std::optional<WatchBatch>> {
      PLINTH_RETURN_IF_ERROR(StartSnapshot(db));
      StatusOr<std::optional<WatchBatch>> result = ScanIn(db);
      RollbackQuietly(db);
      return result;
    });
  }

  StatusOr<std::optional<WatchBatch>> ScanIn(Connection& db) {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, core_->sql.read_meta));
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
        PLINTH_RETURN_IF_ERROR(ReadLog(db, next_, last));
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

  // Reads the span's changes with revisions in [first, last] into pending_ (all or nothing).
  Status ReadLog(Connection& db, Revision first, Revision last) {
    std::map<Revision, std::vector<Event>> read;
    auto on_row = [&](Row& row) {
      const Revision revision = row.Int(0);
      Event event;
      event.kv.key = std::move(row.Bytes(1));
      event.kv.mod_revision = revision;
      if (row.Int(2) == internal::kOpDelete) {
        event.type = Event::Type::kDelete;
      } else {
        event.type = Event::Type::kPut;
        event.kv.value = std::move(row.Bytes(3));
        event.kv.create_revision = row.Int(4);
      }
      read[revision].push_back(std::move(event));
      return Status::Ok();
    };
    const Sql& sql = core_->sql;
    if (span_.unbounded()) {
      PLINTH_RETURN_IF_ERROR(
          db.Run(sql.read_changes_unbounded,
                 {Param::Int(first), Param::Int(last), Param::Bytes(span_.start)}, on_row)
              .status());
    } else {
      PLINTH_RETURN_IF_ERROR(db.Run(sql.read_changes_bounded,
                                    {Param::Int(first), Param::Int(last), Param::Bytes(span_.start),
                                     Param::Bytes(span_.end)},
                                    on_row)
                                 .status());
    }
    for (auto& [revision, events] : read) pending_[revision] = std::move(events);
    return Status::Ok();
  }

  const std::shared_ptr<Core> core_;
  const KeySpan span_;
  Revision next_;
  Revision read_through_;
  std::map<Revision, std::vector<Event>> pending_;
  const WatchOptions options_;
  std::atomic<bool> cancelled_{false};
  std::optional<std::chrono::steady_clock::time_point> failing_since_;
  Status dead_;  // set once the watch gave up
};

// ---- Store ---------------------------------------------------------------------------------

class MysqlStore final : public Store {
 public:
  explicit MysqlStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~MysqlStore() override {
    core_->signal->Remove(core_->notifier.get());
    core_->notifier->Stop();
  }

  std::string_view backend() const override { return "mysql"; }
  Limits limits() const override { return core_->config.limits; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, core_->config.limits));
    // One statement reads one consistent state; no explicit transaction is needed.
    return core_->WithConnection([&](Connection& db) { return GetKey(db, core_->sql, key); });
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return core_->WithConnection([&](Connection& db) -> StatusOr<RangeResult> {
      PLINTH_RETURN_IF_ERROR(StartSnapshot(db));
      auto read = [&]() -> StatusOr<RangeResult> {
        PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, core_->sql.read_meta));
        return RangeKeys(db, core_->sql, span, options, meta.current);
      };
      StatusOr<RangeResult> result = read();
      RollbackQuietly(db);
      return result;
    });
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return core_->WithConnection([&](Connection& db) -> StatusOr<CountResult> {
      PLINTH_RETURN_IF_ERROR(StartSnapshot(db));
      auto read = [&]() -> StatusOr<CountResult> {
        PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, core_->sql.read_meta));
        PLINTH_ASSIGN_OR_RETURN(int64_t count, CountKeys(db, core_->sql, span));
        return CountResult{count, meta.current};
      };
      StatusOr<CountResult> result = read();
      RollbackQuietly(db);
      return result;
    });
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    for (int attempt = 0;; ++attempt) {
      PLINTH_ASSIGN_OR_RETURN(PooledConnection db, core_->Acquire());
      Status status = StartSnapshot(*db);
      StatusOr<Meta> meta = status.ok() ? ReadMeta(*db, core_->sql.read_meta) : status;
      if (meta.ok()) {
        return std::unique_ptr<Snapshot>(new MysqlSnapshot(core_, std::move(db), meta->current));
      }
      RollbackQuietly(*db);
      if (attempt > 0 || !db.reused() || !db->broken()) return meta.status();
      core_->pool.DiscardIdle();
    }
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    PLINTH_RETURN_IF_ERROR(ValidateTxn(txn, core_->config.limits));
    // Nothing to write: check the conditions at one snapshot and leave the lock to writers.
    if (txn.ops.empty()) return CheckConditionsOnly(txn);

    bool commit_sent = false;
    Applied applied;
    StatusOr<Revision> result = core_->WithConnection(
        [&](Connection& db) -> StatusOr<Revision> {
          PLINTH_RETURN_IF_ERROR(db.Exec(kStartWrite));
          StatusOr<Applied> got = ApplyLocked(db, txn);
          if (!got.ok() || !got->changed) {
            RollbackQuietly(db);
            if (!got.ok()) return got.status();
            return got->revision;
          }
          applied = *got;
          commit_sent = true;
          if (Status status = db.Exec(kCommit); !status.ok()) {
            if (db.broken()) {
              return Status(status.code(), std::string(status.message()) +
                                               "; the outcome of the commit is unknown");
            }
            RollbackQuietly(db);
            return Status(status.code(), std::string(status.message()) + "; nothing was applied");
          }
          return got->revision;
        },
        [&] { return !commit_sent; });
    if (!result.ok() || !commit_sent) return result;
    core_->NotifyCommit();
    // Automatic retention, amortised: only when the history has doubled past the setting.
    const int64_t retention = core_->config.retention;
    if (retention > 0 && applied.revision - applied.compacted > 2 * retention) {
      // The commit already succeeded; a failed compaction is retried by a later commit.
      Compact(applied.revision - retention).IgnoreError();
    }
    return result;
  }

  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    if (from_revision < 0) return InvalidArgumentError("from_revision is negative");
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMetaNow());
    if (from_revision == 0) from_revision = meta.current + 1;
    if (from_revision <= meta.compacted) {
      return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                             ": history through " + std::to_string(meta.compacted) +
                             " was compacted");
    }
    return std::unique_ptr<WatchStream>(new MysqlWatch(core_, span, from_revision, options));
  }

  StatusOr<Revision> CurrentRevision() override {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMetaNow());
    return meta.current;
  }

  Status Compact(Revision revision) override {
    PLINTH_ASSIGN_OR_RETURN(
        bool advanced, core_->WithConnection([&](Connection& db) -> StatusOr<bool> {
          PLINTH_RETURN_IF_ERROR(db.Exec(kStartWrite));
          auto record = [&]() -> StatusOr<bool> {
            PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, core_->sql.lock_meta));
            if (revision > meta.current) {
              return OutOfRangeError("cannot compact to revision " + std::to_string(revision) +
                                     " beyond the current revision " +
                                     std::to_string(meta.current));
            }
            if (revision <= meta.compacted) return false;
            PLINTH_RETURN_IF_ERROR(
                db.Run(core_->sql.set_compacted, {Param::Int(revision)}).status());
            return true;
          };
          StatusOr<bool> recorded = record();
          if (!recorded.ok() || !*recorded) {
            RollbackQuietly(db);
            return recorded;
          }
          // Compaction is idempotent: retrying after an unknown outcome is harmless.
          PLINTH_RETURN_IF_ERROR(db.Exec(kCommit));
          return true;
        }));
    if (!advanced) return Status::Ok();
    core_->NotifyCommit();  // watchers behind the new compaction point must fail now
    // Readers never look at or below the recorded point, so its rows can go outside the lock,
    // in batches. Rows left behind by a failure here go with the next compaction.
    core_
        ->WithConnection([&](Connection& db) -> Status {
          while (true) {
            PLINTH_ASSIGN_OR_RETURN(uint64_t deleted, db.Run(core_->sql.delete_changes_through,
                                                             {Param::Int(revision)}));
            if (deleted < static_cast<uint64_t>(kCompactBatchRows)) return Status::Ok();
          }
        })
        .IgnoreError();
    return Status::Ok();
  }

  StatusOr<Revision> CompactedRevision() override {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMetaNow());
    return meta.compacted;
  }

 private:
  struct Applied {
    Revision revision = 0;   // the new revision, or the current one when nothing changed
    bool changed = false;    // false: nothing to commit
    Revision compacted = 0;  // the compaction point the transaction saw
  };

  StatusOr<Meta> ReadMetaNow() {
    return core_->WithConnection(
        [&](Connection& db) { return ReadMeta(db, core_->sql.read_meta); });
  }

  StatusOr<Revision> CheckConditionsOnly(const TxnRequest& txn) {
    return core_->WithConnection([&](Connection& db) -> StatusOr<Revision> {
      PLINTH_RETURN_IF_ERROR(StartSnapshot(db));
      auto check = [&]() -> StatusOr<Revision> {
        PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, core_->sql.read_meta));
        for (const Condition& c : txn.conditions) {
          PLINTH_RETURN_IF_ERROR(CheckCondition(db, core_->sql, c, meta));
        }
        return meta.current;
      };
      StatusOr<Revision> result = check();
      RollbackQuietly(db);
      return result;
    });
  }

  // Locks the revision counter, checks the conditions and writes the transaction's effects;
  // `db` is inside a READ COMMITTED transaction. The caller commits or rolls back.
  StatusOr<Applied> ApplyLocked(Connection& db, const TxnRequest& txn) {
    const Sql& sql = core_->sql;
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, sql.lock_meta));
    for (const Condition& c : txn.conditions) {
      PLINTH_RETURN_IF_ERROR(CheckCondition(db, sql, c, meta));
    }
    PLINTH_ASSIGN_OR_RETURN(store::internal::Overlay overlay,
                            store::internal::ResolveOps(
                                txn.ops, [&](const KeySpan& span, std::vector<std::string>* keys) {
                                  return ListLiveKeys(db, sql, span, keys);
                                }));

    // Holding the revision lock, the new revision is the current one plus one.
    const Revision revision = meta.current + 1;
    std::vector<const std::string*> keys;
    keys.reserve(overlay.size());
    for (const auto& entry : overlay) keys.push_back(&entry.first);
    std::map<std::string, Revision> created;  // the keys that exist -> their create_rev
    const size_t batch_bytes = core_->config.batch_bytes;
    for (size_t i = 0; i < keys.size();) {
      const size_t n =
          NextBatch(i, keys.size(), batch_bytes, [&](size_t j) { return keys[j]->size(); });
      std::vector<Param> params;
      for (size_t j = i; j < i + n; ++j) params.push_back(Param::Bytes(*keys[j]));
      PLINTH_RETURN_IF_ERROR(db.Run(Tuples(sql.lookup_head, "?", n, ")"), params, [&](Row& row) {
                                 created.emplace(std::move(row.Bytes(0)), row.Int(1));
                                 return Status::Ok();
                               }).status());
      i += n;
    }
    struct Effect {
      const std::string* key;
      const std::string* value;  // nullptr: delete
      Revision create_revision;
      size_t bytes() const { return key->size() + (value != nullptr ? value->size() : 0); }
    };
    std::vector<Effect> effects, puts, deletes;  // each in key order: overlay is a std::map
    effects.reserve(overlay.size());
    for (const auto& [key, value] : overlay) {
      auto it = created.find(key);
      if (value) {
        effects.push_back(Effect{&key, &*value, it != created.end() ? it->second : revision});
        puts.push_back(effects.back());
      } else if (it != created.end()) {
        effects.push_back(Effect{&key, nullptr, 0});
        deletes.push_back(effects.back());
      }
    }
    if (effects.empty()) return Applied{meta.current, false, meta.compacted};

    PLINTH_RETURN_IF_ERROR(db.Run(sql.set_revision, {Param::Int(revision)}).status());
    // Multi-row statements, in batches (NextBatch).
    for (size_t i = 0; i < puts.size();) {
      const size_t n =
          NextBatch(i, puts.size(), batch_bytes, [&](size_t j) { return puts[j].bytes(); });
      std::vector<Param> params;
      for (size_t j = i; j < i + n; ++j) {
        params.push_back(Param::Bytes(*puts[j].key));
        params.push_back(Param::Bytes(*puts[j].value));
        params.push_back(Param::Int(puts[j].create_revision));
        params.push_back(Param::Int(revision));
      }
      PLINTH_RETURN_IF_ERROR(
          db.Run(Tuples(sql.upsert_head, "(?, ?, ?, ?)", n, sql.upsert_tail), params).status());
      i += n;
    }
    for (size_t i = 0; i < deletes.size();) {
      const size_t n =
          NextBatch(i, deletes.size(), batch_bytes, [&](size_t j) { return deletes[j].bytes(); });
      std::vector<Param> params;
      for (size_t j = i; j < i + n; ++j) params.push_back(Param::Bytes(*deletes[j].key));
      PLINTH_RETURN_IF_ERROR(db.Run(Tuples(sql.delete_head, "?", n, ")"), params).status());
      i += n;
    }
    for (size_t i = 0; i < effects.size();) {
      const size_t n =
          NextBatch(i, effects.size(), batch_bytes, [&](size_t j) { return effects[j].bytes(); });
      std::vector<Param> params;
      for (size_t j = i; j < i + n; ++j) {
        const Effect& e = effects[j];
        params.push_back(Param::Int(revision));
        params.push_back(Param::Int(static_cast<int64_t>(j)));  // seq: key order
        params.push_back(Param::Bytes(*e.key));
        if (e.value != nullptr) {
          params.push_back(Param::Int(internal::kOpPut));
          params.push_back(Param::Bytes(*e.value));
          params.push_back(Param::Int(e.create_revision));
        } else {
          params.push_back(Param::Int(internal::kOpDelete));
          params.push_back(Param::Null());
          params.push_back(Param::Null());
        }
      }
      PLINTH_RETURN_IF_ERROR(
          db.Run(Tuples(sql.change_head, "(?, ?, ?, ?, ?, ?)", n, ""), params).status());
      i += n;
    }
    return Applied{revision, true, meta.compacted};
  }

  const std::shared_ptr<Core> core_;
};

// Checks that one key and value of the configured sizes fit the server's max_allowed_packet,
// lowering a default max_value_bytes to fit.
Status FitPacket(Connection& db, Config& config) {
  int64_t packet = 0;
  PLINTH_RETURN_IF_ERROR(db.Run("SELECT @@max_allowed_packet", {}, [&](Row& row) {
                             packet = row.IsNull(0) ? 0 : row.Int(0);
                             return Status::Ok();
                           }).status());
  if (packet <= 0) return Status::Ok();  // unknown: trust the configuration
  const size_t room = static_cast<size_t>(packet);
  config.batch_bytes = std::clamp<size_t>(room / 4, 1, size_t{4} << 20);
  const size_t needed =
      config.limits.max_key_bytes + config.limits.max_value_bytes + kPacketOverhead;
  if (needed <= room) return Status::Ok();
  if (config.max_value_given || room <= config.limits.max_key_bytes + kPacketOverhead) {
    return FailedPreconditionError(
        "mysql store " + config.connect.label +
        ": max_value_bytes=" + std::to_string(config.limits.max_value_bytes) +
        " with max_key_bytes=" + std::to_string(config.limits.max_key_bytes) +
        " needs the server's max_allowed_packet to be " + "at least " + std::to_string(needed) +
        " bytes; it is " + std::to_string(packet) +
        " (raise it on the server, or lower max_value_bytes)");
  }
  config.limits.max_value_bytes = room - config.limits.max_key_bytes - kPacketOverhead;
  return Status::Ok();
}

}  // namespace

Limits DefaultLimits() {
  Limits l;
  l.max_key_bytes = 3072;
  l.max_value_bytes = 16 << 20;
  l.max_ops_per_txn = 100'000;
  l.max_txn_bytes = 256 << 20;
  return l;
}

Limits LimitCeilings() {
  Limits l;
  l.max_key_bytes = 3072;
  l.max_value_bytes = 512 << 20;
  l.max_ops_per_txn = 1'000'000;
  l.max_txn_bytes = size_t{1} << 30;
  return l;
}

StatusOr<std::unique_ptr<Store>> OpenMysqlStore(const StoreUrl& url, const OpenOptions&) {
  PLINTH_ASSIGN_OR_RETURN(Config config, ParseConfig(url));
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> db, Connection::Open(config.connect));
  PLINTH_RETURN_IF_ERROR(
      internal::EnsureSchema(*db, config.connect.database, config.prefix, config.connect.timeout));
  PLINTH_RETURN_IF_ERROR(ReadMeta(*db, Sql(config.prefix).read_meta).status());
  PLINTH_RETURN_IF_ERROR(FitPacket(*db, config));
  auto core = std::make_shared<Core>(std::move(config));
  core->pool.Release(std::move(db));
  core->notifier = std::make_unique<ChangeNotifier>(
      core->config.poll_interval,
      [config = &core->config, sql = &core->sql,
       db = std::shared_ptr<Connection>()]() mutable -> StatusOr<std::string> {
        if (db == nullptr || db->broken()) {  // reconnect when the connection was lost
          db.reset();
          PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> fresh,
                                  Connection::Open(config->connect));
          db = std::move(fresh);
        }
        PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(*db, sql->read_meta));
        return std::to_string(meta.current) + ":" + std::to_string(meta.compacted);
      });
  core->notifier->Start();
  core->signal = CommitSignal::For(core->config.connect.label);
  core->signal->Add(core->notifier.get());
  return std::unique_ptr<Store>(new MysqlStore(std::move(core)));
}

}  // namespace plinth::store::mysql
