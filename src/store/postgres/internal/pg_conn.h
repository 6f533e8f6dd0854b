// A thin layer over one libpq connection for the postgres backend: connecting with a deadline,
// statements prepared once per connection and cached, binary parameters and results, every
// wait bounded, and libpq/SQLSTATE errors mapped to plinth Status codes.
#ifndef PLINTH_STORE_POSTGRES_INTERNAL_PG_CONN_H_
#define PLINTH_STORE_POSTGRES_INTERNAL_PG_CONN_H_

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace plinth::store::postgres::internal {

// How to reach the server and how long to wait for it.
struct ConnectConfig {
  // libpq keyword/value pairs (host, port, dbname, user, password, sslmode, ...).
  std::vector<std::pair<std::string, std::string>> params;
  std::string label;                        // for messages: "postgres://user@host:port/db"
  std::string schema;                       // search_path of every connection
  std::chrono::milliseconds timeout{5000};  // connect, and statement_timeout on the server
};

// Statement parameters, sent in binary. Bytes/BytesArray keep pointers to the caller's data:
// it must outlive the Exec call.
class Params {
 public:
  Params& Bytes(std::string_view value);
  Params& Int64(int64_t value);
  Params& Text(std::string_view value);
  Params& Null(Oid type);
  // A bytea[] whose elements are `values` (nullptr elements are SQL NULL).
  Params& BytesArray(const std::vector<const std::string*>& values);
  Params& Int64Array(const std::vector<int64_t>& values);

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(Oid type, const char* data, size_t size, int format);
  std::list<std::string> owned_;
  std::vector<Oid> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// A query result in binary format. Move-only.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  ~Result() {
    if (result_ != nullptr) PQclear(result_);
  }
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;

  int rows() const { return PQntuples(result_); }
  bool IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }
  std::string Bytes(int row, int col) const;
  // A smallint, integer or bigint column.
  int64_t Int64(int row, int col) const;

 private:
  PGresult* result_;
};

class Connection {
 public:
  // Connects within config.timeout and prepares the session (statement_timeout, search_path).
  // Unavailable when the server cannot be reached; PermissionDenied when it refuses the login;
  // NotFound when the database does not exist; InvalidArgument for a bad libpq parameter.
  static StatusOr<std::unique_ptr<Connection>> Open(const ConnectConfig& config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (a string constant: the statement is prepared on first use and cached by its
  // text) with `params`, results in binary.
  StatusOr<Result> Exec(const std::string& sql, const Params& params = Params());
  // Runs one or more statements without parameters (BEGIN, COMMIT, LISTEN, DDL).
  Status ExecSimple(const std::string& sql);
  // Ends any open transaction, ignoring errors.
  void RollbackQuietly();

  // True once the connection failed in a way that makes it unusable; it must be discarded.
  bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  // For a connection outside any statement: reads whatever the server sent meanwhile (a
  // termination notice after a server restart) and says whether it is still usable.
  bool CheckAlive();
  bool in_transaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }
  // Whether a statement sent since the last ResetActivity() was answered successfully.
  bool answered() const { return answered_; }
  void ResetActivity() { answered_ = false; }

  PGconn* get() const { return conn_; }
  const std::string& label() const { return label_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Waits until the socket is readable, `deadline` passes or `wake_fd` (if >= 0) is readable.
  // Returns 1 if the socket is readable, 0 on timeout or wake, -1 on error.
  int WaitReadable(std::chrono::steady_clock::time_point deadline, int wake_fd);

 private:
  Connection(PGconn* conn, std::string label, std::chrono::milliseconds timeout)
      : conn_(conn), label_(std::move(label)), timeout_(timeout) {}

  // Collects the results of the query just sent; the error of the first failing one.
  StatusOr<Result> Await(std::string_view what);
  Status Broken(std::string_view what);

  PGconn* const conn_;
  const std::string label_;
  const std::chrono::milliseconds timeout_;
  std::map<std::string, std::string> prepared_;  // SQL text -> statement name
  bool broken_ = false;
  bool answered_ = false;
};

// Maps an error result to a Status (see Connection::Exec); `what` says what was being done.
Status ResultStatus(const Connection& conn, const PGresult* result, std::string_view what);

// "\"name\"", for identifiers made of [A-Za-z0-9_].
std::string QuoteIdent(std::string_view name);

}  // namespace plinth::store::postgres::internal

#endif  // PLINTH_STORE_POSTGRES_INTERNAL_PG_CONN_H_
