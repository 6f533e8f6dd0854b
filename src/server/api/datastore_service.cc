#include "server/api/datastore_service.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/api/internal/watch_queue.h"
#include "server/api/status.h"

namespace plinth::server::api {
namespace {

using datastore::EntryPtr;

// INVALID_ARGUMENT naming `field` when `value` is empty.
Status Require(std::string_view value, std::string_view field) {
  if (!value.empty()) return Status();
  return InvalidArgumentError(std::string(field) + " is required");
}

template <typename T>
std::vector<T> ToVector(const google::protobuf::RepeatedPtrField<T>& items) {
  return std::vector<T>(items.begin(), items.end());
}

Status ClientGone() { return CancelledError("the client went away"); }

// Streams a list the datastore answers page by page. With a pagination in `request`, sends the
// datastore's one page as it is. Without, asks for pages of `page_size` until the token runs
// out and sends each non-empty page without its pagination. `items` returns how many objects a
// page holds.
template <typename Request, typename Response, typename List, typename Items>
Status StreamPages(grpc::ServerContext* context, const Request& request, int page_size,
                   grpc::ServerWriter<Response>* writer, List&& list, Items&& items) {
  if (request.has_pagination()) {
    StatusOr<Response> page = list(request);
    if (!page.ok()) return page.status();
    if (!writer->Write(*page)) return ClientGone();
    return Status();
  }
  Request page_request = request;
  page_request.mutable_pagination()->set_page_size(page_size);
  for (;;) {
    StatusOr<Response> page = list(page_request);
    if (!page.ok()) return page.status();
    std::string next_token = page->pagination().token();
    page->clear_pagination();
    if (items(*page) > 0 && !writer->Write(*page)) return ClientGone();
    if (next_token.empty()) return Status();
    if (context->IsCancelled()) return ClientGone();
    page_request.mutable_pagination()->set_token(std::move(next_token));
    // Freshness was established for the first page; later pages only continue it.
    page_request.set_consistency(v1::READ_LOCAL);
  }
}

// Moves changes from `queue` to the client until the stream must end; returns how it ends.
Status ForwardChanges(grpc::ServerContext* context, internal::WatchQueue* queue,
                      const DataStoreServiceOptions& options,
                      grpc::ServerWriter<v1::DataStoreChange>* writer) {
  v1::DataStoreChange change;
  for (;;) {
    if (context->IsCancelled()) return ClientGone();
    switch (queue->Pop(options.watch_poll_interval, &change)) {
      case internal::WatchQueue::Event::kChange:
        if (!writer->Write(change)) return ClientGone();
        break;
      case internal::WatchQueue::Event::kTimeout:
        break;
      case internal::WatchQueue::Event::kOverflow:
        return ResourceExhaustedError(
            "watch fell behind: more than " + std::to_string(options.watch_queue_capacity) +
            " changes were waiting for the client; re-read and watch again");
      case internal::WatchQueue::Event::kReset:
        return AbortedError("replica rebuilt; re-read and watch again");
      case internal::WatchQueue::Event::kClosed:
        return UnavailableError("server shutting down");
    }
  }
}

}  // namespace

DataStoreService::DataStoreService(datastore::DataStore* datastore, AuthorizeFn authorize,
                                   DataStoreServiceOptions options)
    : datastore_(datastore), authorize_(std::move(authorize)), options_(std::move(options)) {}

DataStoreService::~DataStoreService() { Shutdown(); }

void DataStoreService::Shutdown() {
  MutexLock lock(&mu_);
  shut_down_ = true;
  for (const auto& queue : watches_) queue->Close();
}

std::shared_ptr<internal::WatchQueue> DataStoreService::OpenWatch() {
  MutexLock lock(&mu_);
  if (shut_down_) return nullptr;
  auto queue = std::make_shared<internal::WatchQueue>(options_.watch_queue_capacity);
  watches_.insert(queue);
  return queue;
}

void DataStoreService::CloseWatch(const std::shared_ptr<internal::WatchQueue>& queue) {
  MutexLock lock(&mu_);
  watches_.erase(queue);
}

grpc::Status DataStoreService::Serve(grpc::ServerContext* context,
                                     const std::function<Status()>& body) {
  if (authorize_) {
    grpc::Status allowed = authorize_(context);
    if (!allowed.ok()) return allowed;
  }
  return ToGrpcStatus(body());
}

// ---- Bundles

grpc::Status DataStoreService::CreateBundle(grpc::ServerContext* context, const v1::Bundle* request,
                                            v1::Bundle* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->CreateBundle(*request));
    return Status();
  });
}

