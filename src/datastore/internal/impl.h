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

}  // namespace internal
}  // namespace plinth::datastore

#endif  // PLINTH_DATASTORE_INTERNAL_IMPL_H_
