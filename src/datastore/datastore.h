// SPIRE's server DataStore on plinth's mirror: every operation and query filter of
// spec/spire-datastore.md §A–C, with the deliberate deviations of DESIGN.md. Reads are served
// from memory only; writes are one conditional store transaction each (or, for bulk deletes
// above the backend's transaction limit, a sequence of idempotent ones) and return after this
// replica has applied them.
//
// Errors use the canonical codes of spec §C1: InvalidArgument for validation (messages name
// the field), NotFound for a missing target, AlreadyExists for duplicates, FailedPrecondition
// for DeleteBundle(RESTRICT) on a bundle in use, Unavailable when the backend cannot be
// reached (reads still work), Aborted if a write lost too many races in a row.
//
// Thread-safe: call any method from any thread.
#ifndef PLINTH_DATASTORE_DATASTORE_H_
#define PLINTH_DATASTORE_DATASTORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "mirror/mirror.h"
#include "plinth/v1/datastore.pb.h"
#include "plinth/v1/types.pb.h"
#include "store/store.h"

namespace plinth::datastore {

namespace v1 = ::plinth::v1;

// Objects handed out by reads are immutable and shared with the in-memory state; holding one
// keeps it alive after later writes replace it.
using EntryPtr = std::shared_ptr<const v1::RegistrationEntry>;

struct DataStoreOptions {
  // Key prefix of the datastore's objects in the store (the mirrored prefix). Index keys that
  // only guard cross-replica rules live under `index_prefix` and are not mirrored.
  std::string prefix = "ds/";
  std::string index_prefix = "dsx/";
  // Bound for consistent reads (READ_CONSISTENT) and for a write's wait for its own commit.
  std::chrono::milliseconds consistent_read_timeout{5000};
  // Period of the mirror's automatic verification (0 = off).
  std::chrono::milliseconds verify_interval{0};
  // Time source for created_at and for tests; nullptr = RealClock().
  Clock* clock = nullptr;
  // Source of new entry IDs (UUIDv4 by default); tests may make them deterministic.
  std::function<std::string()> new_entry_id;
};

// Result of CreateOrReturnRegistrationEntry.
struct CreateOrReturnResult {
  v1::RegistrationEntry entry;
  bool existing = false;  // true: a similar entry was returned and nothing was written
};

// A subscription to the typed change feed; dropping it unsubscribes.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

// Receives every change in revision order, on the mirror's follower thread; must be quick and
// must not call DataStore write methods (queue the work instead). `reset` = true means the
// mirror was rebuilt from a fresh snapshot: changes may have been missed; re-read what you
// derived (then `change` is empty).
using ChangeListener = std::function<void(const v1::DataStoreChange& change, bool reset)>;

class DataStore {
 public:
  // Hydrates the datastore's prefix of `store` (which must outlive the DataStore) and starts
  // following it. Returns once the in-memory state is complete.
  static StatusOr<std::unique_ptr<DataStore>> Open(store::Store* store, DataStoreOptions options);
  ~DataStore();

  // The mirror underneath (status, Sync, Verify) for the server's health and metrics.
  mirror::Mirror& mirror();

  // ---- Bundles (spec §C2)
  StatusOr<v1::Bundle> CreateBundle(const v1::Bundle& bundle);
  // NotFound if absent (SPIRE returns nil; callers that want nil test for NotFound).
  StatusOr<v1::Bundle> FetchBundle(const std::string& trust_domain_id);
  StatusOr<int64_t> CountBundles();
  StatusOr<v1::ListBundlesResponse> ListBundles(const v1::ListBundlesRequest& request);
  // `mask` nullptr = every field.
  StatusOr<v1::Bundle> UpdateBundle(const v1::Bundle& bundle, const v1::BundleMask* mask);
  StatusOr<v1::Bundle> SetBundle(const v1::Bundle& bundle);
  StatusOr<v1::Bundle> AppendBundle(const v1::Bundle& bundle);
  Status DeleteBundle(const std::string& trust_domain_id, v1::DeleteBundleMode mode);
  // Returns whether the bundle changed. Keeps refresh_hint and keys with not_after = 0.
  StatusOr<bool> PruneBundle(const std::string& trust_domain_id, int64_t expires_before_unix);
  Status TaintX509CA(const std::string& trust_domain_id, const std::string& subject_key_id);
  Status RevokeX509CA(const std::string& trust_domain_id, const std::string& subject_key_id);
  StatusOr<v1::PublicKey> TaintJWTKey(const std::string& trust_domain_id, const std::string& kid);
  StatusOr<v1::PublicKey> RevokeJWTKey(const std::string& trust_domain_id, const std::string& kid);

