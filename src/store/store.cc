#include "store/store.h"

#include <string>
#include <utility>

namespace plinth::store {

Condition Condition::Absent(std::string key) {
  Condition c;
  c.kind = Kind::kAbsent;
  c.key = std::move(key);
  return c;
}

Condition Condition::ModRevisionIs(std::string key, Revision revision) {
  Condition c;
  c.kind = Kind::kModRevisionIs;
  c.key = std::move(key);
  c.revision = revision;
  return c;
}

Condition Condition::UnchangedSince(KeySpan span, Revision revision) {
  Condition c;
  c.kind = Kind::kUnchangedSince;
  c.span = std::move(span);
  c.revision = revision;
  return c;
}

Op Op::Put(std::string key, std::string value) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  return op;
}

Op Op::Delete(std::string key) {
  Op op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  return op;
}

Op Op::DeleteRange(KeySpan span) {
  Op op;
  op.kind = Kind::kDeleteRange;
  op.span = std::move(span);
  return op;
}

Status ValidateKey(std::string_view key, const Limits& limits) {
  if (key.empty()) return InvalidArgumentError("key is empty");
  if (limits.max_key_bytes != 0 && key.size() > limits.max_key_bytes) {
    return ResourceExhaustedError("key " + PrintableKey(key) + " is " + std::to_string(key.size()) +
                                  " bytes; the limit is " + std::to_string(limits.max_key_bytes));
  }
  return Status::Ok();
}

namespace {

Status ValidateValue(std::string_view key, std::string_view value, const Limits& limits) {
  if (limits.max_value_bytes != 0 && value.size() > limits.max_value_bytes) {
    return ResourceExhaustedError("value of key " + PrintableKey(key) + " is " +
                                  std::to_string(value.size()) + " bytes; the limit is " +
                                  std::to_string(limits.max_value_bytes));
  }
  return Status::Ok();
}

}  // namespace

Status ValidateSpan(const KeySpan& span) {
  if (!span.end.empty() && CompareKeys(span.end, span.start) < 0) {
    return InvalidArgumentError("span end " + PrintableKey(span.end) + " sorts before its start " +
                                PrintableKey(span.start));
  }
  return Status::Ok();
}

Status ValidateTxn(const TxnRequest& txn, const Limits& limits) {
  if (limits.max_ops_per_txn != 0 && txn.ops.size() > limits.max_ops_per_txn) {
    return ResourceExhaustedError("transaction has " + std::to_string(txn.ops.size()) +
                                  " operations; the limit is " +
                                  std::to_string(limits.max_ops_per_txn));
  }
  size_t bytes = 0;
  for (const Op& op : txn.ops) {
    switch (op.kind) {
      case Op::Kind::kPut:
        PLINTH_RETURN_IF_ERROR(ValidateKey(op.key, limits));
        PLINTH_RETURN_IF_ERROR(ValidateValue(op.key, op.value, limits));
        bytes += op.key.size() + op.value.size();
        break;
      case Op::Kind::kDelete:
        PLINTH_RETURN_IF_ERROR(ValidateKey(op.key, limits));
        bytes += op.key.size();
        break;
      case Op::Kind::kDeleteRange:
        PLINTH_RETURN_IF_ERROR(ValidateSpan(op.span).WithContext("DeleteRange"));
        bytes += op.span.start.size() + op.span.end.size();
        break;
    }
  }
  if (limits.max_txn_bytes != 0 && bytes > limits.max_txn_bytes) {
    return ResourceExhaustedError("transaction writes " + std::to_string(bytes) +
                                  " bytes; the limit is " + std::to_string(limits.max_txn_bytes));
  }
  for (const Condition& c : txn.conditions) {
    if (c.kind == Condition::Kind::kUnchangedSince) {
      PLINTH_RETURN_IF_ERROR(ValidateSpan(c.span).WithContext("condition"));
    } else if (c.key.empty()) {
      return InvalidArgumentError("condition key is empty");
    }
  }
  return Status::Ok();
}

