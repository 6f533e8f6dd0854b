#include "store/etcd/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "store/internal/txn_effects.h"

namespace plinth::store::etcd {
namespace {

namespace pb = ::etcdserverpb;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// etcd 3.4's defaults (--max-txn-ops, --max-request-bytes).
constexpr size_t kEtcdMaxTxnOps = 128;
constexpr size_t kEtcdMaxRequestBytes = 1572864;
constexpr size_t kBookkeepingOps = 2;  // the counter and the log entry
constexpr size_t kHeaderBytes = 16;
constexpr size_t kTxnIdBytes = 16;
constexpr int64_t kDefaultRetention = 100'000;
constexpr milliseconds kDefaultTimeout{5000};
constexpr milliseconds kWatchReconnectWindow{30'000};
constexpr size_t kReadOpsPerTxn = 100;
constexpr milliseconds kConnectWindow{1000};

// ---- encoding -------------------------------------------------------------------------------

void AppendBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

uint64_t ReadBE64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string EncodeValue(Revision create, Revision mod, std::string_view value) {
  std::string out;
  out.reserve(kHeaderBytes + value.size());
  AppendBE64(&out, static_cast<uint64_t>(create));
  AppendBE64(&out, static_cast<uint64_t>(mod));
  out.append(value);
  return out;
}

// Decodes a stored data value into `kv` (value only unless keys_only).
Status DecodeValue(std::string_view raw, bool keys_only, KeyValue* kv) {
  if (raw.size() < kHeaderBytes) {
    return DataLossError("etcd value of key " + PrintableKey(kv->key) + " has no plinth header");
  }
  kv->create_revision = static_cast<Revision>(ReadBE64(raw.substr(0, 8)));
  kv->mod_revision = static_cast<Revision>(ReadBE64(raw.substr(8, 8)));
  if (!keys_only) kv->value.assign(raw.substr(kHeaderBytes));
  return Status::Ok();
}

struct LogEntry {
  std::string txn_id;
  std::vector<std::string> keys;  // every key the transaction changed
};

std::string EncodeLog(std::string_view txn_id, const std::vector<Event>& events) {
  std::string out(txn_id);
  for (const Event& e : events) {
    out.push_back(e.type == Event::Type::kPut ? 'P' : 'D');
    const uint32_t n = static_cast<uint32_t>(e.kv.key.size());
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((n >> shift) & 0xFF));
    out.append(e.kv.key);
  }
  return out;
}

StatusOr<LogEntry> DecodeLog(std::string_view raw) {
  LogEntry entry;
  if (raw.size() < kTxnIdBytes) return DataLossError("plinth log entry is truncated");
  entry.txn_id.assign(raw.substr(0, kTxnIdBytes));
  size_t pos = kTxnIdBytes;
  while (pos < raw.size()) {
    if (raw.size() - pos < 5) return DataLossError("plinth log entry is truncated");
    uint32_t n = 0;
    for (size_t i = 1; i <= 4; ++i) n = (n << 8) | static_cast<unsigned char>(raw[pos + i]);
    pos += 5;
    if (raw.size() - pos < n) return DataLossError("plinth log entry is truncated");
    entry.keys.emplace_back(raw.substr(pos, n));
    pos += n;
  }
  return entry;
}

std::string Hex16(Revision r) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

StatusOr<Revision> ParseRevision(std::string_view text, std::string_view what) {
  Revision r = 0;
  if (text.empty()) return DataLossError(std::string(what) + " is empty");
  for (char c : text) {
    if (c < '0' || c > '9') return DataLossError(std::string(what) + " is not a number");
    r = r * 10 + (c - '0');
  }
  return r;
}

// gRPC takes deadlines on the system clock.
std::chrono::system_clock::time_point GrpcDeadline(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

// ---- errors ---------------------------------------------------------------------------------

bool Retryable(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
      return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return s.error_message().find("too many requests") != std::string::npos;
    default:
      return false;
  }
}

bool InvalidToken(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
         s.error_message().find("token") != std::string::npos;
}

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  const std::string msg = "etcd " + std::string(what) + ": " + s.error_message();
  const std::string& m = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::Ok();
    case grpc::StatusCode::OUT_OF_RANGE:
      return OutOfRangeError(msg);
    case grpc::StatusCode::INVALID_ARGUMENT:
      if (m.find("authentication failed") != std::string::npos ||
          m.find("user name is empty") != std::string::npos) {
        return UnauthenticatedError(msg);
      }
      if (m.find("too large") != std::string::npos) {
        return ResourceExhaustedError(msg + " (etcd's --max-request-bytes, default " +
                                      std::to_string(kEtcdMaxRequestBytes) + ")");
      }
      if (m.find("too many operations") != std::string::npos) {
        return ResourceExhaustedError(msg + " (etcd's --max-txn-ops, default " +
                                      std::to_string(kEtcdMaxTxnOps) + ")");
      }
      return InternalError(msg);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ResourceExhaustedError(msg);
    case grpc::StatusCode::PERMISSION_DENIED:
      return PermissionDeniedError(msg);
    case grpc::StatusCode::UNAUTHENTICATED:
      return UnauthenticatedError(msg);
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (m.find("authentication failed") != std::string::npos) return UnauthenticatedError(msg);
      return FailedPreconditionError(msg);
    default:
      return UnavailableError(msg);
  }
}

Status ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return Status::Ok();
}

// ---- configuration and connections -------------------------------------------------------------

struct Config {
  std::vector<std::string> endpoints;  // host:port
  std::string prefix;                  // ends with "/"
  std::string username;
  std::string password;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key;  // PEM contents
  milliseconds timeout = kDefaultTimeout;
  int64_t retention = kDefaultRetention;
  Limits limits;
};

