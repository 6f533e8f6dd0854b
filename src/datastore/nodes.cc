// Attested nodes and node selectors (spec §C5) on the mirror.
//
// Nodes and their selector sets are separate keys (node/<id>, nodesel/<id>): SPIRE sets
// selectors independently of the node. Deleting a node also deletes its selector set and, for
// join-token nodes, the child entries whose only selector is spiffe_id:<node> (SPIRE #6946).
// Deletions that exceed one transaction (a prune batch, a large cascade) are split into
// several; each transaction is conditioned on what it deletes, so a replay or a concurrent
// prune on another replica is harmless.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "datastore/datastore.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"
#include "store/store.h"

namespace plinth::datastore {

namespace {

using internal::DatastoreState;
using internal::Stored;
using internal::TxnBudget;
using store::Condition;
using store::Op;
using store::Revision;
using store::TxnRequest;

constexpr char kJoinTokenAttestationType[] = "join_token";
constexpr int kDefaultPruneBatchSize = 1000;

using internal::Quoted;

Status ValidateSelectorFilter(bool present, const v1::BySelectors& by) {
  if (present && by.selectors().empty()) {
    return internal::ValidationError("cannot list by empty selectors set (by_selector_match)");
  }
  return Status::Ok();
}

// The child entries a join-token node takes along when it is deleted: those whose only
// selector is spiffe_id:<node>. Other children stay (spec §C5).
std::vector<const Stored<v1::RegistrationEntry>*> JoinTokenCascade(const DatastoreState& state,
                                                                   const v1::AttestedNode& node) {
  std::vector<const Stored<v1::RegistrationEntry>*> out;
  if (node.attestation_data_type() != kJoinTokenAttestationType) return out;
  for (const Stored<v1::RegistrationEntry>* child : state.entries.ChildrenOf(node.spiffe_id())) {
    const v1::RegistrationEntry& e = *child->value;
    if (internal::IsJoinTokenChild(e)) out.push_back(child);
  }
  return out;
}

// The outcome of one transaction's worth of node deletions.
struct NodeDeleteRound {
  size_t next = 0;        // index of the first node still to handle
  int64_t deleted = 0;    // nodes deleted by this transaction
  bool wrote = false;     // whether the transaction has any op
  v1::AttestedNode last;  // the last node deleted (DeleteAttestedNode returns it)
};

// Plans one transaction that deletes nodes ids[from..] (each with its selector set and its
// join-token cascade) as far as the store's limits allow. A node that is gone, or no longer
// `wanted`, is skipped; if `must_exist`, a missing node is NotFound instead. When even one
// node's cascade does not fit in a transaction, the transaction deletes as many of its child
// entries as fit and leaves the node for the next one.
StatusOr<TxnRequest> PlanNodeDeletes(const internal::Keys& keys, const store::Limits& limits,
                                     const DatastoreState& state, Revision applied,
                                     const std::vector<std::string>& ids, size_t from,
                                     bool must_exist,
                                     const std::function<bool(const v1::AttestedNode&)>& wanted,
                                     NodeDeleteRound* round) {
  *round = NodeDeleteRound{from};
  TxnRequest txn;
  TxnBudget budget(limits);
  for (size_t i = from; i < ids.size(); ++i) {
    const Stored<v1::AttestedNode>* node = state.nodes.FindNode(ids[i]);
    if (node == nullptr && must_exist) {
      return internal::NotFoundError("attested node " + Quoted(ids[i]));
    }
    if (node == nullptr || !wanted(*node->value)) {
      round->next = i + 1;
      continue;
    }
    const auto cascade = JoinTokenCascade(state, *node->value);
    const TxnBudget::Mark mark = TxnBudget::MarkOf(txn);
    for (const Stored<v1::RegistrationEntry>* child : cascade) {
      internal::AppendEntryWrite(keys, state, child, nullptr, &txn);
    }
    const std::string node_key = keys.Node(ids[i]);
    txn.conditions.push_back(Condition::ModRevisionIs(node_key, node->mod_revision));
    if (node->value->attestation_data_type() == kJoinTokenAttestationType) {
      // A cascade child created on another replica after `applied` would survive the node:
      // make this transaction abort (and be re-planned with it) instead.
      txn.conditions.push_back(
          Condition::UnchangedSince(store::KeySpan::Prefix(keys.JoinChildPrefix(ids[i])), applied));
    }
    txn.ops.push_back(Op::Delete(node_key));
    txn.ops.push_back(Op::Delete(keys.NodeSelectors(ids[i])));
    if (budget.Accept(&txn, mark)) {
      round->next = i + 1;
      round->deleted++;
      round->last = *node->value;
      continue;
    }
    if (!txn.ops.empty()) break;  // commit what fits; this node goes in the next transaction
    // This node's cascade alone exceeds a transaction: delete part of it now.
    for (const Stored<v1::RegistrationEntry>* child : cascade) {
      const TxnBudget::Mark child_mark = TxnBudget::MarkOf(txn);
      internal::AppendEntryWrite(keys, state, child, nullptr, &txn);
      if (!budget.Accept(&txn, child_mark)) break;
    }
    if (txn.ops.empty()) {
      return ResourceExhaustedError("datastore: deleting attested node " + Quoted(ids[i]) +
                                    " needs a transaction larger than the store's limits");
    }
    break;
  }
  round->wrote = !txn.ops.empty();
  return txn;
}

}  // namespace

// ---- Reads

StatusOr<int64_t> DataStore::CountAttestedNodes(const v1::CountAttestedNodesRequest& request) {
  PLINTH_RETURN_IF_ERROR(
      ValidateSelectorFilter(request.has_by_selector_match(), request.by_selector_match()));
  PLINTH_RETURN_IF_ERROR(impl_->Sync(request.consistency()));
  return impl_->Read(
      [&](const DatastoreState& state, Revision) -> int64_t { return state.nodes.Count(request); });
}

StatusOr<v1::AttestedNode> DataStore::FetchAttestedNode(const std::string& spiffe_id) {
  return impl_->Read([&](const DatastoreState& state, Revision) -> StatusOr<v1::AttestedNode> {
    const Stored<v1::AttestedNode>* node = state.nodes.FindNode(spiffe_id);
    if (node == nullptr) return internal::NotFoundError("attested node " + Quoted(spiffe_id));
    v1::AttestedNode out = *node->value;
    out.clear_selectors();
    return out;
  });
}

StatusOr<std::map<std::string, v1::AttestedNode>> DataStore::FetchAttestedNodes(
    const std::vector<std::string>& spiffe_ids) {
  return impl_->Read([&](const DatastoreState& state, Revision) {
    std::map<std::string, v1::AttestedNode> out;
    for (const std::string& id : spiffe_ids) {
      const Stored<v1::AttestedNode>* node = state.nodes.FindNode(id);
      if (node == nullptr) continue;
      v1::AttestedNode& n = out[id] = *node->value;
      n.clear_selectors();
      if (const Stored<v1::NodeSelectors>* sels = state.nodes.FindSelectors(id)) {
        *n.mutable_selectors() = sels->value->selectors();
      }
    }
    return out;
  });
}

StatusOr<v1::ListAttestedNodesResponse> DataStore::ListAttestedNodes(
    const v1::ListAttestedNodesRequest& request) {
  PLINTH_ASSIGN_OR_RETURN(
      const internal::PageRequest page,
      internal::ParsePageRequest(request.has_pagination() ? &request.pagination() : nullptr));
  PLINTH_RETURN_IF_ERROR(
      ValidateSelectorFilter(request.has_by_selector_match(), request.by_selector_match()));
  PLINTH_RETURN_IF_ERROR(impl_->Sync(request.consistency()));
  bool more = false;
  v1::ListAttestedNodesResponse response;
  std::vector<v1::AttestedNode> nodes = impl_->Read([&](const DatastoreState& state, Revision) {
    return state.nodes.Query(request, page.after, page.limit, &more);
  });
  for (v1::AttestedNode& node : nodes) *response.add_nodes() = std::move(node);
  more = more && !response.nodes().empty();
  internal::SetNextPage(page, more, more ? response.nodes().rbegin()->spiffe_id() : "", &response);
  return response;
}

StatusOr<std::vector<v1::Selector>> DataStore::GetNodeSelectors(const std::string& spiffe_id,
                                                                v1::ReadConsistency consistency) {
  PLINTH_RETURN_IF_ERROR(impl_->Sync(consistency));
  return impl_->Read([&](const DatastoreState& state, Revision) {
    std::vector<v1::Selector> out;
    if (const Stored<v1::NodeSelectors>* sels = state.nodes.FindSelectors(spiffe_id)) {
      out.assign(sels->value->selectors().begin(), sels->value->selectors().end());
    }
    return out;
  });
}

StatusOr<v1::ListNodeSelectorsResponse> DataStore::ListNodeSelectors(
    const v1::ListNodeSelectorsRequest& request) {
  PLINTH_RETURN_IF_ERROR(impl_->Sync(request.consistency()));
  std::vector<v1::NodeSelectors> sets = impl_->Read([&](const DatastoreState& state, Revision) {
    return state.nodes.ListSelectors(request.valid_at());
  });
  v1::ListNodeSelectorsResponse response;
  for (v1::NodeSelectors& set : sets) *response.add_selectors() = std::move(set);
  return response;
}

// ---- Writes

StatusOr<v1::AttestedNode> DataStore::CreateAttestedNode(const v1::AttestedNode& node) {
  if (node.spiffe_id().empty()) {
    return internal::ValidationError("invalid attested node: spiffe_id is required");
  }
  v1::AttestedNode stored = node;
  stored.clear_selectors();  // selectors live in their own key (SetNodeSelectors)
  PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(stored));
  const std::string key = impl_->keys.Node(node.spiffe_id());
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        if (state.nodes.FindNode(node.spiffe_id()) != nullptr) {
          return AlreadyExistsError("datastore: attested node " + Quoted(node.spiffe_id()) +
                                    " already exists");
        }
        TxnRequest txn;
        txn.conditions.push_back(Condition::Absent(key));
        txn.ops.push_back(Op::Put(key, value));
        return txn;
      }));
  return stored;
}

