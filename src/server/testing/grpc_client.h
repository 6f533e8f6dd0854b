// gRPC calls for tests that have no generated stub at hand: a unary call by method name with
// raw message bytes, and the standard health check (grpc.health.v1.Health/Check), whose two
// small messages are encoded by hand so that tests need not compile health.proto.
#ifndef PLINTH_SERVER_TESTING_GRPC_CLIENT_H_
#define PLINTH_SERVER_TESTING_GRPC_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"

namespace plinth::server::testing {

struct GenericCallResult {
  grpc::Status status;
  std::string response;  // the serialized response message when status is OK
};

// Calls `method` ("/package.Service/Method") with the serialized `request`, waiting at most
// `timeout`. For a server-streaming method the call fails unless the server sends exactly one
// message; its status still tells whether (and how) the handler refused the call.
GenericCallResult GenericUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& method, const std::string& request,
                                   std::chrono::milliseconds timeout);

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// Health/Check for `service` ("" = the server as a whole). The serving status, or the RPC's
// error (e.g. UNAVAILABLE when the server cannot be reached, NOT_FOUND for an unknown service).
StatusOr<ServingStatus> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& service = "",
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace plinth::server::testing

#endif  // PLINTH_SERVER_TESTING_GRPC_CLIENT_H_