grpc::Status DataStoreService::FetchBundle(grpc::ServerContext* context,
                                           const v1::TrustDomainRequest* request,
                                           v1::Bundle* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain(), "trust_domain"));
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->FetchBundle(request->trust_domain()));
    return Status();
  });
}

grpc::Status DataStoreService::CountBundles(grpc::ServerContext* context,
                                            const google::protobuf::Empty* /*request*/,
                                            v1::CountResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t count, datastore_->CountBundles());
    response->set_count(count);
    return Status();
  });
}

grpc::Status DataStoreService::ListBundles(grpc::ServerContext* context,
                                           const v1::ListBundlesRequest* request,
                                           v1::ListBundlesResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->ListBundles(*request));
    return Status();
  });
}

grpc::Status DataStoreService::UpdateBundle(grpc::ServerContext* context,
                                            const v1::UpdateBundleRequest* request,
                                            v1::Bundle* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(
        *response, datastore_->UpdateBundle(request->bundle(),
                                            request->has_mask() ? &request->mask() : nullptr));
    return Status();
  });
}

grpc::Status DataStoreService::SetBundle(grpc::ServerContext* context, const v1::Bundle* request,
                                         v1::Bundle* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->SetBundle(*request));
    return Status();
  });
}

grpc::Status DataStoreService::AppendBundle(grpc::ServerContext* context, const v1::Bundle* request,
                                            v1::Bundle* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->AppendBundle(*request));
    return Status();
  });
}

grpc::Status DataStoreService::DeleteBundle(grpc::ServerContext* context,
                                            const v1::DeleteBundleRequest* request,
                                            google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    return datastore_->DeleteBundle(request->trust_domain_id(), request->mode());
  });
}

grpc::Status DataStoreService::PruneBundle(grpc::ServerContext* context,
                                           const v1::PruneBundleRequest* request,
                                           v1::PruneBundleResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    PLINTH_ASSIGN_OR_RETURN(
        const bool changed,
        datastore_->PruneBundle(request->trust_domain_id(), request->expires_before_unix()));
    response->set_changed(changed);
    return Status();
  });
}

grpc::Status DataStoreService::TaintX509CA(grpc::ServerContext* context,
                                           const v1::X509CARequest* request,
                                           google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    return datastore_->TaintX509CA(request->trust_domain_id(), request->subject_key_id());
  });
}

grpc::Status DataStoreService::RevokeX509CA(grpc::ServerContext* context,
                                            const v1::X509CARequest* request,
                                            google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    return datastore_->RevokeX509CA(request->trust_domain_id(), request->subject_key_id());
  });
}

grpc::Status DataStoreService::TaintJWTKey(grpc::ServerContext* context,
                                           const v1::JWTKeyRequest* request,
                                           v1::PublicKey* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    PLINTH_RETURN_IF_ERROR(Require(request->kid(), "kid"));
    PLINTH_ASSIGN_OR_RETURN(*response,
                            datastore_->TaintJWTKey(request->trust_domain_id(), request->kid()));
    return Status();
  });
}

grpc::Status DataStoreService::RevokeJWTKey(grpc::ServerContext* context,
                                            const v1::JWTKeyRequest* request,
                                            v1::PublicKey* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->trust_domain_id(), "trust_domain_id"));
    PLINTH_RETURN_IF_ERROR(Require(request->kid(), "kid"));
    PLINTH_ASSIGN_OR_RETURN(*response,
                            datastore_->RevokeJWTKey(request->trust_domain_id(), request->kid()));
    return Status();
  });
}

// ---- Registration entries

grpc::Status DataStoreService::CountRegistrationEntries(
    grpc::ServerContext* context, const v1::CountRegistrationEntriesRequest* request,
    v1::CountResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t count, datastore_->CountRegistrationEntries(*request));
    response->set_count(count);
    return Status();
  });
}

grpc::Status DataStoreService::CreateRegistrationEntry(grpc::ServerContext* context,
                                                       const v1::RegistrationEntry* request,
                                                       v1::RegistrationEntry* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->CreateRegistrationEntry(*request));
    return Status();
  });
}

