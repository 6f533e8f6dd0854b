// The sqlite backend: plinth's embedded default, one SQLite database file on one host.
//
// URL: sqlite://<path>[?option=value&...]
//   The location after "://" is the file path as given: sqlite:///var/lib/plinth/plinth.db
//   is /var/lib/plinth/plinth.db, sqlite://./data/plinth.db is ./data/plinth.db (relative to
//   the working directory). The file is created if missing; its directory must exist.
//
// Options:
//   synchronous=full|normal  (default full) Durability of a commit, SQLite's
//       PRAGMA synchronous in WAL mode. full: every commit fsyncs the write-ahead log before
//       Commit returns, so an acknowledged commit survives power loss and OS crashes. normal:
//       the log is synced only at checkpoints; a commit survives a crash of the process, but
//       the last commits may be lost (rolled back) on power loss or an OS crash. The database
//       is never corrupted in either mode. Choose normal only when losing recently
//       acknowledged writes is acceptable.
//   retention=<revisions>    (default 100000) Change history kept for Watch. When the history
//       grows past 2x this, commits compact it back to this many revisions. 0 = never compact
//       automatically (only Store::Compact does).
//   busy_timeout=<duration>  (default 5s) How long a call waits for a lock held by another
//       connection (another process's writer) before failing with Unavailable.
//   poll_interval=<duration> (default 10ms, at least 1ms) How often watchers check the file
//       for commits made through other connections (other processes, or other Store objects
//       in this process). Commits through this Store wake its watchers at once.
//   readers=<n>              (default 4, 1..64) Idle read connections kept in the pool. More
//       are opened on demand when all are busy (e.g. held by Snapshots) and closed again.
//   max_key_bytes, max_value_bytes, max_ops, max_txn_bytes  Limits (see TakeLimitOptions);
//       defaults 4096 B, 16 MiB, 100000 operations, 256 MiB; ceilings 64 KiB, 64 MiB,
//       1000000 operations, 1 GiB.
// Unknown options are rejected.
//
// Guarantees and costs:
//   - Single host only. WAL mode needs shared memory between the processes using the file, so
//     the file must not be on a network filesystem. Any number of processes on one host may
//     open it at once; their commits get gap-free, commit-ordered revisions and every
//     process's watchers see every commit.
//   - One writer at a time (BEGIN IMMEDIATE on one writer connection per Store); reads use a
//     pool of read connections and never block the writer.
//   - Each Store checkpoints the write-ahead log on a background thread once it passes 1000
//     pages, rather than in the commit that crosses the line; commits checkpoint themselves
//     only when the log reaches four times that.
//   - Snapshots pin a WAL read transaction: keep them short, since a long-lived snapshot stops
//     checkpoints from resetting the write-ahead log, which then grows.
//   - Snapshots stay readable after a Compact past their revision (SQLite's snapshot isolation
//     keeps their view), unlike the memory backend.
#ifndef PLINTH_STORE_SQLITE_SQLITE_STORE_H_
#define PLINTH_STORE_SQLITE_SQLITE_STORE_H_

#include <cstdint>
#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::sqlite {

inline constexpr int64_t kDefaultRetention = 100'000;

// Default limits, and the ceilings that URL options may raise them to.
Limits DefaultLimits();
Limits LimitCeilings();

// Opens (creating if missing) the store at url.location. Nothing is written to an existing
// file before it has been recognised as a plinth store.
// Errors:
//   InvalidArgument    - an empty path, an unknown option or a bad option value (named).
//   NotFound           - the file's directory does not exist.
//   PermissionDenied   - the file cannot be read and written, or created, by this process.
//   FailedPrecondition - the file is not a SQLite database, is a SQLite database that is not a
//                        plinth store, has a schema newer than this binary, or cannot use WAL.
//   DataLoss           - the database is corrupt.
//   Unavailable        - the file is locked by another process for longer than busy_timeout.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::sqlite

#endif  // PLINTH_STORE_SQLITE_SQLITE_STORE_H_
