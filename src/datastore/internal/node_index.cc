// NodeIndex: attested nodes and node selector sets in memory, with the secondary indexes that
// ListAttestedNodes, CountAttestedNodes, PruneAttestedExpiredNodes and ListNodeSelectors need.
//
// Invariants:
//   - `nodes` and `selectors` are ordered by SPIFFE ID, so every query walks candidates in
//     page order and a page can stop at exactly `limit` matches.
//   - `by_expiry` holds one (cert_not_after, id) per node; `by_selector` one posting per
//     distinct selector of each stored selector set. Both refer to their ID through a
//     string_view into the key of `nodes` / `selectors`, which std::map keeps stable until the
//     element is erased; postings are always removed before their element.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "datastore/internal/state.h"

namespace plinth::datastore::internal {

namespace {

using SelectorKey = std::pair<std::string, std::string>;  // (type, value)

// A request's selector filter with duplicates removed (spec §C4: duplicates are ignored).
struct SelectorFilter {
  std::set<SelectorKey> wanted;
  v1::MatchBehavior match = v1::MATCH_EXACT;
};

// Every ListAttestedNodes / CountAttestedNodes filter in one shape; unset members do not
// filter.
struct NodeFilter {
  std::optional<std::string> attestation_type;
  std::optional<bool> banned;
  int64_t expires_before = 0;  // keeps cert_not_after < expires_before
  int64_t valid_at = 0;        // keeps cert_not_after >= valid_at
  std::optional<bool> can_reattest;
  std::optional<SelectorFilter> selectors;
  std::optional<std::vector<std::string>> spiffe_ids;  // sorted, unique
};

SelectorFilter MakeSelectorFilter(const v1::BySelectors& by) {
  SelectorFilter f;
  f.match = by.match();
  for (const v1::Selector& s : by.selectors()) f.wanted.emplace(s.type(), s.value());
  return f;
}

NodeFilter MakeFilter(const v1::ListAttestedNodesRequest& r) {
  NodeFilter f;
  if (r.has_by_attestation_type()) f.attestation_type = r.by_attestation_type();
  if (r.has_by_banned()) f.banned = r.by_banned();
  f.expires_before = r.by_expires_before();
  f.valid_at = r.valid_at();
  if (r.has_by_can_reattest()) f.can_reattest = r.by_can_reattest();
  if (r.has_by_selector_match()) f.selectors = MakeSelectorFilter(r.by_selector_match());
  if (!r.by_spiffe_ids().empty()) {
    std::vector<std::string> ids(r.by_spiffe_ids().begin(), r.by_spiffe_ids().end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    f.spiffe_ids = std::move(ids);
  }
  return f;
}

NodeFilter MakeFilter(const v1::CountAttestedNodesRequest& r) {
  NodeFilter f;
  if (r.has_by_attestation_type()) f.attestation_type = r.by_attestation_type();
  if (r.has_by_banned()) f.banned = r.by_banned();
  f.expires_before = r.by_expires_before();
  if (r.has_by_can_reattest()) f.can_reattest = r.by_can_reattest();
  if (r.has_by_selector_match()) f.selectors = MakeSelectorFilter(r.by_selector_match());
  return f;
}

// Whether a node's selector set S matches the filter's set R (proto MatchBehavior). A node
// without selectors never matches, as in SPIRE (the SQL joins on selector rows).
bool SelectorsMatch(const v1::NodeSelectors* node_selectors, const SelectorFilter& filter) {
  if (node_selectors == nullptr || node_selectors->selectors().empty()) return false;
  // Distinct members of S that are in R, and whether every member of S is in R.
  std::vector<const SelectorKey*> hits;
  bool all_in_wanted = true;
  for (const v1::Selector& s : node_selectors->selectors()) {
    auto it = filter.wanted.find(SelectorKey(s.type(), s.value()));
    if (it == filter.wanted.end()) {
      all_in_wanted = false;
    } else {
      hits.push_back(&*it);
    }
  }
  std::sort(hits.begin(), hits.end());
  const size_t distinct_hits = std::unique(hits.begin(), hits.end()) - hits.begin();
  switch (filter.match) {
    case v1::MATCH_EXACT:
      return all_in_wanted && distinct_hits == filter.wanted.size();
    case v1::MATCH_SUBSET:
      return all_in_wanted;
    case v1::MATCH_SUPERSET:
      return distinct_hits == filter.wanted.size();
    case v1::MATCH_ANY:
      return distinct_hits > 0;
    default:
      return false;
  }
}

}  // namespace

struct NodeIndex::Indexes {
  std::map<std::string, Stored<v1::AttestedNode>, std::less<>> nodes;
  std::map<std::string, Stored<v1::NodeSelectors>, std::less<>> selectors;
  std::set<std::pair<int64_t, std::string_view>> by_expiry;
  std::map<SelectorKey, std::set<std::string_view>> by_selector;

