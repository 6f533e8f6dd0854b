// The DataStore gRPC service of `plinth serve`: one RPC per operation of
// datastore::DataStore, carrying the same request and object messages, plus the WatchChanges
// stream over the datastore's typed change feed. See proto/plinth/v1/datastore_service.proto.
#ifndef PLINTH_SERVER_API_DATASTORE_SERVICE_H_
#define PLINTH_SERVER_API_DATASTORE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "datastore/datastore.h"
#include "plinth/v1/datastore_service.grpc.pb.h"

namespace plinth::server::api {

namespace v1 = ::plinth::v1;

namespace internal {
class WatchQueue;
}  // namespace internal

// Decides whether the caller of an RPC may proceed; called first in every RPC, on the RPC's
// handler thread. A non-OK status ends the RPC with that status (e.g. UNAUTHENTICATED,
// PERMISSION_DENIED) before anything else is read or written. Must be thread-safe.
// An empty function allows every caller.
using AuthorizeFn = std::function<grpc::Status(grpc::ServerContext* context)>;

struct DataStoreServiceOptions {
  // Objects per message when a List RPC (or ListAuthorizedEntries) streams every match.
  int list_page_size = 1000;
  // Changes a WatchChanges stream may have waiting for its client before it is ended with
  // RESOURCE_EXHAUSTED. Bounds the memory one slow watcher can hold.
  size_t watch_queue_capacity = 4096;
  // How often an idle WatchChanges stream checks whether its client has gone away.
  std::chrono::milliseconds watch_poll_interval{100};
};

// Serves plinth.v1.DataStore over `datastore`, which must outlive the service (and the
// grpc::Server it is registered with). Thread-safe: gRPC may run any number of RPCs at once.
//
// Every RPC calls `authorize` first, then the DataStore method of the same name; the
// datastore's Status reaches the client with its code and message unchanged (status.h).
// Update RPCs with no mask pass a null mask ("every field"). Request fields that name the
// target object (entry_id, spiffe_id, trust_domain, token, ...) must not be empty:
// INVALID_ARGUMENT naming the field.
//
// Streaming lists (ListRegistrationEntries, ListAttestedNodes): with a pagination in the
// request, exactly one message, the datastore's page with its next token; without, every
// match in messages of `list_page_size` objects (no message when nothing matches, no
// pagination in the messages). A READ_CONSISTENT request waits for freshness once, before the
// first page. Each page is read from the latest state with the previous page's token, so
// writes made while a long list streams may or may not be included. ListAuthorizedEntries
// streams its result (one in-memory snapshot) in messages of `list_page_size` entries.
//
// WatchChanges: the server sends the stream's initial metadata once the subscription is in
// place, so a client that waits for it (ClientReader::WaitForInitialMetadata) sees every
// change applied after that point, in revision order. The stream runs until the client
// cancels (then CANCELLED), the client falls more than `watch_queue_capacity` changes behind
// (RESOURCE_EXHAUSTED "watch fell behind"), the mirror is rebuilt from a fresh snapshot
// (ABORTED "replica rebuilt; re-read and watch again"), or Shutdown() is called
// (UNAVAILABLE). Clients recover from all of these by re-reading and watching again. Each
// open watch occupies one of the gRPC server's handler threads.
class DataStoreService final : public v1::DataStore::Service {
 public:
  explicit DataStoreService(datastore::DataStore* datastore, AuthorizeFn authorize = nullptr,
                            DataStoreServiceOptions options = {});
  ~DataStoreService() override;

  DataStoreService(const DataStoreService&) = delete;
  DataStoreService& operator=(const DataStoreService&) = delete;

  // Ends every open WatchChanges stream with UNAVAILABLE ("server shutting down") and makes
  // later ones fail at once the same way. Call it before grpc::Server::Shutdown(): watch
  // streams otherwise last until the client leaves or Shutdown's deadline cancels them.
  // Other RPCs are unaffected. Idempotent.
  void Shutdown() PLINTH_EXCLUDES(mu_);

