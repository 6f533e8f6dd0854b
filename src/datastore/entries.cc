// Registration entry operations (spec §C3, §C4) and ListAuthorizedEntries (spec §D).
//
// Writes plan against the mirror's state and commit one conditional transaction built by
// internal::AppendEntryWrite; reads never touch the store.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "datastore/datastore.h"
#include "datastore/internal/impl.h"
#include "datastore/internal/state.h"

namespace plinth::datastore {
namespace {

using internal::DatastoreState;
using store::Revision;
using StoredEntry = internal::Stored<v1::RegistrationEntry>;

constexpr size_t kMaxEntryIdLength = 255;
constexpr size_t kMaxAdditionalAttributesBytes = 65535;

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  out.append(s);
  out.push_back('"');
  return out;
}

bool ValidEntryIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool SelectorsShareOneType(const v1::RegistrationEntry& e) {
  for (const v1::Selector& s : e.selectors()) {
    if (s.type() != e.selectors(0).type()) return false;
  }
  return true;
}

// The store_svid rule on selectors: an SVID stored by the agent is addressed by one selector
// type. Checked on create and, unlike SPIRE, on the result of every update (DESIGN.md).
std::optional<std::string> CheckStoreSvidSelectors(const v1::RegistrationEntry& e) {
  if (e.store_svid() && !SelectorsShareOneType(e)) {
    return "invalid registration entry: selectors must all have the same type when store_svid "
           "is set";
  }
  return std::nullopt;
}

// Create-time validation in SPIRE's order (spec §C3); the message without the
// "datastore-validation: " prefix, or nullopt.
std::optional<std::string> CheckNewEntry(const v1::RegistrationEntry& e) {
  if (e.selectors_size() == 0) {
    return "invalid registration entry: selectors must not be empty";
  }
  if (e.store_svid()) {
    if (e.additional_attributes().disable_x509_svid_prefetch()) {
      return "invalid registration entry: store_svid cannot be combined with "
             "additional_attributes.disable_x509_svid_prefetch";
    }
    if (auto bad = CheckStoreSvidSelectors(e)) return bad;
  }
  if (e.entry_id().size() > kMaxEntryIdLength) {
    return "invalid registration entry: entry_id is longer than " +
           std::to_string(kMaxEntryIdLength) + " characters";
  }
  if (!std::all_of(e.entry_id().begin(), e.entry_id().end(), ValidEntryIdChar)) {
    return "invalid registration entry: entry_id " + Quote(e.entry_id()) +
           " contains characters outside [-._0-9A-Za-z]";
  }
  if (e.spiffe_id().empty()) return "invalid registration entry: spiffe_id is required";
  if (e.x509_svid_ttl() < 0) {
    return "invalid registration entry: x509_svid_ttl must not be negative (got " +
           std::to_string(e.x509_svid_ttl()) + ")";
  }
  if (e.jwt_svid_ttl() < 0) {
    return "invalid registration entry: jwt_svid_ttl must not be negative (got " +
           std::to_string(e.jwt_svid_ttl()) + ")";
  }
  if (e.additional_attributes().ByteSizeLong() > kMaxAdditionalAttributesBytes) {
    return "invalid registration entry: additional_attributes exceeds " +
           std::to_string(kMaxAdditionalAttributesBytes) + " bytes";
  }
  return std::nullopt;
}

// Update-time validation: only the fields the mask writes (spec §C3), plus the store_svid
// selector rule on the resulting entry.
std::optional<std::string> CheckUpdate(const v1::RegistrationEntry& input,
                                       const v1::RegistrationEntryMask& mask) {
  if (mask.selectors() && input.selectors_size() == 0) {
    return "invalid registration entry: selectors must not be empty";
  }
  if (mask.spiffe_id() && input.spiffe_id().empty()) {
    return "invalid registration entry: spiffe_id is required";
  }
  if (mask.x509_svid_ttl() && input.x509_svid_ttl() < 0) {
    return "invalid registration entry: x509_svid_ttl must not be negative (got " +
           std::to_string(input.x509_svid_ttl()) + ")";
  }
  if (mask.jwt_svid_ttl() && input.jwt_svid_ttl() < 0) {
    return "invalid registration entry: jwt_svid_ttl must not be negative (got " +
           std::to_string(input.jwt_svid_ttl()) + ")";
  }
  return std::nullopt;
}

// SPIRE's unique index on (entry, selector): a repeat is AlreadyExists.
Status CheckNoDuplicateSelectors(const v1::RegistrationEntry& e) {
  for (int i = 0; i < e.selectors_size(); ++i) {
    for (int j = 0; j < i; ++j) {
      if (e.selectors(i).type() == e.selectors(j).type() &&
          e.selectors(i).value() == e.selectors(j).value()) {
        return AlreadyExistsError("datastore: registration entry lists selector " +
                                  Quote(e.selectors(i).type() + ":" + e.selectors(i).value()) +
                                  " twice");
      }
    }
  }
  return Status::Ok();
}

// SPIRE's unique index on (entry, DNS name): a repeat is AlreadyExists.
Status CheckNoDuplicateDnsNames(const v1::RegistrationEntry& e) {
  for (int i = 0; i < e.dns_names_size(); ++i) {
    for (int j = 0; j < i; ++j) {
      if (e.dns_names(i) == e.dns_names(j)) {
        return AlreadyExistsError("datastore: registration entry lists DNS name " +
                                  Quote(e.dns_names(i)) + " twice");
      }
    }
  }
  return Status::Ok();
}

// Removes repeats from federates_with, keeping first occurrences in order.
void DeduplicateFederatesWith(v1::RegistrationEntry* e) {
  std::vector<std::string> seen;
  for (const std::string& td : e->federates_with()) {
    if (std::find(seen.begin(), seen.end(), td) == seen.end()) seen.push_back(td);
  }
  if (static_cast<int>(seen.size()) == e->federates_with_size()) return;
  e->clear_federates_with();
  for (std::string& td : seen) e->add_federates_with(std::move(td));
}

// Every federated trust domain must have a bundle (SPIRE answers Unknown).
Status CheckFederatedBundles(const DatastoreState& state, const v1::RegistrationEntry& e) {
  for (const std::string& td : e.federates_with()) {
    if (state.bundles.find(td) == state.bundles.end()) {
      return UnknownError("unable to find federated bundle " + Quote(td));
    }
  }
  return Status::Ok();
}

v1::RegistrationEntryMask FullMask() {
  v1::RegistrationEntryMask m;
  m.set_spiffe_id(true);
  m.set_parent_id(true);
  m.set_selectors(true);
  m.set_x509_svid_ttl(true);
  m.set_jwt_svid_ttl(true);
  m.set_federates_with(true);
  m.set_admin(true);
  m.set_downstream(true);
  m.set_entry_expiry(true);
  m.set_dns_names(true);
  m.set_store_svid(true);
  m.set_hint(true);
  m.set_additional_attributes(true);
  return m;
}

// Selector set of an entry, sorted and without repeats, for comparisons.
std::vector<std::pair<std::string_view, std::string_view>> SelectorSet(
    const v1::RegistrationEntry& e) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  out.reserve(e.selectors_size());
  for (const v1::Selector& s : e.selectors()) out.emplace_back(s.type(), s.value());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// SPIRE's similar rule between two entries: same SPIFFE ID, same parent unless `candidate`'s
// is empty, same selector set.
bool IsSimilar(const v1::RegistrationEntry& candidate, const v1::RegistrationEntry& existing) {
  return candidate.spiffe_id() == existing.spiffe_id() &&
         (candidate.parent_id().empty() || candidate.parent_id() == existing.parent_id()) &&
         SelectorSet(candidate) == SelectorSet(existing);
}

// An entry other than `self_id` with exactly e's SPIFFE ID, parent ID and selector set (the
// owner of e's similar key), or nullptr.
const StoredEntry* FindExactTwin(const DatastoreState& state, const v1::RegistrationEntry& e,
                                 std::string_view self_id) {
  if (e.selectors_size() == 0) return nullptr;
  v1::ListRegistrationEntriesRequest query;
  query.set_by_spiffe_id(e.spiffe_id());
  query.set_by_parent_id(e.parent_id());
  *query.mutable_by_selectors()->mutable_selectors() = e.selectors();
  query.mutable_by_selectors()->set_match(v1::MATCH_EXACT);
  bool more = false;
  for (const EntryPtr& twin : state.entries.Query(query, "", 2, &more)) {
    if (twin->entry_id() != self_id) return state.entries.Find(twin->entry_id());
  }
  return nullptr;
}

// Validation of the filters shared by List and Count.
template <typename Request>
Status CheckFilters(const Request& r) {
  if (r.has_by_selectors()) {
    if (r.by_selectors().selectors_size() == 0) {
      return InvalidArgumentError("cannot list by empty selector set (by_selectors.selectors)");
    }
    if (!v1::MatchBehavior_IsValid(r.by_selectors().match())) {
      return InvalidArgumentError("unknown match behavior " +
                                  std::to_string(r.by_selectors().match()) +
                                  " in by_selectors.match");
    }
  }
  if (r.has_by_federates_with()) {
    if (r.by_federates_with().trust_domains_size() == 0) {
      return InvalidArgumentError(
          "cannot list by empty federated trust domain set (by_federates_with.trust_domains)");
    }
    if (!v1::MatchBehavior_IsValid(r.by_federates_with().match())) {
      return InvalidArgumentError("unknown match behavior " +
                                  std::to_string(r.by_federates_with().match()) +
                                  " in by_federates_with.match");
    }
  }
  return Status::Ok();
}

// Entries planned for creation earlier in the same transaction (not yet in the state).
// Pointers stay valid for the plan's run.
class PendingCreates {
 public:
  void Add(const v1::RegistrationEntry* e) {
    by_spiffe_id_[e->spiffe_id()].push_back(e);
    ids_.insert(e->entry_id());
  }
  const v1::RegistrationEntry* FindSimilar(const v1::RegistrationEntry& candidate) const {
    auto it = by_spiffe_id_.find(candidate.spiffe_id());
    if (it == by_spiffe_id_.end()) return nullptr;
    for (const v1::RegistrationEntry* p : it->second) {
      if (IsSimilar(candidate, *p)) return p;
    }
    return nullptr;
  }
  bool HasId(std::string_view id) const { return ids_.count(id) > 0; }