  void AddPostings(std::string_view id, const v1::NodeSelectors& set) {
    for (const v1::Selector& s : set.selectors()) {
      by_selector[SelectorKey(s.type(), s.value())].insert(id);
    }
  }

  void RemovePostings(std::string_view id, const v1::NodeSelectors& set) {
    for (const v1::Selector& s : set.selectors()) {
      auto it = by_selector.find(SelectorKey(s.type(), s.value()));
      if (it == by_selector.end()) continue;
      it->second.erase(id);
      if (it->second.empty()) by_selector.erase(it);
    }
  }

  const v1::NodeSelectors* SelectorsOf(std::string_view id) const {
    auto it = selectors.find(id);
    return it == selectors.end() ? nullptr : it->second.value.get();
  }

  bool Matches(const v1::AttestedNode& node, const NodeFilter& f) const {
    if (f.attestation_type && node.attestation_data_type() != *f.attestation_type) return false;
    if (f.banned && node.cert_serial_number().empty() != *f.banned) return false;
    if (f.expires_before != 0 && !(node.cert_not_after() < f.expires_before)) return false;
    if (f.valid_at != 0 && !(node.cert_not_after() >= f.valid_at)) return false;
    if (f.can_reattest && node.can_reattest() != *f.can_reattest) return false;
    if (f.selectors && !SelectorsMatch(SelectorsOf(node.spiffe_id()), *f.selectors)) return false;
    return true;
  }