// Channels to every endpoint, failover and authentication. Thread-safe.
class Client {
 public:
  explicit Client(const Config& config) : config_(config) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (config.tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = config.tls_ca;
      ssl.pem_cert_chain = config.tls_cert;
      ssl.pem_private_key = config.tls_key;
      creds = grpc::SslCredentials(ssl);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);  // also the connect timeout
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    for (const std::string& endpoint : config.endpoints) {
      auto channel = grpc::CreateCustomChannel(endpoint, creds, args);
      channels_.push_back(channel);
      kv_.push_back(pb::KV::NewStub(channel));
      watch_.push_back(pb::Watch::NewStub(channel));
      auth_.push_back(pb::Auth::NewStub(channel));
    }
  }

  size_t size() const { return kv_.size(); }
  size_t current() const { return current_.load(); }
  void Advance(size_t from) {
    size_t expected = from;
    current_.compare_exchange_strong(expected, (from + 1) % kv_.size());
  }
  pb::Watch::Stub* watch(size_t i) { return watch_[i].get(); }

  // Waits (bounded) until endpoint `i` is connected. A sync client must: gRPC's pick_first
  // stays in TRANSIENT_FAILURE while it reconnects, failing calls at once, and only a thread
  // waiting on the channel drives the reconnection forward.
  bool Connect(size_t i, Clock::time_point deadline) {
    if (channels_[i]->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) return true;
    return channels_[i]->WaitForConnected(
        GrpcDeadline(std::min(deadline, Clock::now() + kConnectWindow)));
  }
  const std::string& endpoint(size_t i) const { return config_.endpoints[i]; }

  // Adds the auth token (authenticating first if needed) to `ctx`.
  Status Authorize(grpc::ClientContext* ctx, size_t endpoint, Clock::time_point deadline) {
    if (config_.username.empty()) return Status::Ok();
    std::string token;
    {
      MutexLock lock(&mu_);
      token = token_;
    }
    if (token.empty()) {
      grpc::ClientContext auth_ctx;
      auth_ctx.set_deadline(GrpcDeadline(deadline));
      pb::AuthenticateRequest req;
      req.set_name(config_.username);
      req.set_password(config_.password);
      pb::AuthenticateResponse resp;
      grpc::Status s = auth_[endpoint]->Authenticate(&auth_ctx, req, &resp);
      if (!s.ok()) return FromGrpc(s, "authenticate").WithContext(config_.endpoints[endpoint]);
      token = resp.token();
      MutexLock lock(&mu_);
      token_ = token;
    }
    ctx->AddMetadata("token", token);
    return Status::Ok();
  }

  void DropToken() {
    MutexLock lock(&mu_);
    token_.clear();
  }

  // Calls `method` on the KV service with failover across endpoints within the configured
  // timeout. `*maybe_applied` (if given) is set when an attempt failed in a way that leaves
  // its effect unknown.
  template <typename Req, typename Resp>
  Status CallKV(grpc::Status (pb::KV::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                const Req& req, Resp* resp, std::string_view what, bool* maybe_applied = nullptr) {
    const auto deadline = Clock::now() + config_.timeout;
    const size_t attempts = 2 * kv_.size();
    Status last = UnavailableError("etcd " + std::string(what) + ": no endpoint reachable");
    for (size_t i = 0; i < attempts; ++i) {
      if (Clock::now() >= deadline) break;
      const size_t endpoint = current();
      if (!Connect(endpoint, deadline)) {
        last = UnavailableError("etcd " + std::string(what) + ": cannot connect to " +
                                config_.endpoints[endpoint]);
        Advance(endpoint);
        continue;
      }
      const auto now = Clock::now();
      if (now >= deadline) break;
      // Half of what is left (at least a second) for this endpoint, the rest for the others.
      const auto remaining = deadline - now;
      const auto budget = std::max<Clock::duration>(
          remaining / 2, std::min<Clock::duration>(remaining, milliseconds(1000)));
      grpc::ClientContext ctx;
      ctx.set_deadline(GrpcDeadline(now + budget));
      Status auth = Authorize(&ctx, endpoint, now + budget);
      if (!auth.ok()) {
        if (auth.code() != StatusCode::kUnavailable) return auth;
        last = auth;
        Advance(endpoint);
        continue;
      }
      grpc::Status s = (kv_[endpoint].get()->*method)(&ctx, req, resp);
      if (s.ok()) return Status::Ok();
      if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED && InvalidToken(s)) {
        DropToken();
        continue;
      }
      if (!Retryable(s)) return FromGrpc(s, what);
      if (maybe_applied != nullptr && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
        *maybe_applied = true;
      }
      if (maybe_applied != nullptr && s.error_code() == grpc::StatusCode::UNAVAILABLE &&
          s.error_message().find("connect") == std::string::npos) {
        *maybe_applied = true;  // e.g. "leader changed": the request may have been proposed
      }
      last = UnavailableError("etcd " + std::string(what) + " at " + config_.endpoints[endpoint] +
                              ": " + s.error_message());
      Advance(endpoint);
    }
    return last;
  }

  const Config& config() const { return config_; }

 private:
  const Config config_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<pb::Watch::Stub>> watch_;
  std::vector<std::unique_ptr<pb::Auth::Stub>> auth_;
  std::atomic<size_t> current_{0};
  Mutex mu_;
  std::string token_ PLINTH_GUARDED_BY(mu_);
};

// ---- key layout -------------------------------------------------------------------------------

class Layout {
 public:
  explicit Layout(std::string prefix)
      : prefix_(std::move(prefix)),
        data_(prefix_ + "d/"),
        counter_(prefix_ + "m/rev"),
        compact_(prefix_ + "m/compact"),
        log_(prefix_ + "w/") {}

  const std::string& prefix() const { return prefix_; }
  // What a watch needs: the data keys and the counter and compaction point, not the log.
  std::string WatchStart() const { return data_; }
  std::string WatchEnd() const { return prefix_ + "m0"; }
  std::string Data(std::string_view key) const { return data_ + std::string(key); }
  const std::string& counter() const { return counter_; }
  const std::string& compact() const { return compact_; }
  std::string Log(Revision r) const { return log_ + Hex16(r); }
  std::string LogEnd() const { return PrefixEnd(log_); }
  bool IsData(std::string_view etcd_key) const { return etcd_key.starts_with(data_); }
  std::string_view UserKey(std::string_view etcd_key) const {
    return etcd_key.substr(data_.size());
  }
  // [key, range_end) of the data keys in `span`, from `after` (exclusive) on.
  // Returns false when nothing can match.
  bool DataRange(const KeySpan& span, std::string_view after, std::string* key,
                 std::string* range_end) const {
    std::string start = span.start;
    if (!after.empty() && CompareKeys(after, start) >= 0) {
      start = std::string(after);
      start.push_back('\0');
    }
    if (!span.end.empty() && CompareKeys(start, span.end) >= 0) return false;
    *key = data_ + start;
    *range_end = span.end.empty() ? PrefixEnd(data_) : data_ + span.end;
    return true;
  }