 private:
  std::unordered_map<std::string_view, std::vector<const v1::RegistrationEntry*>> by_spiffe_id_;
  std::unordered_set<std::string_view> ids_;
};

// What a create resolves to against the state and the entries planned before it in the same
// transaction.
struct PlannedCreate {
  bool existing = false;
  v1::RegistrationEntry entry;
};

// Plans one create (spec §C3): a similar entry is returned as existing; otherwise the entry to
// write, with its ID. `base` is validated and normalized; `generated_id` keeps an ID made by
// new_id() stable across re-plans. `pending` holds entries created earlier in the same transaction.
template <typename NewId>
StatusOr<PlannedCreate> PlanCreate(const NewId& new_id, const DatastoreState& state,
                                   const v1::RegistrationEntry& base, const PendingCreates& pending,
                                   std::string* generated_id) {
  PlannedCreate out;
  if (const StoredEntry* similar = state.entries.FindSimilar(base)) {
    out.existing = true;
    out.entry = *similar->value;
    return out;
  }
  if (const v1::RegistrationEntry* similar = pending.FindSimilar(base)) {
    out.existing = true;
    out.entry = *similar;
    return out;
  }
  // SPIRE's order: federation links are inserted before selectors, selectors before DNS names.
  PLINTH_RETURN_IF_ERROR(CheckFederatedBundles(state, base));
  PLINTH_RETURN_IF_ERROR(CheckNoDuplicateSelectors(base));
  PLINTH_RETURN_IF_ERROR(CheckNoDuplicateDnsNames(base));
  out.entry = base;
  if (out.entry.entry_id().empty()) {
    if (generated_id->empty()) *generated_id = new_id();
    out.entry.set_entry_id(*generated_id);
  }
  const std::string& id = out.entry.entry_id();
  if (state.entries.Find(id) != nullptr || pending.HasId(id)) {
    return AlreadyExistsError("datastore: registration entry " + Quote(id) + " already exists");
  }
  return out;
}

// The normalized form of a new entry: federates_with deduplicated, server-assigned fields set.
v1::RegistrationEntry NewEntryBase(const v1::RegistrationEntry& input, int64_t now) {
  v1::RegistrationEntry base = input;
  DeduplicateFederatesWith(&base);
  base.set_revision_number(0);
  base.set_created_at_unix_nanos(now);
  return base;
}

}  // namespace