StatusOr<Revision> Store::Put(std::string_view key, std::string_view value) {
  TxnRequest txn;
  txn.ops.push_back(Op::Put(std::string(key), std::string(value)));
  return Commit(txn);
}

StatusOr<Revision> Store::Delete(std::string_view key) {
  TxnRequest txn;
  txn.ops.push_back(Op::Delete(std::string(key)));
  return Commit(txn);
}

std::unique_ptr<Tx> Store::Begin() { return std::make_unique<Tx>(this); }

Tx::Tx(Store* store) : store_(store) {}

Status Tx::CheckOpen() const {
  if (done_) return FailedPreconditionError("transaction already committed or aborted");
  return Status::Ok();
}

StatusOr<KeyValue> Tx::Get(std::string_view key) {
  PLINTH_RETURN_IF_ERROR(CheckOpen());
  StatusOr<KeyValue> kv = store_->Get(key);
  if (kv.ok()) {
    request_.conditions.push_back(Condition::ModRevisionIs(std::string(key), kv->mod_revision));
  } else if (kv.status().code() == StatusCode::kNotFound) {
    request_.conditions.push_back(Condition::Absent(std::string(key)));
  }
  return kv;
}

StatusOr<RangeResult> Tx::Range(const KeySpan& span, const RangeOptions& options) {
  PLINTH_RETURN_IF_ERROR(CheckOpen());
  PLINTH_ASSIGN_OR_RETURN(RangeResult result, store_->Range(span, options));
  // What the caller saw: from the continuation point (or the span start) to the last key
  // returned when the page was cut short, or to the span end when it was not.
  KeySpan seen = span;
  if (!options.after.empty() && CompareKeys(options.after, seen.start) >= 0) {
    seen.start = options.after;
    seen.start.push_back('\0');
  }
  if (result.more && !result.kvs.empty()) {
    seen.end = result.kvs.back().key;
    seen.end.push_back('\0');
  }
  request_.conditions.push_back(Condition::UnchangedSince(std::move(seen), result.revision));
  return result;
}

Status Tx::AddOp(Op op, size_t bytes) {
  PLINTH_RETURN_IF_ERROR(CheckOpen());
  const Limits limits = store_->limits();
  if (limits.max_ops_per_txn != 0 && request_.ops.size() + 1 > limits.max_ops_per_txn) {
    return ResourceExhaustedError("transaction would exceed " +
                                  std::to_string(limits.max_ops_per_txn) + " operations");
  }
  if (limits.max_txn_bytes != 0 && bytes_ + bytes > limits.max_txn_bytes) {
    return ResourceExhaustedError("transaction would exceed " +
                                  std::to_string(limits.max_txn_bytes) + " bytes");
  }
  TxnRequest one;
  one.ops.push_back(std::move(op));
  PLINTH_RETURN_IF_ERROR(ValidateTxn(one, limits));
  request_.ops.push_back(std::move(one.ops.front()));
  bytes_ += bytes;
  return Status::Ok();
}

Status Tx::Put(std::string_view key, std::string_view value) {
  return AddOp(Op::Put(std::string(key), std::string(value)), key.size() + value.size());
}

Status Tx::Delete(std::string_view key) { return AddOp(Op::Delete(std::string(key)), key.size()); }

Status Tx::DeleteRange(const KeySpan& span) {
  return AddOp(Op::DeleteRange(span), span.start.size() + span.end.size());
}

void Tx::Require(Condition condition) { request_.conditions.push_back(std::move(condition)); }

StatusOr<Revision> Tx::Commit() {
  PLINTH_RETURN_IF_ERROR(CheckOpen());
  done_ = true;
  return store_->Commit(request_);
}

void Tx::Abort() {
  done_ = true;
  request_ = TxnRequest{};
  bytes_ = 0;
}

}  // namespace plinth::store
