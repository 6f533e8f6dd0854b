// The Operator gRPC service of `plinth serve`: the state of the store under the datastore
// (revisions, the mirror's health, object counts), history compaction and on-demand
// verification of this replica's memory against the backend.
#ifndef PLINTH_SERVER_API_OPERATOR_SERVICE_H_
#define PLINTH_SERVER_API_OPERATOR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>

#include "datastore/datastore.h"
#include "plinth/v1/datastore_service.grpc.pb.h"
#include "server/api/datastore_service.h"
#include "store/store.h"

namespace plinth::server::api {

// Serves plinth.v1.Operator. `store` is the store `datastore` was opened on; both must outlive
// the service. Thread-safe. Every RPC calls `authorize` (see AuthorizeFn) first.
class OperatorService final : public v1::Operator::Service {
 public:
  // `redacted_url`: the store URL with its password already hidden (store::RedactUrl); it is
  // reported as given. `retention`: revisions of history CompactStore keeps behind the current
  // one when asked for revision 0 (0 = keep all: such a request is refused). `ready`: whether
  // the server is ready to serve (reported in StoreStatus.ready); empty = always ready.
  OperatorService(store::Store* store, datastore::DataStore* datastore, std::string redacted_url,
                  int64_t retention, std::function<bool()> ready, AuthorizeFn authorize = nullptr);

  OperatorService(const OperatorService&) = delete;
  OperatorService& operator=(const OperatorService&) = delete;

  // Always OK once authorized; parts the backend cannot answer right now fall back to what
  // the mirror last heard (backend_revision) or 0 (compacted_revision), so the status stays
  // available while the backend is down. object_counts holds "entries", "nodes" and
  // "bundles", counted from memory.
  grpc::Status GetStoreStatus(grpc::ServerContext* context, const google::protobuf::Empty* request,
                              v1::StoreStatus* response) override;

  // Discards the store's history up to request.revision (0 = current revision minus the
  // retention). Returns the store's compaction point afterwards. Errors: INVALID_ARGUMENT for
  // a negative revision; FAILED_PRECONDITION for revision 0 when no retention is configured
  // or when the current revision is still within the retention; OUT_OF_RANGE beyond the
  // current revision; the store's error (e.g. UNAVAILABLE).
  grpc::Status CompactStore(grpc::ServerContext* context, const v1::CompactRequest* request,
                            v1::CompactResponse* response) override;

  // Mirror::Verify: ok = true when this replica's memory matches the backend at one revision;
  // ok = false with the mismatch in `message` (the mirror then rebuilds itself). The RPC
  // fails only when the backend could not be read (e.g. UNAVAILABLE).
  grpc::Status VerifyStore(grpc::ServerContext* context, const google::protobuf::Empty* request,
                           v1::VerifyResponse* response) override;

 private:
  grpc::Status Serve(grpc::ServerContext* context, const std::function<Status()>& body);

  store::Store* const store_;
  datastore::DataStore* const datastore_;
  const std::string redacted_url_;
  const int64_t retention_;
  const std::function<bool()> ready_;
  const AuthorizeFn authorize_;
};

}  // namespace plinth::server::api

#endif  // PLINTH_SERVER_API_OPERATOR_SERVICE_H_
