// The postgres backend: a plinth store in one schema of a PostgreSQL database (libpq).
//
// URL: postgres://[user[:password]@]host[:port][,host2[:port2]...]/dbname[?option=value&...]
//   (scheme postgres or postgresql). User, password and host are percent-decoded; a host
//   starting with "/" (written %2F...) is a Unix socket directory.
//
// Options:
//   schema=<name>            (default public) The schema holding the store's tables, created
//       if missing: several stores can share one database. [A-Za-z0-9_], at most 63 bytes,
//       not starting with pg_.
//   retention=<revisions>    (default 100000) Change history kept for Watch. When the history
//       grows past 2x this, commits compact it back to this many revisions. 0 = never compact
//       automatically (only Store::Compact does).
//   pool=<n>                 (default 4, 1..256) Connections kept open, and the most that
//       calls use at once (further calls wait, up to timeout, then fail with Unavailable).
//       Every open Snapshot holds one more connection of its own, and a store with watchers
//       one more for LISTEN.
//   poll_interval=<duration> (default 1s, 1ms..1h) Watchers are woken by LISTEN/NOTIFY as
//       soon as any process commits; they also re-read the change log this often, so a lost
//       notification only delays a change.
//   timeout=<duration>       (default 5s, 100ms..1h) Bound for connecting and for every
//       statement (the server's statement_timeout, lock waits included). A Watch that cannot
//       reach the server for this long fails with Unavailable.
//   max_key_bytes, max_value_bytes, max_ops, max_txn_bytes  Limits (see TakeLimitOptions);
//       defaults 4096 B, 16 MiB, 100000 operations, 256 MiB; ceilings 64 KiB, 256 MiB,
//       1000000 operations, 512 MiB.
//   Every libpq connection parameter (sslmode, sslrootcert, sslcert, sslkey, connect_timeout,
//       application_name, target_session_attrs, ...) is passed to libpq as given; TLS and
//       authentication are libpq's. Other options are rejected.
//
// Guarantees and costs:
//   - One write transaction at a time per store (all processes): each commit locks the meta
//     row first, so revisions are gap-free and in commit order.
//   - A commit is as durable as the server's synchronous_commit makes it.
//   - Reads see committed data at one revision; Snapshots hold a REPEATABLE READ transaction
//     on their own connection until destroyed (keep them short: they hold back vacuum).
//   - Connections broken by a server restart are replaced on next use; a Watch resumes from
//     its next revision after reconnecting.
#ifndef PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_
#define PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_

#include <cstdint>
#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::postgres {

inline constexpr int64_t kDefaultRetention = 100'000;

Limits DefaultLimits();
Limits LimitCeilings();

// Connects, creates the schema if missing and migrates it. Errors:
//   InvalidArgument    - a malformed URL, an unknown option or a bad option value (named).
//   Unavailable        - the server cannot be reached within timeout.
//   PermissionDenied   - the server refused the login or the schema cannot be created.
//   NotFound           - the database does not exist.
//   FailedPrecondition - the schema is newer than this binary, or holds foreign tables named
//                        like ours.
StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::postgres

#endif  // PLINTH_STORE_POSTGRES_POSTGRES_STORE_H_