StatusOr<CreateOrReturnResult> DataStore::CreateOrReturnRegistrationEntry(
    const v1::RegistrationEntry& entry) {
  if (auto bad = CheckNewEntry(entry)) return internal::ValidationError(*bad);
  const v1::RegistrationEntry base = NewEntryBase(entry, impl_->NowUnixNanos());
  auto new_id = [this] { return impl_->NewEntryId(); };
  std::string generated_id;
  CreateOrReturnResult result;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<store::TxnRequest> {
        PLINTH_ASSIGN_OR_RETURN(PlannedCreate planned,
                                PlanCreate(new_id, state, base, PendingCreates(), &generated_id));
        store::TxnRequest txn;
        if (!planned.existing) {
          internal::AppendEntryWrite(impl_->keys, state, nullptr, &planned.entry, &txn);
        }
        result.existing = planned.existing;
        result.entry = std::move(planned.entry);
        return txn;
      }));
  return result;
}

StatusOr<v1::RegistrationEntry> DataStore::CreateRegistrationEntry(
    const v1::RegistrationEntry& entry) {
  PLINTH_ASSIGN_OR_RETURN(CreateOrReturnResult result, CreateOrReturnRegistrationEntry(entry));
  return std::move(result.entry);
}

StatusOr<std::vector<CreateOrReturnResult>> DataStore::CreateOrReturnRegistrationEntries(
    const std::vector<v1::RegistrationEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (auto bad = CheckNewEntry(entries[i])) {
      return internal::ValidationError("entries[" + std::to_string(i) + "]: " + *bad);
    }
  }
  const int64_t now = impl_->NowUnixNanos();
  std::vector<v1::RegistrationEntry> bases;
  bases.reserve(entries.size());
  for (const v1::RegistrationEntry& e : entries) bases.push_back(NewEntryBase(e, now));
  std::vector<std::string> generated_ids(entries.size());
  auto new_id = [this] { return impl_->NewEntryId(); };
  std::vector<CreateOrReturnResult> results(entries.size());

  size_t done = 0;     // entries resolved by committed transactions
  size_t created = 0;  // of those, how many were written
  while (done < entries.size()) {
    // Filled by the last run of the plan: the entries it resolved, from `done` on.
    std::vector<CreateOrReturnResult> planned;
    size_t planned_created = 0;
    StatusOr<Revision> committed =
        impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<store::TxnRequest> {
          planned.clear();
          // Reserved so that `pending` may point into it.
          planned.reserve(entries.size() - done);
          planned_created = 0;
          store::TxnRequest txn;
          internal::TxnBudget budget(impl_->limits);
          PendingCreates pending;
          for (size_t i = done; i < entries.size(); ++i) {
            StatusOr<PlannedCreate> one =
                PlanCreate(new_id, state, bases[i], pending, &generated_ids[i]);
            if (!one.ok()) {
              return Status(one.status().code(), "entries[" + std::to_string(i) +
                                                     "]: " + std::string(one.status().message()));
            }
            if (!one->existing) {
              const auto mark = internal::TxnBudget::MarkOf(txn);
              internal::AppendEntryWrite(impl_->keys, state, nullptr, &one->entry, &txn);
              if (!budget.Accept(&txn, mark)) {
                if (planned_created == 0) {
                  return ResourceExhaustedError(
                      "entries[" + std::to_string(i) +
                      "]: the registration entry alone exceeds the store's transaction limits");
                }
                break;  // the rest goes into the next transaction
              }
              ++planned_created;
            }
            planned.push_back(CreateOrReturnResult{std::move(one->entry), one->existing});
            if (!planned.back().existing) pending.Add(&planned.back().entry);
          }
          return txn;
        });
    if (!committed.ok()) {
      if (created == 0) return committed.status();
      return Status(committed.status().code(),
                    std::string(committed.status().message()) + " (" + std::to_string(created) +
                        " entries of this batch were created before the failure)");
    }
    for (CreateOrReturnResult& r : planned) results[done++] = std::move(r);
    created += planned_created;
  }
  return results;
}

