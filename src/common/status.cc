#include "common/status.h"

#include <cstdio>
#include <cstdlib>

#include "common/check.h"

namespace plinth {
namespace internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": check failed: " << condition << " ";
}

CheckFailure::~CheckFailure() {
  std::fprintf(stderr, "%s\n", stream_.str().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN_CODE";
}

Status::Status(StatusCode code, std::string_view message) {
  if (code != StatusCode::kOk) rep_ = std::make_shared<const Rep>(Rep{code, std::string(message)});
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code()));
  out += ": ";
  out += message();
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message();
  return Status(code(), msg);
}

std::ostream& operator<<(std::ostream& os, const Status& status) { return os << status.ToString(); }

#define PLINTH_DEFINE_ERROR(Name, code) \
  Status Name(std::string_view message) { return Status(StatusCode::code, message); }
PLINTH_DEFINE_ERROR(CancelledError, kCancelled)
PLINTH_DEFINE_ERROR(UnknownError, kUnknown)
PLINTH_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument)
PLINTH_DEFINE_ERROR(DeadlineExceededError, kDeadlineExceeded)
PLINTH_DEFINE_ERROR(NotFoundError, kNotFound)
PLINTH_DEFINE_ERROR(AlreadyExistsError, kAlreadyExists)
PLINTH_DEFINE_ERROR(PermissionDeniedError, kPermissionDenied)
PLINTH_DEFINE_ERROR(ResourceExhaustedError, kResourceExhausted)
PLINTH_DEFINE_ERROR(FailedPreconditionError, kFailedPrecondition)
PLINTH_DEFINE_ERROR(AbortedError, kAborted)
PLINTH_DEFINE_ERROR(OutOfRangeError, kOutOfRange)
PLINTH_DEFINE_ERROR(UnimplementedError, kUnimplemented)
PLINTH_DEFINE_ERROR(InternalError, kInternal)
PLINTH_DEFINE_ERROR(UnavailableError, kUnavailable)
PLINTH_DEFINE_ERROR(DataLossError, kDataLoss)
PLINTH_DEFINE_ERROR(UnauthenticatedError, kUnauthenticated)
#undef PLINTH_DEFINE_ERROR

}  // namespace plinth
