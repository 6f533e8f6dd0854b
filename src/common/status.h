// plinth::Status and plinth::StatusOr<T>: how every fallible call in plinth reports failure.
// Codes are the canonical gRPC codes with their wire numbers, so mapping to gRPC is a cast.
// Which code to choose follows absl/status/status.h: Aborted = retry the whole transaction,
// Unavailable = retry the call, FailedPrecondition = do not retry until the system changes.
#ifndef PLINTH_COMMON_STATUS_H_
#define PLINTH_COMMON_STATUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/check.h"

namespace plinth {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "OK", "INVALID_ARGUMENT", ... as gRPC spells them.
std::string_view StatusCodeName(StatusCode code);

// A code and, unless OK, a message for a person. Cheap to copy when OK (no allocation).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string_view message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }

  // "OK" or "CODE_NAME: message".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

Status CancelledError(std::string_view message);
Status UnknownError(std::string_view message);
Status InvalidArgumentError(std::string_view message);
Status DeadlineExceededError(std::string_view message);
Status NotFoundError(std::string_view message);
Status AlreadyExistsError(std::string_view message);
Status PermissionDeniedError(std::string_view message);
Status ResourceExhaustedError(std::string_view message);
Status FailedPreconditionError(std::string_view message);
Status AbortedError(std::string_view message);
Status OutOfRangeError(std::string_view message);
Status UnimplementedError(std::string_view message);
Status InternalError(std::string_view message);
Status UnavailableError(std::string_view message);
Status DataLossError(std::string_view message);
Status UnauthenticatedError(std::string_view message);

// Either a T or a non-OK Status. Accessing the value of a non-OK StatusOr is a broken
// invariant (PLINTH_CHECK), never outside input: check ok() first or use the macros.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : v_(status) {  // NOLINT(google-explicit-constructor)
    PLINTH_CHECK(!status.ok()) << "StatusOr built from an OK Status";
  }
  StatusOr(Status&& status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    PLINTH_CHECK(!std::get<Status>(v_).ok()) << "StatusOr built from an OK Status";
  }
  template <typename U = T,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::decay_t<U>, Status> &&
                                        !std::is_same_v<std::decay_t<U>, StatusOr<T>>>>
  StatusOr(U&& value) : v_(std::in_place_index<1>, std::forward<U>(value)) {}  // NOLINT

  bool ok() const { return v_.index() == 1; }
  Status status() const { return ok() ? Status() : std::get<0>(v_); }

  const T& value() const& { return CheckedValue(), std::get<1>(v_); }
  T& value() & { return CheckedValue(), std::get<1>(v_); }
  T&& value() && { return CheckedValue(), std::get<1>(std::move(v_)); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckedValue() const {
    PLINTH_CHECK(ok()) << "value() of a failed StatusOr: " << std::get<0>(v_);
  }
  std::variant<Status, T> v_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

}  // namespace plinth

#define PLINTH_STATUS_CONCAT_INNER_(a, b) a##b
#define PLINTH_STATUS_CONCAT_(a, b) PLINTH_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (a Status or StatusOr) is not OK.
#define PLINTH_RETURN_IF_ERROR(expr)                                                    \
  do {                                                                                  \
    if (auto plinth_status_ = ::plinth::internal::AsStatus(expr); !plinth_status_.ok()) \
      return plinth_status_;                                                            \
  } while (0)

// PLINTH_ASSIGN_OR_RETURN(auto x, F()): declares/assigns x from F() or returns its error.
#define PLINTH_ASSIGN_OR_RETURN(lhs, expr) \
  PLINTH_ASSIGN_OR_RETURN_IMPL_(PLINTH_STATUS_CONCAT_(plinth_statusor_, __LINE__), lhs, expr)
#define PLINTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // PLINTH_COMMON_STATUS_H_
