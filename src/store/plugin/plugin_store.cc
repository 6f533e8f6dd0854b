#include "store/plugin/plugin_store.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cctype>
#include <cstring>
#include <map>
#include <vector>

#include "common/thread_annotations.h"

namespace plinth::store::plugin {
namespace {

plinth_bytes Bytes(std::string_view s) {
  return plinth_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string String(plinth_bytes b) {
  return b.len == 0 ? std::string() : std::string(reinterpret_cast<const char*>(b.data), b.len);
}

plinth_span Span(const KeySpan& span) { return plinth_span{Bytes(span.start), Bytes(span.end)}; }

KeyValue ToKeyValue(const plinth_kv& kv) {
  return KeyValue{String(kv.key), String(kv.value), kv.create_revision, kv.mod_revision};
}

// Collects the message a failing plugin call describes.
class ErrorSink {
 public:
  ErrorSink() : c_{this, &ErrorSink::Set} {}
  plinth_error* get() { return &c_; }

  // The Status for a plugin's return code; `what` names the call for an undescribed error.
  Status ToStatus(int code, std::string_view what) const {
    if (code == PLINTH_OK) return Status::Ok();
    if (code < 0 || code > PLINTH_UNAUTHENTICATED) {
      return InternalError("store plugin returned invalid status code " + std::to_string(code) +
                           " from " + std::string(what));
    }
    return Status(static_cast<StatusCode>(code),
                  message_.empty() ? "store plugin " + std::string(what) + " failed" : message_);
  }

 private:
  static void Set(void* ctx, const char* message, size_t len) {
    static_cast<ErrorSink*>(ctx)->message_.assign(message, len);
  }
  plinth_error c_;
  std::string message_;
};

int CollectKv(void* ctx, const plinth_kv* kv) {
  static_cast<std::vector<KeyValue>*>(ctx)->push_back(ToKeyValue(*kv));
  return 0;
}

void CollectBatch(void* ctx, const plinth_watch_batch* batch) {
  auto* out = static_cast<WatchBatch*>(ctx);
  out->revision = batch->revision;
  out->events.clear();
  for (size_t i = 0; i < batch->num_events; ++i) {
    const plinth_event& e = batch->events[i];
    out->events.push_back(
        Event{e.type == PLINTH_EVENT_DELETE ? Event::Type::kDelete : Event::Type::kPut,
              ToKeyValue(e.kv)});
  }
}

class PluginSnapshot final : public Snapshot {
 public:
  PluginSnapshot(const plinth_store_plugin_api* api, plinth_snapshot* snapshot, Revision revision)
      : api_(api), snapshot_(snapshot), revision_(revision) {}
  ~PluginSnapshot() override { api_->snapshot_close(snapshot_); }

  Revision revision() const override { return revision_; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    std::vector<KeyValue> out;
    ErrorSink err;
    int code = api_->snapshot_get(snapshot_, Bytes(key), &CollectKv, &out, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "snapshot_get"));
    if (out.size() != 1) return InternalError("store plugin snapshot_get returned no value");
    return std::move(out.front());
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    RangeResult result;
    result.revision = revision_;
    plinth_span s = Span(span);
    int more = 0;
    ErrorSink err;
    int code =
        api_->snapshot_range(snapshot_, &s, Bytes(options.after), options.limit,
                             options.keys_only ? 1 : 0, &CollectKv, &result.kvs, &more, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "snapshot_range"));
    result.more = more != 0;
    return result;
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    CountResult result{0, revision_};
    plinth_span s = Span(span);
    ErrorSink err;
    int code = api_->snapshot_count(snapshot_, &s, &result.count, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "snapshot_count"));
    return result;
  }

 private:
  const plinth_store_plugin_api* const api_;
  plinth_snapshot* const snapshot_;
  const Revision revision_;
};

class PluginWatch final : public WatchStream {
 public:
  PluginWatch(const plinth_store_plugin_api* api, plinth_watch* watch) : api_(api), watch_(watch) {}
  ~PluginWatch() override { api_->watch_close(watch_); }