grpc::Status DataStoreService::CreateOrReturnRegistrationEntry(
    grpc::ServerContext* context, const v1::RegistrationEntry* request,
    v1::CreateOrReturnRegistrationEntryResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(datastore::CreateOrReturnResult result,
                            datastore_->CreateOrReturnRegistrationEntry(*request));
    *response->mutable_entry() = std::move(result.entry);
    response->set_existing(result.existing);
    return Status();
  });
}

grpc::Status DataStoreService::DeleteRegistrationEntry(grpc::ServerContext* context,
                                                       const v1::EntryIdRequest* request,
                                                       v1::RegistrationEntry* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->entry_id(), "entry_id"));
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->DeleteRegistrationEntry(request->entry_id()));
    return Status();
  });
}

grpc::Status DataStoreService::FetchRegistrationEntry(grpc::ServerContext* context,
                                                      const v1::EntryIdRequest* request,
                                                      v1::RegistrationEntry* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->entry_id(), "entry_id"));
    PLINTH_ASSIGN_OR_RETURN(const EntryPtr entry,
                            datastore_->FetchRegistrationEntry(request->entry_id()));
    *response = *entry;
    return Status();
  });
}

grpc::Status DataStoreService::FetchRegistrationEntries(
    grpc::ServerContext* context, const v1::FetchRegistrationEntriesRequest* request,
    v1::FetchRegistrationEntriesResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const auto entries,
                            datastore_->FetchRegistrationEntries(ToVector(request->entry_ids())));
    auto& out = *response->mutable_entries();
    for (const auto& [id, entry] : entries) out[id] = *entry;
    return Status();
  });
}

grpc::Status DataStoreService::ListRegistrationEntries(
    grpc::ServerContext* context, const v1::ListRegistrationEntriesRequest* request,
    grpc::ServerWriter<v1::ListRegistrationEntriesResponse>* writer) {
  return Serve(context, [&]() -> Status {
    return StreamPages(
        context, *request, options_.list_page_size, writer,
        [&](const v1::ListRegistrationEntriesRequest& r) {
          return datastore_->ListRegistrationEntries(r);
        },
        [](const v1::ListRegistrationEntriesResponse& page) { return page.entries_size(); });
  });
}

grpc::Status DataStoreService::PruneRegistrationEntries(grpc::ServerContext* context,
                                                        const v1::PruneRequest* request,
                                                        v1::PruneResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t pruned,
                            datastore_->PruneRegistrationEntries(request->before_unix()));
    response->set_pruned(pruned);
    return Status();
  });
}

grpc::Status DataStoreService::UpdateRegistrationEntry(
    grpc::ServerContext* context, const v1::UpdateRegistrationEntryRequest* request,
    v1::RegistrationEntry* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->entry().entry_id(), "entry.entry_id"));
    PLINTH_ASSIGN_OR_RETURN(
        *response, datastore_->UpdateRegistrationEntry(
                       request->entry(), request->has_mask() ? &request->mask() : nullptr));
    return Status();
  });
}

grpc::Status DataStoreService::ListAuthorizedEntries(
    grpc::ServerContext* context, const v1::ListAuthorizedEntriesRequest* request,
    grpc::ServerWriter<v1::ListRegistrationEntriesResponse>* writer) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->agent_spiffe_id(), "agent_spiffe_id"));
    const std::vector<EntryPtr> entries =
        datastore_->ListAuthorizedEntries(request->agent_spiffe_id());
    const size_t page_size = static_cast<size_t>(std::max(options_.list_page_size, 1));
    for (size_t begin = 0; begin < entries.size(); begin += page_size) {
      v1::ListRegistrationEntriesResponse page;
      const size_t end = std::min(entries.size(), begin + page_size);
      page.mutable_entries()->Reserve(static_cast<int>(end - begin));
      for (size_t i = begin; i < end; ++i) *page.add_entries() = *entries[i];
      if (!writer->Write(page)) return ClientGone();
    }
    return Status();
  });
}

// ---- Attested nodes and node selectors

grpc::Status DataStoreService::CountAttestedNodes(grpc::ServerContext* context,
                                                  const v1::CountAttestedNodesRequest* request,
                                                  v1::CountResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t count, datastore_->CountAttestedNodes(*request));
    response->set_count(count);
    return Status();
  });
}