  // ---- Bundles
  grpc::Status CreateBundle(grpc::ServerContext* context, const v1::Bundle* request,
                            v1::Bundle* response) override;
  grpc::Status FetchBundle(grpc::ServerContext* context, const v1::TrustDomainRequest* request,
                           v1::Bundle* response) override;
  grpc::Status CountBundles(grpc::ServerContext* context, const google::protobuf::Empty* request,
                            v1::CountResponse* response) override;
  grpc::Status ListBundles(grpc::ServerContext* context, const v1::ListBundlesRequest* request,
                           v1::ListBundlesResponse* response) override;
  grpc::Status UpdateBundle(grpc::ServerContext* context, const v1::UpdateBundleRequest* request,
                            v1::Bundle* response) override;
  grpc::Status SetBundle(grpc::ServerContext* context, const v1::Bundle* request,
                         v1::Bundle* response) override;
  grpc::Status AppendBundle(grpc::ServerContext* context, const v1::Bundle* request,
                            v1::Bundle* response) override;
  grpc::Status DeleteBundle(grpc::ServerContext* context, const v1::DeleteBundleRequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status PruneBundle(grpc::ServerContext* context, const v1::PruneBundleRequest* request,
                           v1::PruneBundleResponse* response) override;
  grpc::Status TaintX509CA(grpc::ServerContext* context, const v1::X509CARequest* request,
                           google::protobuf::Empty* response) override;
  grpc::Status RevokeX509CA(grpc::ServerContext* context, const v1::X509CARequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status TaintJWTKey(grpc::ServerContext* context, const v1::JWTKeyRequest* request,
                           v1::PublicKey* response) override;
  grpc::Status RevokeJWTKey(grpc::ServerContext* context, const v1::JWTKeyRequest* request,
                            v1::PublicKey* response) override;

  // ---- Registration entries
  grpc::Status CountRegistrationEntries(grpc::ServerContext* context,
                                        const v1::CountRegistrationEntriesRequest* request,
                                        v1::CountResponse* response) override;
  grpc::Status CreateRegistrationEntry(grpc::ServerContext* context,
                                       const v1::RegistrationEntry* request,
                                       v1::RegistrationEntry* response) override;
  grpc::Status CreateOrReturnRegistrationEntry(
      grpc::ServerContext* context, const v1::RegistrationEntry* request,
      v1::CreateOrReturnRegistrationEntryResponse* response) override;
  grpc::Status DeleteRegistrationEntry(grpc::ServerContext* context,
                                       const v1::EntryIdRequest* request,
                                       v1::RegistrationEntry* response) override;
  grpc::Status FetchRegistrationEntry(grpc::ServerContext* context,
                                      const v1::EntryIdRequest* request,
                                      v1::RegistrationEntry* response) override;
  grpc::Status FetchRegistrationEntries(grpc::ServerContext* context,
                                        const v1::FetchRegistrationEntriesRequest* request,
                                        v1::FetchRegistrationEntriesResponse* response) override;
  grpc::Status ListRegistrationEntries(
      grpc::ServerContext* context, const v1::ListRegistrationEntriesRequest* request,
      grpc::ServerWriter<v1::ListRegistrationEntriesResponse>* writer) override;
  grpc::Status PruneRegistrationEntries(grpc::ServerContext* context,
                                        const v1::PruneRequest* request,
                                        v1::PruneResponse* response) override;
  grpc::Status UpdateRegistrationEntry(grpc::ServerContext* context,
                                       const v1::UpdateRegistrationEntryRequest* request,
                                       v1::RegistrationEntry* response) override;
  grpc::Status ListAuthorizedEntries(
      grpc::ServerContext* context, const v1::ListAuthorizedEntriesRequest* request,
      grpc::ServerWriter<v1::ListRegistrationEntriesResponse>* writer) override;

  // ---- Attested nodes and node selectors
  grpc::Status CountAttestedNodes(grpc::ServerContext* context,
                                  const v1::CountAttestedNodesRequest* request,
                                  v1::CountResponse* response) override;
  grpc::Status CreateAttestedNode(grpc::ServerContext* context, const v1::AttestedNode* request,
                                  v1::AttestedNode* response) override;
  grpc::Status DeleteAttestedNode(grpc::ServerContext* context, const v1::SpiffeIdRequest* request,
                                  v1::AttestedNode* response) override;
  grpc::Status FetchAttestedNode(grpc::ServerContext* context, const v1::SpiffeIdRequest* request,
                                 v1::AttestedNode* response) override;
  grpc::Status FetchAttestedNodes(grpc::ServerContext* context,
                                  const v1::FetchAttestedNodesRequest* request,
                                  v1::FetchAttestedNodesResponse* response) override;
  grpc::Status ListAttestedNodes(
      grpc::ServerContext* context, const v1::ListAttestedNodesRequest* request,
      grpc::ServerWriter<v1::ListAttestedNodesResponse>* writer) override;
  grpc::Status UpdateAttestedNode(grpc::ServerContext* context,
                                  const v1::UpdateAttestedNodeRequest* request,
                                  v1::AttestedNode* response) override;
  grpc::Status PruneAttestedExpiredNodes(grpc::ServerContext* context,
                                         const v1::PruneAttestedExpiredNodesRequest* request,
                                         v1::PruneResponse* response) override;
  grpc::Status GetNodeSelectors(grpc::ServerContext* context,
                                const v1::GetNodeSelectorsRequest* request,
                                v1::NodeSelectors* response) override;
  grpc::Status ListNodeSelectors(grpc::ServerContext* context,
                                 const v1::ListNodeSelectorsRequest* request,
                                 v1::ListNodeSelectorsResponse* response) override;
  grpc::Status SetNodeSelectors(grpc::ServerContext* context, const v1::NodeSelectors* request,
                                google::protobuf::Empty* response) override;

  // ---- Join tokens
  grpc::Status CreateJoinToken(grpc::ServerContext* context, const v1::JoinToken* request,
                               google::protobuf::Empty* response) override;
  grpc::Status FetchJoinToken(grpc::ServerContext* context, const v1::JoinTokenRequest* request,
                              v1::JoinToken* response) override;
  grpc::Status DeleteJoinToken(grpc::ServerContext* context, const v1::JoinTokenRequest* request,
                               google::protobuf::Empty* response) override;
  grpc::Status PruneJoinTokens(grpc::ServerContext* context, const v1::PruneRequest* request,
                               v1::PruneResponse* response) override;

  // ---- Federation relationships
  grpc::Status CreateFederationRelationship(grpc::ServerContext* context,
                                            const v1::FederationRelationship* request,
                                            v1::FederationRelationship* response) override;
  grpc::Status FetchFederationRelationship(grpc::ServerContext* context,
                                           const v1::TrustDomainRequest* request,
                                           v1::FederationRelationship* response) override;
  grpc::Status ListFederationRelationships(
      grpc::ServerContext* context, const v1::ListFederationRelationshipsRequest* request,
      v1::ListFederationRelationshipsResponse* response) override;
  grpc::Status DeleteFederationRelationship(grpc::ServerContext* context,
                                            const v1::TrustDomainRequest* request,
                                            google::protobuf::Empty* response) override;
  grpc::Status UpdateFederationRelationship(grpc::ServerContext* context,
                                            const v1::UpdateFederationRelationshipRequest* request,
                                            v1::FederationRelationship* response) override;

  // ---- CA journals
  grpc::Status SetCAJournal(grpc::ServerContext* context, const v1::CAJournal* request,
                            v1::CAJournal* response) override;
  grpc::Status FetchCAJournal(grpc::ServerContext* context,
                              const v1::FetchCAJournalRequest* request,
                              v1::CAJournal* response) override;
  grpc::Status PruneCAJournals(grpc::ServerContext* context, const v1::PruneRequest* request,
                               v1::PruneResponse* response) override;

  // ---- Change feed
  grpc::Status WatchChanges(grpc::ServerContext* context, const v1::WatchChangesRequest* request,
                            grpc::ServerWriter<v1::DataStoreChange>* writer) override;

 private:
  // Runs `authorize_`, then `body`; maps body's Status to gRPC.
  grpc::Status Serve(grpc::ServerContext* context, const std::function<Status()>& body);

  // Registers a new watch queue, or returns nullptr once Shutdown() was called.
  std::shared_ptr<internal::WatchQueue> OpenWatch() PLINTH_EXCLUDES(mu_);
  void CloseWatch(const std::shared_ptr<internal::WatchQueue>& queue) PLINTH_EXCLUDES(mu_);

  datastore::DataStore* const datastore_;
  const AuthorizeFn authorize_;
  const DataStoreServiceOptions options_;

  Mutex mu_;
  bool shut_down_ PLINTH_GUARDED_BY(mu_) = false;
  std::set<std::shared_ptr<internal::WatchQueue>> watches_ PLINTH_GUARDED_BY(mu_);
};

}  // namespace plinth::server::api

#endif  // PLINTH_SERVER_API_DATASTORE_SERVICE_H_
