#include "store/mysql/internal/mysql_db.h"

#include <mysql.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <span>
#include <utility>

namespace plinth::store::mysql::internal {

// Bytes a result column holds inline; longer values are fetched with mysql_stmt_fetch_column.
constexpr size_t kInlineColumnBytes = 256;

struct CachedStatement {
  ~CachedStatement() {
    if (stmt != nullptr) mysql_stmt_close(stmt);
  }
  MYSQL_STMT* stmt = nullptr;
  std::string sql;
  unsigned long param_count = 0;
  std::vector<bool> int_column;  // per result column: read as int64 (else bytes)
};

namespace {

MYSQL* Handle(void* p) { return static_cast<MYSQL*>(p); }

bool IsIntType(enum_field_types type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
      return true;
    default:
      return false;
  }
}

std::string ErrorText(unsigned number, const char* message) {
  return std::string(message != nullptr && *message != '\0' ? message : "unknown error") +
         " (MySQL error " + std::to_string(number) + ")";
}

}  // namespace

void InitLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

bool IsConnectionLost(unsigned n) {
  if (n >= 2000 && n <= 2999) return true;  // every client-side error: discard the connection
  switch (n) {
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1153:  // ER_NET_PACKET_TOO_LARGE (the server closes the connection)
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // MySQL 8: ER_CLIENT_INTERACTION_TIMEOUT
      return true;
    default:
      return false;
  }
}

StatusCode MysqlStatusCode(unsigned n) {
  if (n >= 2000 && n <= 2999) return StatusCode::kUnavailable;
  switch (n) {
    case 1040:  // ER_CON_COUNT_ERROR (too many connections)
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:
    case 1158:
    case 1159:
    case 1160:
    case 1161:
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1290:  // ER_OPTION_PREVENTS_STATEMENT (e.g. --read-only)
    case 1836:  // ER_READ_ONLY_MODE
    case 1927:  // ER_CONNECTION_KILLED
    case 1969:  // ER_STATEMENT_TIMEOUT
    case 3024:  // MySQL: ER_QUERY_TIMEOUT
    case 4031:
      return StatusCode::kUnavailable;
    case 1213:  // ER_LOCK_DEADLOCK
      return StatusCode::kAborted;
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1142:  // ER_TABLEACCESS_DENIED_ERROR
    case 1143:  // ER_COLUMNACCESS_DENIED_ERROR
    case 1227:  // ER_SPECIFIC_ACCESS_DENIED_ERROR
      return StatusCode::kPermissionDenied;
    case 1049:  // ER_BAD_DB_ERROR
      return StatusCode::kNotFound;
    case 1021:  // ER_DISK_FULL
    case 1037:  // ER_OUTOFMEMORY
    case 1038:  // ER_OUT_OF_SORTMEMORY
    case 1041:  // ER_OUT_OF_RESOURCES
    case 1114:  // ER_RECORD_FILE_FULL
    case 1153:  // ER_NET_PACKET_TOO_LARGE
      return StatusCode::kResourceExhausted;
    default:
      return StatusCode::kInternal;
  }
}

StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  InitLibrary();
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) {
    return ResourceExhaustedError("mysql store " + options.label + ": mysql_init failed");
  }
  const auto seconds =
      static_cast<unsigned>(std::max<int64_t>(1, (options.timeout.count() + 999) / 1000));
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &seconds);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &seconds);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &seconds);
  const my_bool no = 0, yes = 1;
  // Never reconnect silently: that would lose a transaction and session settings unnoticed.
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &no);
  const size_t max_packet = size_t{1} << 30;
  mysql_optionsv(mysql, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
  const unsigned protocol =
      options.unix_socket.empty() ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
  mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (options.tls != TlsMode::kDisabled) {
    mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &yes);
    if (!options.tls_ca.empty()) mysql_options(mysql, MYSQL_OPT_SSL_CA, options.tls_ca.c_str());
    if (!options.tls_cert.empty()) {
      mysql_options(mysql, MYSQL_OPT_SSL_CERT, options.tls_cert.c_str());
    }
    if (!options.tls_key.empty()) mysql_options(mysql, MYSQL_OPT_SSL_KEY, options.tls_key.c_str());
    const my_bool verify = options.tls == TlsMode::kVerifyIdentity ? 1 : 0;
    mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  }
  const char* host = options.unix_socket.empty() ? options.host.c_str() : "localhost";
  if (mysql_real_connect(mysql, host, options.user ? options.user->c_str() : nullptr,
                         options.password ? options.password->c_str() : nullptr,
                         options.database.c_str(), options.unix_socket.empty() ? options.port : 0,
                         options.unix_socket.empty() ? nullptr : options.unix_socket.c_str(),
                         0) == nullptr) {
    const unsigned n = mysql_errno(mysql);
    Status status(MysqlStatusCode(n), "mysql store " + options.label +
                                          ": cannot connect: " + ErrorText(n, mysql_error(mysql)));
    mysql_close(mysql);
    return status;
  }
  auto connection = std::unique_ptr<Connection>(new Connection(mysql, options.label));
  if ((options.tls == TlsMode::kRequired || options.tls == TlsMode::kVerifyIdentity) &&
      mysql_get_ssl_cipher(mysql) == nullptr) {
    return UnavailableError(
        "mysql store " + options.label + ": the server did not negotiate TLS, which tls=" +
        (options.tls == TlsMode::kRequired ? "required" : "verify_identity") + " demands");
  }
  PLINTH_RETURN_IF_ERROR(
      connection->Exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"));
  PLINTH_RETURN_IF_ERROR(connection->Exec(
      "SET SESSION autocommit = 1, sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
      "innodb_lock_wait_timeout = " +
      std::to_string(seconds)));
  return connection;
}

