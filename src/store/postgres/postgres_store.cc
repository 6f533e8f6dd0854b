// The postgres backend. How it meets the store contract (store.h):
//
//   Revisions   every write transaction first locks the meta row (SELECT ... FOR UPDATE) and
//               holds it to commit; the new revision is meta.revision + 1. Writers (in every
//               process) are thus serialised, so revisions are gap-free and in commit order,
//               and conditions are checked against a state no other writer can change.
//   Writes      one transaction on a pooled connection: lock meta, check conditions, resolve
//               the operations (internal::ResolveOps), then bump the counter, upsert/delete
//               kv rows and append `changes` rows in batches, NOTIFY the store's channel with
//               the revision, COMMIT.
//   Reads       Get is one statement; Range and Count read meta and the data in one REPEATABLE
//               READ READ ONLY transaction, so the revision matches the data. A Snapshot keeps
//               such a transaction open on a connection of its own.
//   Watch       watchers tail `changes` by revision, exactly as the sqlite backend's. One
//               LISTEN connection per Store wakes them on every commit in any process; they
//               also re-read the log every poll_interval, so a lost notification only delays.
//               The listener LISTENs before it signals the watchers to catch up, so nothing
//               falls between; after a server restart it reconnects and they resume from
//               their next revision.
//   Failures    pooled connections found broken are discarded and replaced; a call that
//               failed on a stale connection before the server answered anything is retried
//               once on a fresh one. Everything waits at most `timeout`.
//   Compaction  deletes `changes` rows up to a revision and records it in meta.compacted.
#include "store/postgres/postgres_store.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "store/internal/txn_effects.h"
#include "store/postgres/internal/pg_conn.h"
#include "store/postgres/internal/schema.h"

