// DatastoreState::Apply (decoding the revision stream into the tables) and the shared
// transaction builder for registration entries.
#include "datastore/internal/state.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/check.h"

namespace plinth::datastore::internal {
namespace {

constexpr std::string_view kEntry = "entry/";
constexpr std::string_view kNode = "node/";
constexpr std::string_view kNodeSelectors = "nodesel/";
constexpr std::string_view kBundle = "bundle/";
constexpr std::string_view kToken = "token/";
constexpr std::string_view kFederation = "fed/";
constexpr std::string_view kJournal = "journal/";
constexpr std::string_view kJournalNext = "journal-next";

// A fresh message parsed from `bytes`, or nullptr if they do not decode.
template <typename T>
std::shared_ptr<T> Decode(const std::string& bytes) {
  auto message = std::make_shared<T>();
  if (!message->ParseFromString(bytes)) return nullptr;
  return message;
}

bool ParseInt64(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// federates_with without repeats, in first-seen order.
std::vector<std::string_view> DistinctTrustDomains(const v1::RegistrationEntry& e) {
  std::vector<std::string_view> out;
  out.reserve(e.federates_with_size());
  for (const std::string& td : e.federates_with()) {
    if (std::find(out.begin(), out.end(), td) == out.end()) out.emplace_back(td);
  }
  return out;
}

}  // namespace

DatastoreState::DatastoreState(const Keys* keys) : keys_(keys) {}

void DatastoreState::Apply(const store::WatchBatch& batch) {
  const std::string& prefix = keys_->prefix();
  for (const store::Event& event : batch.events) {
    const std::string& key = event.kv.key;
    if (!key.starts_with(prefix)) continue;  // the mirror only delivers its prefix
    const std::string_view rest = std::string_view(key).substr(prefix.size());
    const bool put = event.type == store::Event::Type::kPut;
    const Revision rev = event.kv.mod_revision;

    // Each branch first forgets the key's previous version (object and digest term), then, on
    // a put, stores the new one. `decoded` stays false for a value no table accepts.
    bool decoded = false;
    auto forget_other = [&] {
      auto it = other_keys_.find(key);
      if (it == other_keys_.end()) return;
      digest_.Remove(key, it->second);
      other_keys_.erase(it);
    };
    // Replaces `id` in a map table by the decoded value; `fix` sets the value's own ID field
    // from the key, so a record can never disagree with the key it is stored under.
    auto apply_map = [&](auto& table, std::string_view id, auto fix) {
      using StoredT = typename std::remove_reference_t<decltype(table)>::mapped_type;
      using T = std::remove_const_t<typename decltype(StoredT::value)::element_type>;
      if (auto it = table.find(id); it != table.end()) {
        digest_.Remove(key, it->second.mod_revision);
        table.erase(it);
      }
      forget_other();
      if (!put) return;
      std::shared_ptr<T> value = Decode<T>(event.kv.value);
      if (value == nullptr) return;
      fix(*value);
      table.emplace(std::string(id), StoredT{std::move(value), rev});
      decoded = true;
    };

    if (rest.starts_with(kEntry)) {
      const std::string_view id = rest.substr(kEntry.size());
      if (const auto* old = entries.Find(id)) {
        digest_.Remove(key, old->mod_revision);
        entries.Remove(id);
      }
      forget_other();
      if (put) {
        if (auto entry = Decode<v1::RegistrationEntry>(event.kv.value)) {
          if (entry->entry_id() != id) entry->set_entry_id(std::string(id));
          entries.Put(std::move(entry), rev);
          decoded = true;
        }
      }
    } else if (rest.starts_with(kNode)) {
      const std::string_view id = rest.substr(kNode.size());
      if (const auto* old = nodes.FindNode(id)) {
        digest_.Remove(key, old->mod_revision);
        nodes.RemoveNode(id);
      }
      forget_other();
      if (put) {
        if (auto node = Decode<v1::AttestedNode>(event.kv.value)) {
          if (node->spiffe_id() != id) node->set_spiffe_id(std::string(id));
          node->clear_selectors();
          nodes.PutNode(std::move(node), rev);
          decoded = true;
        }
      }
    } else if (rest.starts_with(kNodeSelectors)) {
      const std::string_view id = rest.substr(kNodeSelectors.size());
      if (const auto* old = nodes.FindSelectors(id)) {
        digest_.Remove(key, old->mod_revision);
        nodes.RemoveSelectors(id);
      }
      forget_other();
      if (put) {
        if (auto selectors = Decode<v1::NodeSelectors>(event.kv.value)) {
          if (selectors->spiffe_id() != id) selectors->set_spiffe_id(std::string(id));
          nodes.PutSelectors(std::move(selectors), rev);
          decoded = true;
        }
      }
    } else if (rest.starts_with(kBundle)) {
      const std::string_view id = rest.substr(kBundle.size());
      apply_map(bundles, id, [&](v1::Bundle& b) {
        if (b.trust_domain_id() != id) b.set_trust_domain_id(std::string(id));
      });
    } else if (rest.starts_with(kToken)) {
      const std::string_view id = rest.substr(kToken.size());
      apply_map(tokens, id, [&](v1::JoinToken& t) {
        if (t.token() != id) t.set_token(std::string(id));
      });
    } else if (rest.starts_with(kFederation)) {
      const std::string_view id = rest.substr(kFederation.size());
      apply_map(federations, id, [&](v1::FederationRelationship& f) {
        if (f.trust_domain() != id) f.set_trust_domain(std::string(id));
        f.clear_trust_domain_bundle();
      });
    } else if (rest.starts_with(kJournal)) {
      int64_t id = 0;
      if (ParseInt64(rest.substr(kJournal.size()), &id)) {
        if (auto it = journals.find(id); it != journals.end()) {
          digest_.Remove(key, it->second.mod_revision);
          journals.erase(it);
        }
        forget_other();
        if (put) {
          if (auto journal = Decode<v1::CAJournal>(event.kv.value)) {
            journal->set_id(id);
            journals.emplace(id, Stored<v1::CAJournal>{std::move(journal), rev});
            decoded = true;
          }
        }
      } else {
        forget_other();
      }
    } else if (rest == kJournalNext) {
      if (journal_next_mod_revision != 0) digest_.Remove(key, journal_next_mod_revision);
      journal_next_mod_revision = 0;
      journal_next = 1;
      forget_other();
      int64_t next = 0;
      if (put && ParseInt64(event.kv.value, &next)) {
        journal_next = next;
        journal_next_mod_revision = rev;
        decoded = true;
      }
    } else {
      forget_other();  // a kind this version does not know: kept for the digest only
      if (put) {
        other_keys_.emplace(key, rev);
        digest_.Add(key, rev);
      }
      continue;
    }

    if (!put) continue;
    if (!decoded) {
      ++decode_errors_;
      other_keys_.emplace(key, rev);
    }
    digest_.Add(key, rev);
  }
}

void AppendEntryWrite(const Keys& keys, const DatastoreState& state,
                      const Stored<v1::RegistrationEntry>* old,
                      const v1::RegistrationEntry* updated, store::TxnRequest* txn) {
  PLINTH_CHECK(old != nullptr || updated != nullptr) << "AppendEntryWrite without an entry";
  using store::Condition;
  using store::Op;
  const v1::RegistrationEntry* before = old != nullptr ? old->value.get() : nullptr;
  const std::string& id = before != nullptr ? before->entry_id() : updated->entry_id();
  const std::string entry_key = keys.Entry(id);

  if (before == nullptr) {
    txn->conditions.push_back(Condition::Absent(entry_key));
  } else {
    txn->conditions.push_back(Condition::ModRevisionIs(entry_key, old->mod_revision));
  }
  if (updated != nullptr) {
    txn->ops.push_back(Op::Put(entry_key, updated->SerializeAsString()));
  } else {
    txn->ops.push_back(Op::Delete(entry_key));
  }

  // The similar-entry guard: one key per (SPIFFE ID, parent ID, selector set), owned by the
  // entry that holds it, so two replicas cannot both create (or update into) the same one.
  const std::string old_similar = before != nullptr ? keys.Similar(*before) : std::string();
  const std::string new_similar = updated != nullptr ? keys.Similar(*updated) : std::string();
  if (old_similar != new_similar) {
    if (!old_similar.empty()) txn->ops.push_back(Op::Delete(old_similar));
    if (!new_similar.empty()) {
      txn->conditions.push_back(Condition::Absent(new_similar));
      txn->ops.push_back(Op::Put(new_similar, id));
    }
  }

  // Join-token children: one key per (parent, entry) for the entries a join-token node's
  // deletion takes along, so that the deletion can assert none appeared meanwhile.
  const std::string old_join =
      before != nullptr && IsJoinTokenChild(*before) ? keys.JoinChild(before->parent_id(), id) : "";
  const std::string new_join = updated != nullptr && IsJoinTokenChild(*updated)
                                   ? keys.JoinChild(updated->parent_id(), id)
                                   : "";
  if (old_join != new_join) {
    if (!old_join.empty()) txn->ops.push_back(Op::Delete(old_join));
    if (!new_join.empty()) txn->ops.push_back(Op::Put(new_join, ""));
  }

  // Federation links: one key per (trust domain, entry), so DeleteBundle on another replica
  // can assert that no entry federates with the bundle it removes.
  const std::vector<std::string_view> old_tds =
      before != nullptr ? DistinctTrustDomains(*before) : std::vector<std::string_view>();
  const std::vector<std::string_view> new_tds =
      updated != nullptr ? DistinctTrustDomains(*updated) : std::vector<std::string_view>();
  for (std::string_view td : old_tds) {
    if (std::find(new_tds.begin(), new_tds.end(), td) == new_tds.end()) {
      txn->ops.push_back(Op::Delete(keys.FedLink(td, id)));
    }
  }
  for (std::string_view td : new_tds) {
    if (std::find(old_tds.begin(), old_tds.end(), td) == old_tds.end()) {
      txn->ops.push_back(Op::Put(keys.FedLink(td, id), ""));
    }
    // The federated bundle must still exist when this commits. A bundle missing from the
    // state gets no condition: callers reject that case before writing.
    if (auto it = state.bundles.find(td); it != state.bundles.end()) {
      txn->conditions.push_back(Condition::ModRevisionIs(keys.Bundle(td), it->second.mod_revision));
    }
  }
}

bool IsJoinTokenChild(const v1::RegistrationEntry& entry) {
  return entry.selectors_size() == 1 && entry.selectors(0).type() == "spiffe_id" &&
         entry.selectors(0).value() == entry.parent_id();
}

size_t EntryWritesPerTxn(const store::Limits& limits, size_t federates_with_per_entry) {
  // An entry write is at least one op for the entry, one for its similar key and one per
  // federation link (a join-token child adds one more, which TxnBudget accounts for); its
  // bytes are estimated generously (keys up to ~200 bytes, the value up to 2 KiB).
  const size_t ops_per_write = 2 + federates_with_per_entry;
  const size_t bytes_per_write = ops_per_write * 256 + 2048;
  size_t n = SIZE_MAX;
  if (limits.max_ops_per_txn != 0) n = std::min(n, limits.max_ops_per_txn / ops_per_write);
  if (limits.max_txn_bytes != 0) n = std::min(n, limits.max_txn_bytes / bytes_per_write);
  return std::max<size_t>(n, 1);
}

}  // namespace plinth::datastore::internal