 private:
  const std::string prefix_;
  const std::string data_;
  const std::string counter_;
  const std::string compact_;
  const std::string log_;
};

pb::RequestOp RangeOp(std::string key, std::string range_end = "", int64_t limit = 0,
                      bool keys_only = false, bool count_only = false, int64_t revision = 0) {
  pb::RequestOp op;
  pb::RangeRequest* r = op.mutable_request_range();
  r->set_key(std::move(key));
  if (!range_end.empty()) r->set_range_end(std::move(range_end));
  r->set_limit(limit);
  r->set_keys_only(keys_only);
  r->set_count_only(count_only);
  r->set_revision(revision);
  return op;
}

class EtcdStore;

// ---- snapshot ---------------------------------------------------------------------------------

class EtcdSnapshot final : public Snapshot {
 public:
  EtcdSnapshot(EtcdStore* store, int64_t etcd_revision, Revision revision)
      : store_(store), etcd_revision_(etcd_revision), revision_(revision) {}
  Revision revision() const override { return revision_; }
  StatusOr<KeyValue> Get(std::string_view key) override;
  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override;
  StatusOr<CountResult> Count(const KeySpan& span) override;

 private:
  EtcdStore* const store_;
  const int64_t etcd_revision_;
  const Revision revision_;
};

// ---- watch ------------------------------------------------------------------------------------

class EtcdWatch final : public WatchStream {
 public:
  EtcdWatch(EtcdStore* store, KeySpan span, Revision from, int64_t etcd_start,
            WatchOptions options);
  ~EtcdWatch() override;
  StatusOr<WatchBatch> Next(milliseconds timeout) override;
  void Cancel() override;

 private:
  void Run();
  // Processes one etcd revision's events.
  void ProcessRevision(int64_t etcd_rev, const std::vector<const mvccpb::Event*>& events);

  EtcdStore* const store_;
  const KeySpan span_;
  const WatchOptions options_;

  Mutex mu_;
  CondVar changed_{&mu_};
  std::deque<WatchBatch> queue_ PLINTH_GUARDED_BY(mu_);  // every transaction of the store, in order
  Revision next_ PLINTH_GUARDED_BY(mu_);                 // next revision to hand out
  Revision compacted_ PLINTH_GUARDED_BY(mu_) = 0;        // compaction point seen in the stream
  Status error_ PLINTH_GUARDED_BY(mu_);
  bool cancelled_ PLINTH_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ PLINTH_GUARDED_BY(mu_) = nullptr;

  int64_t etcd_next_;  // owned by the reader thread
  std::thread reader_;
};

// ---- the store --------------------------------------------------------------------------------

class EtcdStore final : public Store {
 public:
  explicit EtcdStore(const Config& config)
      : client_(config), layout_(config.prefix), limits_(config.limits) {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
              static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  }

  std::string_view backend() const override { return "etcd"; }
  Limits limits() const override { return limits_; }
  Client& client() { return client_; }
  const Layout& layout() const { return layout_; }
  Revision compacted_hint() const { return compacted_hint_.load(); }

  StatusOr<KeyValue> Get(std::string_view key) override { return GetAt(key, 0); }