namespace plinth::store::postgres {
namespace {

using internal::Connection;
using internal::Params;
using internal::Result;
using SteadyClock = std::chrono::steady_clock;

constexpr Oid kInt8Oid = 20;

// ---- SQL ------------------------------------------------------------------------------------
// Spans with and without an upper bound use separate statements, so that the planner uses
// both bounds of the primary key.

constexpr char kBegin[] = "BEGIN";
constexpr char kBeginRead[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
constexpr char kCommit[] = "COMMIT";

constexpr char kReadMeta[] = "SELECT revision, compacted FROM meta WHERE id = 0";
constexpr char kLockMeta[] = "SELECT revision, compacted FROM meta WHERE id = 0 FOR UPDATE";
constexpr char kSetCompacted[] = "UPDATE meta SET compacted = $1 WHERE id = 0";

constexpr char kGetKey[] = "SELECT value, create_rev, mod_rev FROM kv WHERE key = $1";
constexpr char kGetRevisions[] = "SELECT create_rev, mod_rev FROM kv WHERE key = $1";
constexpr char kRangeBounded[] =
    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= $1 AND key < $2 "
    "ORDER BY key LIMIT $3";
constexpr char kRangeUnbounded[] =
    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= $1 ORDER BY key LIMIT $2";
constexpr char kRangeKeysBounded[] =
    "SELECT key, ''::bytea, create_rev, mod_rev FROM kv WHERE key >= $1 AND key < $2 "
    "ORDER BY key LIMIT $3";
constexpr char kRangeKeysUnbounded[] =
    "SELECT key, ''::bytea, create_rev, mod_rev FROM kv WHERE key >= $1 ORDER BY key LIMIT $2";
constexpr char kCountBounded[] = "SELECT count(*) FROM kv WHERE key >= $1 AND key < $2";
constexpr char kCountUnbounded[] = "SELECT count(*) FROM kv WHERE key >= $1";
constexpr char kListKeysBounded[] = "SELECT key FROM kv WHERE key >= $1 AND key < $2 ORDER BY key";
constexpr char kListKeysUnbounded[] = "SELECT key FROM kv WHERE key >= $1 ORDER BY key";
constexpr char kLookupCreateRevisions[] = "SELECT key, create_rev FROM kv WHERE key = ANY($1)";
// A write transaction's effects in one statement (one round trip): the counter, the kv upserts
// and deletes (disjoint keys), the change log rows and the notification. Data-modifying WITH
// clauses run exactly once whether or not the main query reads them. Change log ops: 1 =
// internal::kOpPut, 2 = internal::kOpDelete.
constexpr char kApplyEffects[] =
    "WITH bump AS (UPDATE meta SET revision = $1 WHERE id = 0), "
    "puts AS (INSERT INTO kv (key, value, create_rev, mod_rev) "
    "SELECT k, v, c, $1 FROM unnest($2::bytea[], $3::bytea[], $4::bigint[]) AS t(k, v, c) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, create_rev = excluded.create_rev, "
    "mod_rev = excluded.mod_rev), "
    "dels AS (DELETE FROM kv WHERE key = ANY($5::bytea[])), "
    "log AS (INSERT INTO changes (rev, key, op, value, create_rev) "
    "SELECT $1, k, 1, v, c FROM unnest($2::bytea[], $3::bytea[], $4::bigint[]) AS t(k, v, c) "
    "UNION ALL SELECT $1, k, 2, NULL, NULL FROM unnest($5::bytea[]) AS t(k)) "
    "SELECT pg_notify($6, $7)";
constexpr char kNotify[] = "SELECT pg_notify($1, $2)";

constexpr char kFirstChangeBounded[] =
    "SELECT rev, key FROM changes WHERE rev > $1 AND key >= $2 AND key < $3 "
    "ORDER BY rev, key LIMIT 1";
constexpr char kFirstChangeUnbounded[] =
    "SELECT rev, key FROM changes WHERE rev > $1 AND key >= $2 ORDER BY rev, key LIMIT 1";
constexpr char kReadChangesBounded[] =
    "SELECT rev, key, op, value, create_rev FROM changes "
    "WHERE rev >= $1 AND rev <= $2 AND key >= $3 AND key < $4 ORDER BY rev, key";
constexpr char kReadChangesUnbounded[] =
    "SELECT rev, key, op, value, create_rev FROM changes "
    "WHERE rev >= $1 AND rev <= $2 AND key >= $3 ORDER BY rev, key";
constexpr char kDeleteChangesThrough[] = "DELETE FROM changes WHERE rev <= $1";

// How many revisions a watcher reads from the change log per query, bounding its buffer.
constexpr Revision kWatchRevisionsPerRead = 256;
// How often a watcher retries while the server cannot be reached.
constexpr std::chrono::milliseconds kRetryInterval{100};

// ---- Configuration -------------------------------------------------------------------------

struct Config {
  internal::ConnectConfig connect;
  std::string schema = "public";
  std::string channel;  // LISTEN/NOTIFY channel of the schema
  int64_t retention = kDefaultRetention;
  size_t pool_size = 4;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds timeout{5000};
  Limits limits;
};

std::string Decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// A stable (across processes and builds) name for the schema's notification channel.
std::string ChannelName(const std::string& schema) {
  std::string channel = "plinth_" + schema;
  if (channel.size() <= 63) return channel;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : schema) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return "plinth_" + std::string(buf);
}

// The URL as given, with any password replaced by "***", for messages.
std::string RedactedText(const std::string& text) {
  const size_t start = text.find("://");
  if (start == std::string::npos) return text;
  const size_t end = std::min(text.find('/', start + 3), text.find('?', start + 3));
  const size_t at = text.rfind('@', end);
  if (at == std::string::npos || at < start + 3) return text;
  const size_t colon = text.find(':', start + 3);
  if (colon == std::string::npos || colon > at) return text;
  return text.substr(0, colon + 1) + "***" + text.substr(at);
}

Status ParseLocation(const StoreUrl& url, Config* config, std::string* label) {
  const std::string bad = "postgres store URL \"" + RedactedText(url.text) + "\"";
  std::string_view rest = url.text;
  rest = rest.substr(rest.find("://") + 3);
  rest = rest.substr(0, rest.find('?'));
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string dbname = slash == std::string_view::npos ? "" : Decode(rest.substr(slash + 1));
  if (dbname.find('/') != std::string::npos) {
    return InvalidArgumentError(bad + " has a database name with a \"/\"");
  }
  std::string user, password;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    user = Decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) password = Decode(userinfo.substr(colon + 1));
  }
  std::vector<std::string> host_list, port_list;
  while (!authority.empty()) {
    const size_t comma = authority.find(',');
    std::string_view one = authority.substr(0, comma);
    authority = comma == std::string_view::npos ? "" : authority.substr(comma + 1);
    std::string_view host = one, port;
    if (!one.empty() && one[0] == '[') {
      const size_t close = one.find(']');
      if (close == std::string_view::npos) {
        return InvalidArgumentError(bad + " has an unterminated [IPv6] host");
      }
      host = one.substr(1, close - 1);
      std::string_view after = one.substr(close + 1);
      if (!after.empty()) {
        if (after[0] != ':') return InvalidArgumentError(bad + " has garbage after \"]\"");
        port = after.substr(1);
      }
    } else if (const size_t colon = one.rfind(':'); colon != std::string_view::npos) {
      host = one.substr(0, colon);
      port = one.substr(colon + 1);
    }
    for (char c : port) {
      if (c < '0' || c > '9') {
        return InvalidArgumentError(bad + " has a bad port \"" + std::string(port) + "\"");
      }
    }
    host_list.push_back(Decode(host));
    port_list.emplace_back(port);
  }
  // libpq pairs the i-th port with the i-th host (an empty one is the default port); with no
  // port at all, none is passed.
  std::string hosts, ports, where;
  bool any_port = false;
  for (size_t i = 0; i < host_list.size(); ++i) {
    hosts += (i > 0 ? "," : "") + host_list[i];
    where += (i > 0 ? "," : "") + host_list[i] + (port_list[i].empty() ? "" : ":" + port_list[i]);
    ports += (i > 0 ? "," : "") + port_list[i];
    any_port = any_port || !port_list[i].empty();
  }
  if (!any_port) ports.clear();
  auto add = [config](std::string key, std::string value) {
    if (!value.empty()) config->connect.params.emplace_back(std::move(key), std::move(value));
  };
  add("host", hosts);
  add("port", ports);
  add("dbname", dbname);
  add("user", user);
  add("password", password);
  *label = url.scheme + "://" + (user.empty() ? "" : user + "@") + where + "/" + dbname;
  return Status::Ok();
}