grpc::Status DataStoreService::CreateAttestedNode(grpc::ServerContext* context,
                                                  const v1::AttestedNode* request,
                                                  v1::AttestedNode* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->CreateAttestedNode(*request));
    return Status();
  });
}

grpc::Status DataStoreService::DeleteAttestedNode(grpc::ServerContext* context,
                                                  const v1::SpiffeIdRequest* request,
                                                  v1::AttestedNode* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->spiffe_id(), "spiffe_id"));
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->DeleteAttestedNode(request->spiffe_id()));
    return Status();
  });
}

grpc::Status DataStoreService::FetchAttestedNode(grpc::ServerContext* context,
                                                 const v1::SpiffeIdRequest* request,
                                                 v1::AttestedNode* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->spiffe_id(), "spiffe_id"));
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->FetchAttestedNode(request->spiffe_id()));
    return Status();
  });
}

grpc::Status DataStoreService::FetchAttestedNodes(grpc::ServerContext* context,
                                                  const v1::FetchAttestedNodesRequest* request,
                                                  v1::FetchAttestedNodesResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(auto nodes,
                            datastore_->FetchAttestedNodes(ToVector(request->spiffe_ids())));
    auto& out = *response->mutable_nodes();
    for (auto& [id, node] : nodes) out[id] = std::move(node);
    return Status();
  });
}

grpc::Status DataStoreService::ListAttestedNodes(
    grpc::ServerContext* context, const v1::ListAttestedNodesRequest* request,
    grpc::ServerWriter<v1::ListAttestedNodesResponse>* writer) {
  return Serve(context, [&]() -> Status {
    return StreamPages(
        context, *request, options_.list_page_size, writer,
        [&](const v1::ListAttestedNodesRequest& r) { return datastore_->ListAttestedNodes(r); },
        [](const v1::ListAttestedNodesResponse& page) { return page.nodes_size(); });
  });
}

grpc::Status DataStoreService::UpdateAttestedNode(grpc::ServerContext* context,
                                                  const v1::UpdateAttestedNodeRequest* request,
                                                  v1::AttestedNode* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->node().spiffe_id(), "node.spiffe_id"));
    PLINTH_ASSIGN_OR_RETURN(*response,
                            datastore_->UpdateAttestedNode(
                                request->node(), request->has_mask() ? &request->mask() : nullptr));
    return Status();
  });
}

grpc::Status DataStoreService::PruneAttestedExpiredNodes(
    grpc::ServerContext* context, const v1::PruneAttestedExpiredNodesRequest* request,
    v1::PruneResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t pruned,
                            datastore_->PruneAttestedExpiredNodes(
                                request->expired_before_unix(), request->include_non_reattestable(),
                                request->batch_size()));
    response->set_pruned(pruned);
    return Status();
  });
}

grpc::Status DataStoreService::GetNodeSelectors(grpc::ServerContext* context,
                                                const v1::GetNodeSelectorsRequest* request,
                                                v1::NodeSelectors* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->spiffe_id(), "spiffe_id"));
    PLINTH_ASSIGN_OR_RETURN(
        std::vector<v1::Selector> selectors,
        datastore_->GetNodeSelectors(request->spiffe_id(), request->consistency()));
    response->set_spiffe_id(request->spiffe_id());
    for (v1::Selector& selector : selectors) *response->add_selectors() = std::move(selector);
    return Status();
  });
}

grpc::Status DataStoreService::ListNodeSelectors(grpc::ServerContext* context,
                                                 const v1::ListNodeSelectorsRequest* request,
                                                 v1::ListNodeSelectorsResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->ListNodeSelectors(*request));
    return Status();
  });
}

grpc::Status DataStoreService::SetNodeSelectors(grpc::ServerContext* context,
                                                const v1::NodeSelectors* request,
                                                google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    return datastore_->SetNodeSelectors(request->spiffe_id(), ToVector(request->selectors()));
  });
}

// ---- Join tokens

grpc::Status DataStoreService::CreateJoinToken(grpc::ServerContext* context,
                                               const v1::JoinToken* request,
                                               google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status { return datastore_->CreateJoinToken(*request); });
}

grpc::Status DataStoreService::FetchJoinToken(grpc::ServerContext* context,
                                              const v1::JoinTokenRequest* request,
                                              v1::JoinToken* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->token(), "token"));
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->FetchJoinToken(request->token()));
    return Status();
  });
}