  StatusOr<KeyValue> GetAt(std::string_view key, int64_t etcd_rev) {
    PLINTH_RETURN_IF_ERROR(ValidateKey(key, limits_));
    pb::RangeRequest req;
    req.set_key(layout_.Data(key));
    req.set_revision(etcd_rev);
    pb::RangeResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Range, req, &resp, "range"));
    if (resp.kvs_size() == 0) return NotFoundError("key " + PrintableKey(key) + " not found");
    KeyValue kv;
    kv.key = std::string(key);
    PLINTH_RETURN_IF_ERROR(DecodeValue(resp.kvs(0).value(), false, &kv));
    return kv;
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    return RangeAt(span, options, 0, 0);
  }

  // At etcd revision `etcd_rev` (0 = latest, with the store revision read alongside); `rev`
  // is the store revision to report for a pinned read.
  StatusOr<RangeResult> RangeAt(const KeySpan& span, const RangeOptions& options, int64_t etcd_rev,
                                Revision rev) {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    std::string key, end;
    const bool any = layout_.DataRange(span, options.after, &key, &end);
    pb::TxnRequest txn;
    *txn.add_success() = RangeOp(layout_.counter(), "", 0, false, false, etcd_rev);
    if (any) {
      // keys_only still needs the header for the revisions, so values are read anyway.
      *txn.add_success() =
          RangeOp(key, end, static_cast<int64_t>(options.limit), false, false, etcd_rev);
    }
    pb::TxnResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Txn, txn, &resp, "range"));
    RangeResult result;
    if (etcd_rev == 0) {
      PLINTH_ASSIGN_OR_RETURN(result.revision, CounterFrom(resp.responses(0).response_range()));
    } else {
      result.revision = rev;
    }
    if (!any) return result;
    const pb::RangeResponse& r = resp.responses(1).response_range();
    result.more = r.more();
    result.kvs.reserve(static_cast<size_t>(r.kvs_size()));
    for (const mvccpb::KeyValue& ekv : r.kvs()) {
      KeyValue kv;
      kv.key = std::string(layout_.UserKey(ekv.key()));
      PLINTH_RETURN_IF_ERROR(DecodeValue(ekv.value(), options.keys_only, &kv));
      result.kvs.push_back(std::move(kv));
    }
    return result;
  }

  StatusOr<CountResult> Count(const KeySpan& span) override { return CountAt(span, 0, 0); }

  StatusOr<CountResult> CountAt(const KeySpan& span, int64_t etcd_rev, Revision rev) {
    PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
    std::string key, end;
    const bool any = layout_.DataRange(span, "", &key, &end);
    pb::TxnRequest txn;
    *txn.add_success() = RangeOp(layout_.counter(), "", 0, false, false, etcd_rev);
    if (any) *txn.add_success() = RangeOp(key, end, 0, false, true, etcd_rev);
    pb::TxnResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Txn, txn, &resp, "count"));
    CountResult result;
    if (etcd_rev == 0) {
      PLINTH_ASSIGN_OR_RETURN(result.revision, CounterFrom(resp.responses(0).response_range()));
    } else {
      result.revision = rev;
    }
    if (any) result.count = resp.responses(1).response_range().count();
    return result;
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    pb::RangeRequest req;
    req.set_key(layout_.counter());
    pb::RangeResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Range, req, &resp, "range"));
    PLINTH_ASSIGN_OR_RETURN(Revision rev, CounterFrom(resp));
    return std::unique_ptr<Snapshot>(new EtcdSnapshot(this, resp.header().revision(), rev));
  }

  StatusOr<Revision> CurrentRevision() override {
    pb::RangeRequest req;
    req.set_key(layout_.counter());
    pb::RangeResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Range, req, &resp, "range"));
    return CounterFrom(resp);
  }

  StatusOr<Revision> CompactedRevision() override {
    pb::RangeRequest req;
    req.set_key(layout_.compact());
    pb::RangeResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Range, req, &resp, "range"));
    PLINTH_ASSIGN_OR_RETURN(Revision c, CompactFrom(resp));
    NoteCompacted(c);
    return c;
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override;
  StatusOr<Revision> CommitLocked(const TxnRequest& txn, Revision* compact_to);
  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override;
  Status Compact(Revision revision) override;

  void NoteCompacted(Revision c) {
    Revision seen = compacted_hint_.load();
    while (c > seen && !compacted_hint_.compare_exchange_weak(seen, c)) {
    }
  }

  static StatusOr<Revision> CounterFrom(const pb::RangeResponse& r) {
    if (r.kvs_size() == 0) return Revision{0};
    return ParseRevision(r.kvs(0).value(), "the plinth revision counter");
  }
  static StatusOr<Revision> CompactFrom(const pb::RangeResponse& r) {
    if (r.kvs_size() == 0) return Revision{0};
    return ParseRevision(r.kvs(0).value(), "the plinth compaction point");
  }

 private:
  std::string NewTxnId() {
    MutexLock lock(&rng_mu_);
    std::string id;
    AppendBE64(&id, rng_());
    AppendBE64(&id, rng_());
    return id;
  }

  // Runs read-only range ops in as few Txns as etcd allows, all at one etcd revision (the
  // first Txn's). Responses are in the order of `ops`.
  Status ReadAll(std::vector<pb::RequestOp> ops, std::vector<pb::RangeResponse>* out,
                 int64_t* etcd_rev) {
    out->clear();
    *etcd_rev = 0;
    for (size_t begin = 0; begin < ops.size(); begin += kReadOpsPerTxn) {
      pb::TxnRequest txn;
      for (size_t i = begin; i < std::min(ops.size(), begin + kReadOpsPerTxn); ++i) {
        if (*etcd_rev != 0) ops[i].mutable_request_range()->set_revision(*etcd_rev);
        *txn.add_success() = std::move(ops[i]);
      }
      pb::TxnResponse resp;
      PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Txn, txn, &resp, "read"));
      if (*etcd_rev == 0) *etcd_rev = resp.header().revision();
      for (pb::ResponseOp& r : *resp.mutable_responses()) {
        out->push_back(std::move(*r.mutable_response_range()));
      }
    }
    return Status::Ok();
  }

  Client client_;
  const Layout layout_;
  const Limits limits_;
  Mutex commit_mu_;  // one commit at a time per handle: they would only contend on the counter
  Mutex rng_mu_;
  std::mt19937_64 rng_ PLINTH_GUARDED_BY(rng_mu_);
  std::atomic<Revision> compacted_hint_{0};
};

// ---- snapshot ---------------------------------------------------------------------------------

StatusOr<KeyValue> EtcdSnapshot::Get(std::string_view key) {
  return store_->GetAt(key, etcd_revision_);
}
StatusOr<RangeResult> EtcdSnapshot::Range(const KeySpan& span, const RangeOptions& options) {
  return store_->RangeAt(span, options, etcd_revision_, revision_);
}
StatusOr<CountResult> EtcdSnapshot::Count(const KeySpan& span) {
  return store_->CountAt(span, etcd_revision_, revision_);
}

// ---- commit -----------------------------------------------------------------------------------

StatusOr<Revision> EtcdStore::Commit(const TxnRequest& txn) {
  PLINTH_RETURN_IF_ERROR(ValidateTxn(txn, limits_));
  Revision compact_to = 0;
  StatusOr<Revision> result = CommitLocked(txn, &compact_to);
  if (compact_to > 0) Compact(compact_to).IgnoreError();  // retention; best effort
  return result;
}