StatusOr<Config> ParseConfig(const StoreUrl& url) {
  Config config;
  std::string label;
  PLINTH_RETURN_IF_ERROR(ParseLocation(url, &config, &label));

  // UrlOptions quotes the URL in its messages: never the password.
  StoreUrl redacted = url;
  redacted.text = RedactedText(url.text);
  UrlOptions options(redacted);
  if (std::optional<std::string> schema = options.TakeString("schema")) {
    bool ok = !schema->empty() && schema->size() <= 63 && schema->rfind("pg_", 0) != 0;
    for (char c : *schema) {
      ok = ok &&
           ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    }
    if (!ok) {
      return InvalidArgumentError("option \"schema\" of postgres store URL is \"" + *schema +
                                  "\"; expected 1 to 63 of [A-Za-z0-9_], not starting with pg_");
    }
    config.schema = *schema;
  }
  config.channel = ChannelName(config.schema);
  PLINTH_ASSIGN_OR_RETURN(auto retention,
                          options.TakeInt("retention", 0, std::numeric_limits<int64_t>::max() / 4));
  if (retention) config.retention = *retention;
  PLINTH_ASSIGN_OR_RETURN(auto pool, options.TakeInt("pool", 1, 256));
  if (pool) config.pool_size = static_cast<size_t>(*pool);
  PLINTH_ASSIGN_OR_RETURN(auto poll_interval, options.TakeDuration("poll_interval"));
  if (poll_interval) {
    if (*poll_interval < std::chrono::milliseconds(1) || *poll_interval > std::chrono::hours(1)) {
      return InvalidArgumentError(
          "option \"poll_interval\" of postgres store URL is not in 1ms..1h");
    }
    config.poll_interval = *poll_interval;
  }
  PLINTH_ASSIGN_OR_RETURN(auto timeout, options.TakeDuration("timeout"));
  if (timeout) {
    if (*timeout < std::chrono::milliseconds(100) || *timeout > std::chrono::hours(1)) {
      return InvalidArgumentError("option \"timeout\" of postgres store URL is not in 100ms..1h");
    }
    config.timeout = *timeout;
  }
  PLINTH_ASSIGN_OR_RETURN(config.limits,
                          TakeLimitOptions(options, DefaultLimits(), LimitCeilings()));

  // Every other option that libpq knows is libpq's.
  bool has_connect_timeout = false, has_user_timeout = false, has_application_name = false;
  if (PQconninfoOption* defaults = PQconndefaults(); defaults != nullptr) {
    for (PQconninfoOption* o = defaults; o->keyword != nullptr; ++o) {
      const std::string keyword = o->keyword;
      if (keyword == "replication") continue;
      std::optional<std::string> value = options.TakeString(keyword);
      if (!value) continue;
      auto& params = config.connect.params;
      params.erase(std::remove_if(params.begin(), params.end(),
                                  [&](const auto& p) { return p.first == keyword; }),
                   params.end());
      params.emplace_back(keyword, *value);
      has_connect_timeout = has_connect_timeout || keyword == "connect_timeout";
      has_user_timeout = has_user_timeout || keyword == "tcp_user_timeout";
      has_application_name = has_application_name || keyword == "application_name";
    }
    PQconninfoFree(defaults);
  }
  PLINTH_RETURN_IF_ERROR(options.CheckAllTaken());

  auto& params = config.connect.params;
  if (!has_connect_timeout) {
    // libpq's own bound per host (whole seconds, at least 2); ours (Connection::Open) is exact.
    params.emplace_back("connect_timeout", std::to_string(std::max<int64_t>(
                                               2, (config.timeout.count() + 999) / 1000)));
  }
  if (!has_user_timeout) {
    // Unacknowledged data (to a vanished server) fails the connection after this long.
    params.emplace_back("tcp_user_timeout", std::to_string(config.timeout.count()));
  }
  if (!has_application_name) params.emplace_back("fallback_application_name", "plinth");
  config.connect.label = label + "?schema=" + config.schema;
  config.connect.schema = config.schema;
  config.connect.timeout = config.timeout;
  return config;
}

// ---- Connection pool -----------------------------------------------------------------------

class Pool;

// A connection borrowed from the Pool for one scope; returned (or discarded, if broken) when
// destroyed.
class Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<Connection> db, bool counted, bool reused)
      : pool_(pool), db_(std::move(db)), counted_(counted), reused_(reused) {}
  ~Lease();
  Lease(Lease&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)),
        db_(std::move(other.db_)),
        counted_(other.counted_),
        reused_(other.reused_) {}
  Lease& operator=(Lease&&) = delete;

  Connection& operator*() const { return *db_; }
  Connection* operator->() const { return db_.get(); }
  bool reused() const { return reused_; }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> db_;
  bool counted_;
  bool reused_;
};

// Up to pool_size connections in use at once by calls (counted leases); Snapshots take extra,
// uncounted ones. At most pool_size idle connections are kept.
class Pool {
 public:
  explicit Pool(const Config* config) : config_(config) {}

  // `counted`: waits (up to timeout) while pool_size counted leases are out. `fresh`: never
  // reuse an idle connection.
  StatusOr<Lease> Acquire(bool counted, bool fresh = false) PLINTH_EXCLUDES(mu_) {
    std::vector<std::unique_ptr<Connection>> dead;
    std::unique_ptr<Connection> db;
    {
      MutexLock lock(&mu_);
      if (counted) {
        const auto deadline = SteadyClock::now() + config_->timeout;
        while (in_use_ >= config_->pool_size) {
          if (!WaitFreed(deadline) && in_use_ >= config_->pool_size) {
            return UnavailableError("postgres store " + config_->connect.label + ": all " +
                                    std::to_string(config_->pool_size) +
                                    " pooled connections stayed busy for " +
                                    std::to_string(config_->timeout.count()) + " ms");
          }
        }
        ++in_use_;
      }
      while (!fresh && !idle_.empty() && db == nullptr) {
        db = std::move(idle_.back());
        idle_.pop_back();
        if (!db->CheckAlive()) dead.push_back(std::move(db));
      }
    }
    dead.clear();  // closed outside the lock
    const bool reused = db != nullptr;
    if (db == nullptr) {
      StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(config_->connect);
      if (!opened.ok()) {
        if (counted) Return(nullptr, true);
        return opened.status();
      }
      db = std::move(opened).value();
    }
    return Lease(this, std::move(db), counted, reused);
  }

