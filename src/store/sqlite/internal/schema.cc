#include "store/sqlite/internal/schema.h"

#include <string>

namespace plinth::store::sqlite::internal {
namespace {

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE schema_version (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  version INTEGER NOT NULL
);
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  revision INTEGER NOT NULL,
  compacted INTEGER NOT NULL
);
INSERT INTO meta (id, revision, compacted) VALUES (0, 0, 0);
CREATE TABLE kv (
  key BLOB PRIMARY KEY,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE changes (
  rev INTEGER NOT NULL,
  key BLOB NOT NULL,
  op INTEGER NOT NULL,
  value BLOB,
  create_rev INTEGER,
  PRIMARY KEY (rev, key)
) WITHOUT ROWID;
)sql";

// The schema version recorded in the database: 0 for a database without plinth tables.
StatusOr<int64_t> ReadSchemaVersion(Connection& db) {
  PLINTH_ASSIGN_OR_RETURN(std::string has_version_table,
                          db.QueryText("SELECT count(*) FROM sqlite_schema "
                                       "WHERE type = 'table' AND name = 'schema_version'"));
  if (has_version_table == "0") {
    PLINTH_ASSIGN_OR_RETURN(std::string other_tables,
                            db.QueryText("SELECT count(*) FROM sqlite_schema "
                                         "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
                                         "ESCAPE '\\'"));
    if (other_tables != "0") {
      return FailedPreconditionError(
          "sqlite database " + db.label() + " holds " + other_tables +
          " table(s) but no schema_version table: it is not a plinth store; refusing to modify "
          "it");
    }
    return int64_t{0};
  }
  PLINTH_ASSIGN_OR_RETURN(Statement * raw,
                          db.Prepared("SELECT version FROM schema_version WHERE id = 0"));
  ScopedStatement stmt(raw);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row || stmt->ColumnIsNull(0)) {
    return FailedPreconditionError("sqlite database " + db.label() +
                                   " has an empty schema_version table");
  }
  return stmt->ColumnInt64(0);
}

Status CheckNotNewer(const Connection& db, int64_t version) {
  if (version > LatestSchemaVersion()) {
    return FailedPreconditionError("sqlite database " + db.label() + " has schema version " +
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

Status EnsureSchema(Connection& db) {
  // Fast path: an up-to-date database needs no write lock.
  PLINTH_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db));
  PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, version));
  if (version == LatestSchemaVersion()) return Status::Ok();

  PLINTH_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  auto migrate = [&]() -> Status {
    // Read again under the write lock: another process may have migrated meanwhile.
    PLINTH_ASSIGN_OR_RETURN(int64_t locked_version, ReadSchemaVersion(db));
    PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, locked_version));
    for (const Migration& m : Migrations()) {
      if (m.version <= locked_version) continue;
      PLINTH_RETURN_IF_ERROR(
          db.Exec(m.sql).WithContext("migrating to schema version " + std::to_string(m.version)));
      const std::string record = "INSERT INTO schema_version (id, version) VALUES (0, " +
                                 std::to_string(m.version) +
                                 ") ON CONFLICT (id) DO UPDATE SET version = excluded.version";
      PLINTH_RETURN_IF_ERROR(db.Exec(record.c_str()));
    }
    return db.Exec("COMMIT");
  };
  Status status = migrate();
  if (!status.ok()) db.RollbackQuietly();
  return status;
}

}  // namespace plinth::store::sqlite::internal
