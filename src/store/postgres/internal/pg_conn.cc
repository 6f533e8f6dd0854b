#include "store/postgres/internal/pg_conn.h"

#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace plinth::store::postgres::internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaArrayOid = 1001;
constexpr Oid kInt8ArrayOid = 1016;

// How much longer than the server's statement_timeout the client waits for an answer before
// it gives the connection up (the server may be unreachable rather than slow).
constexpr std::chrono::milliseconds kClientGrace{2000};

void PutInt32(std::string* out, int32_t v) {
  const uint32_t n = htonl(static_cast<uint32_t>(v));
  out->append(reinterpret_cast<const char*>(&n), 4);
}

void PutInt64(std::string* out, int64_t v) {
  PutInt32(out, static_cast<int32_t>(static_cast<uint64_t>(v) >> 32));
  PutInt32(out, static_cast<int32_t>(static_cast<uint64_t>(v) & 0xFFFFFFFFu));
}

// The header of a one-dimensional array in binary format (array_recv).
std::string ArrayHeader(size_t count, bool has_null, Oid element) {
  std::string out;
  if (count == 0) {
    PutInt32(&out, 0);
    PutInt32(&out, 0);
    PutInt32(&out, static_cast<int32_t>(element));
    return out;
  }
  PutInt32(&out, 1);
  PutInt32(&out, has_null ? 1 : 0);
  PutInt32(&out, static_cast<int32_t>(element));
  PutInt32(&out, static_cast<int32_t>(count));
  PutInt32(&out, 1);
  return out;
}

// libpq's messages end in a newline and may span lines: one line, for Status messages.
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\n') {
      out.push_back(s[i] == '\t' ? ' ' : s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\t') {
      out.push_back(' ');
      ++i;
    } else {
      out += "; ";
    }
  }
  return out;
}

// Waits for `fd` to become ready for `events` until `deadline`, or `wake_fd` to be readable.
// 1 = ready, 0 = timeout or wake, -1 = error.
int WaitFd(int fd, short events, Clock::time_point deadline, int wake_fd) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n =
        ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left, 1'000'000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) continue;  // re-check the deadline
    if (wake_fd >= 0 && (fds[1].revents & POLLIN) != 0) return 0;
    if (fds[0].revents != 0) return 1;
  }
}

StatusCode ConnectErrorCode(const std::string& message) {
  if (message.find("password authentication failed") != std::string::npos ||
      message.find("no pg_hba.conf entry") != std::string::npos ||
      (message.find("role \"") != std::string::npos &&
       message.find("does not exist") != std::string::npos) ||
      message.find("permission denied") != std::string::npos) {
    return StatusCode::kPermissionDenied;
  }
  if (message.find("database \"") != std::string::npos &&
      message.find("does not exist") != std::string::npos) {
    return StatusCode::kNotFound;
  }
  return StatusCode::kUnavailable;
}

void IgnoreNotice(void*, const char*) {}

}  // namespace

// ---- Params ----------------------------------------------------------------------------------

Params& Params::Add(Oid type, const char* data, size_t size, int format) {
  types_.push_back(type);
  values_.push_back(data);
  lengths_.push_back(static_cast<int>(size));
  formats_.push_back(format);
  return *this;
}

Params& Params::Bytes(std::string_view value) {
  // libpq treats a null pointer as SQL NULL: give an empty value a valid pointer.
  return Add(kByteaOid, value.data() != nullptr ? value.data() : "", value.size(), 1);
}

Params& Params::Int64(int64_t value) {
  std::string& s = owned_.emplace_back();
  PutInt64(&s, value);
  return Add(kInt8Oid, s.data(), s.size(), 1);
}

Params& Params::Text(std::string_view value) {
  std::string& s = owned_.emplace_back(value);
  return Add(kTextOid, s.c_str(), s.size(), 0);
}

Params& Params::Null(Oid type) { return Add(type, nullptr, 0, 1); }

Params& Params::BytesArray(const std::vector<const std::string*>& values) {
  bool has_null = false;
  size_t total = 20;
  for (const std::string* v : values) {
    has_null = has_null || v == nullptr;
    total += 4 + (v != nullptr ? v->size() : 0);
  }
  std::string& s = owned_.emplace_back(ArrayHeader(values.size(), has_null, kByteaOid));
  s.reserve(total);
  for (const std::string* v : values) {
    if (v == nullptr) {
      PutInt32(&s, -1);
    } else {
      PutInt32(&s, static_cast<int32_t>(v->size()));
      s.append(*v);
    }
  }
  return Add(kByteaArrayOid, s.data(), s.size(), 1);
}

Params& Params::Int64Array(const std::vector<int64_t>& values) {
  std::string& s = owned_.emplace_back(ArrayHeader(values.size(), false, kInt8Oid));
  for (int64_t v : values) {
    PutInt32(&s, 8);
    PutInt64(&s, v);
  }
  return Add(kInt8ArrayOid, s.data(), s.size(), 1);
}

// ---- Result ----------------------------------------------------------------------------------

std::string Result::Bytes(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t Result::Int64(int row, int col) const {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, col));
  const int len = PQgetlength(result_, row, col);
  uint64_t v = 0;
  for (int i = 0; i < len; ++i) v = (v << 8) | p[i];
  // Sign-extend smallint and integer columns.
  if (len > 0 && len < 8 && (p[0] & 0x80) != 0) v |= ~uint64_t{0} << (8 * len);
  return static_cast<int64_t>(v);
}

// ---- Connection ------------------------------------------------------------------------------

std::string QuoteIdent(std::string_view name) { return "\"" + std::string(name) + "\""; }

StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectConfig& config) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (const auto& [k, v] : config.params) {
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  const std::string context = "cannot connect to postgres store " + config.label;
  PGconn* conn = PQconnectStartParams(keywords.data(), values.data(), 0);
  if (conn == nullptr) return ResourceExhaustedError(context + ": out of memory");
  auto fail = [&](StatusCode code, const std::string& why) {
    PQfinish(conn);
    return Status(code, context + ": " + why);
  };
  if (PQstatus(conn) == CONNECTION_BAD) {
    const std::string message = Trim(PQerrorMessage(conn));
    // Bad parameters fail here, before any network traffic.
    const bool bad_option = message.find("invalid") != std::string::npos ||
                            message.find("unrecognized") != std::string::npos;
    return fail(bad_option ? StatusCode::kInvalidArgument : ConnectErrorCode(message), message);
  }
  const auto deadline = Clock::now() + config.timeout;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      const std::string message = Trim(PQerrorMessage(conn));
      return fail(ConnectErrorCode(message), message);
    }
    const int ready =
        WaitFd(PQsocket(conn), state == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, -1);
    if (ready == 0) {
      return fail(StatusCode::kUnavailable,
                  "no answer within " + std::to_string(config.timeout.count()) + " ms");
    }
    if (ready < 0) return fail(StatusCode::kUnavailable, std::strerror(errno));
    state = PQconnectPoll(conn);
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  std::unique_ptr<Connection> c(new Connection(conn, config.label, config.timeout));
  // statement_timeout bounds every statement on the server (lock waits included); the client
  // gives up a little later (Await), in case the server is unreachable rather than slow.
  PLINTH_RETURN_IF_ERROR(
      c->ExecSimple("SET statement_timeout = " + std::to_string(config.timeout.count()) +
                    "; SET search_path = " + QuoteIdent(config.schema) +
                    "; SET client_min_messages = warning")
          .WithContext(context));
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

int Connection::WaitReadable(Clock::time_point deadline, int wake_fd) {
  return WaitFd(PQsocket(conn_), POLLIN, deadline, wake_fd);
}

bool Connection::CheckAlive() {
  if (broken()) return false;
  const int fd = PQsocket(conn_);
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) > 0) {
    // Nothing is expected between statements: data or EOF means the server is going away.
    if (PQconsumeInput(conn_) == 0) broken_ = true;
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  }
  return !broken();
}

Status Connection::Broken(std::string_view what) {
  broken_ = true;
  return UnavailableError("postgres store " + label_ + ": " + std::string(what) + ": " +
                          Trim(PQerrorMessage(conn_)));
}

StatusOr<Result> Connection::Await(std::string_view what) {
  const auto deadline = Clock::now() + timeout_ + kClientGrace;
  std::optional<Status> error;
  std::optional<Result> last;
  while (true) {
    while (PQisBusy(conn_)) {
      const int ready = WaitReadable(deadline, -1);
      if (ready <= 0) {
        broken_ = true;
        return UnavailableError("postgres store " + label_ + ": " + std::string(what) +
                                ": no answer from the server within " +
                                std::to_string((timeout_ + kClientGrace).count()) + " ms");
      }
      if (PQconsumeInput(conn_) == 0) return Broken(what);
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    const ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
      if (!error) error = ResultStatus(*this, r, what);
      PQclear(r);
    } else {
      last.reset();
      last.emplace(r);
    }
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    broken_ = true;
    if (error) return *error;
    return Broken(what);
  }
  if (error) return *error;
  if (!last)
    return InternalError("postgres store " + label_ + ": " + std::string(what) + ": no result");
  answered_ = true;
  return std::move(*last);
}

StatusOr<Result> Connection::Exec(const std::string& sql, const Params& params) {
  if (broken()) return Broken("connection lost");
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string name = "p" + std::to_string(prepared_.size());
    if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), params.size(), params.types()) == 0) {
      return Broken("sending a statement");
    }
    PLINTH_RETURN_IF_ERROR(Await("preparing \"" + sql + "\"").status());
    it = prepared_.emplace(sql, name).first;
  }
  if (PQsendQueryPrepared(conn_, it->second.c_str(), params.size(), params.values(),
                          params.lengths(), params.formats(), 1) == 0) {
    return Broken("sending a statement");
  }
  return Await(sql);
}

Status Connection::ExecSimple(const std::string& sql) {
  if (broken()) return Broken("connection lost");
  if (PQsendQuery(conn_, sql.c_str()) == 0) return Broken("sending a statement");
  return Await(sql).status();
}

void Connection::RollbackQuietly() {
  if (!broken() && in_transaction()) ExecSimple("ROLLBACK").IgnoreError();
}

Status ResultStatus(const Connection& conn, const PGresult* result, std::string_view what) {
  const char* state_field = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const std::string state = state_field != nullptr ? state_field : "";
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string message = primary != nullptr ? primary : Trim(PQresultErrorMessage(result));
  if (message.empty()) message = Trim(PQerrorMessage(conn.get()));
  const std::string text = "postgres store " + conn.label() + ": " + std::string(what) + ": " +
                           message + (state.empty() ? "" : " (SQLSTATE " + state + ")");
  const std::string cls = state.substr(0, 2);
  StatusCode code = StatusCode::kInternal;
  if (state.empty() || cls == "08" || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "53300" || state == "55P03" || state == "57014") {
    // Connection failures, server shutdown, too many connections, lock and statement timeouts.
    code = StatusCode::kUnavailable;
  } else if (state == "40001" || state == "40P01") {
    code = StatusCode::kAborted;
  } else if (cls == "53" || cls == "54") {
    code = StatusCode::kResourceExhausted;
  } else if (cls == "28" || state == "42501") {
    code = StatusCode::kPermissionDenied;
  } else if (cls == "22") {
    code = StatusCode::kInvalidArgument;
  }
  return Status(code, text);
}

}  // namespace plinth::store::postgres::internal