  StatusOr<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    WatchBatch batch;
    ErrorSink err;
    int code = api_->watch_next(watch_, timeout.count(), &CollectBatch, &batch, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "watch_next"));
    return batch;
  }

  void Cancel() override { api_->watch_cancel(watch_); }

 private:
  const plinth_store_plugin_api* const api_;
  plinth_watch* const watch_;
};

class PluginStore final : public Store {
 public:
  PluginStore(const plinth_store_plugin_api* api, plinth_store* store) : api_(api), store_(store) {
    plinth_limits l{};
    api_->limits(store_, &l);
    limits_ = Limits{l.max_key_bytes, l.max_value_bytes, l.max_ops_per_txn, l.max_txn_bytes};
  }
  ~PluginStore() override { api_->close(store_); }

  // The scheme it was opened by, so that backend() names a URL scheme that reopens it.
  std::string_view backend() const override { return "plugin"; }
  Limits limits() const override { return limits_; }

  StatusOr<KeyValue> Get(std::string_view key) override {
    PLINTH_ASSIGN_OR_RETURN(auto snapshot, OpenSnapshot());
    return snapshot->Get(key);
  }

  StatusOr<RangeResult> Range(const KeySpan& span, const RangeOptions& options) override {
    PLINTH_ASSIGN_OR_RETURN(auto snapshot, OpenSnapshot());
    return snapshot->Range(span, options);
  }

  StatusOr<CountResult> Count(const KeySpan& span) override {
    PLINTH_ASSIGN_OR_RETURN(auto snapshot, OpenSnapshot());
    return snapshot->Count(span);
  }

  StatusOr<std::unique_ptr<Snapshot>> OpenSnapshot() override {
    plinth_snapshot* snapshot = nullptr;
    int64_t revision = 0;
    ErrorSink err;
    int code = api_->snapshot_open(store_, &snapshot, &revision, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "snapshot_open"));
    return std::unique_ptr<Snapshot>(new PluginSnapshot(api_, snapshot, revision));
  }

  StatusOr<Revision> Commit(const TxnRequest& txn) override {
    // The C views point into `txn`, which outlives the call.
    std::vector<plinth_condition> conditions;
    conditions.reserve(txn.conditions.size());
    for (const Condition& c : txn.conditions) {
      int kind = c.kind == Condition::Kind::kAbsent          ? PLINTH_CONDITION_ABSENT
                 : c.kind == Condition::Kind::kModRevisionIs ? PLINTH_CONDITION_MOD_REVISION_IS
                                                             : PLINTH_CONDITION_UNCHANGED_SINCE;
      conditions.push_back(plinth_condition{kind, Bytes(c.key), Span(c.span), c.revision});
    }
    std::vector<plinth_op> ops;
    ops.reserve(txn.ops.size());
    for (const Op& op : txn.ops) {
      int kind = op.kind == Op::Kind::kPut      ? PLINTH_OP_PUT
                 : op.kind == Op::Kind::kDelete ? PLINTH_OP_DELETE
                                                : PLINTH_OP_DELETE_RANGE;
      ops.push_back(plinth_op{kind, Bytes(op.key), Bytes(op.value), Span(op.span)});
    }
    plinth_txn c_txn{conditions.data(), conditions.size(), ops.data(), ops.size()};
    int64_t revision = 0;
    ErrorSink err;
    int code = api_->commit(store_, &c_txn, &revision, err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "commit"));
    return revision;
  }

  StatusOr<std::unique_ptr<WatchStream>> Watch(const KeySpan& span, Revision from_revision,
                                               const WatchOptions& options) override {
    plinth_span s = Span(span);
    plinth_watch* watch = nullptr;
    ErrorSink err;
    int code = api_->watch_open(store_, &s, from_revision, options.progress_notify ? 1 : 0, &watch,
                                err.get());
    PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "watch_open"));
    return std::unique_ptr<WatchStream>(new PluginWatch(api_, watch));
  }

  StatusOr<Revision> CurrentRevision() override {
    int64_t revision = 0;
    ErrorSink err;
    PLINTH_RETURN_IF_ERROR(
        err.ToStatus(api_->current_revision(store_, &revision, err.get()), "current_revision"));
    return revision;
  }

  Status Compact(Revision revision) override {
    ErrorSink err;
    return err.ToStatus(api_->compact(store_, revision, err.get()), "compact");
  }

  StatusOr<Revision> CompactedRevision() override {
    int64_t revision = 0;
    ErrorSink err;
    PLINTH_RETURN_IF_ERROR(
        err.ToStatus(api_->compacted_revision(store_, &revision, err.get()), "compacted_revision"));
    return revision;
  }

 private:
  const plinth_store_plugin_api* const api_;
  plinth_store* const store_;
  Limits limits_;
};