  void Return(std::unique_ptr<Connection> db, bool counted) PLINTH_EXCLUDES(mu_) {
    if (db != nullptr) {
      db->RollbackQuietly();
      if (db->broken() || db->in_transaction()) db.reset();
    }
    MutexLock lock(&mu_);
    if (counted) --in_use_;
    if (db != nullptr && idle_.size() < config_->pool_size) idle_.push_back(std::move(db));
    freed_.Signal();
  }

 private:
  bool WaitFreed(SteadyClock::time_point deadline) PLINTH_REQUIRES(mu_) {
    return freed_.WaitUntil(deadline);
  }

  const Config* const config_;
  Mutex mu_;
  CondVar freed_{&mu_};
  size_t in_use_ PLINTH_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<Connection>> idle_ PLINTH_GUARDED_BY(mu_);
};

Lease::~Lease() {
  if (pool_ != nullptr && (db_ != nullptr || counted_)) pool_->Return(std::move(db_), counted_);
}

// ---- Change notification -------------------------------------------------------------------

// Wakes watchers when the store may have changed: Notify() after a commit through this Store,
// and a listener thread holding a LISTEN connection, for commits by anyone. The sequence
// number moves on every possible change. The thread starts with the first watcher.
class ChangeNotifier {
 public:
  explicit ChangeNotifier(const Config* config) : config_(config) {
    if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) wake_pipe_[0] = wake_pipe_[1] = -1;
  }
  ~ChangeNotifier() {
    Stop();
    if (wake_pipe_[0] >= 0) ::close(wake_pipe_[0]);
    if (wake_pipe_[1] >= 0) ::close(wake_pipe_[1]);
  }

  // Stops and joins the listener thread; watchers blocked in WaitForChange return.
  void Stop() PLINTH_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      stop_ = true;
      changed_.SignalAll();
    }
    WakeThread();
    if (thread_.joinable()) thread_.join();
  }

  bool stopped() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return stop_;
  }

  void Notify() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++sequence_;
    changed_.SignalAll();
  }

  uint64_t sequence() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return sequence_;
  }

  // Waits until the sequence differs from `seen`, `cancelled` is set (followed by Wake()), the
  // notifier stops, or `deadline` passes. Returns false only on timeout.
  bool WaitForChange(uint64_t seen, SteadyClock::time_point deadline,
                     const std::atomic<bool>& cancelled) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    while (sequence_ == seen && !cancelled.load() && !stop_) {
      if (!WaitChangedUntil(deadline)) {
        return sequence_ != seen || cancelled.load() || stop_;
      }
    }
    return true;
  }

  void Wake() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    changed_.SignalAll();
  }

  void AddWatcher() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (!started_ && !stop_) {
      started_ = true;
      thread_ = std::thread([this] { ListenLoop(); });
    }
  }

  // Since when the LISTEN connection has been down (nullopt while it is up).
  std::optional<SteadyClock::time_point> down_since() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return down_since_;
  }

 private:
  bool WaitChangedUntil(SteadyClock::time_point deadline) PLINTH_REQUIRES(mu_) {
    return changed_.WaitUntil(deadline);
  }

  void WakeThread() {
    if (wake_pipe_[1] >= 0) {
      const char c = 1;
      [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &c, 1);
    }
  }

  void DrainWakePipe() {
    char buf[64];
    while (wake_pipe_[0] >= 0 && ::read(wake_pipe_[0], buf, sizeof(buf)) > 0) {
    }
  }

  void Bump() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++sequence_;
    changed_.SignalAll();
  }

  void ListenLoop() PLINTH_EXCLUDES(mu_) {
    std::unique_ptr<Connection> db;
    while (!stopped()) {
      if (db == nullptr || db->broken()) {
        db.reset();
        StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(config_->connect);
        Status status = opened.status();
        if (opened.ok()) {
          status = (*opened)->ExecSimple("LISTEN " + internal::QuoteIdent(config_->channel));
        }
        if (status.ok()) {
          db = std::move(opened).value();
          MutexLock lock(&mu_);
          down_since_.reset();
          // Listening now: watchers re-read the log, so that whatever was committed while the
          // connection was down (or before it existed) is found.
          ++sequence_;
          changed_.SignalAll();
        } else {
          {
            MutexLock lock(&mu_);
            if (!down_since_) down_since_ = SteadyClock::now();
            changed_.SignalAll();  // watchers check down_since
          }
          const auto retry = std::min<std::chrono::milliseconds>(config_->poll_interval,
                                                                 std::chrono::milliseconds(250));
          pollfd p{wake_pipe_[0], POLLIN, 0};
          ::poll(&p, wake_pipe_[0] >= 0 ? 1 : 0, static_cast<int>(retry.count()));
          DrainWakePipe();
          continue;
        }
      }
      const int ready = db->WaitReadable(SteadyClock::now() + std::chrono::hours(1), wake_pipe_[0]);
      DrainWakePipe();
      if (ready < 0) {
        db.reset();
        MutexLock lock(&mu_);
        down_since_ = SteadyClock::now();
        continue;
      }
      if (ready == 0) continue;
      if (PQconsumeInput(db->get()) == 0) {
        db.reset();
        MutexLock lock(&mu_);
        down_since_ = SteadyClock::now();
        continue;
      }
      bool any = false;
      while (PGnotify* n = PQnotifies(db->get())) {
        any = true;
        PQfreemem(n);
      }
      if (any) Bump();
      if (db->broken()) {
        db.reset();
        MutexLock lock(&mu_);
        down_since_ = SteadyClock::now();
      }
    }
  }

  const Config* const config_;
  int wake_pipe_[2] = {-1, -1};
  Mutex mu_;
  CondVar changed_{&mu_};
  uint64_t sequence_ PLINTH_GUARDED_BY(mu_) = 0;
  bool stop_ PLINTH_GUARDED_BY(mu_) = false;
  bool started_ PLINTH_GUARDED_BY(mu_) = false;
  std::optional<SteadyClock::time_point> down_since_ PLINTH_GUARDED_BY(mu_);
  std::thread thread_;
};