StatusOr<v1::RegistrationEntry> DataStore::UpdateRegistrationEntry(
    const v1::RegistrationEntry& entry, const v1::RegistrationEntryMask* mask) {
  const v1::RegistrationEntryMask m = mask != nullptr ? *mask : FullMask();
  if (auto bad = CheckUpdate(entry, m)) return internal::ValidationError(*bad);
  v1::RegistrationEntry result;
  PLINTH_RETURN_IF_ERROR(impl_->Write([&](const DatastoreState& state,
                                          Revision) -> StatusOr<store::TxnRequest> {
    const StoredEntry* old = state.entries.Find(entry.entry_id());
    if (old == nullptr) {
      return internal::NotFoundError("registration entry " + Quote(entry.entry_id()));
    }
    v1::RegistrationEntry updated = *old->value;
    if (m.spiffe_id()) updated.set_spiffe_id(entry.spiffe_id());
    if (m.parent_id()) updated.set_parent_id(entry.parent_id());
    if (m.selectors()) *updated.mutable_selectors() = entry.selectors();
    if (m.x509_svid_ttl()) updated.set_x509_svid_ttl(entry.x509_svid_ttl());
    if (m.jwt_svid_ttl()) updated.set_jwt_svid_ttl(entry.jwt_svid_ttl());
    if (m.federates_with()) {
      *updated.mutable_federates_with() = entry.federates_with();
      DeduplicateFederatesWith(&updated);
    }
    if (m.admin()) updated.set_admin(entry.admin());
    if (m.downstream()) updated.set_downstream(entry.downstream());
    if (m.entry_expiry()) updated.set_entry_expiry(entry.entry_expiry());
    if (m.dns_names()) *updated.mutable_dns_names() = entry.dns_names();
    if (m.store_svid()) updated.set_store_svid(entry.store_svid());
    if (m.hint()) updated.set_hint(entry.hint());
    if (m.additional_attributes()) {
      *updated.mutable_additional_attributes() = entry.additional_attributes();
    }
    updated.set_revision_number(old->value->revision_number() + 1);

    if (auto bad = CheckStoreSvidSelectors(updated)) return internal::ValidationError(*bad);
    if (m.federates_with()) PLINTH_RETURN_IF_ERROR(CheckFederatedBundles(state, updated));
    if (m.selectors()) PLINTH_RETURN_IF_ERROR(CheckNoDuplicateSelectors(updated));
    if (m.dns_names()) PLINTH_RETURN_IF_ERROR(CheckNoDuplicateDnsNames(updated));
    // The similar key has one owner: an update may not turn an entry into an exact twin of
    // another (which CreateOrReturn could then not tell apart).
    const v1::RegistrationEntry& before = *old->value;
    if (before.spiffe_id() != updated.spiffe_id() || before.parent_id() != updated.parent_id() ||
        SelectorSet(before) != SelectorSet(updated)) {
      if (const StoredEntry* twin = FindExactTwin(state, updated, updated.entry_id())) {
        return AlreadyExistsError("datastore: registration entry " +
                                  Quote(twin->value->entry_id()) +
                                  " already has this SPIFFE ID, parent ID and selector set");
      }
    }
    store::TxnRequest txn;
    internal::AppendEntryWrite(impl_->keys, state, old, &updated, &txn);
    result = std::move(updated);
    return txn;
  }));
  return result;
}

