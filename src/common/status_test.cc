#include "common/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"

namespace plinth {
namespace {

using ::testing::HasSubstr;

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd number");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  PLINTH_ASSIGN_OR_RETURN(int h, Half(x));
  PLINTH_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  PLINTH_RETURN_IF_ERROR(Half(x));
  return Status::Ok();
}

TEST(Status, OkHasNoMessageAndCodeZero) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(static_cast<int>(s.code()), 0);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, CodesAreTheGrpcWireNumbers) {
  EXPECT_EQ(static_cast<int>(StatusCode::kAborted), 10);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnavailable), 14);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnauthenticated), 16);
}

TEST(Status, ToStringNamesTheCode) {
  EXPECT_EQ(AbortedError("key k changed").ToString(), "ABORTED: key k changed");
}

TEST(Status, WithContextPrefixesTheMessage) {
  EXPECT_THAT(NotFoundError("no such file").WithContext("open /x"),
              StatusIs(StatusCode::kNotFound, "open /x: no such file"));
  EXPECT_OK(Status().WithContext("ignored"));
}

TEST(StatusOr, MacrosPropagateErrorsAndValues) {
  EXPECT_THAT(Quarter(8), IsOk());
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(StatusCode::kInvalidArgument, HasSubstr("odd")));
  EXPECT_THAT(CheckEven(3), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_OK(CheckEven(4));
}

TEST(StatusOr, HoldsMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(7);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<int> v, std::move(p));
  EXPECT_EQ(*v, 7);
}

TEST(StatusOrDeathTest, ValueOfErrorIsABrokenInvariant) {
  StatusOr<int> s = InternalError("boom");
  EXPECT_DEATH((void)s.value(), "failed StatusOr");
}

}  // namespace
}  // namespace plinth