// Loaded plugins, by path. Never unloaded: objects from a plugin may be referenced until
// process exit, and unloading buys nothing for a server process.
Mutex g_loaded_mu;
std::map<std::string, const plinth_store_plugin_api*>& Loaded() {
  static auto* loaded = new std::map<std::string, const plinth_store_plugin_api*>();
  return *loaded;
}

StatusOr<const plinth_store_plugin_api*> Load(const std::string& path) {
  MutexLock lock(&g_loaded_mu);
  if (auto it = Loaded().find(path); it != Loaded().end()) return it->second;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return NotFoundError("store plugin " + path + " does not exist");
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return FailedPreconditionError("cannot load store plugin " + path + ": " + dlerror());
  }
  const std::string symbol = PluginEntrySymbol(path);
  auto entry = reinterpret_cast<plinth_store_plugin_entry>(dlsym(handle, symbol.c_str()));
  if (entry == nullptr) {
    dlclose(handle);
    return FailedPreconditionError("store plugin " + path + " has no entry symbol " + symbol);
  }
  const plinth_store_plugin_api* api = entry(PLINTH_STORE_PLUGIN_ABI_VERSION);
  if (api == nullptr || api->abi_version != PLINTH_STORE_PLUGIN_ABI_VERSION ||
      api->struct_size < sizeof(plinth_store_plugin_api)) {
    dlclose(handle);
    return FailedPreconditionError(
        "store plugin " + path + " does not speak ABI version " +
        std::to_string(PLINTH_STORE_PLUGIN_ABI_VERSION) +
        (api != nullptr ? " (it speaks " + std::to_string(api->abi_version) + ")" : ""));
  }
  Loaded()[path] = api;
  return api;
}

}  // namespace

std::string PluginEntrySymbol(std::string_view path) {
  std::string_view base = path.substr(path.find_last_of('/') + 1);
  if (base.substr(0, 3) == "lib") base.remove_prefix(3);
  if (size_t so = base.find(".so"); so != std::string_view::npos) base = base.substr(0, so);
  std::string symbol = "plinth_store_plugin_";
  for (char c : base) {
    symbol.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  return symbol;
}

StatusOr<std::unique_ptr<Store>> OpenStoreFromPluginApi(
    const plinth_store_plugin_api* api, std::string_view location,
    const std::map<std::string, std::string>& options) {
  std::vector<plinth_option> c_options;
  for (const auto& [name, value] : options) {
    c_options.push_back(plinth_option{Bytes(name), Bytes(value)});
  }
  plinth_store* store = nullptr;
  ErrorSink err;
  int code = api->open(Bytes(location), c_options.data(), c_options.size(), &store, err.get());
  PLINTH_RETURN_IF_ERROR(err.ToStatus(code, "open"));
  return std::unique_ptr<Store>(new PluginStore(api, store));
}

StatusOr<std::unique_ptr<Store>> OpenPluginStore(const StoreUrl& url, const OpenOptions&) {
  if (url.location.empty()) {
    return InvalidArgumentError("plugin store URL \"" + url.text +
                                "\" names no shared object; expected plugin:///path/libNAME.so");
  }
  PLINTH_ASSIGN_OR_RETURN(const plinth_store_plugin_api* api, Load(url.location));
  return OpenStoreFromPluginApi(api, url.location, url.options);
}

}  // namespace plinth::store::plugin
