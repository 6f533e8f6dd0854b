// The mysql backend's schema and its migrations. Every table name starts with the store's
// table_prefix (default "plinth_"), so several stores can share one database.
//
// Tables (version 1), all InnoDB:
//   <p>schema_version(id = 0, version)   the one row saying which migrations have run
//   <p>meta(id = 0, revision, compacted) the store's revision counter and compaction point;
//                                        every write transaction locks this row first
//                                        (SELECT ... FOR UPDATE), which orders commits
//   <p>kv(k, v, create_rev, mod_rev)     live keys; k is VARBINARY(3072), compared bytewise
//                                        without padding (the store's key order)
//   <p>changes(rev, seq, k, op, v, create_rev)
//                                        the change log Watch tails: one row per key a
//                                        revision changed, seq numbering them in key order
//                                        (the primary key (rev, seq) stays within InnoDB's
//                                        3072-byte index limit, which (rev, k) would not);
//                                        op 1 = put (v, create_rev set), op 2 = delete (both
//                                        NULL). Rows with rev <= meta.compacted are gone or
//                                        about to be deleted.
#ifndef PLINTH_STORE_MYSQL_INTERNAL_SCHEMA_H_
#define PLINTH_STORE_MYSQL_INTERNAL_SCHEMA_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/mysql/internal/mysql_db.h"

namespace plinth::store::mysql::internal {

inline constexpr int64_t kOpPut = 1;
inline constexpr int64_t kOpDelete = 2;

// One schema change: statements that take the tables from version - 1 to `version`. "{p}"
// stands for the table prefix. Each statement is idempotent (IF NOT EXISTS, INSERT IGNORE),
// because MySQL DDL is not transactional: a migration interrupted half way is simply run
// again.
struct Migration {
  int64_t version;
  std::vector<const char*> statements;
};

const std::vector<Migration>& Migrations();
int64_t LatestSchemaVersion();

// Brings the tables with `prefix` in the connection's database to LatestSchemaVersion().
// Migrations run under GET_LOCK (named after the database and prefix, waited for at most
// `timeout`), so that concurrent first-time opens, in any process, migrate once.
// Errors (nothing is changed):
//   FailedPrecondition - the schema is newer than this binary, or tables with the prefix exist
//                        but are not a plinth store.
//   Unavailable        - the migration lock was not granted within `timeout`.
//   the mapped MySQL error otherwise.
Status EnsureSchema(Connection& db, const std::string& database, const std::string& prefix,
                    std::chrono::milliseconds timeout);

}  // namespace plinth::store::mysql::internal

#endif  // PLINTH_STORE_MYSQL_INTERNAL_SCHEMA_H_
