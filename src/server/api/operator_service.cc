#include "server/api/operator_service.h"

#include <string>
#include <utility>

#include "server/api/status.h"

namespace plinth::server::api {

OperatorService::OperatorService(store::Store* store, datastore::DataStore* datastore,
                                 std::string redacted_url, int64_t retention,
                                 std::function<bool()> ready, AuthorizeFn authorize)
    : store_(store),
      datastore_(datastore),
      redacted_url_(std::move(redacted_url)),
      retention_(retention),
      ready_(std::move(ready)),
      authorize_(std::move(authorize)) {}

grpc::Status OperatorService::Serve(grpc::ServerContext* context,
                                    const std::function<Status()>& body) {
  if (authorize_) {
    grpc::Status allowed = authorize_(context);
    if (!allowed.ok()) return allowed;
  }
  return ToGrpcStatus(body());
}

grpc::Status OperatorService::GetStoreStatus(grpc::ServerContext* context,
                                             const google::protobuf::Empty* /*request*/,
                                             v1::StoreStatus* response) {
  return Serve(context, [&]() -> Status {
    const mirror::MirrorStatus mirror = datastore_->mirror().status();
    response->set_backend(std::string(store_->backend()));
    response->set_url(redacted_url_);
    response->set_applied_revision(mirror.applied_revision);
    StatusOr<store::Revision> current = store_->CurrentRevision();
    response->set_backend_revision(current.ok() ? *current : mirror.backend_revision);
    StatusOr<store::Revision> compacted = store_->CompactedRevision();
    response->set_compacted_revision(compacted.ok() ? *compacted : 0);
    response->set_watching(mirror.watching);
    response->set_mirror_rebuilds(mirror.rebuilds);
    response->set_verify_mismatches(mirror.verify_mismatches);

    auto& counts = *response->mutable_object_counts();
    if (StatusOr<int64_t> n = datastore_->CountRegistrationEntries({}); n.ok()) {
      counts["entries"] = *n;
    }
    if (StatusOr<int64_t> n = datastore_->CountAttestedNodes({}); n.ok()) counts["nodes"] = *n;
    if (StatusOr<int64_t> n = datastore_->CountBundles(); n.ok()) counts["bundles"] = *n;

    response->set_ready(!ready_ || ready_());
    return Status();
  });
}

grpc::Status OperatorService::CompactStore(grpc::ServerContext* context,
                                           const v1::CompactRequest* request,
                                           v1::CompactResponse* response) {
  return Serve(context, [&]() -> Status {
    store::Revision target = request->revision();
    if (target < 0) {
      return InvalidArgumentError("revision must not be negative (got " + std::to_string(target) +
                                  ")");
    }
    if (target == 0) {
      if (retention_ <= 0) {
        return FailedPreconditionError("no retention configured; pass a revision");
      }
      PLINTH_ASSIGN_OR_RETURN(const store::Revision current, store_->CurrentRevision());
      target = current - retention_;
      if (target <= 0) {
        return FailedPreconditionError("nothing to compact: current revision " +
                                       std::to_string(current) + " is within the retention of " +
                                       std::to_string(retention_) + " revisions");
      }
    }
    PLINTH_RETURN_IF_ERROR(store_->Compact(target));
    PLINTH_ASSIGN_OR_RETURN(const store::Revision compacted, store_->CompactedRevision());
    response->set_compacted_revision(compacted);
    return Status();
  });
}

grpc::Status OperatorService::VerifyStore(grpc::ServerContext* context,
                                          const google::protobuf::Empty* /*request*/,
                                          v1::VerifyResponse* response) {
  return Serve(context, [&]() -> Status {
    const Status verified = datastore_->mirror().Verify();
    if (verified.ok()) {
      response->set_ok(true);
      response->set_message("memory matches the backend");
      return Status();
    }
    if (verified.code() != StatusCode::kDataLoss) return verified;
    response->set_ok(false);
    response->set_message(std::string(verified.message()));
    return Status();
  });
}

}  // namespace plinth::server::api
