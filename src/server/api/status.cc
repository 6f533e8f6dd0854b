#include "server/api/status.h"

#include <string>

namespace plinth::server::api {
namespace {

constexpr int kFirstCode = static_cast<int>(StatusCode::kOk);
constexpr int kLastCode = static_cast<int>(StatusCode::kUnauthenticated);

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

Status FromGrpcStatus(const grpc::Status& status) {
  const int code = static_cast<int>(status.error_code());
  if (code == kFirstCode) return Status();
  if (code < kFirstCode || code > kLastCode) {
    return UnknownError("gRPC status code " + std::to_string(code) + ": " + status.error_message());
  }
  return Status(static_cast<StatusCode>(code), status.error_message());
}

}  // namespace plinth::server::api