  // Calls visit(id) for every candidate ID greater than `after`, in ascending order, until it
  // returns false. Candidates are a superset of the matches: the smallest source the filter
  // allows (the requested IDs, one selector's postings, the union of postings, or all nodes).
  void ForEachCandidate(const NodeFilter& f, std::string_view after,
                        const std::function<bool(std::string_view)>& visit) const {
    if (f.spiffe_ids) {
      auto it = std::upper_bound(f.spiffe_ids->begin(), f.spiffe_ids->end(), after,
                                 [](std::string_view a, const std::string& b) { return a < b; });
      for (; it != f.spiffe_ids->end(); ++it) {
        if (!visit(*it)) return;
      }
      return;
    }
    if (f.selectors) {
      std::vector<const std::set<std::string_view>*> postings;
      for (const SelectorKey& key : f.selectors->wanted) {
        auto it = by_selector.find(key);
        if (it != by_selector.end()) postings.push_back(&it->second);
      }
      const bool needs_all =
          f.selectors->match == v1::MATCH_EXACT || f.selectors->match == v1::MATCH_SUPERSET;
      if (needs_all) {
        // Every match holds every requested selector: walk the shortest posting list.
        if (postings.size() != f.selectors->wanted.size() || postings.empty()) return;
        const auto* shortest =
            *std::min_element(postings.begin(), postings.end(),
                              [](auto* a, auto* b) { return a->size() < b->size(); });
        for (auto it = shortest->upper_bound(after); it != shortest->end(); ++it) {
          if (!visit(*it)) return;
        }
        return;
      }
      // Every match holds at least one requested selector: merge the posting lists in order.
      using Cursor = std::pair<std::set<std::string_view>::const_iterator,
                               std::set<std::string_view>::const_iterator>;
      std::vector<Cursor> cursors;
      cursors.reserve(postings.size());
      for (const auto* p : postings) cursors.emplace_back(p->upper_bound(after), p->end());
      while (true) {
        const std::string_view* lowest = nullptr;
        for (const Cursor& c : cursors) {
          if (c.first != c.second && (lowest == nullptr || *c.first < *lowest)) lowest = &*c.first;
        }
        if (lowest == nullptr) return;
        const std::string_view id = *lowest;
        for (Cursor& c : cursors) {
          if (c.first != c.second && *c.first == id) ++c.first;
        }
        if (!visit(id)) return;
      }
    }
    for (auto it = nodes.upper_bound(after); it != nodes.end(); ++it) {
      if (!visit(it->first)) return;
    }
  }
};

NodeIndex::NodeIndex() : ix_(std::make_unique<Indexes>()) {}
NodeIndex::~NodeIndex() = default;

void NodeIndex::PutNode(std::shared_ptr<const v1::AttestedNode> node, Revision mod_revision) {
  auto [it, inserted] = ix_->nodes.try_emplace(node->spiffe_id());
  if (!inserted) ix_->by_expiry.erase({it->second.value->cert_not_after(), it->first});
  ix_->by_expiry.emplace(node->cert_not_after(), it->first);
  it->second.value = std::move(node);
  it->second.mod_revision = mod_revision;
}

void NodeIndex::RemoveNode(std::string_view spiffe_id) {
  auto it = ix_->nodes.find(spiffe_id);
  if (it == ix_->nodes.end()) return;
  ix_->by_expiry.erase({it->second.value->cert_not_after(), it->first});
  ix_->nodes.erase(it);
}

void NodeIndex::PutSelectors(std::shared_ptr<const v1::NodeSelectors> selectors,
                             Revision mod_revision) {
  auto [it, inserted] = ix_->selectors.try_emplace(selectors->spiffe_id());
  if (!inserted) ix_->RemovePostings(it->first, *it->second.value);
  ix_->AddPostings(it->first, *selectors);
  it->second.value = std::move(selectors);
  it->second.mod_revision = mod_revision;
}

void NodeIndex::RemoveSelectors(std::string_view spiffe_id) {
  auto it = ix_->selectors.find(spiffe_id);
  if (it == ix_->selectors.end()) return;
  ix_->RemovePostings(it->first, *it->second.value);
  ix_->selectors.erase(it);
}

const Stored<v1::AttestedNode>* NodeIndex::FindNode(std::string_view spiffe_id) const {
  auto it = ix_->nodes.find(spiffe_id);
  return it == ix_->nodes.end() ? nullptr : &it->second;
}

const Stored<v1::NodeSelectors>* NodeIndex::FindSelectors(std::string_view spiffe_id) const {
  auto it = ix_->selectors.find(spiffe_id);
  return it == ix_->selectors.end() ? nullptr : &it->second;
}

size_t NodeIndex::node_count() const { return ix_->nodes.size(); }

std::vector<const Stored<v1::AttestedNode>*> NodeIndex::Expired(int64_t before,
                                                                bool include_non_reattestable,
                                                                size_t limit) const {
  std::vector<const Stored<v1::AttestedNode>*> out;
  for (const auto& [not_after, id] : ix_->by_expiry) {
    if (not_after >= before || (limit != 0 && out.size() >= limit)) break;
    const Stored<v1::AttestedNode>& node = ix_->nodes.find(id)->second;
    if (node.value->cert_serial_number().empty()) continue;  // banned nodes are kept
    if (!include_non_reattestable && !node.value->can_reattest()) continue;
    out.push_back(&node);
  }
  return out;
}

std::vector<v1::AttestedNode> NodeIndex::Query(const v1::ListAttestedNodesRequest& request,
                                               std::string_view after, size_t limit,
                                               bool* more) const {
  const NodeFilter filter = MakeFilter(request);
  std::vector<v1::AttestedNode> out;
  *more = false;
  ix_->ForEachCandidate(filter, after, [&](std::string_view id) {
    auto it = ix_->nodes.find(id);
    if (it == ix_->nodes.end() || !ix_->Matches(*it->second.value, filter)) return true;
    if (limit != 0 && out.size() == limit) {
      *more = true;
      return false;
    }
    v1::AttestedNode& node = out.emplace_back(*it->second.value);
    node.clear_selectors();
    if (request.fetch_selectors()) {
      if (const v1::NodeSelectors* s = ix_->SelectorsOf(id)) {
        *node.mutable_selectors() = s->selectors();
      }
    }
    return true;
  });
  return out;
}

int64_t NodeIndex::Count(const v1::CountAttestedNodesRequest& request) const {
  const NodeFilter filter = MakeFilter(request);
  int64_t count = 0;
  ix_->ForEachCandidate(filter, "", [&](std::string_view id) {
    auto it = ix_->nodes.find(id);
    if (it != ix_->nodes.end() && ix_->Matches(*it->second.value, filter)) ++count;
    return true;
  });
  return count;
}

std::vector<v1::NodeSelectors> NodeIndex::ListSelectors(int64_t valid_at) const {
  std::vector<v1::NodeSelectors> out;
  for (const auto& [id, stored] : ix_->selectors) {
    if (stored.value->selectors().empty()) continue;
    if (valid_at != 0) {
      // Strict, and only for nodes that exist (spec §C5: the SQL joins the nodes table).
      auto node = ix_->nodes.find(id);
      if (node == ix_->nodes.end() || !(node->second.value->cert_not_after() > valid_at)) continue;
    }
    out.push_back(*stored.value);
  }
  return out;
}

}  // namespace plinth::datastore::internal