StatusOr<v1::RegistrationEntry> DataStore::DeleteRegistrationEntry(const std::string& entry_id) {
  v1::RegistrationEntry deleted;
  PLINTH_RETURN_IF_ERROR(
      impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<store::TxnRequest> {
        const StoredEntry* old = state.entries.Find(entry_id);
        if (old == nullptr) return internal::NotFoundError("registration entry " + Quote(entry_id));
        store::TxnRequest txn;
        internal::AppendEntryWrite(impl_->keys, state, old, nullptr, &txn);
        deleted = *old->value;
        return txn;
      }));
  return deleted;
}

StatusOr<EntryPtr> DataStore::FetchRegistrationEntry(const std::string& entry_id) {
  EntryPtr entry = impl_->Read([&](const DatastoreState& state, Revision) -> EntryPtr {
    const StoredEntry* e = state.entries.Find(entry_id);
    return e != nullptr ? e->value : nullptr;
  });
  if (entry == nullptr) return internal::NotFoundError("registration entry " + Quote(entry_id));
  return entry;
}

StatusOr<std::map<std::string, EntryPtr>> DataStore::FetchRegistrationEntries(
    const std::vector<std::string>& entry_ids) {
  return impl_->Read([&](const DatastoreState& state, Revision) {
    std::map<std::string, EntryPtr> out;
    for (const std::string& id : entry_ids) {
      if (const StoredEntry* e = state.entries.Find(id)) out.emplace(id, e->value);
    }
    return out;
  });
}