grpc::Status DataStoreService::DeleteJoinToken(grpc::ServerContext* context,
                                               const v1::JoinTokenRequest* request,
                                               google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    PLINTH_RETURN_IF_ERROR(Require(request->token(), "token"));
    return datastore_->DeleteJoinToken(request->token());
  });
}

grpc::Status DataStoreService::PruneJoinTokens(grpc::ServerContext* context,
                                               const v1::PruneRequest* request,
                                               v1::PruneResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t pruned,
                            datastore_->PruneJoinTokens(request->before_unix()));
    response->set_pruned(pruned);
    return Status();
  });
}

// ---- Federation relationships

grpc::Status DataStoreService::CreateFederationRelationship(
    grpc::ServerContext* context, const v1::FederationRelationship* request,
    v1::FederationRelationship* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->CreateFederationRelationship(*request));
    return Status();
  });
}

grpc::Status DataStoreService::FetchFederationRelationship(grpc::ServerContext* context,
                                                           const v1::TrustDomainRequest* request,
                                                           v1::FederationRelationship* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response,
                            datastore_->FetchFederationRelationship(request->trust_domain()));
    return Status();
  });
}

grpc::Status DataStoreService::ListFederationRelationships(
    grpc::ServerContext* context, const v1::ListFederationRelationshipsRequest* request,
    v1::ListFederationRelationshipsResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->ListFederationRelationships(*request));
    return Status();
  });
}

grpc::Status DataStoreService::DeleteFederationRelationship(grpc::ServerContext* context,
                                                            const v1::TrustDomainRequest* request,
                                                            google::protobuf::Empty* /*response*/) {
  return Serve(context, [&]() -> Status {
    return datastore_->DeleteFederationRelationship(request->trust_domain());
  });
}

grpc::Status DataStoreService::UpdateFederationRelationship(
    grpc::ServerContext* context, const v1::UpdateFederationRelationshipRequest* request,
    v1::FederationRelationship* response) {
  return Serve(context, [&]() -> Status {
    if (!request->has_mask()) return InvalidArgumentError("mask is required");
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->UpdateFederationRelationship(
                                           request->relationship(), request->mask()));
    return Status();
  });
}

// ---- CA journals

grpc::Status DataStoreService::SetCAJournal(grpc::ServerContext* context,
                                            const v1::CAJournal* request, v1::CAJournal* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response, datastore_->SetCAJournal(*request));
    return Status();
  });
}

grpc::Status DataStoreService::FetchCAJournal(grpc::ServerContext* context,
                                              const v1::FetchCAJournalRequest* request,
                                              v1::CAJournal* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(*response,
                            datastore_->FetchCAJournal(request->active_x509_authority_id()));
    return Status();
  });
}

grpc::Status DataStoreService::PruneCAJournals(grpc::ServerContext* context,
                                               const v1::PruneRequest* request,
                                               v1::PruneResponse* response) {
  return Serve(context, [&]() -> Status {
    PLINTH_ASSIGN_OR_RETURN(const int64_t pruned,
                            datastore_->PruneCAJournals(request->before_unix()));
    response->set_pruned(pruned);
    return Status();
  });
}

// ---- Change feed

grpc::Status DataStoreService::WatchChanges(grpc::ServerContext* context,
                                            const v1::WatchChangesRequest* /*request*/,
                                            grpc::ServerWriter<v1::DataStoreChange>* writer) {
  return Serve(context, [&]() -> Status {
    std::shared_ptr<internal::WatchQueue> queue = OpenWatch();
    if (queue == nullptr) return UnavailableError("server shutting down");
    // The listener shares ownership of the queue and touches nothing else, so a feed call
    // racing with the subscription's destruction never reaches freed memory.
    std::unique_ptr<datastore::Subscription> subscription =
        datastore_->Subscribe([queue](const v1::DataStoreChange& change, bool reset) {
          if (reset) {
            queue->PushReset();
          } else {
            queue->Push(change);
          }
        });
    // Tells the client that every change from now on will reach it.
    writer->SendInitialMetadata();

    Status result = ForwardChanges(context, queue.get(), options_, writer);
    subscription.reset();
    CloseWatch(queue);
    return result;
  });
}

}  // namespace plinth::server::api