  // ---- Registration entries (spec §C3, §C4)
  StatusOr<int64_t> CountRegistrationEntries(const v1::CountRegistrationEntriesRequest& request);
  // Like SPIRE: a similar entry (same SPIFFE ID, parent ID and selector set) is returned
  // instead of creating a duplicate, without error.
  StatusOr<v1::RegistrationEntry> CreateRegistrationEntry(const v1::RegistrationEntry& entry);
  StatusOr<CreateOrReturnResult> CreateOrReturnRegistrationEntry(
      const v1::RegistrationEntry& entry);
  // Batched create: each entry as CreateOrReturnRegistrationEntry would (a similar entry,
  // stored or earlier in the batch, is returned with existing=true), in as few transactions as
  // the store's limits allow. Every entry is validated first: one invalid entry fails the call
  // with InvalidArgument naming its index, and nothing is written. Results are in input order.
  // If a later transaction fails, earlier ones stay committed; the error says how many entries
  // were created.
  StatusOr<std::vector<CreateOrReturnResult>> CreateOrReturnRegistrationEntries(
      const std::vector<v1::RegistrationEntry>& entries);
  // Returns the deleted entry.
  StatusOr<v1::RegistrationEntry> DeleteRegistrationEntry(const std::string& entry_id);
  // NotFound if absent.
  StatusOr<EntryPtr> FetchRegistrationEntry(const std::string& entry_id);
  // Unknown IDs are omitted.
  StatusOr<std::map<std::string, EntryPtr>> FetchRegistrationEntries(
      const std::vector<std::string>& entry_ids);
  StatusOr<v1::ListRegistrationEntriesResponse> ListRegistrationEntries(
      const v1::ListRegistrationEntriesRequest& request);
  // Deletes entries with 0 < entry_expiry < expires_before_unix; returns how many.
  StatusOr<int64_t> PruneRegistrationEntries(int64_t expires_before_unix);
  // `mask` nullptr = every field.
  StatusOr<v1::RegistrationEntry> UpdateRegistrationEntry(const v1::RegistrationEntry& entry,
                                                          const v1::RegistrationEntryMask* mask);

  // The entries agent `agent_spiffe_id` may obtain (spec §D): the descendants of its ID, plus
  // the descendants of every node alias (parent spiffe://<td>/spire/server) whose selectors
  // are all among the agent's node selectors, recursively and cycle-safe. Aliases themselves
  // are not returned. Order: unspecified. Served from memory, never fails for an unknown agent
  // (it gets its direct descendants only).
  std::vector<EntryPtr> ListAuthorizedEntries(const std::string& agent_spiffe_id);

  // ---- Attested nodes and node selectors (spec §C5)
  StatusOr<int64_t> CountAttestedNodes(const v1::CountAttestedNodesRequest& request);
  StatusOr<v1::AttestedNode> CreateAttestedNode(const v1::AttestedNode& node);
  // Returns the deleted node (without selectors). Join-token nodes take along child entries
  // whose only selector is spiffe_id:<node> (SPIRE #6946).
  StatusOr<v1::AttestedNode> DeleteAttestedNode(const std::string& spiffe_id);
  // Without selectors. NotFound if absent.
  StatusOr<v1::AttestedNode> FetchAttestedNode(const std::string& spiffe_id);
  // With selectors; unknown IDs are omitted.
  StatusOr<std::map<std::string, v1::AttestedNode>> FetchAttestedNodes(
      const std::vector<std::string>& spiffe_ids);
  StatusOr<v1::ListAttestedNodesResponse> ListAttestedNodes(
      const v1::ListAttestedNodesRequest& request);
  // `mask` nullptr = every maskable field.
  StatusOr<v1::AttestedNode> UpdateAttestedNode(const v1::AttestedNode& node,
                                                const v1::AttestedNodeMask* mask);
  // Deletes up to `batch_size` (1000 if <= 0) non-banned nodes with cert_not_after <
  // expired_before_unix that can reattest (or any, with include_non_reattestable); returns
  // how many.
  StatusOr<int64_t> PruneAttestedExpiredNodes(int64_t expired_before_unix,
                                              bool include_non_reattestable, int batch_size);
  // Insertion order; empty if none.
  StatusOr<std::vector<v1::Selector>> GetNodeSelectors(const std::string& spiffe_id,
                                                       v1::ReadConsistency consistency);
  StatusOr<v1::ListNodeSelectorsResponse> ListNodeSelectors(
      const v1::ListNodeSelectorsRequest& request);
  // Replaces the whole set (empty clears it); the node need not exist.
  Status SetNodeSelectors(const std::string& spiffe_id, const std::vector<v1::Selector>& selectors);

  // ---- Join tokens (spec §C7)
  Status CreateJoinToken(const v1::JoinToken& token);
  StatusOr<v1::JoinToken> FetchJoinToken(const std::string& token);  // NotFound if absent
  Status DeleteJoinToken(const std::string& token);
  // Deletes tokens with expiry < expires_before_unix; returns how many.
  StatusOr<int64_t> PruneJoinTokens(int64_t expires_before_unix);

  // ---- Federation relationships (spec §C7)
  StatusOr<v1::FederationRelationship> CreateFederationRelationship(
      const v1::FederationRelationship& relationship);
  StatusOr<v1::FederationRelationship> FetchFederationRelationship(
      const std::string& trust_domain);  // NotFound if absent
  StatusOr<v1::ListFederationRelationshipsResponse> ListFederationRelationships(
      const v1::ListFederationRelationshipsRequest& request);
  Status DeleteFederationRelationship(const std::string& trust_domain);
  // `mask` is required.
  StatusOr<v1::FederationRelationship> UpdateFederationRelationship(
      const v1::FederationRelationship& relationship, const v1::FederationRelationshipMask& mask);

  // ---- CA journals (spec §C7)
  // id 0 creates (the assigned id is returned in the result); any other id must exist.
  StatusOr<v1::CAJournal> SetCAJournal(const v1::CAJournal& journal);
  // NotFound if no journal is active for that authority.
  StatusOr<v1::CAJournal> FetchCAJournal(const std::string& active_x509_authority_id);
  // Deletes journals whose every X.509 CA and JWT key has not_after <= expires_before_unix;
  // returns how many.
  StatusOr<int64_t> PruneCAJournals(int64_t expires_before_unix);
  std::vector<v1::CAJournal> ListCAJournalsForTesting();

  // ---- Change feed
  // Registers `listener` for every change applied from now on.
  std::unique_ptr<Subscription> Subscribe(ChangeListener listener);

 private:
  class Impl;
  explicit DataStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plinth::datastore

#endif  // PLINTH_DATASTORE_DATASTORE_H_
