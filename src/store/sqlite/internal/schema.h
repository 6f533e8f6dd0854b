// The sqlite backend's on-disk schema and its migrations.
//
// Tables (version 1):
//   schema_version(id = 0, version)         the one row saying which migrations have run
//   meta(id = 0, revision, compacted)       the store's revision counter and compaction point;
//                                           every write transaction increments `revision`
//                                           first, so the row lock orders commits
//   kv(key, value, create_rev, mod_rev)     live keys, WITHOUT ROWID, keyed by BLOB (memcmp
//                                           order = the store's key order)
//   changes(rev, key, op, value, create_rev)
//                                           the change log Watch tails: one row per key a
//                                           revision changed; op 1 = put (value, create_rev
//                                           set), op 2 = delete (both NULL). Rows with
//                                           rev <= meta.compacted are gone.
#ifndef PLINTH_STORE_SQLITE_INTERNAL_SCHEMA_H_
#define PLINTH_STORE_SQLITE_INTERNAL_SCHEMA_H_

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "store/sqlite/internal/sqlite_db.h"

namespace plinth::store::sqlite::internal {

inline constexpr int64_t kOpPut = 1;
inline constexpr int64_t kOpDelete = 2;

// One schema change: the SQL that takes a database from version - 1 to `version`.
struct Migration {
  int64_t version;
  const char* sql;
};

// Every migration this binary knows, in order; versions are 1, 2, 3, ... without gaps.
const std::vector<Migration>& Migrations();

// The schema version this binary writes (the last migration's version).
int64_t LatestSchemaVersion();

// Brings the database open on `db` (the writer connection, not inside a transaction) to
// LatestSchemaVersion(), applying the missing migrations in order inside one
// BEGIN IMMEDIATE transaction, so that concurrent openers in other processes migrate once.
// Errors (the database is left unchanged):
//   FailedPrecondition - the schema is newer than this binary knows (naming both versions),
//                        or the file holds tables but is not a plinth store.
//   the mapped SQLite error otherwise (see SqliteStatusCode).
Status EnsureSchema(Connection& db);

}  // namespace plinth::store::sqlite::internal

#endif  // PLINTH_STORE_SQLITE_INTERNAL_SCHEMA_H_