StatusOr<Revision> EtcdStore::CommitLocked(const TxnRequest& txn, Revision* compact_to) {
  MutexLock commit_lock(&commit_mu_);
  const std::string txn_id = NewTxnId();
  const auto deadline = Clock::now() + std::max<Clock::duration>(client_.config().timeout * 6,
                                                                 std::chrono::seconds(30));
  std::optional<Revision> maybe_committed;  // an attempt at this revision may have applied
  Status last_error;
  for (int attempt = 0;; ++attempt) {
    if (Clock::now() >= deadline) {
      if (maybe_committed) {
        return UnavailableError("etcd commit: the outcome is unknown (" +
                                std::string(last_error.message()) + ")");
      }
      if (!last_error.ok()) return last_error;
      return AbortedError("etcd commit: gave up after " + std::to_string(attempt) +
                          " attempts lost to concurrent writers");
    }
    if (attempt > 2) {
      std::this_thread::sleep_for(milliseconds(std::min(attempt, 20)));
    }
    // 1. Read everything the transaction depends on, at one etcd revision.
    std::vector<pb::RequestOp> reads;
    reads.push_back(RangeOp(layout_.counter()));
    reads.push_back(RangeOp(layout_.compact()));
    const size_t pending_index = reads.size();
    if (maybe_committed) reads.push_back(RangeOp(layout_.Log(*maybe_committed)));
    std::vector<size_t> condition_index;
    for (const Condition& c : txn.conditions) {
      condition_index.push_back(reads.size());
      if (c.kind == Condition::Kind::kUnchangedSince) {
        reads.push_back(
            RangeOp(layout_.Log(std::max<Revision>(c.revision, 0) + 1), layout_.LogEnd()));
      } else {
        reads.push_back(RangeOp(layout_.Data(c.key)));
      }
    }
    std::vector<size_t> op_index;
    for (const Op& op : txn.ops) {
      op_index.push_back(reads.size());
      if (op.kind == Op::Kind::kDeleteRange) {
        std::string key, end;
        if (op.span.empty() || !layout_.DataRange(op.span, "", &key, &end)) {
          op_index.back() = std::string::npos;
          continue;
        }
        reads.push_back(RangeOp(key, end, 0, /*keys_only=*/true));
      } else {
        reads.push_back(RangeOp(layout_.Data(op.key)));
      }
    }
    std::vector<pb::RangeResponse> got;
    int64_t etcd_rev = 0;
    Status read = ReadAll(std::move(reads), &got, &etcd_rev);
    if (!read.ok()) {
      if (read.code() == StatusCode::kUnavailable && maybe_committed) {
        last_error = read;
        continue;
      }
      return read;
    }
    const pb::RangeResponse& counter = got[0];
    const pb::RangeResponse& compact = got[1];
    PLINTH_ASSIGN_OR_RETURN(const Revision current, CounterFrom(counter));
    PLINTH_ASSIGN_OR_RETURN(const Revision compacted, CompactFrom(compact));
    NoteCompacted(compacted);
    const int64_t counter_mod = counter.kvs_size() > 0 ? counter.kvs(0).mod_revision() : 0;
    const int64_t compact_mod = compact.kvs_size() > 0 ? compact.kvs(0).mod_revision() : 0;
    if (maybe_committed) {
      const pb::RangeResponse& log = got[pending_index];
      if (log.kvs_size() > 0 && log.kvs(0).value().substr(0, kTxnIdBytes) == txn_id) {
        return *maybe_committed;  // an earlier attempt whose reply was lost did commit
      }
    }

    // 2. Conditions, against that state.
    for (size_t i = 0; i < txn.conditions.size(); ++i) {
      const Condition& c = txn.conditions[i];
      const pb::RangeResponse& r = got[condition_index[i]];
      switch (c.kind) {
        case Condition::Kind::kAbsent:
          if (r.kvs_size() > 0) {
            return AbortedError("condition failed: key " + PrintableKey(c.key) + " exists");
          }
          break;
        case Condition::Kind::kModRevisionIs: {
          KeyValue kv;
          kv.key = c.key;
          if (r.kvs_size() > 0) PLINTH_RETURN_IF_ERROR(DecodeValue(r.kvs(0).value(), true, &kv));
          if (r.kvs_size() == 0 || kv.mod_revision != c.revision) {
            return AbortedError("condition failed: key " + PrintableKey(c.key) +
                                " is not at mod_revision " + std::to_string(c.revision));
          }
          break;
        }
        case Condition::Kind::kUnchangedSince: {
          if (c.revision < compacted) {
            return AbortedError("condition failed: history since revision " +
                                std::to_string(c.revision) + " was compacted; re-read");
          }
          for (const mvccpb::KeyValue& entry : r.kvs()) {
            PLINTH_ASSIGN_OR_RETURN(LogEntry log, DecodeLog(entry.value()));
            for (const std::string& key : log.keys) {
              if (c.span.Contains(key)) {
                return AbortedError("condition failed: key " + PrintableKey(key) +
                                    " changed after revision " + std::to_string(c.revision));
              }
            }
          }
          break;
        }
      }
    }

    // 3. The final state of each key.
    // Every Put and Delete read its key with the value (for the header); DeleteRanges only
    // listed theirs.
    std::map<std::string, const mvccpb::KeyValue*> existing;  // user key -> stored kv
    std::vector<const pb::RangeResponse*> listings;
    for (size_t i = 0; i < txn.ops.size(); ++i) {
      if (op_index[i] == std::string::npos) continue;
      const pb::RangeResponse& r = got[op_index[i]];
      if (txn.ops[i].kind == Op::Kind::kDeleteRange) {
        listings.push_back(&r);
        continue;
      }
      for (const mvccpb::KeyValue& kv : r.kvs()) {
        existing.emplace(std::string(layout_.UserKey(kv.key())), &kv);
      }
    }
    std::map<std::string, size_t> listed_in;  // user key -> the first listing holding it
    for (size_t i = 0; i < listings.size(); ++i) {
      for (const mvccpb::KeyValue& kv : listings[i]->kvs()) {
        listed_in.emplace(layout_.UserKey(kv.key()), i);
      }
    }
    size_t next_listing = 0;
    PLINTH_ASSIGN_OR_RETURN(
        internal::Overlay overlay,
        internal::ResolveOps(txn.ops, [&](const KeySpan&, std::vector<std::string>* keys) {
          if (next_listing >= listings.size()) return InternalError("DeleteRange listing missing");
          for (const mvccpb::KeyValue& kv : listings[next_listing]->kvs()) {
            keys->emplace_back(layout_.UserKey(kv.key()));
          }
          ++next_listing;
          return Status::Ok();
        }));
    const Revision rev = current + 1;
    std::vector<Event> events;
    for (auto& [key, value] : overlay) {
      auto it = existing.find(key);
      const bool exists = it != existing.end() || listed_in.count(key) > 0;
      if (value) {
        Revision create = rev;
        if (it != existing.end()) {
          KeyValue old;
          old.key = key;
          PLINTH_RETURN_IF_ERROR(DecodeValue(it->second->value(), true, &old));
          create = old.create_revision;
        }
        events.push_back(Event{Event::Type::kPut, KeyValue{key, *value, create, rev}});
      } else if (exists) {
        events.push_back(Event{Event::Type::kDelete, KeyValue{key, {}, 0, rev}});
      }
    }
    if (events.empty()) return current;

    // The data operations. Deletes of keys one DeleteRange listed that are adjacent in key
    // order, with nothing else changing between them, become one etcd DeleteRange: the listing
    // holds every live key of its span, so that range deletes exactly those keys.
    std::vector<pb::RequestOp> data_ops;
    std::optional<size_t> run_listing;
    std::string run_first, run_last;
    auto flush_run = [&] {
      if (!run_listing) return;
      pb::DeleteRangeRequest* d = data_ops.emplace_back().mutable_request_delete_range();
      d->set_key(layout_.Data(run_first));
      if (run_first != run_last) d->set_range_end(layout_.Data(run_last) + std::string(1, '\0'));
      run_listing.reset();
    };
    for (const Event& e : events) {
      if (e.type == Event::Type::kPut) {
        flush_run();
        pb::PutRequest* p = data_ops.emplace_back().mutable_request_put();
        p->set_key(layout_.Data(e.kv.key));
        p->set_value(EncodeValue(e.kv.create_revision, rev, e.kv.value));
        continue;
      }
      auto listed = listed_in.find(e.kv.key);
      if (listed == listed_in.end()) {
        flush_run();
        data_ops.emplace_back().mutable_request_delete_range()->set_key(layout_.Data(e.kv.key));
        continue;
      }
      if (run_listing == listed->second) {
        run_last = e.kv.key;
        continue;
      }
      flush_run();
      run_listing = listed->second;
      run_first = run_last = e.kv.key;
    }
    flush_run();
    if (data_ops.size() + kBookkeepingOps > kEtcdMaxTxnOps) {
      return ResourceExhaustedError(
          "transaction needs " + std::to_string(data_ops.size()) +
          " etcd operations for the keys it changes; etcd takes at most " +
          std::to_string(kEtcdMaxTxnOps - kBookkeepingOps) + " per transaction (max_ops " +
          std::to_string(limits_.max_ops_per_txn) + ")");
    }

    // 4. Write, guarded by the counter and the compaction point.
    pb::TxnRequest write;
    pb::Compare* cmp = write.add_compare();
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_target(pb::Compare::MOD);
    cmp->set_key(layout_.counter());
    cmp->set_mod_revision(counter_mod);
    cmp = write.add_compare();
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_target(pb::Compare::MOD);
    cmp->set_key(layout_.compact());
    cmp->set_mod_revision(compact_mod);
    auto put = [&](std::string key, std::string value) {
      pb::PutRequest* p = write.add_success()->mutable_request_put();
      p->set_key(std::move(key));
      p->set_value(std::move(value));
    };
    put(layout_.counter(), std::to_string(rev));
    put(layout_.Log(rev), EncodeLog(txn_id, events));
    for (pb::RequestOp& op : data_ops) *write.add_success() = std::move(op);
    pb::TxnResponse resp;
    bool maybe_applied = false;
    Status s = client_.CallKV(&pb::KV::Stub::Txn, write, &resp, "txn", &maybe_applied);
    // The compares make every attempt at `rev` apply at most once, and only while nothing else
    // committed; an attempt whose reply was lost is recognised by its log entry's id.
    if (maybe_applied) maybe_committed = rev;
    if (!s.ok()) {
      if (s.code() != StatusCode::kUnavailable) return s;
      last_error = s;
      if (maybe_committed) continue;
      return s;  // never reached etcd: nothing applied
    }
    if (!resp.succeeded()) continue;  // another writer moved the counter: re-read, re-check
    const int64_t retention = client_.config().retention;
    if (retention > 0 && rev - compacted > 2 * retention) *compact_to = rev - retention;
    return rev;
  }
}

