#include "server/testing/grpc_client.h"

#include <grpcpp/generic/generic_stub.h>

#include <vector>

namespace plinth::server::testing {

GenericCallResult GenericUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& method, const std::string& request,
                                   std::chrono::milliseconds timeout) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, method, request_buffer, &cq);
  call->StartCall();
  grpc::ByteBuffer response_buffer;
  GenericCallResult result;
  call->Finish(&response_buffer, &result.status, &result);
  void* tag = nullptr;
  bool ok = false;
  // The deadline bounds the call, so Next returns.
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (result.status.ok()) {
    std::vector<grpc::Slice> slices;
    if (response_buffer.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        result.response.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  return result;
}

StatusOr<ServingStatus> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& service, std::chrono::milliseconds timeout) {
  // HealthCheckRequest { string service = 1; }: field 1, wire type 2 (length-delimited).
  std::string request;
  if (!service.empty()) {
    if (service.size() > 127) return InvalidArgumentError("service name too long for this helper");
    request.push_back('\x0a');
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  GenericCallResult result =
      GenericUnaryCall(channel, "/grpc.health.v1.Health/Check", request, timeout);
  if (!result.status.ok()) {
    return Status(static_cast<StatusCode>(result.status.error_code()),
                  result.status.error_message());
  }
  // HealthCheckResponse { ServingStatus status = 1; }: absent = UNKNOWN, else 0x08 <varint>.
  if (result.response.empty()) return ServingStatus::kUnknown;
  if (result.response.size() != 2 || result.response[0] != '\x08') {
    return InternalError("unexpected HealthCheckResponse encoding");
  }
  return static_cast<ServingStatus>(result.response[1]);
}

}  // namespace plinth::server::testing
