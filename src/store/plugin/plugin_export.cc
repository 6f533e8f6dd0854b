#include "store/plugin/plugin_export.h"

#include <exception>
#include <vector>

// The opaque handles of the C ABI, as this side of it defines them.
struct plinth_store {
  std::unique_ptr<plinth::store::Store> impl;
};
struct plinth_snapshot {
  std::unique_ptr<plinth::store::Snapshot> impl;
};
struct plinth_watch {
  std::unique_ptr<plinth::store::WatchStream> impl;
};

namespace plinth::store::plugin {
namespace {

std::string String(plinth_bytes b) {
  return b.len == 0 ? std::string() : std::string(reinterpret_cast<const char*>(b.data), b.len);
}

plinth_bytes Bytes(std::string_view s) {
  return plinth_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

KeySpan Span(const plinth_span& s) { return KeySpan{String(s.start), String(s.end)}; }

plinth_kv Kv(const KeyValue& kv) {
  return plinth_kv{Bytes(kv.key), Bytes(kv.value), kv.create_revision, kv.mod_revision};
}

int Report(const Status& status, plinth_error* err) {
  if (!status.ok() && err != nullptr && err->set != nullptr) {
    err->set(err->ctx, status.message().data(), status.message().size());
  }
  return static_cast<int>(status.code());
}

// Runs `body` (returning Status), turning any exception into PLINTH_INTERNAL.
template <typename F>
int Guard(plinth_error* err, F&& body) {
  try {
    return Report(body(), err);
  } catch (const std::exception& e) {
    return Report(InternalError(std::string("store plugin threw: ") + e.what()), err);
  } catch (...) {
    return Report(InternalError("store plugin threw an unknown exception"), err);
  }
}

}  // namespace

namespace internal {

int OpenExported(ExportedOpen open_store, const plinth_option* options, size_t num_options,
                 plinth_store** out, plinth_error* err) {
  return Guard(err, [&]() -> Status {
    std::map<std::string, std::string> opts;
    for (size_t i = 0; i < num_options; ++i) {
      opts[String(options[i].name)] = String(options[i].value);
    }
    PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, open_store(opts));
    *out = new plinth_store{std::move(store)};
    return Status::Ok();
  });
}

plinth_store_plugin_api ExportTable(const char* name) {
  plinth_store_plugin_api t{};
  t.abi_version = PLINTH_STORE_PLUGIN_ABI_VERSION;
  t.struct_size = sizeof(plinth_store_plugin_api);
  t.name = name;
  t.close = [](plinth_store* store) { delete store; };
  t.limits = [](plinth_store* store, plinth_limits* out) {
    Limits l = store->impl->limits();
    *out = plinth_limits{l.max_key_bytes, l.max_value_bytes, l.max_ops_per_txn, l.max_txn_bytes};
  };
  t.snapshot_open = [](plinth_store* store, plinth_snapshot** out, int64_t* revision,
                       plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<Snapshot> snapshot, store->impl->OpenSnapshot());
      *revision = snapshot->revision();
      *out = new plinth_snapshot{std::move(snapshot)};
      return Status::Ok();
    });
  };
  t.snapshot_close = [](plinth_snapshot* snapshot) { delete snapshot; };
  t.snapshot_get = [](plinth_snapshot* snapshot, plinth_bytes key, plinth_kv_visitor visit,
                      void* ctx, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(KeyValue kv, snapshot->impl->Get(String(key)));
      plinth_kv c = Kv(kv);
      visit(ctx, &c);
      return Status::Ok();
    });
  };
  t.snapshot_range = [](plinth_snapshot* snapshot, const plinth_span* span, plinth_bytes after,
                        uint64_t limit, int keys_only, plinth_kv_visitor visit, void* ctx,
                        int* more, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      RangeOptions options;
      options.after = String(after);
      options.limit = limit;
      options.keys_only = keys_only != 0;
      PLINTH_ASSIGN_OR_RETURN(RangeResult result, snapshot->impl->Range(Span(*span), options));
      *more = result.more ? 1 : 0;
      for (const KeyValue& kv : result.kvs) {
        plinth_kv c = Kv(kv);
        if (visit(ctx, &c) != 0) break;
      }
      return Status::Ok();
    });
  };
  t.snapshot_count = [](plinth_snapshot* snapshot, const plinth_span* span, int64_t* count,
                        plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(CountResult result, snapshot->impl->Count(Span(*span)));
      *count = result.count;
      return Status::Ok();
    });
  };
  t.commit = [](plinth_store* store, const plinth_txn* txn, int64_t* revision, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      TxnRequest request;
      for (size_t i = 0; i < txn->num_conditions; ++i) {
        const plinth_condition& c = txn->conditions[i];
        switch (c.kind) {
          case PLINTH_CONDITION_ABSENT:
            request.conditions.push_back(Condition::Absent(String(c.key)));
            break;
          case PLINTH_CONDITION_MOD_REVISION_IS:
            request.conditions.push_back(Condition::ModRevisionIs(String(c.key), c.revision));
            break;
          case PLINTH_CONDITION_UNCHANGED_SINCE:
            request.conditions.push_back(Condition::UnchangedSince(Span(c.span), c.revision));
            break;
          default:
            return InvalidArgumentError("unknown condition kind " + std::to_string(c.kind));
        }
      }
      for (size_t i = 0; i < txn->num_ops; ++i) {
        const plinth_op& op = txn->ops[i];
        switch (op.kind) {
          case PLINTH_OP_PUT:
            request.ops.push_back(Op::Put(String(op.key), String(op.value)));
            break;
          case PLINTH_OP_DELETE:
            request.ops.push_back(Op::Delete(String(op.key)));
            break;
          case PLINTH_OP_DELETE_RANGE:
            request.ops.push_back(Op::DeleteRange(Span(op.span)));
            break;
          default:
            return InvalidArgumentError("unknown operation kind " + std::to_string(op.kind));
        }
      }
      PLINTH_ASSIGN_OR_RETURN(*revision, store->impl->Commit(request));
      return Status::Ok();
    });
  };
  t.watch_open = [](plinth_store* store, const plinth_span* span, int64_t from_revision,
                    int progress_notify, plinth_watch** out, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      WatchOptions options;
      options.progress_notify = progress_notify != 0;
      PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<WatchStream> watch,
                              store->impl->Watch(Span(*span), from_revision, options));
      *out = new plinth_watch{std::move(watch)};
      return Status::Ok();
    });
  };
  t.watch_next = [](plinth_watch* watch, int64_t timeout_ms, plinth_batch_visitor visit, void* ctx,
                    plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(WatchBatch batch,
                              watch->impl->Next(std::chrono::milliseconds(timeout_ms)));
      std::vector<plinth_event> events;
      events.reserve(batch.events.size());
      for (const Event& e : batch.events) {
        events.push_back(plinth_event{
            e.type == Event::Type::kDelete ? PLINTH_EVENT_DELETE : PLINTH_EVENT_PUT, Kv(e.kv)});
      }
      plinth_watch_batch c{batch.revision, events.data(), events.size()};
      visit(ctx, &c);
      return Status::Ok();
    });
  };
  t.watch_cancel = [](plinth_watch* watch) { watch->impl->Cancel(); };
  t.watch_close = [](plinth_watch* watch) { delete watch; };
  t.current_revision = [](plinth_store* store, int64_t* revision, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(*revision, store->impl->CurrentRevision());
      return Status::Ok();
    });
  };
  t.compact = [](plinth_store* store, int64_t revision, plinth_error* err) {
    return Guard(err, [&]() -> Status { return store->impl->Compact(revision); });
  };
  t.compacted_revision = [](plinth_store* store, int64_t* revision, plinth_error* err) {
    return Guard(err, [&]() -> Status {
      PLINTH_ASSIGN_OR_RETURN(*revision, store->impl->CompactedRevision());
      return Status::Ok();
    });
  };
  return t;
}

}  // namespace internal
}  // namespace plinth::store::plugin