// ---- compaction -------------------------------------------------------------------------------

Status EtcdStore::Compact(Revision revision) {
  const auto deadline = Clock::now() + std::max<Clock::duration>(client_.config().timeout * 6,
                                                                 std::chrono::seconds(30));
  while (true) {
    std::vector<pb::RequestOp> reads;
    reads.push_back(RangeOp(layout_.counter()));
    reads.push_back(RangeOp(layout_.compact()));
    reads.push_back(RangeOp(layout_.Log(revision)));
    std::vector<pb::RangeResponse> got;
    int64_t etcd_rev = 0;
    PLINTH_RETURN_IF_ERROR(ReadAll(std::move(reads), &got, &etcd_rev));
    PLINTH_ASSIGN_OR_RETURN(const Revision current, CounterFrom(got[0]));
    PLINTH_ASSIGN_OR_RETURN(const Revision compacted, CompactFrom(got[1]));
    NoteCompacted(compacted);
    if (revision > current) {
      return OutOfRangeError("cannot compact to revision " + std::to_string(revision) +
                             " beyond the current revision " + std::to_string(current));
    }
    if (revision <= compacted) return Status::Ok();
    const int64_t etcd_at = got[2].kvs_size() > 0 ? got[2].kvs(0).create_revision() : 0;
    pb::TxnRequest txn;
    pb::Compare* cmp = txn.add_compare();
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_target(pb::Compare::MOD);
    cmp->set_key(layout_.compact());
    cmp->set_mod_revision(got[1].kvs_size() > 0 ? got[1].kvs(0).mod_revision() : 0);
    pb::PutRequest* p = txn.add_success()->mutable_request_put();
    p->set_key(layout_.compact());
    p->set_value(std::to_string(revision));
    pb::DeleteRangeRequest* d = txn.add_success()->mutable_request_delete_range();
    d->set_key(layout_.Log(0));
    d->set_range_end(layout_.Log(revision + 1));
    pb::TxnResponse resp;
    PLINTH_RETURN_IF_ERROR(client_.CallKV(&pb::KV::Stub::Txn, txn, &resp, "compact"));
    if (!resp.succeeded()) {
      if (Clock::now() >= deadline) {
        return UnavailableError("etcd compact: gave up after repeated concurrent compactions");
      }
      continue;  // another compactor moved the point: re-read (it may have passed ours)
    }
    NoteCompacted(revision);
    if (etcd_at > 0) {
      // Reclaim etcd's own history too; best effort (another store or compactor may be ahead).
      pb::CompactionRequest creq;
      creq.set_revision(etcd_at);
      pb::CompactionResponse cresp;
      client_.CallKV(&pb::KV::Stub::Compact, creq, &cresp, "compaction").IgnoreError();
    }
    return Status::Ok();
  }
}

// ---- watch ------------------------------------------------------------------------------------

