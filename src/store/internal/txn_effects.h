// Resolves a transaction's ordered operations into one final effect per key, so that every
// backend applies and logs a transaction the same way: at most one event per key per
// revision, deletes of absent keys are no-ops, and a transaction that changes nothing makes
// no revision.
#ifndef PLINTH_STORE_INTERNAL_TXN_EFFECTS_H_
#define PLINTH_STORE_INTERNAL_TXN_EFFECTS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace plinth::store::internal {

// Key -> final value after the transaction's ops, or nullopt if the last op deleted it.
// Keys whose only ops were deletes are included (as nullopt) whether or not they exist; the
// caller drops those that did not exist before.
using Overlay = std::map<std::string, std::optional<std::string>>;

// Lists keys live (before the transaction) in a span, for DeleteRange.
using ListLiveKeys = std::function<Status(const KeySpan& span, std::vector<std::string>* keys)>;

StatusOr<Overlay> ResolveOps(const std::vector<Op>& ops, const ListLiveKeys& list_live_keys);

}  // namespace plinth::store::internal

#endif  // PLINTH_STORE_INTERNAL_TXN_EFFECTS_H_