// ---- Shared state --------------------------------------------------------------------------

struct Core {
  explicit Core(Config c) : config(std::move(c)), pool(&config), notifier(&config) {}

  // Runs `body` on a pooled connection. If it fails on a reused connection that turns out to be
  // broken before the server answered anything (a connection the server closed while it was
  // idle, e.g. across a restart), it runs once more on a fresh connection: nothing was done.
  template <typename T>
  StatusOr<T> Run(const std::function<StatusOr<T>(Connection&)>& body) {
    for (int attempt = 0;; ++attempt) {
      PLINTH_ASSIGN_OR_RETURN(Lease db, pool.Acquire(true, attempt > 0));
      db->ResetActivity();
      StatusOr<T> result = body(*db);
      if (!result.ok() && attempt == 0 && db.reused() && db->broken() && !db->answered()) {
        continue;
      }
      return result;
    }
  }

  const Config config;
  Pool pool;
  ChangeNotifier notifier;
};

// ---- Small query helpers -------------------------------------------------------------------

struct Meta {
  Revision current = 0;
  Revision compacted = 0;
};

StatusOr<Meta> ReadMeta(Connection& db, bool lock = false) {
  PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(lock ? kLockMeta : kReadMeta));
  if (r.rows() == 0) {
    return DataLossError("postgres store " + db.label() +
                         ": the meta table has lost its revision row");
  }
  return Meta{r.Int64(0, 0), r.Int64(0, 1)};
}

StatusOr<KeyValue> GetKey(Connection& db, std::string_view key) {
  PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(kGetKey, Params().Bytes(key)));
  if (r.rows() == 0) return NotFoundError("key " + PrintableKey(key) + " not found");
  return KeyValue{std::string(key), r.Bytes(0, 0), r.Int64(0, 1), r.Int64(0, 2)};
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
  Params params;
  params.Bytes(start);
  if (!span.unbounded()) params.Bytes(span.end);
  // One row beyond the limit tells whether there are more.
  const bool limited = options.limit != 0 &&
                       options.limit < static_cast<size_t>(std::numeric_limits<int64_t>::max());
  if (limited) {
    params.Int64(static_cast<int64_t>(options.limit) + 1);
  } else {
    params.Null(kInt8Oid);
  }
  PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(sql, params));
  const int rows = r.rows();
  result.kvs.reserve(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    if (limited && result.kvs.size() == options.limit) {
      result.more = true;
      break;
    }
    result.kvs.push_back(KeyValue{r.Bytes(i, 0), r.Bytes(i, 1), r.Int64(i, 2), r.Int64(i, 3)});
  }
  return result;
}

StatusOr<int64_t> CountKeys(Connection& db, const KeySpan& span) {
  if (span.empty()) return int64_t{0};
  Params params;
  params.Bytes(span.start);
  if (!span.unbounded()) params.Bytes(span.end);
  PLINTH_ASSIGN_OR_RETURN(Result r,
                          db.Exec(span.unbounded() ? kCountUnbounded : kCountBounded, params));
  return r.rows() > 0 ? r.Int64(0, 0) : int64_t{0};
}

// Checks one condition against the state visible on `db`; Aborted with a reason (naming the
// key) when it does not hold. Messages match the memory and sqlite backends'.
Status CheckCondition(Connection& db, const Condition& c, const Meta& meta) {
  switch (c.kind) {
    case Condition::Kind::kAbsent:
    case Condition::Kind::kModRevisionIs: {
      PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(kGetRevisions, Params().Bytes(c.key)));
      const bool exists = r.rows() > 0;
      if (c.kind == Condition::Kind::kAbsent) {
        if (exists) {
          return AbortedError("condition failed: key " + PrintableKey(c.key) + " exists");
        }
      } else if (!exists || r.Int64(0, 1) != c.revision) {
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
      Params params;
      params.Int64(c.revision).Bytes(c.span.start);
      if (!c.span.unbounded()) params.Bytes(c.span.end);
      PLINTH_ASSIGN_OR_RETURN(
          Result r,
          db.Exec(c.span.unbounded() ? kFirstChangeUnbounded : kFirstChangeBounded, params));
      if (r.rows() > 0) {
        return AbortedError("condition failed: key " + PrintableKey(r.Bytes(0, 1)) +
                            " changed at revision " + std::to_string(r.Int64(0, 0)) + " after " +
                            std::to_string(c.revision));
      }
      return Status::Ok();
    }
  }
  return InternalError("unknown condition kind");
}

