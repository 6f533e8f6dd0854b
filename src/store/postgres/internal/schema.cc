#include "store/postgres/internal/schema.h"

namespace plinth::store::postgres::internal {
namespace {

// Unqualified names resolve to the store's schema (every connection's search_path).
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE schema_version (
  id integer PRIMARY KEY CHECK (id = 0),
  version bigint NOT NULL
);
CREATE TABLE meta (
  id integer PRIMARY KEY CHECK (id = 0),
  revision bigint NOT NULL,
  compacted bigint NOT NULL
);
INSERT INTO meta (id, revision, compacted) VALUES (0, 0, 0);
CREATE TABLE kv (
  key bytea PRIMARY KEY,
  value bytea NOT NULL,
  create_rev bigint NOT NULL,
  mod_rev bigint NOT NULL
);
CREATE TABLE changes (
  rev bigint NOT NULL,
  key bytea NOT NULL,
  op smallint NOT NULL,
  value bytea,
  create_rev bigint,
  PRIMARY KEY (rev, key)
);
)sql";

// One statement, so that both counts come from one snapshot (a concurrent opener may be
// committing the tables meanwhile).
constexpr char kTables[] =
    "SELECT count(*) FILTER (WHERE tablename = 'schema_version'), "
    "count(*) FILTER (WHERE tablename IN ('meta', 'kv', 'changes')) "
    "FROM pg_catalog.pg_tables WHERE schemaname = $1";
constexpr char kHasSchema[] = "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1";
constexpr char kReadVersion[] = "SELECT version FROM schema_version WHERE id = 0";
constexpr char kLock[] = "SELECT pg_advisory_xact_lock(hashtext($1)::bigint)";

StatusOr<int64_t> Count(Connection& db, const char* sql, const Params& params) {
  PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(sql, params));
  return r.rows() > 0 ? r.Int64(0, 0) : int64_t{0};
}

// 0 for a schema without plinth tables.
StatusOr<int64_t> ReadSchemaVersion(Connection& db, const std::string& schema) {
  PLINTH_ASSIGN_OR_RETURN(Result tables, db.Exec(kTables, Params().Text(schema)));
  if (tables.Int64(0, 0) == 0) {
    if (tables.Int64(0, 1) != 0) {
      return FailedPreconditionError(
          "postgres store " + db.label() + ": schema \"" + schema +
          "\" holds tables named meta, kv or changes but no schema_version table: it is not a "
          "plinth store; refusing to modify it");
    }
    return int64_t{0};
  }
  PLINTH_ASSIGN_OR_RETURN(Result r, db.Exec(kReadVersion));
  if (r.rows() == 0 || r.IsNull(0, 0)) {
    return FailedPreconditionError("postgres store " + db.label() +
                                   ": the schema_version table is empty");
  }
  return r.Int64(0, 0);
}

Status CheckNotNewer(const Connection& db, int64_t version) {
  if (version > LatestSchemaVersion()) {
    return FailedPreconditionError("postgres store " + db.label() + " has schema version " +
                                   std::to_string(version) + ", newer than version " +
                                   std::to_string(LatestSchemaVersion()) +
                                   " that this binary supports; upgrade plinth to open it");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const auto* const migrations = new std::vector<Migration>{
      {1, kSchemaV1},
  };
  return *migrations;
}

int64_t LatestSchemaVersion() { return Migrations().back().version; }

Status EnsureSchema(Connection& db, const std::string& schema) {
  // Fast path: an up-to-date schema needs no lock.
  PLINTH_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db, schema));
  PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, version));
  if (version == LatestSchemaVersion()) return Status::Ok();

  PLINTH_RETURN_IF_ERROR(db.ExecSimple("BEGIN"));
  auto migrate = [&]() -> Status {
    // One lock per schema name, held to commit: concurrent openers wait here, then see the
    // migrated schema. CREATE SCHEMA IF NOT EXISTS alone is not safe against a concurrent one.
    PLINTH_RETURN_IF_ERROR(db.Exec(kLock, Params().Text("plinth schema " + schema)).status());
    PLINTH_ASSIGN_OR_RETURN(int64_t has_schema, Count(db, kHasSchema, Params().Text(schema)));
    if (has_schema == 0) {
      PLINTH_RETURN_IF_ERROR(db.ExecSimple("CREATE SCHEMA " + QuoteIdent(schema))
                                 .WithContext("creating schema \"" + schema + "\""));
    }
    PLINTH_ASSIGN_OR_RETURN(int64_t locked_version, ReadSchemaVersion(db, schema));
    PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, locked_version));
    for (const Migration& m : Migrations()) {
      if (m.version <= locked_version) continue;
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(m.sql).WithContext("migrating to schema version " +
                                                              std::to_string(m.version)));
      PLINTH_RETURN_IF_ERROR(db.ExecSimple(
          "INSERT INTO schema_version (id, version) VALUES (0, " + std::to_string(m.version) +
          ") ON CONFLICT (id) DO UPDATE SET version = excluded.version"));
    }
    return db.ExecSimple("COMMIT");
  };
  Status status = migrate();
  if (!status.ok()) db.RollbackQuietly();
  return status;
}

}  // namespace plinth::store::postgres::internal
