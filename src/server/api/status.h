// The one mapping between plinth::Status and grpc::Status, used by the server's services and
// by the CLI's client. plinth's codes are gRPC's canonical codes with the same numbers, so
// the code is a cast and the message travels unchanged.
#ifndef PLINTH_SERVER_API_STATUS_H_
#define PLINTH_SERVER_API_STATUS_H_

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace plinth::server::api {

// Same code, same message. An OK status maps to grpc::Status::OK (its message is dropped).
grpc::Status ToGrpcStatus(const Status& status);

// Same code, same message (error details are not carried). A code outside gRPC's canonical
// range (a misbehaving peer) becomes UNKNOWN, with the original number in the message.
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace plinth::server::api

#endif  // PLINTH_SERVER_API_STATUS_H_
