// Stand-ins for the DataStore and Operator gRPC services that `plinth serve` registers before
// its datastore exists, and the gate that admits RPCs to them. gRPC needs every service
// registered before the server starts, but the server starts first (so that health probes
// work while the datastore hydrates) and the real services (api::DataStoreService,
// api::OperatorService) can only be built once hydration is done. Before that every RPC fails
// with the gate's "not ready" status; while it is open, each RPC is handed to the real
// service unchanged; once it is closed (shutdown), new RPCs fail with its "closed" status
// while those in flight finish, which the gate counts so that shutdown can wait for exactly
// them (gRPC's own Shutdown would also wait for idle client connections to go away).
// An RPC added to the proto must be added here too (a missing one answers UNIMPLEMENTED;
// server_test's DeferredServices test catches that).
#ifndef PLINTH_SERVER_INTERNAL_DEFERRED_SERVICES_H_
#define PLINTH_SERVER_INTERNAL_DEFERRED_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <utility>

#include "common/thread_annotations.h"
#include "plinth/v1/datastore_service.grpc.pb.h"
#include "server/api/datastore_service.h"
#include "server/api/operator_service.h"

namespace plinth::server::internal {

namespace v1 = ::plinth::v1;

// Admits RPCs: refuses them until Open(), admits them until Close(), refuses them after, and
// counts the admitted ones still running. Thread-safe.
class RpcGate {
 public:
  // `not_ready` and `closed` (neither OK) are what refused RPCs get before Open and after Close.
  RpcGate(grpc::Status not_ready, grpc::Status closed)
      : not_ready_(std::move(not_ready)), closed_(std::move(closed)) {}

  // Admits RPCs from now on, unless Close() was called. Everything written before Open()
  // (e.g. the services' target pointers) is visible to the RPCs it admits.
  void Open() PLINTH_EXCLUDES(mu_);
  // Refuses RPCs from now on. Idempotent.
  void Close() PLINTH_EXCLUDES(mu_);
  // Waits until no admitted RPC is running. False if some still run at `deadline`.
  bool WaitUntilIdle(std::chrono::system_clock::time_point deadline) PLINTH_EXCLUDES(mu_);

  // One RPC's passage: admitted (ok()) or refused (status()). An admitted RPC counts as
  // running until its Pass is destroyed.
  class Pass {
   public:
    explicit Pass(RpcGate* gate);
    ~Pass();
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    bool ok() const { return admitted_; }
    const grpc::Status& status() const { return status_; }

   private:
    RpcGate* const gate_;
    bool admitted_ = false;
    grpc::Status status_;
  };

 private:
  enum class State { kStarting, kOpen, kClosed };

  const grpc::Status not_ready_;
  const grpc::Status closed_;
  Mutex mu_;
  CondVar idle_{&mu_};
  State state_ PLINTH_GUARDED_BY(mu_) = State::kStarting;
  int in_flight_ PLINTH_GUARDED_BY(mu_) = 0;
};

// One override that passes the gate, then calls the target.
#define PLINTH_DEFERRED_UNARY(Method, Request, Response)                                        \
  grpc::Status Method(grpc::ServerContext* context, const Request* request, Response* response) \
      override {                                                                                \
    RpcGate::Pass pass(gate_);                                                                  \
    return pass.ok() ? target_->Method(context, request, response) : pass.status();             \
  }
#define PLINTH_DEFERRED_STREAM(Method, Request, Response)                         \
  grpc::Status Method(grpc::ServerContext* context, const Request* request,       \
                      grpc::ServerWriter<Response>* writer) override {            \
    RpcGate::Pass pass(gate_);                                                    \
    return pass.ok() ? target_->Method(context, request, writer) : pass.status(); \
  }

// plinth.v1.DataStore, forwarded to an api::DataStoreService attached before the gate opens.
// Thread-safe.
class DeferredDataStoreService final : public v1::DataStore::Service {
 public:
  // `gate` must outlive this service.
  explicit DeferredDataStoreService(RpcGate* gate) : gate_(gate) {}