StatusOr<v1::ListRegistrationEntriesResponse> DataStore::ListRegistrationEntries(
    const v1::ListRegistrationEntriesRequest& request) {
  PLINTH_ASSIGN_OR_RETURN(
      const internal::PageRequest page,
      internal::ParsePageRequest(request.has_pagination() ? &request.pagination() : nullptr));
  PLINTH_RETURN_IF_ERROR(CheckFilters(request));
  PLINTH_RETURN_IF_ERROR(impl_->Sync(request.consistency()));

  bool more = false;
  std::vector<EntryPtr> entries = impl_->Read([&](const DatastoreState& state, Revision) {
    return state.entries.Query(request, page.after, page.limit, &more);
  });
  v1::ListRegistrationEntriesResponse response;
  response.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (const EntryPtr& e : entries) *response.add_entries() = *e;
  // DESIGN.md deviation: the token is "" exactly when nothing remains.
  more = more && !entries.empty();
  internal::SetNextPage(page, more, more ? entries.back()->entry_id() : "", &response);
  return response;
}

StatusOr<int64_t> DataStore::CountRegistrationEntries(
    const v1::CountRegistrationEntriesRequest& request) {
  PLINTH_RETURN_IF_ERROR(CheckFilters(request));
  PLINTH_RETURN_IF_ERROR(impl_->Sync(request.consistency()));
  return impl_->Read(
      [&](const DatastoreState& state, Revision) { return state.entries.Count(request); });
}

StatusOr<int64_t> DataStore::PruneRegistrationEntries(int64_t expires_before_unix) {
  // Several transactions when the expired entries exceed the store's limits. Each deletes what
  // it planned only if unchanged (ModRevisionIs), so replicas pruning at once never delete an
  // entry twice or one that was just renewed; a re-plan simply finds less to do.
  const size_t per_txn = internal::EntryWritesPerTxn(impl_->limits, 0);
  int64_t total = 0;
  while (true) {
    size_t deleted = 0;
    PLINTH_RETURN_IF_ERROR(
        impl_->Write([&](const DatastoreState& state, Revision) -> StatusOr<store::TxnRequest> {
          deleted = 0;
          store::TxnRequest txn;
          internal::TxnBudget budget(impl_->limits);
          for (const StoredEntry* e : state.entries.ExpiredBefore(expires_before_unix, per_txn)) {
            const auto mark = internal::TxnBudget::MarkOf(txn);
            internal::AppendEntryWrite(impl_->keys, state, e, nullptr, &txn);
            if (!budget.Accept(&txn, mark)) {
              if (deleted == 0) {
                return ResourceExhaustedError("deleting registration entry " +
                                              Quote(e->value->entry_id()) +
                                              " exceeds the store's transaction limits");
              }
              break;
            }
            ++deleted;
          }
          return txn;
        }));
    if (deleted == 0) return total;
    total += static_cast<int64_t>(deleted);
  }
}

std::vector<EntryPtr> DataStore::ListAuthorizedEntries(const std::string& agent_spiffe_id) {
  return impl_->Read([&](const DatastoreState& state, Revision) {
    static const google::protobuf::RepeatedPtrField<v1::Selector> kNoSelectors;
    const internal::Stored<v1::NodeSelectors>* selectors =
        state.nodes.FindSelectors(agent_spiffe_id);
    return state.entries.Authorized(
        agent_spiffe_id, selectors != nullptr ? selectors->value->selectors() : kNoSelectors);
  });
}

}  // namespace plinth::datastore