StatusOr<std::unique_ptr<WatchStream>> EtcdStore::Watch(const KeySpan& span, Revision from_revision,
                                                        const WatchOptions& options) {
  PLINTH_RETURN_IF_ERROR(ValidateSpan(span));
  if (from_revision < 0) return InvalidArgumentError("from_revision is negative");
  std::vector<pb::RequestOp> reads;
  reads.push_back(RangeOp(layout_.counter()));
  reads.push_back(RangeOp(layout_.compact()));
  if (from_revision > 0) reads.push_back(RangeOp(layout_.Log(from_revision)));
  std::vector<pb::RangeResponse> got;
  int64_t etcd_rev = 0;
  PLINTH_RETURN_IF_ERROR(ReadAll(std::move(reads), &got, &etcd_rev));
  PLINTH_ASSIGN_OR_RETURN(const Revision current, CounterFrom(got[0]));
  PLINTH_ASSIGN_OR_RETURN(const Revision compacted, CompactFrom(got[1]));
  NoteCompacted(compacted);
  if (from_revision == 0) from_revision = current + 1;
  if (from_revision <= compacted) {
    return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                           ": history through " + std::to_string(compacted) + " was compacted");
  }
  int64_t etcd_start = etcd_rev + 1;
  if (from_revision <= current) {
    if (got[2].kvs_size() == 0) {
      return OutOfRangeError("cannot watch from revision " + std::to_string(from_revision) +
                             ": its history was compacted");
    }
    etcd_start = got[2].kvs(0).create_revision();
  }
  return std::unique_ptr<WatchStream>(
      new EtcdWatch(this, span, from_revision, etcd_start, options));
}

EtcdWatch::EtcdWatch(EtcdStore* store, KeySpan span, Revision from, int64_t etcd_start,
                     WatchOptions options)
    : store_(store),
      span_(std::move(span)),
      options_(options),
      next_(from),
      etcd_next_(etcd_start) {
  reader_ = std::thread([this] { Run(); });
}

EtcdWatch::~EtcdWatch() {
  Cancel();
  if (reader_.joinable()) reader_.join();
}

void EtcdWatch::Cancel() {
  MutexLock lock(&mu_);
  cancelled_ = true;
  if (active_ != nullptr) active_->TryCancel();
  changed_.SignalAll();
}

void EtcdWatch::ProcessRevision(int64_t etcd_rev, const std::vector<const mvccpb::Event*>& events) {
  const Layout& layout = store_->layout();
  std::optional<Revision> rev;
  Revision compacted = 0;
  for (const mvccpb::Event* e : events) {
    if (e->kv().key() == layout.counter() && e->type() == mvccpb::Event::PUT) {
      StatusOr<Revision> r = ParseRevision(e->kv().value(), "the plinth revision counter");
      if (r.ok()) rev = *r;
    } else if (e->kv().key() == layout.compact() && e->type() == mvccpb::Event::PUT) {
      StatusOr<Revision> r = ParseRevision(e->kv().value(), "the plinth compaction point");
      if (r.ok()) compacted = *r;
    }
  }
  etcd_next_ = etcd_rev + 1;
  WatchBatch batch;
  if (rev) {
    batch.revision = *rev;
    for (const mvccpb::Event* e : events) {
      if (!layout.IsData(e->kv().key())) continue;
      const std::string_view user_key = layout.UserKey(e->kv().key());
      if (!span_.Contains(user_key)) continue;
      Event out;
      out.kv.key = std::string(user_key);
      if (e->type() == mvccpb::Event::PUT) {
        out.type = Event::Type::kPut;
        if (!DecodeValue(e->kv().value(), false, &out.kv).ok()) continue;
      } else {
        out.type = Event::Type::kDelete;
        out.kv.mod_revision = *rev;
      }
      batch.events.push_back(std::move(out));
    }
    std::sort(batch.events.begin(), batch.events.end(),
              [](const Event& a, const Event& b) { return CompareKeys(a.kv.key, b.kv.key) < 0; });
  }
  MutexLock lock(&mu_);
  if (compacted > compacted_) compacted_ = compacted;
  if (rev) queue_.push_back(std::move(batch));
  changed_.SignalAll();
}

void EtcdWatch::Run() {
  Client& client = store_->client();
  const Layout& layout = store_->layout();
  auto disconnected_since = Clock::now();
  size_t endpoint = client.current();
  int failures = 0;
  while (true) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("hasleader", "true");
    {
      MutexLock lock(&mu_);
      if (cancelled_) return;
      active_ = &ctx;
    }
    Status auth = client.Connect(endpoint, Clock::now() + client.config().timeout)
                      ? client.Authorize(&ctx, endpoint, Clock::now() + client.config().timeout)
                      : UnavailableError("cannot connect");
    std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream;
    bool fatal = false;
    if (auth.ok()) {
      stream = client.watch(endpoint)->Watch(&ctx);
      pb::WatchRequest req;
      pb::WatchCreateRequest* create = req.mutable_create_request();
      create->set_key(layout.WatchStart());
      create->set_range_end(layout.WatchEnd());
      create->set_start_revision(etcd_next_);
      if (stream->Write(req)) {
        pb::WatchResponse resp;
        while (stream->Read(&resp)) {
          disconnected_since = Clock::now();
          failures = 0;
          if (resp.compact_revision() > 0) {
            MutexLock lock(&mu_);
            error_ = OutOfRangeError("etcd compacted the history this watch needs (etcd revision " +
                                     std::to_string(resp.compact_revision()) + ")");
            fatal = true;
            changed_.SignalAll();
            break;
          }
          if (resp.canceled()) {
            if (resp.cancel_reason().find("auth") != std::string::npos) client.DropToken();
            break;  // e.g. the member lost its leader: reconnect elsewhere
          }
          // Group by etcd revision; a response never splits one.
          std::vector<const mvccpb::Event*> group;
          int64_t group_rev = 0;
          for (const mvccpb::Event& e : resp.events()) {
            if (!group.empty() && e.kv().mod_revision() != group_rev) {
              ProcessRevision(group_rev, group);
              group.clear();
            }
            group_rev = e.kv().mod_revision();
            group.push_back(&e);
          }
          if (!group.empty()) ProcessRevision(group_rev, group);
        }
      }
      ctx.TryCancel();
      (void)stream->Finish();
    } else if (auth.code() != StatusCode::kUnavailable) {
      MutexLock lock(&mu_);
      error_ = auth;
      fatal = true;
      changed_.SignalAll();
    }
    {
      MutexLock lock(&mu_);
      active_ = nullptr;
      if (cancelled_ || fatal) return;
    }
    if (Clock::now() - disconnected_since > kWatchReconnectWindow) {
      MutexLock lock(&mu_);
      error_ = UnavailableError("etcd watch: no endpoint reachable for " +
                                std::to_string(kWatchReconnectWindow.count() / 1000) + " s");
      changed_.SignalAll();
      return;
    }
    // Reconnect on the next endpoint, after a short pause once every endpoint failed.
    ++failures;
    endpoint = (endpoint + 1) % client.size();
    if (failures >= static_cast<int>(client.size())) {
      MutexLock lock(&mu_);
      changed_.WaitFor(milliseconds(200));
      if (cancelled_) return;
    }
  }
}