StatusOr<v1::AttestedNode> DataStore::UpdateAttestedNode(const v1::AttestedNode& node,
                                                         const v1::AttestedNodeMask* mask) {
  v1::AttestedNodeMask all;
  all.set_cert_serial_number(true);
  all.set_cert_not_after(true);
  all.set_new_cert_serial_number(true);
  all.set_new_cert_not_after(true);
  all.set_can_reattest(true);
  all.set_agent_version(true);
  const v1::AttestedNodeMask& m = mask != nullptr ? *mask : all;
  const std::string key = impl_->keys.Node(node.spiffe_id());
  v1::AttestedNode updated;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        const Stored<v1::AttestedNode>* old = state.nodes.FindNode(node.spiffe_id());
        if (old == nullptr)
          return internal::NotFoundError("attested node " + Quoted(node.spiffe_id()));
        updated = *old->value;
        updated.clear_selectors();
        // attestation_data_type never changes (spec §C5).
        if (m.cert_serial_number()) updated.set_cert_serial_number(node.cert_serial_number());
        if (m.cert_not_after()) updated.set_cert_not_after(node.cert_not_after());
        if (m.new_cert_serial_number()) {
          updated.set_new_cert_serial_number(node.new_cert_serial_number());
        }
        if (m.new_cert_not_after()) updated.set_new_cert_not_after(node.new_cert_not_after());
        if (m.can_reattest()) updated.set_can_reattest(node.can_reattest());
        if (m.agent_version()) updated.set_agent_version(node.agent_version());
        PLINTH_ASSIGN_OR_RETURN(std::string value, internal::Encode(updated));
        TxnRequest txn;
        txn.conditions.push_back(Condition::ModRevisionIs(key, old->mod_revision));
        txn.ops.push_back(Op::Put(key, std::move(value)));
        return txn;
      }));
  return updated;
}

