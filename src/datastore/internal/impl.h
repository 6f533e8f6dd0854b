// DataStore::Impl: what every datastore operation shares — the mirror, the key layout, the
// read and write helpers, error constructors and page tokens. The operations themselves are
// defined per object kind in entries.cc, nodes.cc, bundles.cc, tokens.cc, federation.cc and
// journals.cc. Private to src/datastore/.
#ifndef PLINTH_DATASTORE_INTERNAL_IMPL_H_
#define PLINTH_DATASTORE_INTERNAL_IMPL_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "datastore/datastore.h"
#include "datastore/internal/state.h"
#include "mirror/mirror.h"
#include "store/store.h"

namespace plinth::datastore {

class DataStore::Impl {
 public:
  using Plan = std::function<StatusOr<store::TxnRequest>(const internal::DatastoreState& state,
                                                         store::Revision applied)>;

  Impl(store::Store* store, DataStoreOptions options);

  // Runs fn(const DatastoreState&, Revision applied) under the mirror's shared lock.
  template <typename Fn>
  auto Read(Fn&& fn) const {
    return mirror->Read([&](const mirror::MirrorState& s, store::Revision r) {
      return fn(static_cast<const internal::DatastoreState&>(s), r);
    });
  }

  // Mirror::Write with the state's concrete type. The plan may run several times (after
  // Aborted); it must recompute its outputs from scratch on each run.
  StatusOr<store::Revision> Write(const Plan& plan);

  // For READ_CONSISTENT: waits until the mirror has applied the backend's current revision.
  Status Sync(v1::ReadConsistency consistency);

  // Wall-clock now, from options.clock.
  int64_t NowUnixNanos() const;
  std::string NewEntryId() const;

  store::Store* const store;
  const DataStoreOptions options;
  const internal::Keys keys;
  const store::Limits limits;
  std::unique_ptr<mirror::Mirror> mirror;  // set by DataStore::Open
  // Fans the mirror's applied batches out to Subscribe()rs as typed changes (datastore.cc).
  class ChangeFeed;
  std::shared_ptr<ChangeFeed> change_feed;  // set by DataStore::Open
};

namespace internal {

// InvalidArgument "datastore-validation: <message>" (spec §C1).
Status ValidationError(std::string_view message);
// NotFound "datastore: <what> not found" e.g. NotFoundError("registration entry \"x\"").
Status NotFoundError(std::string_view what);
// Serializes `message` for a store value; Internal if it cannot be.
StatusOr<std::string> Encode(const google::protobuf::MessageLite& message);

// Opaque page tokens: the last key returned, wrapped so callers cannot depend on the format.
std::string EncodePageToken(std::string_view last_key);
// "" -> "". InvalidArgument "could not parse token '<t>'" if `token` was not made by
// EncodePageToken.
StatusOr<std::string> DecodePageToken(std::string_view token);

// A list request's page, decoded: where to start, how many (0 = all). Every list operation
// pages the same way (DESIGN.md): opaque tokens, exact page sizes, token "" on the last page.
struct PageRequest {
  const v1::Pagination* pagination = nullptr;  // the request's, or nullptr: everything
  std::string after;                           // the last key of the previous page
  size_t limit = 0;
};
// `pagination` nullptr: an unpaged request. InvalidArgument for page_size <= 0 or a token
// EncodePageToken did not make.
StatusOr<PageRequest> ParsePageRequest(const v1::Pagination* pagination);
// Sets the response's Pagination for a paged request (nothing for an unpaged one): the page
// size echoed and, if `more`, the token continuing after `last_key`.
template <typename Response>
void SetNextPage(const PageRequest& page, bool more, std::string_view last_key,
                 Response* response) {
  if (page.pagination == nullptr) return;
  v1::Pagination* out = response->mutable_pagination();
  out->set_page_size(page.pagination->page_size());
  if (more) out->set_token(EncodePageToken(last_key));
}

// Emits the values of `map` (ordered by key) after page.after, at most page.limit of them
// (0 = all); returns whether more remain.
template <typename Map, typename Emit>
bool PageOver(const Map& map, const PageRequest& page, Emit emit) {
  size_t emitted = 0;
  for (auto it = map.upper_bound(page.after); it != map.end(); ++it) {
    if (page.limit != 0 && emitted == page.limit) return true;
    emit(it->second);
    ++emitted;
  }
  return false;
}

// `s` in double quotes, for error messages: Quoted("x") is "\"x\"".
std::string Quoted(std::string_view s);

// Splits bulk work (prunes, cascades, DeleteBundle's entry writes) into transactions that fit
// the store's limits. Start from an empty TxnRequest; for each unit of work take a Mark,
// append the unit's conditions and ops, then Accept: a unit that would push the transaction
// past max_ops_per_txn or max_txn_bytes is removed again (ops and conditions) and Accept
// returns false, so the caller commits what fits and plans the rest in a later transaction.
class TxnBudget {
 public:
  struct Mark {
    size_t ops = 0;
    size_t conditions = 0;
  };

  explicit TxnBudget(const store::Limits& limits) : limits_(limits) {}

  static Mark MarkOf(const store::TxnRequest& txn) {
    return {txn.ops.size(), txn.conditions.size()};
  }

  bool Accept(store::TxnRequest* txn, Mark mark) {
    size_t bytes = 0;
    for (size_t i = mark.ops; i < txn->ops.size(); ++i) {
      const store::Op& op = txn->ops[i];
      bytes += op.kind == store::Op::Kind::kDeleteRange ? op.span.start.size() + op.span.end.size()
                                                        : op.key.size() + op.value.size();
    }
    const size_t ops = ops_ + (txn->ops.size() - mark.ops);
    if ((limits_.max_ops_per_txn != 0 && ops > limits_.max_ops_per_txn) ||
        (limits_.max_txn_bytes != 0 && bytes_ + bytes > limits_.max_txn_bytes)) {
      txn->ops.resize(mark.ops);
      txn->conditions.resize(mark.conditions);
      return false;
    }
    ops_ = ops;
    bytes_ += bytes;
    return true;
  }

 private:
  store::Limits limits_;
  size_t ops_ = 0;
  size_t bytes_ = 0;
};

}  // namespace internal
}  // namespace plinth::datastore

#endif  // PLINTH_DATASTORE_INTERNAL_IMPL_H_
