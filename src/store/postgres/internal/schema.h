// The postgres backend's tables and their migrations. Every table lives in the store's own
// schema (URL option schema=), so several stores can share one database.
//
// Tables (version 1):
//   schema_version(id = 0, version)       which migrations have run
//   meta(id = 0, revision, compacted)     the revision counter and compaction point; every
//                                         write transaction locks this row first (SELECT ...
//                                         FOR UPDATE) and holds it to commit, so revisions are
//                                         gap-free and in commit order
//   kv(key, value, create_rev, mod_rev)   live keys; bytea compares like memcmp, which is the
//                                         store's key order
//   changes(rev, key, op, value, create_rev)
//                                         the change log Watch tails, keyed (rev, key); op 1 =
//                                         put, op 2 = delete (value and create_rev NULL). Rows
//                                         with rev <= meta.compacted are gone.
#ifndef PLINTH_STORE_POSTGRES_INTERNAL_SCHEMA_H_
#define PLINTH_STORE_POSTGRES_INTERNAL_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/postgres/internal/pg_conn.h"

namespace plinth::store::postgres::internal {

inline constexpr int64_t kOpPut = 1;
inline constexpr int64_t kOpDelete = 2;

struct Migration {
  int64_t version;
  const char* sql;
};

const std::vector<Migration>& Migrations();
int64_t LatestSchemaVersion();

// Creates `schema` if missing and brings it to LatestSchemaVersion(), inside one transaction
// holding a transaction-scoped advisory lock, so that concurrent openers (other processes)
// migrate exactly once. `db` is outside any transaction and has search_path = schema.
// Errors: FailedPrecondition when the schema's version is newer than this binary's, or the
// schema holds tables named like ours without a schema_version table; else as Connection.
Status EnsureSchema(Connection& db, const std::string& schema);

}  // namespace plinth::store::postgres::internal

#endif  // PLINTH_STORE_POSTGRES_INTERNAL_SCHEMA_H_
