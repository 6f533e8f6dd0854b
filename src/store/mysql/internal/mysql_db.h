// A small RAII layer over libmariadb's C API for the mysql backend: connections that own
// their prepared statements, typed parameters and rows, and one mapping from MySQL/MariaDB
// error numbers to plinth::Status.
//
// Nothing here is thread-safe: a Connection, and every statement it owns, is used by one
// thread at a time. Callers hand connections out from a pool or guard them with a mutex.
#ifndef PLINTH_STORE_MYSQL_INTERNAL_MYSQL_DB_H_
#define PLINTH_STORE_MYSQL_INTERNAL_MYSQL_DB_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace plinth::store::mysql::internal {

enum class TlsMode { kDisabled, kPreferred, kRequired, kVerifyIdentity };

// Where and how to connect.
struct ConnectOptions {
  std::string host;  // TCP host; ignored when unix_socket is set
  unsigned port = 3306;
  std::string unix_socket;  // connect through this socket instead of TCP
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::string database;
  std::chrono::milliseconds timeout{5000};  // connect, read and write bound (whole seconds)
  TlsMode tls = TlsMode::kDisabled;
  std::string tls_ca, tls_cert, tls_key;
  std::string label;  // names the server in messages, e.g. "127.0.0.1:3306/plinth"
};

// A statement parameter: an integer, bytes (always sent as binary, never converted by a
// character set) or NULL. Bytes must stay alive until the statement has run.
struct Param {
  enum class Kind { kInt, kBytes, kNull };
  Kind kind = Kind::kNull;
  int64_t int_value = 0;
  std::string_view bytes;

  static Param Int(int64_t v) { return Param{Kind::kInt, v, {}}; }
  static Param Bytes(std::string_view v) { return Param{Kind::kBytes, 0, v}; }
  static Param Null() { return Param{}; }
};

// One fetched row. Integer columns are read as int64, every other column as bytes.
class Row {
 public:
  int64_t Int(size_t column) const { return ints_[column]; }
  bool IsNull(size_t column) const { return nulls_[column]; }
  // The column's bytes ("" for NULL). Moving out is allowed: each row is fetched afresh.
  std::string& Bytes(size_t column) { return bytes_[column]; }

 private:
  friend class Connection;
  std::vector<int64_t> ints_;
  std::vector<bool> nulls_;
  std::vector<std::string> bytes_;
};

using RowCallback = std::function<Status(Row& row)>;

struct CachedStatement;

// An open MYSQL* with its cache of prepared statements.
class Connection {
 public:
  // Connects (bounded by options.timeout) and sets the session up: autocommit on, READ
  // COMMITTED, the binary-safe settings the store needs.
  static StatusOr<std::unique_ptr<Connection>> Open(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs SQL text that returns no rows we need (any result is discarded).
  Status Exec(std::string_view sql);

  // Runs `sql` as a prepared statement (prepared on first use, then cached) with `params`,
  // calling `on_row` for every row of its result, if any. Returns the affected row count.
  StatusOr<uint64_t> Run(std::string_view sql, std::initializer_list<Param> params,
                         const RowCallback& on_row = nullptr) {
    return Run(sql, params.begin(), params.size(), on_row);
  }
  StatusOr<uint64_t> Run(std::string_view sql, const std::vector<Param>& params,
                         const RowCallback& on_row = nullptr) {
    return Run(sql, params.data(), params.size(), on_row);
  }
  StatusOr<uint64_t> Run(std::string_view sql, const Param* params, size_t count,
                         const RowCallback& on_row);

  // True once an error showed the connection is no longer usable (lost, killed, server
  // shutting down): it must be closed, not reused.
  bool broken() const { return broken_; }
  // Marks the connection unusable (e.g. a transaction whose end is unknown).
  void MarkBroken() { broken_ = true; }

  const std::string& label() const { return label_; }

  // The Status for the last failed call on this connection, with `context` describing what
  // was attempted; marks the connection broken if the error says it is.
  Status Error(std::string_view context);

 private:
  Connection(void* mysql, std::string label);
  StatusOr<CachedStatement*> Prepared(std::string_view sql);
  Status StatementError(CachedStatement& stmt, std::string_view context);

  void* const mysql_;  // MYSQL*
  const std::string label_;
  bool broken_ = false;
  std::map<std::string, std::unique_ptr<CachedStatement>, std::less<>> statements_;
};

// Maps a MySQL/MariaDB error number (server or client) to a plinth status code:
//   client errors (2000-2999: cannot connect, lost, timed out), server shutdown, connection
//   killed, too many connections, lock wait timeout, read-only server  -> Unavailable
//   deadlock                                            -> Aborted
//   access denied                                       -> PermissionDenied
//   unknown database                                    -> NotFound
//   packet too large, table or disk full, out of memory  -> ResourceExhausted
//   anything else                                       -> Internal (a bug in our SQL)
StatusCode MysqlStatusCode(unsigned error_number);

// True if an error number means the connection cannot be used again.
bool IsConnectionLost(unsigned error_number);

// Initialises libmariadb once per process (thread-safe).
void InitLibrary();

}  // namespace plinth::store::mysql::internal

#endif  // PLINTH_STORE_MYSQL_INTERNAL_MYSQL_DB_H_
