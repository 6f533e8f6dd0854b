// The mysql backend: a store in a MySQL or MariaDB database (libmariadb; tested against
// Debian's MariaDB 10.11), shared by any number of processes and hosts.
//
// URL: mysql://[user[:password]@]host[:port]/database[?option=value&...]
//      (the scheme mariadb:// is the same backend). The port defaults to 3306. The database
//      must exist; the store's tables are created in it on first open.
//
// Options:
//   table_prefix=<name>      (default plinth_) Prefix of the store's four tables (<p>kv,
//       <p>changes, <p>meta, <p>schema_version), so several stores can share a database.
//       Letters, digits and '_' only, at most 48 characters.
//   retention=<revisions>    (default 100000) Change history kept for Watch. When the history
//       grows past 2x this, commits compact it back to this many revisions. 0 = never compact
//       automatically (only Store::Compact does).
//   pool=<n>                 (default 4, 1..64) Idle connections kept for reuse. More are
//       opened on demand when all are busy (e.g. held by Snapshots) and closed again.
//   poll_interval=<duration> (default 50ms, 1ms..1h) How often watchers poll the change log
//       for commits made through other Store objects or processes (MySQL has no
//       notifications). Commits through this Store wake its watchers at once.
//   timeout=<duration>       (default 5s, 1s..1h, whole seconds) Bound on connecting and on
//       every read and write on a connection, and on waiting for the revision lock; a Watch
//       that cannot reach the server for this long fails with Unavailable.
//   socket=<path>            Connect through this Unix socket instead of TCP (host is then
//       ignored).
//   tls=disabled|preferred|required|verify_identity  (default disabled) preferred: TLS when
//       the server offers it; required: TLS or fail, without checking the certificate;
//       verify_identity: TLS with the server certificate checked against tls_ca (or the
//       system's CAs) and the host name.
//   tls_ca=<file>, tls_cert=<file>, tls_key=<file>  CA bundle, client certificate and key.
//   max_key_bytes, max_value_bytes, max_ops, max_txn_bytes  Limits (see TakeLimitOptions);
//       defaults 3072 B, 16 MiB, 100000 operations, 256 MiB; ceilings 3072 B (InnoDB's index
//       limit), 512 MiB, 1000000 operations, 1 GiB. One key and value travel in one protocol
//       packet, so max_key_bytes + max_value_bytes + 4 KiB must fit in the server's
//       max_allowed_packet: a default max_value_bytes is lowered to fit (MariaDB's default
//       packet is 16 MiB), an explicit one that does not fit fails the open.
// Unknown options are rejected.
//
// Guarantees and costs:
//   - Every write transaction first locks the single row of <p>meta (SELECT ... FOR UPDATE)
//     and holds it until COMMIT, so revisions are gap-free and in commit order across every
//     process and host; writers to one store are serialised (one at a time). No
//     AUTO_INCREMENT is used anywhere.
//   - Durability is the server's: use innodb_flush_log_at_trx_commit=1 (the default).
//   - Reads use InnoDB consistent snapshots (REPEATABLE READ, read only); a Snapshot keeps one
//     open on its own connection, so keep it short (it holds back purge). Snapshots stay
//     readable after a Compact past their revision.
//   - Watch polls the change log every poll_interval; a write on another host is seen within
//     about one poll_interval plus a query.
//   - A broken connection is discarded and a new one opened; a Watch rides out a server
//     restart (it resumes where it was, missing and repeating nothing) unless the server stays
//     unreachable for longer than `timeout`.
#ifndef PLINTH_STORE_MYSQL_MYSQL_STORE_H_
#define PLINTH_STORE_MYSQL_MYSQL_STORE_H_

#include <cstdint>
#include <memory>

#include "store/registry.h"
#include "store/store.h"

namespace plinth::store::mysql {

inline constexpr int64_t kDefaultRetention = 100'000;

// Default limits, and the ceilings that URL options may raise them to.
Limits DefaultLimits();
Limits LimitCeilings();

// Connects, creates or migrates the tables, and returns the store.
// Errors:
//   InvalidArgument    - a malformed URL, an unknown option or a bad option value (named).
//   Unavailable        - the server cannot be reached within `timeout`.
//   PermissionDenied   - the server refused the user.
//   NotFound           - the database does not exist.
//   FailedPrecondition - tables with the prefix exist but are not a plinth store, their schema
//                        is newer than this binary, or max_value_bytes does not fit the
//                        server's max_allowed_packet.
StatusOr<std::unique_ptr<Store>> OpenMysqlStore(const StoreUrl& url, const OpenOptions& options);

}  // namespace plinth::store::mysql

#endif  // PLINTH_STORE_MYSQL_MYSQL_STORE_H_