  // Sets where admitted RPCs go; call once, before gate->Open(). `target` must outlive every
  // RPC the gate admits.
  void Attach(api::DataStoreService* target) { target_ = target; }

  PLINTH_DEFERRED_UNARY(CreateBundle, v1::Bundle, v1::Bundle)
  PLINTH_DEFERRED_UNARY(FetchBundle, v1::TrustDomainRequest, v1::Bundle)
  PLINTH_DEFERRED_UNARY(CountBundles, google::protobuf::Empty, v1::CountResponse)
  PLINTH_DEFERRED_UNARY(ListBundles, v1::ListBundlesRequest, v1::ListBundlesResponse)
  PLINTH_DEFERRED_UNARY(UpdateBundle, v1::UpdateBundleRequest, v1::Bundle)
  PLINTH_DEFERRED_UNARY(SetBundle, v1::Bundle, v1::Bundle)
  PLINTH_DEFERRED_UNARY(AppendBundle, v1::Bundle, v1::Bundle)
  PLINTH_DEFERRED_UNARY(DeleteBundle, v1::DeleteBundleRequest, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(PruneBundle, v1::PruneBundleRequest, v1::PruneBundleResponse)
  PLINTH_DEFERRED_UNARY(TaintX509CA, v1::X509CARequest, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(RevokeX509CA, v1::X509CARequest, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(TaintJWTKey, v1::JWTKeyRequest, v1::PublicKey)
  PLINTH_DEFERRED_UNARY(RevokeJWTKey, v1::JWTKeyRequest, v1::PublicKey)
  PLINTH_DEFERRED_UNARY(CountRegistrationEntries, v1::CountRegistrationEntriesRequest,
                        v1::CountResponse)
  PLINTH_DEFERRED_UNARY(CreateRegistrationEntry, v1::RegistrationEntry, v1::RegistrationEntry)
  PLINTH_DEFERRED_UNARY(CreateOrReturnRegistrationEntry, v1::RegistrationEntry,
                        v1::CreateOrReturnRegistrationEntryResponse)
  PLINTH_DEFERRED_UNARY(DeleteRegistrationEntry, v1::EntryIdRequest, v1::RegistrationEntry)
  PLINTH_DEFERRED_UNARY(FetchRegistrationEntry, v1::EntryIdRequest, v1::RegistrationEntry)
  PLINTH_DEFERRED_UNARY(FetchRegistrationEntries, v1::FetchRegistrationEntriesRequest,
                        v1::FetchRegistrationEntriesResponse)
  PLINTH_DEFERRED_STREAM(ListRegistrationEntries, v1::ListRegistrationEntriesRequest,
                         v1::ListRegistrationEntriesResponse)
  PLINTH_DEFERRED_UNARY(PruneRegistrationEntries, v1::PruneRequest, v1::PruneResponse)
  PLINTH_DEFERRED_UNARY(UpdateRegistrationEntry, v1::UpdateRegistrationEntryRequest,
                        v1::RegistrationEntry)
  PLINTH_DEFERRED_STREAM(ListAuthorizedEntries, v1::ListAuthorizedEntriesRequest,
                         v1::ListRegistrationEntriesResponse)
  PLINTH_DEFERRED_UNARY(CountAttestedNodes, v1::CountAttestedNodesRequest, v1::CountResponse)
  PLINTH_DEFERRED_UNARY(CreateAttestedNode, v1::AttestedNode, v1::AttestedNode)
  PLINTH_DEFERRED_UNARY(DeleteAttestedNode, v1::SpiffeIdRequest, v1::AttestedNode)
  PLINTH_DEFERRED_UNARY(FetchAttestedNode, v1::SpiffeIdRequest, v1::AttestedNode)
  PLINTH_DEFERRED_UNARY(FetchAttestedNodes, v1::FetchAttestedNodesRequest,
                        v1::FetchAttestedNodesResponse)
  PLINTH_DEFERRED_STREAM(ListAttestedNodes, v1::ListAttestedNodesRequest,
                         v1::ListAttestedNodesResponse)
  PLINTH_DEFERRED_UNARY(UpdateAttestedNode, v1::UpdateAttestedNodeRequest, v1::AttestedNode)
  PLINTH_DEFERRED_UNARY(PruneAttestedExpiredNodes, v1::PruneAttestedExpiredNodesRequest,
                        v1::PruneResponse)
  PLINTH_DEFERRED_UNARY(GetNodeSelectors, v1::GetNodeSelectorsRequest, v1::NodeSelectors)
  PLINTH_DEFERRED_UNARY(ListNodeSelectors, v1::ListNodeSelectorsRequest,
                        v1::ListNodeSelectorsResponse)
  PLINTH_DEFERRED_UNARY(SetNodeSelectors, v1::NodeSelectors, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(CreateJoinToken, v1::JoinToken, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(FetchJoinToken, v1::JoinTokenRequest, v1::JoinToken)
  PLINTH_DEFERRED_UNARY(DeleteJoinToken, v1::JoinTokenRequest, google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(PruneJoinTokens, v1::PruneRequest, v1::PruneResponse)
  PLINTH_DEFERRED_UNARY(CreateFederationRelationship, v1::FederationRelationship,
                        v1::FederationRelationship)
  PLINTH_DEFERRED_UNARY(FetchFederationRelationship, v1::TrustDomainRequest,
                        v1::FederationRelationship)
  PLINTH_DEFERRED_UNARY(ListFederationRelationships, v1::ListFederationRelationshipsRequest,
                        v1::ListFederationRelationshipsResponse)
  PLINTH_DEFERRED_UNARY(DeleteFederationRelationship, v1::TrustDomainRequest,
                        google::protobuf::Empty)
  PLINTH_DEFERRED_UNARY(UpdateFederationRelationship, v1::UpdateFederationRelationshipRequest,
                        v1::FederationRelationship)
  PLINTH_DEFERRED_UNARY(SetCAJournal, v1::CAJournal, v1::CAJournal)
  PLINTH_DEFERRED_UNARY(FetchCAJournal, v1::FetchCAJournalRequest, v1::CAJournal)
  PLINTH_DEFERRED_UNARY(PruneCAJournals, v1::PruneRequest, v1::PruneResponse)
  PLINTH_DEFERRED_STREAM(WatchChanges, v1::WatchChangesRequest, v1::DataStoreChange)

 private:
  RpcGate* const gate_;
  api::DataStoreService* target_ = nullptr;  // written before the gate opens, then read only
};

// plinth.v1.Operator, forwarded to an api::OperatorService attached before the gate opens.
// Thread-safe.
class DeferredOperatorService final : public v1::Operator::Service {
 public:
  // `gate` must outlive this service.
  explicit DeferredOperatorService(RpcGate* gate) : gate_(gate) {}

  // As DeferredDataStoreService::Attach.
  void Attach(api::OperatorService* target) { target_ = target; }

  PLINTH_DEFERRED_UNARY(GetStoreStatus, google::protobuf::Empty, v1::StoreStatus)
  PLINTH_DEFERRED_UNARY(CompactStore, v1::CompactRequest, v1::CompactResponse)
  PLINTH_DEFERRED_UNARY(VerifyStore, google::protobuf::Empty, v1::VerifyResponse)

 private:
  RpcGate* const gate_;
  api::OperatorService* target_ = nullptr;  // written before the gate opens, then read only
};

#undef PLINTH_DEFERRED_UNARY
#undef PLINTH_DEFERRED_STREAM

}  // namespace plinth::server::internal

#endif  // PLINTH_SERVER_INTERNAL_DEFERRED_SERVICES_H_
