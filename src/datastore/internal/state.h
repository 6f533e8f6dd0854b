// The datastore's in-memory state: decoded objects and secondary indexes, kept by the mirror
// (mirror::MirrorState) as the revision stream applies. Also the key layout. Private to
// src/datastore/.
//
// Key layout (under DataStoreOptions::prefix, "ds/" by default; mirrored):
//   entry/<entry id>           v1::RegistrationEntry
//   node/<spiffe id>           v1::AttestedNode (selectors cleared)
//   nodesel/<spiffe id>        v1::NodeSelectors
//   bundle/<trust domain id>   v1::Bundle
//   token/<token>              v1::JoinToken
//   fed/<trust domain>         v1::FederationRelationship (trust_domain_bundle cleared)
//   journal/<id, 20 digits>    v1::CAJournal
//   journal-next               decimal text: the next CA journal id
// Index keys (under DataStoreOptions::index_prefix, "dsx/"; not mirrored: they exist only so
// that store conditions can enforce rules across replicas):
//   similar/<hex sha-256 of spiffe id, parent id, sorted selectors>   entry id
//   fedlink/<trust domain id>/<entry id>                              ""
//   joinchild/<length of parent id>:<parent id>/<entry id>            ""
//     for an entry whose only selector is spiffe_id:<its parent id>: the children a
//     join-token node takes along when it is deleted (spec §C5), so that the deletion can
//     assert no such child appeared meanwhile on another replica.
#ifndef PLINTH_DATASTORE_INTERNAL_STATE_H_
#define PLINTH_DATASTORE_INTERNAL_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "datastore/datastore.h"
#include "mirror/mirror.h"
#include "plinth/v1/types.pb.h"
#include "store/store.h"

namespace plinth::datastore::internal {

using store::Revision;

// Builds every store key the datastore uses.
class Keys {
 public:
  Keys(std::string prefix, std::string index_prefix);

  const std::string& prefix() const { return prefix_; }
  std::string Entry(std::string_view entry_id) const;
  std::string Node(std::string_view spiffe_id) const;
  std::string NodeSelectors(std::string_view spiffe_id) const;
  std::string Bundle(std::string_view trust_domain_id) const;
  std::string Token(std::string_view token) const;
  std::string Federation(std::string_view trust_domain) const;
  std::string Journal(int64_t id) const;
  std::string JournalNext() const;
  // The similar-entry guard key of (spiffe_id, parent_id, selector set); selector order and
  // duplicates do not matter.
  std::string Similar(const v1::RegistrationEntry& entry) const;
  std::string FedLink(std::string_view trust_domain_id, std::string_view entry_id) const;
  std::string FedLinkPrefix(std::string_view trust_domain_id) const;
  std::string JoinChild(std::string_view parent_id, std::string_view entry_id) const;
  std::string JoinChildPrefix(std::string_view parent_id) const;

 private:
  std::string prefix_;
  std::string index_prefix_;
};

// One decoded object and the mod_revision of its key.
template <typename T>
struct Stored {
  std::shared_ptr<const T> value;
  Revision mod_revision = 0;
};

// Registration entries and their indexes: by ID, parent ID, SPIFFE ID, hint, selector,
// federated trust domain, expiry; node aliases by selector for ListAuthorizedEntries.
// Not thread-safe (guarded by the mirror's lock).
class EntryIndex {
 public:
  EntryIndex();
  ~EntryIndex();

  void Put(std::shared_ptr<const v1::RegistrationEntry> entry, Revision mod_revision);
  void Remove(std::string_view entry_id);

  const Stored<v1::RegistrationEntry>* Find(std::string_view entry_id) const;
  size_t size() const;

  // Entries whose federates_with contains `trust_domain_id`.
  std::vector<const Stored<v1::RegistrationEntry>*> FederatingWith(
      std::string_view trust_domain_id) const;
  // Entries whose parent_id is `parent_id`.
  std::vector<const Stored<v1::RegistrationEntry>*> ChildrenOf(std::string_view parent_id) const;
  // A similar entry per SPIRE's rule (same spiffe_id, same parent_id unless `entry`'s is empty,
  // equal selector set), or nullptr.
  const Stored<v1::RegistrationEntry>* FindSimilar(const v1::RegistrationEntry& entry) const;
  // Entries with 0 < entry_expiry < t, up to `limit`.
  std::vector<const Stored<v1::RegistrationEntry>*> ExpiredBefore(int64_t t, size_t limit) const;

  // List/Count with every filter (validated by the caller). `after` is the last entry ID of the
  // previous page ("" = from the start); at most `limit` matches (0 = all) in entry-ID order;
  // `*more` tells whether further matches exist.
  std::vector<EntryPtr> Query(const v1::ListRegistrationEntriesRequest& request,
                              std::string_view after, size_t limit, bool* more) const;
  int64_t Count(const v1::CountRegistrationEntriesRequest& request) const;