StatusOr<v1::AttestedNode> DataStore::DeleteAttestedNode(const std::string& spiffe_id) {
  const std::vector<std::string> ids = {spiffe_id};
  const auto any = [](const v1::AttestedNode&) { return true; };
  NodeDeleteRound round;
  // Usually one transaction; more only if the join-token cascade exceeds the store's limits.
  while (true) {
    PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state, Revision applied) {
      return PlanNodeDeletes(impl_->keys, impl_->limits, state, applied, ids, 0,
                             /*must_exist=*/true, any, &round);
    }));
    if (round.deleted > 0) return round.last;
    if (!round.wrote) {
      return InternalError("datastore: deleting attested node " + Quoted(spiffe_id) +
                           " made no progress");
    }
  }
}

StatusOr<int64_t> DataStore::PruneAttestedExpiredNodes(int64_t expired_before_unix,
                                                       bool include_non_reattestable,
                                                       int batch_size) {
  const size_t batch = batch_size > 0 ? batch_size : kDefaultPruneBatchSize;
  const std::vector<std::string> ids = impl_->Read([&](const DatastoreState& state, Revision) {
    std::vector<std::string> out;
    for (const Stored<v1::AttestedNode>* node :
         state.nodes.Expired(expired_before_unix, include_non_reattestable, batch)) {
      out.push_back(node->value->spiffe_id());
    }
    return out;
  });
  // Re-checked in every transaction: a node re-attested meanwhile on another replica stays.
  const auto still_expired = [&](const v1::AttestedNode& n) {
    return !n.cert_serial_number().empty() && n.cert_not_after() < expired_before_unix &&
           (include_non_reattestable || n.can_reattest());
  };
  int64_t deleted = 0;
  size_t next = 0;
  while (next < ids.size()) {
    NodeDeleteRound round;
    PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state, Revision applied) {
      return PlanNodeDeletes(impl_->keys, impl_->limits, state, applied, ids, next,
                             /*must_exist=*/false, still_expired, &round);
    }));
    if (round.next == next && !round.wrote) {
      return InternalError("datastore: pruning attested nodes made no progress");
    }
    next = round.next;
    deleted += round.deleted;
  }
  return deleted;
}