StatusOr<WatchBatch> EtcdWatch::Next(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  MutexLock lock(&mu_);
  bool notice = false;
  while (true) {
    if (cancelled_) return CancelledError("watch cancelled");
    const Revision compacted = std::max(compacted_, store_->compacted_hint());
    if (next_ <= compacted) {
      return OutOfRangeError("watch needs revision " + std::to_string(next_) +
                             ", but history through " + std::to_string(compacted) +
                             " was compacted");
    }
    while (!queue_.empty()) {
      WatchBatch batch = std::move(queue_.front());
      queue_.pop_front();
      if (batch.revision < next_) continue;
      next_ = batch.revision + 1;
      if (!batch.events.empty()) return batch;
      notice = true;
    }
    if (notice && options_.progress_notify) return WatchBatch{next_ - 1, {}};
    if (!error_.ok()) return error_;
    if (Clock::now() >= deadline) return DeadlineExceededError("no change within the timeout");
    changed_.WaitUntil(deadline);
  }
}

// ---- opening ----------------------------------------------------------------------------------

Limits DefaultLimits(size_t prefix_bytes) {
  Limits l;
  l.max_key_bytes = 4096;
  l.max_ops_per_txn = kEtcdMaxTxnOps - kBookkeepingOps;
  // The request carries every changed key twice (data and log) plus per-key overhead.
  const size_t per_op = 2 * (prefix_bytes + 8) + 64;
  const size_t reserved = l.max_ops_per_txn * (l.max_key_bytes + per_op) + 16384;
  l.max_txn_bytes = kEtcdMaxRequestBytes > reserved ? kEtcdMaxRequestBytes - reserved : 1024;
  l.max_value_bytes = l.max_txn_bytes - l.max_key_bytes;
  return l;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenEtcdStore(const StoreUrl& url, const OpenOptions&) {
  Config config;
  const size_t slash = url.location.find('/');
  const std::string hosts = url.location.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : url.location.substr(slash);
  if (hosts.empty()) {
    return InvalidArgumentError("etcd URL \"" + url.text + "\" names no endpoint (host:port)");
  }
  size_t pos = 0;
  while (pos <= hosts.size()) {
    const size_t comma = std::min(hosts.find(',', pos), hosts.size());
    std::string endpoint = hosts.substr(pos, comma - pos);
    const size_t colon = endpoint.rfind(':');
    if (endpoint.empty() || colon == std::string::npos || colon == 0 ||
        colon + 1 == endpoint.size() ||
        endpoint.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      return InvalidArgumentError("etcd URL \"" + url.text + "\": endpoint \"" + endpoint +
                                  "\" is not host:port");
    }
    config.endpoints.push_back(std::move(endpoint));
    pos = comma + 1;
  }
  if (path.empty() || path == "/") {
    return InvalidArgumentError("etcd URL \"" + url.text +
                                "\" needs a key prefix as its path, e.g. etcd://host:2379/plinth");
  }
  if (path.back() != '/') path.push_back('/');
  config.prefix = path;

  UrlOptions options(url);
  config.username = options.TakeString("username").value_or("");
  config.password = options.TakeString("password").value_or("");
  if (config.username.empty() && !config.password.empty()) {
    return InvalidArgumentError("etcd URL \"" + url.text + "\": password without username");
  }
  PLINTH_ASSIGN_OR_RETURN(auto tls, options.TakeBool("tls"));
  const auto ca = options.TakeString("tls_ca");
  const auto cert = options.TakeString("tls_cert");
  const auto key = options.TakeString("tls_key");
  if (cert.has_value() != key.has_value()) {
    return InvalidArgumentError("etcd URL \"" + url.text +
                                "\": tls_cert and tls_key must be given together");
  }
  config.tls = tls.value_or(ca.has_value() || cert.has_value());
  if (!config.tls && (ca || cert)) {
    return InvalidArgumentError("etcd URL \"" + url.text + "\": tls=false with TLS files");
  }
  if (ca) PLINTH_RETURN_IF_ERROR(ReadFile(*ca, &config.tls_ca).WithContext("tls_ca"));
  if (cert) PLINTH_RETURN_IF_ERROR(ReadFile(*cert, &config.tls_cert).WithContext("tls_cert"));
  if (key) PLINTH_RETURN_IF_ERROR(ReadFile(*key, &config.tls_key).WithContext("tls_key"));
  PLINTH_ASSIGN_OR_RETURN(auto timeout, options.TakeDuration("timeout"));
  if (timeout) {
    if (timeout->count() <= 0) {
      return InvalidArgumentError("etcd URL \"" + url.text + "\": timeout must be positive");
    }
    config.timeout = *timeout;
  }
  PLINTH_ASSIGN_OR_RETURN(auto retention,
                          options.TakeInt("retention", 0, std::numeric_limits<int64_t>::max() / 4));
  config.retention = retention.value_or(kDefaultRetention);
  const Limits defaults = DefaultLimits(config.prefix.size());
  PLINTH_ASSIGN_OR_RETURN(config.limits, TakeLimitOptions(options, defaults, defaults));
  PLINTH_RETURN_IF_ERROR(options.CheckAllTaken());
  return std::unique_ptr<Store>(new EtcdStore(config));
}

}  // namespace plinth::store::etcd