Connection::Connection(void* mysql, std::string label) : mysql_(mysql), label_(std::move(label)) {}

Connection::~Connection() {
  statements_.clear();  // statements close before their connection
  mysql_close(Handle(mysql_));
}

Status Connection::Error(std::string_view context) {
  const unsigned n = mysql_errno(Handle(mysql_));
  if (IsConnectionLost(n)) broken_ = true;
  return Status(MysqlStatusCode(n), "mysql store " + label_ + ": " + std::string(context) + ": " +
                                        ErrorText(n, mysql_error(Handle(mysql_))));
}

Status Connection::StatementError(CachedStatement& stmt, std::string_view context) {
  const unsigned n = mysql_stmt_errno(stmt.stmt);
  if (n == 0) return Error(context);
  if (IsConnectionLost(n)) broken_ = true;
  return Status(MysqlStatusCode(n), "mysql store " + label_ + ": " + std::string(context) + ": " +
                                        ErrorText(n, mysql_stmt_error(stmt.stmt)));
}

Status Connection::Exec(std::string_view sql) {
  if (broken_) return UnavailableError("mysql store " + label_ + ": the connection was lost");
  if (mysql_real_query(Handle(mysql_), sql.data(), sql.size()) != 0) {
    return Error("running \"" + std::string(sql.substr(0, 200)) + "\"");
  }
  if (MYSQL_RES* result = mysql_store_result(Handle(mysql_)); result != nullptr) {
    mysql_free_result(result);
  } else if (mysql_errno(Handle(mysql_)) != 0) {
    return Error("reading the result of \"" + std::string(sql.substr(0, 200)) + "\"");
  }
  return Status::Ok();
}

StatusOr<CachedStatement*> Connection::Prepared(std::string_view sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second.get();
  auto stmt = std::make_unique<CachedStatement>();
  stmt->sql = std::string(sql);
  stmt->stmt = mysql_stmt_init(Handle(mysql_));
  if (stmt->stmt == nullptr) return Error("preparing a statement");
  if (mysql_stmt_prepare(stmt->stmt, sql.data(), sql.size()) != 0) {
    return StatementError(*stmt, "preparing \"" + stmt->sql + "\"");
  }
  stmt->param_count = mysql_stmt_param_count(stmt->stmt);
  if (MYSQL_RES* meta = mysql_stmt_result_metadata(stmt->stmt); meta != nullptr) {
    const unsigned fields = mysql_num_fields(meta);
    MYSQL_FIELD* field = mysql_fetch_fields(meta);
    for (unsigned i = 0; i < fields; ++i) stmt->int_column.push_back(IsIntType(field[i].type));
    mysql_free_result(meta);
  }
  CachedStatement* raw = stmt.get();
  statements_.emplace(stmt->sql, std::move(stmt));
  return raw;
}

