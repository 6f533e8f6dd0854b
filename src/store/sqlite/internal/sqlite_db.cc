#include "store/sqlite/internal/sqlite_db.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace plinth::store::sqlite::internal {

void Statement::BindBlob(int index, std::string_view value) {
  // sqlite3_bind_blob binds NULL when given a null pointer, which an empty string_view may
  // carry; a zero-length BLOB is what an empty value means.
  static const char kEmpty = 0;
  const char* data = value.empty() ? &kEmpty : value.data();
  sqlite3_bind_blob64(stmt_, index, data, value.size(), SQLITE_STATIC);
}

StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return connection_->Error(rc, std::string("running \"") + sql() + "\"");
}

Status Statement::Run() {
  while (true) {
    PLINTH_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string Statement::ColumnBlob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string Statement::ColumnText(int column) const {
  const unsigned char* data = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
}

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int flags,
                                                       std::string label) {
  // Connections are shared between threads (one at a time), which needs a library built
  // with threading support.
  if (sqlite3_threadsafe() == 0) {
    return FailedPreconditionError("cannot open sqlite database " + label +
                                   ": libsqlite3 was built without thread support");
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_open_v2 returns a handle even on failure (unless out of memory), which carries
    // the message and errno; it must be closed either way.
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    const int sys_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
    if (sys_errno != 0) detail += std::string(" (") + std::strerror(sys_errno) + ")";
    sqlite3_close_v2(db);
    return Status(SqliteStatusCode(rc, sys_errno), "cannot open sqlite database " + label + ": " +
                                                       detail + " [" + SqliteCodeName(rc) + "]");
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(new Connection(db, std::move(label)));
}

Connection::~Connection() {
  // Statements must be finalized before the connection can close.
  statements_.clear();
  sqlite3_close_v2(db_);
}

Status Connection::Exec(const char* sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  sqlite3_free(message);  // Error() reads sqlite3_errmsg, which holds the same text
  if (rc != SQLITE_OK) return Error(rc, std::string("running \"") + sql + "\"");
  return Status::Ok();
}

StatusOr<std::string> Connection::QueryText(const char* sql) {
  PLINTH_ASSIGN_OR_RETURN(Statement * raw, Prepared(sql));
  ScopedStatement stmt(raw);
  PLINTH_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::string();
  std::string value = stmt->ColumnText(0);
  PLINTH_RETURN_IF_ERROR(stmt->Run());
  return value;
}

StatusOr<Statement*> Connection::Prepared(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second.get();
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, "preparing \"" + std::string(sql) + "\"");
  }
  if (stmt == nullptr) return InternalError("empty SQL statement \"" + std::string(sql) + "\"");
  auto owned = std::make_unique<Statement>(this, stmt);
  Statement* result = owned.get();
  statements_.emplace(std::string(sql), std::move(owned));
  return result;
}

void Connection::RollbackQuietly() {
  if (autocommit()) return;
  // Every read transaction of a pooled connection ends here, so keep it prepared.
  StatusOr<Statement*> rollback = Prepared("ROLLBACK");
  if (rollback.ok()) {
    ScopedStatement stmt(*rollback);
    stmt->Run().IgnoreError();
  }
  if (!autocommit()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Connection::SetBusyTimeout(std::chrono::milliseconds timeout) {
  const auto ms = std::min<int64_t>(timeout.count(), INT32_MAX);
  sqlite3_busy_timeout(db_, static_cast<int>(ms));
}

Status Connection::Error(int rc, std::string_view context) const {
  std::string message = "sqlite database " + label_ + ": " + std::string(context) + ": " +
                        sqlite3_errmsg(db_) + " [" + SqliteCodeName(rc) + "]";
  const int primary = rc & 0xFF;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    message += "; another connection held the database lock for longer than busy_timeout";
  }
  return Status(SqliteStatusCode(rc, sqlite3_system_errno(db_)), message);
}

StatusCode SqliteStatusCode(int rc, int system_errno) {
  switch (rc & 0xFF) {
    case SQLITE_OK:
      return StatusCode::kOk;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
      return StatusCode::kUnavailable;
    case SQLITE_NOTADB:
    case SQLITE_SCHEMA:
      return StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
      return StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      if (system_errno == ENOENT || system_errno == ENOTDIR) return StatusCode::kNotFound;
      if (system_errno == EACCES || system_errno == EPERM || system_errno == EROFS) {
        return StatusCode::kPermissionDenied;
      }
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

std::string SqliteCodeName(int rc) {
  static constexpr std::pair<int, const char*> kNames[] = {
      {SQLITE_OK, "SQLITE_OK"},
      {SQLITE_ERROR, "SQLITE_ERROR"},
      {SQLITE_INTERNAL, "SQLITE_INTERNAL"},
      {SQLITE_PERM, "SQLITE_PERM"},
      {SQLITE_ABORT, "SQLITE_ABORT"},
      {SQLITE_BUSY, "SQLITE_BUSY"},
      {SQLITE_LOCKED, "SQLITE_LOCKED"},
      {SQLITE_NOMEM, "SQLITE_NOMEM"},
      {SQLITE_READONLY, "SQLITE_READONLY"},
      {SQLITE_INTERRUPT, "SQLITE_INTERRUPT"},
      {SQLITE_IOERR, "SQLITE_IOERR"},
      {SQLITE_CORRUPT, "SQLITE_CORRUPT"},
      {SQLITE_NOTFOUND, "SQLITE_NOTFOUND"},
      {SQLITE_FULL, "SQLITE_FULL"},
      {SQLITE_CANTOPEN, "SQLITE_CANTOPEN"},
      {SQLITE_PROTOCOL, "SQLITE_PROTOCOL"},
      {SQLITE_EMPTY, "SQLITE_EMPTY"},
      {SQLITE_SCHEMA, "SQLITE_SCHEMA"},
      {SQLITE_TOOBIG, "SQLITE_TOOBIG"},
      {SQLITE_CONSTRAINT, "SQLITE_CONSTRAINT"},
      {SQLITE_MISMATCH, "SQLITE_MISMATCH"},
      {SQLITE_MISUSE, "SQLITE_MISUSE"},
      {SQLITE_NOLFS, "SQLITE_NOLFS"},
      {SQLITE_AUTH, "SQLITE_AUTH"},
      {SQLITE_FORMAT, "SQLITE_FORMAT"},
      {SQLITE_RANGE, "SQLITE_RANGE"},
      {SQLITE_NOTADB, "SQLITE_NOTADB"},
  };
  const int primary = rc & 0xFF;
  for (const auto& [code, name] : kNames) {
    if (code == primary) {
      std::string out = name;
      if (rc != primary) out += "/" + std::to_string(rc);  // the extended code, as a number
      return out;
    }
  }
  return "SQLite error " + std::to_string(rc);
}

std::string QuotePath(std::string_view path) { return "\"" + std::string(path) + "\""; }

}  // namespace plinth::store::sqlite::internal