Status ListLiveKeys(Connection& db, const KeySpan& span, std::vector<std::string>* keys) {
  if (span.empty()) return Status::Ok();
  Params params;
  params.Bytes(span.start);
  if (!span.unbounded()) params.Bytes(span.end);
  PLINTH_ASSIGN_OR_RETURN(
      Result r, db.Exec(span.unbounded() ? kListKeysUnbounded : kListKeysBounded, params));
  for (int i = 0; i < r.rows(); ++i) keys->push_back(r.Bytes(i, 0));
  return Status::Ok();
}

// ---- Snapshot ------------------------------------------------------------------------------

class PostgresSnapshot final : public Snapshot {
 public:
  // `db` is inside the REPEATABLE READ transaction that fixes the snapshot at `revision`.
  PostgresSnapshot(std::shared_ptr<Core> core, Lease db, Revision revision)
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
  Lease db_;
  const Revision revision_;
};

// ---- Watch ---------------------------------------------------------------------------------

// Follows the change log from a revision, exactly as the sqlite backend's watch: next_ is the
// first revision not yet scanned; each Next scans forward from it and returns the first
// revision with events in the span (or a progress notice when it scanned to the current
// revision without finding one). Batches read from the log but not yet returned are kept in
// pending_, for revisions in [next_, read_through_]. State other than cancelled_ belongs to the
// one thread calling Next.
//
// While the server cannot be reached, Next keeps retrying (returning DeadlineExceeded at its
// own timeout, the watch still alive) for up to the store's timeout, then fails with
// Unavailable for good. A reconnect resumes at next_: nothing is missed or repeated.
class PostgresWatch final : public WatchStream {
 public:
  PostgresWatch(std::shared_ptr<Core> core, KeySpan span, Revision next, WatchOptions options)
      : core_(std::move(core)),
        span_(std::move(span)),
        next_(next),
        read_through_(next - 1),
        options_(options) {
    core_->notifier.AddWatcher();
  }

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    const auto deadline = SteadyClock::now() + timeout;
    const auto give_up_after = core_->config.timeout;
    while (true) {
      if (cancelled_.load()) return CancelledError("watch cancelled");
      if (dead_) return *dead_;
      if (core_->notifier.stopped()) return UnavailableError("the postgres store was closed");
      // Taken before reading, so a commit that lands after the read still wakes the wait.
      const uint64_t seen = core_->notifier.sequence();
      StatusOr<std::optional<WatchBatch>> batch = Scan();
      const auto now = SteadyClock::now();
      bool failing = false;
      if (!batch.ok()) {
        if (batch.status().code() != StatusCode::kUnavailable) return batch.status();
        if (!failing_since_) failing_since_ = now;
        if (now - *failing_since_ >= give_up_after) {
          return Die(std::string(batch.status().message()));
        }
        failing = true;
      } else {
        failing_since_.reset();
        if (*batch) return **std::move(batch);
      }
      if (std::optional<SteadyClock::time_point> down = core_->notifier.down_since();
          down && now - *down >= give_up_after) {
        return Die("the LISTEN connection is lost and could not be re-established");
      }
      const auto wait_until =
          std::min(deadline, now + (failing ? kRetryInterval : core_->config.poll_interval));
      if (!core_->notifier.WaitForChange(seen, wait_until, cancelled_)) {
        if (cancelled_.load()) return CancelledError("watch cancelled");
        if (SteadyClock::now() >= deadline) {
          return DeadlineExceededError("no change within the timeout");
        }
        // The poll timer: read the log again, in case a notification was lost.
      }
    }
  }

  void Cancel() override {
    cancelled_.store(true);
    core_->notifier.Wake();
  }

 private:
  Status Die(const std::string& why) {
    dead_ = UnavailableError(why + "; the watch gave up after " +
                             std::to_string(core_->config.timeout.count()) +
                             " ms; watch again from revision " + std::to_string(next_));
    pending_.clear();
    return *dead_;
  }

  // One pass over the log in one read transaction: the next batch, a progress notice, or
  // nothing new. Meta and the log are read in the same transaction so that a concurrent
  // compaction cannot remove rows between the check against meta.compacted and the read.
  StatusOr<std::optional<WatchBatch>> Scan() {
    return core_->Run<std::optional<WatchBatch>>(
        [this](Connection& db) -> StatusOr<std::optional<WatchBatch>> {
          PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBeginRead));
          PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
          if (next_ <= meta.compacted) {
            pending_.clear();
            return OutOfRangeError("watch needs revision " + std::to_string(next_) +
                                   ", but history through " + std::to_string(meta.compacted) +
                                   " was compacted");
          }
          const Revision first_unseen = next_;
          std::optional<WatchBatch> found;
          while (next_ <= meta.current) {
            if (next_ > read_through_) {
              const Revision last = std::min(meta.current, next_ + kWatchRevisionsPerRead - 1);
              PLINTH_RETURN_IF_ERROR(ReadLog(db, next_, last));
              read_through_ = last;
            }
            const Revision revision = next_++;
            auto it = pending_.find(revision);
            if (it == pending_.end()) continue;
            found = WatchBatch{revision, std::move(it->second)};
            pending_.erase(it);
            break;
          }
          db.ExecSimple(kCommit).IgnoreError();  // read-only: nothing to lose
          if (found) return found;
          if (options_.progress_notify && next_ > first_unseen) {
            return std::optional<WatchBatch>(WatchBatch{next_ - 1, {}});
          }
          return std::optional<WatchBatch>();
        });
  }

  // Reads the span's changes with revisions in [first, last] into pending_.
  Status ReadLog(Connection& db, Revision first, Revision last) {
    Params params;
    params.Int64(first).Int64(last).Bytes(span_.start);
    if (!span_.unbounded()) params.Bytes(span_.end);
    PLINTH_ASSIGN_OR_RETURN(
        Result r, db.Exec(span_.unbounded() ? kReadChangesUnbounded : kReadChangesBounded, params));
    for (int i = 0; i < r.rows(); ++i) {
      const Revision revision = r.Int64(i, 0);
      Event event;
      event.kv.key = r.Bytes(i, 1);
      event.kv.mod_revision = revision;
      if (r.Int64(i, 2) == internal::kOpDelete) {
        event.type = Event::Type::kDelete;
      } else {
        event.type = Event::Type::kPut;
        event.kv.value = r.Bytes(i, 3);
        event.kv.create_revision = r.Int64(i, 4);
      }
      pending_[revision].push_back(std::move(event));
    }
    return Status::Ok();
  }

  const std::shared_ptr<Core> core_;
  const KeySpan span_;
  Revision next_;
  Revision read_through_;
  std::map<Revision, std::vector<Event>> pending_;
  const WatchOptions options_;
  std::atomic<bool> cancelled_{false};
  std::optional<SteadyClock::time_point> failing_since_;
  std::optional<Status> dead_;
};

