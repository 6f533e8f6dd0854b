#include "store/mysql/internal/schema.h"

#include <functional>
#include <optional>
#include <set>
#include <string>

namespace plinth::store::mysql::internal {
namespace {

std::string WithPrefix(std::string_view sql, const std::string& prefix) {
  std::string out;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql.compare(i, 3, "{p}") == 0) {
      out += prefix;
      i += 2;
    } else {
      out.push_back(sql[i]);
    }
  }
  return out;
}

// The recorded schema version: 0 for no plinth tables (or a first migration that did not
// finish).
StatusOr<int64_t> ReadSchemaVersion(Connection& db, const std::string& prefix) {
  std::set<std::string> tables;
  const std::string names[] = {prefix + "schema_version", prefix + "meta", prefix + "kv",
                               prefix + "changes"};
  PLINTH_RETURN_IF_ERROR(db.Run("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = DATABASE() AND table_name IN (?, ?, ?, ?)",
                                {Param::Bytes(names[0]), Param::Bytes(names[1]),
                                 Param::Bytes(names[2]), Param::Bytes(names[3])},
                                [&](Row& row) {
                                  tables.insert(row.Bytes(0));
                                  return Status::Ok();
                                })
                             .status());
  if (tables.count(names[0]) == 0) {
    if (!tables.empty()) {
      return FailedPreconditionError(
          "mysql store " + db.label() + ": table " + *tables.begin() + " exists but table " +
          names[0] +
          " does not: these tables are not a plinth store; refusing to modify them (choose "
          "another table_prefix)");
    }
    return int64_t{0};
  }
  std::optional<int64_t> version;
  PLINTH_RETURN_IF_ERROR(
      db.Run("SELECT version FROM `" + names[0] + "` WHERE id = 0", {}, [&](Row& row) {
          version = row.Int(0);
          return Status::Ok();
        }).status());
  return version.value_or(0);
}

Status CheckNotNewer(const Connection& db, int64_t version) {
  if (version > LatestSchemaVersion()) {
    return FailedPreconditionError("mysql store " + db.label() + " has schema version " +
                                   std::to_string(version) + ", newer than version " +
                                   std::to_string(LatestSchemaVersion()) +
                                   " that this binary supports; upgrade plinth to open it");
  }
  return Status::Ok();
}

// GET_LOCK names are server-wide and at most 64 characters.
std::string LockName(const std::string& database, const std::string& prefix) {
  std::string name = "plinth-schema:" + database + "." + prefix;
  if (name.size() > 64) {
    name = "plinth-schema:" + std::to_string(std::hash<std::string>{}(database + "." + prefix));
  }
  return name;
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const auto* const migrations = new std::vector<Migration>{
      {1,
       {
           "CREATE TABLE IF NOT EXISTS `{p}schema_version` ("
           " id TINYINT NOT NULL PRIMARY KEY,"
           " version BIGINT NOT NULL"
           ") ENGINE=InnoDB",
           "CREATE TABLE IF NOT EXISTS `{p}meta` ("
           " id TINYINT NOT NULL PRIMARY KEY,"
           " revision BIGINT NOT NULL,"
           " compacted BIGINT NOT NULL"
           ") ENGINE=InnoDB",
           "INSERT IGNORE INTO `{p}meta` (id, revision, compacted) VALUES (0, 0, 0)",
           "CREATE TABLE IF NOT EXISTS `{p}kv` ("
           " k VARBINARY(3072) NOT NULL,"
           " v LONGBLOB NOT NULL,"
           " create_rev BIGINT NOT NULL,"
           " mod_rev BIGINT NOT NULL,"
           " PRIMARY KEY (k)"
           ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC",
           "CREATE TABLE IF NOT EXISTS `{p}changes` ("
           " rev BIGINT NOT NULL,"
           " seq INT NOT NULL,"
           " k VARBINARY(3072) NOT NULL,"
           " op TINYINT NOT NULL,"
           " v LONGBLOB NULL,"
           " create_rev BIGINT NULL,"
           " PRIMARY KEY (rev, seq)"
           ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC",
       }},
  };
  return *migrations;
}

int64_t LatestSchemaVersion() { return Migrations().back().version; }

Status EnsureSchema(Connection& db, const std::string& database, const std::string& prefix,
                    std::chrono::milliseconds timeout) {
  // Fast path: an up-to-date store needs no lock.
  PLINTH_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db, prefix));
  PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, version));
  if (version == LatestSchemaVersion()) return Status::Ok();

  const std::string lock = LockName(database, prefix);
  const int64_t wait_seconds = std::max<int64_t>(1, (timeout.count() + 999) / 1000);
  std::optional<int64_t> granted;
  PLINTH_RETURN_IF_ERROR(db.Run("SELECT GET_LOCK(?, ?)",
                                {Param::Bytes(lock), Param::Int(wait_seconds)},
                                [&](Row& row) {
                                  if (!row.IsNull(0)) granted = row.Int(0);
                                  return Status::Ok();
                                })
                             .status());
  if (granted != 1) {
    return UnavailableError("mysql store " + db.label() +
                            ": another process held the schema migration lock \"" + lock +
                            "\" for longer than " + std::to_string(wait_seconds) + "s");
  }
  auto migrate = [&]() -> Status {
    // Read again under the lock: another process may have migrated meanwhile.
    PLINTH_ASSIGN_OR_RETURN(int64_t locked_version, ReadSchemaVersion(db, prefix));
    PLINTH_RETURN_IF_ERROR(CheckNotNewer(db, locked_version));
    for (const Migration& m : Migrations()) {
      if (m.version <= locked_version) continue;
      for (const char* statement : m.statements) {
        PLINTH_RETURN_IF_ERROR(
            db.Exec(WithPrefix(statement, prefix))
                .WithContext("migrating to schema version " + std::to_string(m.version)));
      }
      PLINTH_RETURN_IF_ERROR(db.Exec(
          "INSERT INTO `" + prefix + "schema_version` (id, version) VALUES (0, " +
          std::to_string(m.version) + ") ON DUPLICATE KEY UPDATE version = VALUES(version)"));
    }
    return Status::Ok();
  };
  Status status = migrate();
  db.Run("SELECT RELEASE_LOCK(?)", {Param::Bytes(lock)}).status().IgnoreError();
  return status;
}

}  // namespace plinth::store::mysql::internal