  // spec §D; `agent_selectors` are the agent's node selectors.
  std::vector<EntryPtr> Authorized(std::string_view agent_spiffe_id,
                                   const std::vector<v1::Selector>& agent_selectors) const;
  // The same over a stored selector list, without copying it (ListAuthorizedEntries' path).
  std::vector<EntryPtr> Authorized(
      std::string_view agent_spiffe_id,
      const google::protobuf::RepeatedPtrField<v1::Selector>& agent_selectors) const;

 private:
  struct Indexes;
  std::unique_ptr<Indexes> ix_;
};

// Attested nodes and node selector sets, with indexes for ListAttestedNodes. Not thread-safe.
class NodeIndex {
 public:
  NodeIndex();
  ~NodeIndex();

  void PutNode(std::shared_ptr<const v1::AttestedNode> node, Revision mod_revision);
  void RemoveNode(std::string_view spiffe_id);
  void PutSelectors(std::shared_ptr<const v1::NodeSelectors> selectors, Revision mod_revision);
  void RemoveSelectors(std::string_view spiffe_id);

  const Stored<v1::AttestedNode>* FindNode(std::string_view spiffe_id) const;
  const Stored<v1::NodeSelectors>* FindSelectors(std::string_view spiffe_id) const;
  size_t node_count() const;

  // Nodes picked by PruneAttestedExpiredNodes' rule, up to `limit`.
  std::vector<const Stored<v1::AttestedNode>*> Expired(int64_t before,
                                                       bool include_non_reattestable,
                                                       size_t limit) const;
  // List/Count with every filter (validated by the caller); paging as EntryIndex::Query, in
  // SPIFFE-ID order. Returned nodes carry selectors only if request.fetch_selectors.
  std::vector<v1::AttestedNode> Query(const v1::ListAttestedNodesRequest& request,
                                      std::string_view after, size_t limit, bool* more) const;
  int64_t Count(const v1::CountAttestedNodesRequest& request) const;
  // Every selector set, by SPIFFE ID; with valid_at != 0 only nodes with cert_not_after >
  // valid_at (spec §C5).
  std::vector<v1::NodeSelectors> ListSelectors(int64_t valid_at) const;

 private:
  struct Indexes;
  std::unique_ptr<Indexes> ix_;
};

// The whole state. Apply decodes each event by key prefix into the tables above; a value that
// does not decode is skipped and counted in decode_errors().
class DatastoreState final : public mirror::MirrorState {
 public:
  explicit DatastoreState(const Keys* keys);

  void Apply(const store::WatchBatch& batch) override;
  uint64_t Digest() const override { return digest_.value(); }

  EntryIndex entries;
  NodeIndex nodes;
  std::map<std::string, Stored<v1::Bundle>, std::less<>> bundles;
  std::map<std::string, Stored<v1::JoinToken>, std::less<>> tokens;
  std::map<std::string, Stored<v1::FederationRelationship>, std::less<>> federations;
  std::map<int64_t, Stored<v1::CAJournal>> journals;
  Revision journal_next_mod_revision = 0;  // 0 = key absent
  int64_t journal_next = 1;

  int64_t decode_errors() const { return decode_errors_; }

 private:
  const Keys* keys_;
  // Key -> mod_revision is recoverable from the tables for every mirrored key, so the digest
  // is maintained from them as events apply.
  mirror::KeyDigest digest_;
  int64_t decode_errors_ = 0;
  // Mirrored keys that no table holds (values that did not decode, kinds this version does not
  // know), with their mod_revision, so that the digest still covers them.
  std::map<std::string, Revision, std::less<>> other_keys_;
};

// Appends to `txn` the conditions and ops that replace entry `old` (nullptr: create) by
// `updated` (nullptr: delete), index keys included:
//   create  Absent(entry key), Absent(similar key), put entry, similar, fedlinks;
//   update  ModRevisionIs(entry key, old mod), rewrite similar/fedlinks that changed
//           (Absent on a new similar key);
//   delete  ModRevisionIs(entry key, old mod), delete entry, similar, fedlinks.
// Federated bundles must exist: adds ModRevisionIs(bundle key, its mod) for each trust domain
// in updated->federates_with, read from `state` (NotFound-style errors are the caller's job).
void AppendEntryWrite(const Keys& keys, const DatastoreState& state,
                      const Stored<v1::RegistrationEntry>* old,
                      const v1::RegistrationEntry* updated, store::TxnRequest* txn);

// Whether deleting a join-token node `entry.parent_id()` takes `entry` along: its only selector
// is spiffe_id:<parent id> (spec §C5, SPIRE #6946).
bool IsJoinTokenChild(const v1::RegistrationEntry& entry);

// About how many entry writes (AppendEntryWrite calls) fit in one transaction of `limits`:
// an upper bound for picking candidates; TxnBudget checks each transaction exactly.
size_t EntryWritesPerTxn(const store::Limits& limits, size_t federates_with_per_entry);

}  // namespace plinth::datastore::internal

#endif  // PLINTH_DATASTORE_INTERNAL_STATE_H_