Status DataStore::SetNodeSelectors(const std::string& spiffe_id,
                                   const std::vector<v1::Selector>& selectors) {
  if (spiffe_id.empty())
    return internal::ValidationError("invalid node selectors: spiffe_id is required");
  // A duplicate pair is AlreadyExists, as SPIRE's unique index makes it.
  std::set<std::pair<std::string, std::string>> seen;
  for (const v1::Selector& s : selectors) {
    if (!seen.emplace(s.type(), s.value()).second) {
      return AlreadyExistsError("datastore: duplicate node selector " + s.type() + ":" + s.value() +
                                " for " + Quoted(spiffe_id));
    }
  }
  const std::string key = impl_->keys.NodeSelectors(spiffe_id);
  std::string value;
  if (!selectors.empty()) {
    v1::NodeSelectors set;
    set.set_spiffe_id(spiffe_id);
    for (const v1::Selector& s : selectors) *set.add_selectors() = s;
    PLINTH_ASSIGN_OR_RETURN(value, internal::Encode(set));
  }
  // A blind replacement: nothing read, so nothing to condition on. An empty set is stored as
  // no key at all, so ListNodeSelectors only sees IDs that have selectors.
  return impl_
      ->Write([&](const DatastoreState& state, Revision) -> StatusOr<TxnRequest> {
        TxnRequest txn;
        if (!selectors.empty()) {
          txn.ops.push_back(Op::Put(key, value));
        } else if (state.nodes.FindSelectors(spiffe_id) != nullptr) {
          txn.ops.push_back(Op::Delete(key));
        }
        return txn;
      })
      .status();
}

}  // namespace plinth::datastore