StatusOr<uint64_t> Connection::Run(std::string_view sql, const Param* param_array,
                                   size_t param_count, const RowCallback& on_row) {
  const std::span<const Param> params(param_array, param_count);
  if (broken_) return UnavailableError("mysql store " + label_ + ": the connection was lost");
  PLINTH_ASSIGN_OR_RETURN(CachedStatement * stmt, Prepared(sql));
  if (params.size() != stmt->param_count) {
    return InternalError("mysql store: \"" + stmt->sql + "\" takes " +
                         std::to_string(stmt->param_count) + " parameters, given " +
                         std::to_string(params.size()));
  }
  static const char kEmpty = 0;
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<unsigned long> lengths(params.size());
  size_t i = 0;
  for (const Param& p : params) {
    MYSQL_BIND& b = binds[i];
    std::memset(&b, 0, sizeof(b));
    switch (p.kind) {
      case Param::Kind::kInt:
        ints[i] = p.int_value;
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &ints[i];
        break;
      case Param::Kind::kBytes:
        // BLOB parameters carry the binary character set: compared and stored as bytes.
        lengths[i] = p.bytes.size();
        b.buffer_type = MYSQL_TYPE_BLOB;
        b.buffer = const_cast<char*>(p.bytes.empty() ? &kEmpty : p.bytes.data());
        b.buffer_length = p.bytes.size();
        b.length = &lengths[i];
        break;
      case Param::Kind::kNull:
        b.buffer_type = MYSQL_TYPE_NULL;
        break;
    }
    ++i;
  }
  const std::string context = "running \"" + stmt->sql + "\"";
  if (!binds.empty() && mysql_stmt_bind_param(stmt->stmt, binds.data()) != 0) {
    return StatementError(*stmt, context);
  }
  if (mysql_stmt_execute(stmt->stmt) != 0) return StatementError(*stmt, context);
  const uint64_t affected = mysql_stmt_affected_rows(stmt->stmt);
  const size_t columns = stmt->int_column.size();
  if (columns == 0 || mysql_stmt_field_count(stmt->stmt) == 0) return affected;

  // Results are buffered client-side, so the connection is free again before on_row runs.
  std::vector<MYSQL_BIND> out(columns);
  std::vector<long long> out_ints(columns);
  std::vector<std::array<char, kInlineColumnBytes>> buffers(columns);
  std::vector<unsigned long> out_lengths(columns);
  std::vector<my_bool> out_nulls(columns), out_errors(columns);
  for (size_t c = 0; c < columns; ++c) {
    MYSQL_BIND& b = out[c];
    std::memset(&b, 0, sizeof(b));
    b.is_null = &out_nulls[c];
    b.error = &out_errors[c];
    b.length = &out_lengths[c];
    if (stmt->int_column[c]) {
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &out_ints[c];
    } else {
      b.buffer_type = MYSQL_TYPE_BLOB;
      b.buffer = buffers[c].data();
      b.buffer_length = kInlineColumnBytes;
    }
  }
  if (mysql_stmt_bind_result(stmt->stmt, out.data()) != 0) return StatementError(*stmt, context);
  if (mysql_stmt_store_result(stmt->stmt) != 0) {
    Status status = StatementError(*stmt, context);
    mysql_stmt_free_result(stmt->stmt);
    return status;
  }
  Status status;
  Row row;
  row.ints_.resize(columns);
  row.nulls_.resize(columns);
  row.bytes_.resize(columns);
  while (status.ok()) {
    const int rc = mysql_stmt_fetch(stmt->stmt);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) {
      status = StatementError(*stmt, context);
      break;
    }
    for (size_t c = 0; c < columns && status.ok(); ++c) {
      row.nulls_[c] = out_nulls[c] != 0;
      row.ints_[c] = 0;
      row.bytes_[c].clear();
      if (out_nulls[c]) continue;
      if (stmt->int_column[c]) {
        row.ints_[c] = out_ints[c];
      } else if (out_lengths[c] <= kInlineColumnBytes) {
        row.bytes_[c].assign(buffers[c].data(), out_lengths[c]);
      } else {
        std::string& value = row.bytes_[c];
        value.resize(out_lengths[c]);
        MYSQL_BIND whole;
        std::memset(&whole, 0, sizeof(whole));
        unsigned long length = 0;
        whole.buffer_type = MYSQL_TYPE_BLOB;
        whole.buffer = value.data();
        whole.buffer_length = value.size();
        whole.length = &length;
        if (mysql_stmt_fetch_column(stmt->stmt, &whole, static_cast<unsigned>(c), 0) != 0) {
          status = StatementError(*stmt, context);
        }
      }
    }
    if (status.ok() && on_row) status = on_row(row);
  }
  mysql_stmt_free_result(stmt->stmt);
  if (!status.ok()) return status;
  return affected;
}

}  // namespace plinth::store::mysql::internal
