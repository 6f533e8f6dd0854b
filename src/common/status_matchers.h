// GoogleTest matchers for Status and StatusOr: EXPECT_THAT(s, IsOk()),
// EXPECT_THAT(s, StatusIs(StatusCode::kAborted, HasSubstr("changed"))).
#ifndef PLINTH_COMMON_STATUS_MATCHERS_H_
#define PLINTH_COMMON_STATUS_MATCHERS_H_

#include <gmock/gmock.h>

#include "common/status.h"

namespace plinth {

inline void PrintTo(const Status& s, std::ostream* os) { *os << s.ToString(); }
template <typename T>
void PrintTo(const StatusOr<T>& s, std::ostream* os) {
  *os << (s.ok() ? "OK (value)" : s.status().ToString());
}
inline void PrintTo(StatusCode c, std::ostream* os) { *os << StatusCodeName(c); }

namespace testing_internal {
inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
Status GetStatus(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace testing_internal

MATCHER(IsOk, "is OK") {
  auto status = ::plinth::testing_internal::GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(StatusIs, code, std::string("has code ") + std::string(::plinth::StatusCodeName(code))) {
  auto status = ::plinth::testing_internal::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has code ") + std::string(::plinth::StatusCodeName(code))) {
  auto status = ::plinth::testing_internal::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace plinth

// Asserts that a StatusOr is OK and binds its value: ASSERT_OK_AND_ASSIGN(auto v, F());
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(PLINTH_STATUS_CONCAT_(plinth_assert_statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::plinth::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::plinth::IsOk())

#endif  // PLINTH_COMMON_STATUS_MATCHERS_H_