// ---- Store ---------------------------------------------------------------------------------

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~PostgresStore() override { core_->notifier.Stop(); }

  std::string_view backend() const override { return "postgres"; }
  Limits limits() const override { return core_->config.limits; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, core_->config.limits));
    // One statement reads one consistent state; no explicit transaction is needed.
    return core_->Run<KeyValue>([key](Connection& db) { return GetKey(db, key); });
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return core_->Run<RangeResult>([&](Connection& db) -> StatusOr<RangeResult> {
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBeginRead));
      PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
      PLINTH_ASSIGN_OR_RETURN(RangeResult result, RangeKeys(db, span, options, meta.current));
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kCommit));
      return result;
    });
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    return core_->Run<CountResult>([&](Connection& db) -> StatusOr<CountResult> {
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBeginRead));
      PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
      PLINTH_ASSIGN_OR_RETURN(int64_t count, CountKeys(db, span));
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kCommit));
      return CountResult{count, meta.current};
    });
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    for (int attempt = 0;; ++attempt) {
      PLINTH_ASSIGN_OR_RETURN(Lease db, core_->pool.Acquire(false, attempt > 0));
      db->ResetActivity();
      Status status = db->ExecSimple(kBeginRead);
      StatusOr<Meta> meta = status.ok() ? ReadMeta(*db) : StatusOr<Meta>(status);
      if (!meta.ok()) {
        if (attempt == 0 && db.reused() && db->broken() && !db->answered()) continue;
        return meta.status();
      }
      return std::unique_ptr<Snapshot>(new PostgresSnapshot(core_, std::move(db), meta->current));
    }
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    PLINTH_RETURN_IF_ERROR(ValidateTxn(txn, core_->config.limits));
    // Nothing to write: check the conditions in a read transaction, taking no lock.
    if (txn.ops.empty()) return CheckConditionsOnly(txn);

    PLINTH_ASSIGN_OR_RETURN(
        Applied applied, core_->Run<Applied>([&](Connection& db) -> StatusOr<Applied> {
          PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBegin));
          StatusOr<Applied> applied = ApplyLocked(db, txn);
          if (!applied.ok() || !applied->changed) {
            db.RollbackQuietly();
            return applied;
          }
          if (Status status = db.ExecSimple(kCommit); !status.ok()) {
            if (!db.broken()) {
              // The server answered: it did not commit.
              db.RollbackQuietly();
              return Status(status.code(), std::string(status.message()) + "; nothing was applied");
            }
            return Status(status.code(),
                          std::string(status.message()) + "; the outcome of the commit is unknown");
          }
          return applied;
        }));
    if (!applied.changed) return applied.revision;
    const Revision revision = applied.revision;
    core_->notifier.Notify();
    // Automatic retention, amortised: only when the history has doubled past the setting.
    const int64_t retention = core_->config.retention;
    if (retention > 0 && revision - applied.compacted > 2 * retention) {
      // The commit already succeeded; a failed compaction is retried by a later commit.
      Compact(revision - retention).IgnoreError();
    }
    return revision;
  }

  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    if (from_revision < 0) return InvalidArgumentError("from_revision is negative");
    PLINTH_ASSIGN_OR_RETURN(Meta meta,
                            core_->Run<Meta>([](Connection& db) { return ReadMeta(db); }));
    if (from_revision == 0) from_revision = meta.current + 1;
    if (from_revision <= meta.compacted) {
      return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                             ": history through " + std::to_string(meta.compacted) +
                             " was compacted");
    }
    return std::unique_ptr<WatchStream>(new PostgresWatch(core_, span, from_revision, options));
  }

  StatusOr<Revision> CurrentRevision() override {
    PLINTH_ASSIGN_OR_RETURN(Meta meta,
                            core_->Run<Meta>([](Connection& db) { return ReadMeta(db); }));
    return meta.current;
  }

  Status Compact(Revision revision) override {
    PLINTH_ASSIGN_OR_RETURN(bool compacted, core_->Run<bool>([&](Connection& db) -> StatusOr<bool> {
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBegin));
      StatusOr<bool> done = CompactLocked(db, revision);
      if (!done.ok() || !*done) {
        db.RollbackQuietly();
        return done;
      }
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kCommit));
      return true;
    }));
    // Watchers behind the new compaction point must fail now.
    if (compacted) core_->notifier.Notify();
    return Status::Ok();
  }

  StatusOr<Revision> CompactedRevision() override {
    PLINTH_ASSIGN_OR_RETURN(Meta meta,
                            core_->Run<Meta>([](Connection& db) { return ReadMeta(db); }));
    return meta.compacted;
  }

 private:
  struct Applied {
    Revision revision;   // the new revision, or the current one when nothing changed
    bool changed;        // false: nothing to commit
    Revision compacted;  // the compaction point the transaction saw
  };

  StatusOr<Revision> CheckConditionsOnly(const TxnRequest& txn) {
    return core_->Run<Revision>([&](Connection& db) -> StatusOr<Revision> {
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kBeginRead));
      PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db));
      for (const Condition& c : txn.conditions) {
        PLINTH_RETURN_IF_ERROR(CheckCondition(db, c, meta));
      }
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(kCommit));
      return meta.current;
    });
  }

  // Locks the counter row, checks the conditions and writes the transaction's effects; `db` is
  // inside BEGIN. The caller commits or rolls back.
  StatusOr<Applied> ApplyLocked(Connection& db, const TxnRequest& txn) {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, /*lock=*/true));
    for (const Condition& c : txn.conditions) {
      PLINTH_RETURN_IF_ERROR(CheckCondition(db, c, meta));
    }
    PLINTH_ASSIGN_OR_RETURN(
        store::internal::Overlay overlay,
        store::internal::ResolveOps(txn.ops,
                                    [&db](const KeySpan& span, std::vector<std::string>* keys) {
                                      return ListLiveKeys(db, span, keys);
                                    }));

    // Holding the counter row lock, the new revision is the current one plus one.
    const Revision revision = meta.current + 1;
    std::map<std::string, Revision, std::less<>> created;  // live keys among the overlay's
    {
      std::vector<const std::string*> keys;
      keys.reserve(overlay.size());
      for (const auto& entry : overlay) keys.push_back(&entry.first);
      PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(kLookupCreateRevisions, Params().BytesArray(keys)));
      for (int i = 0; i < r.rows(); ++i) created.emplace(r.Bytes(i, 0), r.Int64(i, 1));
    }
    std::vector<const std::string*> put_keys, put_values, delete_keys;
    std::vector<int64_t> put_created;
    for (const auto& [key, value] : overlay) {
      auto it = created.find(key);
      if (value) {
        const Revision create_revision = it != created.end() ? it->second : revision;
        put_keys.push_back(&key);
        put_values.push_back(&*value);
        put_created.push_back(create_revision);
      } else if (it != created.end()) {
        delete_keys.push_back(&key);
      }
    }
    if (put_keys.empty() && delete_keys.empty())
      return Applied{meta.current, false, meta.compacted};

    // NOTIFY is delivered to every listener when (and only if) the transaction commits.
    PLINTH_RETURN_IF_ERROR(db.Exec(kApplyEffects, Params()
                                                      .Int64(revision)
                                                      .BytesArray(put_keys)
                                                      .BytesArray(put_values)
                                                      .Int64Array(put_created)
                                                      .BytesArray(delete_keys)
                                                      .Text(core_->config.channel)
                                                      .Text(std::to_string(revision)))
                               .status());
    return Applied{revision, true, meta.compacted};
  }

  // Inside BEGIN: false when there is nothing to do.
  StatusOr<bool> CompactLocked(Connection& db, Revision revision) {
    PLINTH_ASSIGN_OR_RETURN(Meta meta, ReadMeta(db, /*lock=*/true));
    if (revision > meta.current) {
      return OutOfRangeError("cannot compact to revision " + std::to_string(revision) +
                             " beyond the current revision " + std::to_string(meta.current));
    }
    if (revision <= meta.compacted) return false;
    PLINTH_RETURN_IF_ERROR(db.Exec(kDeleteChangesThrough, Params().Int64(revision)).status());
    PLINTH_RETURN_IF_ERROR(db.Exec(kSetCompacted, Params().Int64(revision)).status());
    PLINTH_RETURN_IF_ERROR(
        db.Exec(kNotify,
                Params().Text(core_->config.channel).Text("compacted " + std::to_string(revision)))
            .status());
    return true;
  }

  const std::shared_ptr<Core> core_;
};

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
  l.max_value_bytes = 256 << 20;
  l.max_ops_per_txn = 1'000'000;
  l.max_txn_bytes = 512 << 20;
  return l;
}

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const StoreUrl& url, const OpenOptions&) {
  PLINTH_ASSIGN_OR_RETURN(Config config, ParseConfig(url));
  auto core = std::make_shared<Core>(std::move(config));
  {
    // The first connection checks that the server is reachable and prepares the schema; it
    // then stays in the pool.
    PLINTH_ASSIGN_OR_RETURN(Lease db, core->pool.Acquire(true));
    PLINTH_RETURN_IF_ERROR(internal::EnsureSchema(*db, core->config.schema));
    PLINTH_RETURN_IF_ERROR(ReadMeta(*db).status());
  }
  return std::unique_ptr<Store>(new PostgresStore(std::move(core)));
}

}  // namespace plinth::store::postgres
