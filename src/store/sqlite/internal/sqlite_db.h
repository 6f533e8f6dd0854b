// A small RAII layer over SQLite's C API for the sqlite backend: connections that own their
// prepared statements, statements that reset themselves when a scope ends, and one mapping
// from SQLite result codes to plinth::Status.
//
// Nothing here is thread-safe: SQLite connections are opened in multi-thread mode
// (SQLITE_OPEN_NOMUTEX), so each Connection, and every Statement it owns, must be used by one
// thread at a time. The callers guard them with their own mutexes or hand them out from a pool.
#ifndef PLINTH_STORE_SQLITE_INTERNAL_SQLITE_DB_H_
#define PLINTH_STORE_SQLITE_INTERNAL_SQLITE_DB_H_

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace plinth::store::sqlite::internal {

class Connection;

// A prepared statement owned by a Connection. Bind*, Step and Column* follow SQLite's own
// rules (1-based parameters, 0-based columns); blobs are always bound as BLOBs so that SQLite
// compares them with memcmp, which is the store's key order.
class Statement {
 public:
  Statement(Connection* connection, sqlite3_stmt* stmt) : connection_(connection), stmt_(stmt) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void BindInt64(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  // Binds `value` as a BLOB, also when it is empty (a zero-length BLOB, never NULL). The bytes
  // must stay alive until the statement is reset.
  void BindBlob(int index, std::string_view value);
  void BindNull(int index) { sqlite3_bind_null(stmt_, index); }

  // Advances the statement: true when a row is available, false when it has finished.
  StatusOr<bool> Step();
  // Steps until the statement finishes, ignoring any rows.
  Status Run();

  int64_t ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  // The column as bytes (a NULL or zero-length BLOB gives "").
  std::string ColumnBlob(int column) const;
  std::string ColumnText(int column) const;

  // Ends the current execution and clears every binding, so that the statement neither keeps
  // a read transaction open nor points at caller memory.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  const char* sql() const { return sqlite3_sql(stmt_); }

 private:
  Connection* const connection_;
  sqlite3_stmt* const stmt_;
};

// Resets a statement when the scope that uses it ends, whatever path it leaves by.
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement* stmt) : stmt_(stmt) {}
  ~ScopedStatement() { stmt_->Reset(); }
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;
  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  Statement* const stmt_;
};

// An open sqlite3* with its cache of prepared statements. Closing finalizes them all.
class Connection {
 public:
  // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX and extended result codes
  // are always added). `label` names the database in error messages, e.g. the store path.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int flags,
                                                    std::string label);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* get() const { return db_; }
  const std::string& label() const { return label_; }

  // Runs one or more SQL statements that return no rows we need (sqlite3_exec).
  Status Exec(const char* sql);
  // Runs a single-row, single-column query such as "PRAGMA journal_mode" and returns the value
  // as text ("" when there is no row).
  StatusOr<std::string> QueryText(const char* sql);

  // The statement for `sql`, prepared on first use and kept for the connection's lifetime.
  // Callers must wrap it in a ScopedStatement (or Reset it) after use.
  StatusOr<Statement*> Prepared(std::string_view sql);

  // True unless the connection is inside an explicit transaction.
  bool autocommit() const { return sqlite3_get_autocommit(db_) != 0; }
  // Rolls back an open transaction, if any. Used on error paths, where a failure to roll back
  // can only be reported through the next use of the connection.
  void RollbackQuietly();

  void SetBusyTimeout(std::chrono::milliseconds timeout);

  // The Status for a failed call that returned `rc` on this connection, with `context`
  // describing what was attempted.
  Status Error(int rc, std::string_view context) const;

 private:
  Connection(sqlite3* db, std::string label) : db_(db), label_(std::move(label)) {}

  sqlite3* const db_;
  const std::string label_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> statements_;
};

// Maps a SQLite result code to a plinth status code:
//   BUSY, LOCKED                 -> Unavailable (another writer held the lock past busy_timeout)
//   NOTADB, SCHEMA               -> FailedPrecondition (the file is not what we expect)
//   CORRUPT                      -> DataLoss
//   FULL, NOMEM, TOOBIG          -> ResourceExhausted
//   READONLY, PERM, AUTH         -> PermissionDenied
//   CANTOPEN                     -> NotFound / PermissionDenied / Unavailable by errno
//   IOERR, PROTOCOL, INTERRUPT   -> Unavailable
//   anything else                -> Internal (a bug in our SQL)
StatusCode SqliteStatusCode(int rc, int system_errno);

// "SQLITE_BUSY"-style name of a (primary or extended) result code, for messages.
std::string SqliteCodeName(int rc);

// A printable form of a file path for messages: quoted.
std::string QuotePath(std::string_view path);

}  // namespace plinth::store::sqlite::internal

#endif  // PLINTH_STORE_SQLITE_INTERNAL_SQLITE_DB_H_
