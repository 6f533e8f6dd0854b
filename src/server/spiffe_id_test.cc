#include "server/spiffe_id.h"

#include <gtest/gtest.h>

#include <string>

#include "common/status_matchers.h"

namespace plinth::server {
namespace {

using ::testing::HasSubstr;

TEST(SpiffeIdTest, ParsesTrustDomainAndPath) {
  ASSERT_OK_AND_ASSIGN(SpiffeId id, SpiffeId::Parse("spiffe://example.org/plinth/server"));
  EXPECT_EQ(id.str(), "spiffe://example.org/plinth/server");
  EXPECT_EQ(id.trust_domain(), "example.org");
  EXPECT_EQ(id.path(), "/plinth/server");
}

TEST(SpiffeIdTest, AcceptsTheTrustDomainIdAndEveryAllowedCharacter) {
  ASSERT_OK_AND_ASSIGN(SpiffeId id, SpiffeId::Parse("spiffe://a-b_c.9"));
  EXPECT_EQ(id.trust_domain(), "a-b_c.9");
  EXPECT_EQ(id.path(), "");
  EXPECT_OK(SpiffeId::Parse("spiffe://example.org/Az09.-_/...x/y"));
}

TEST(SpiffeIdTest, ComparesByText) {
  ASSERT_OK_AND_ASSIGN(SpiffeId a, SpiffeId::Parse("spiffe://example.org/a"));
  ASSERT_OK_AND_ASSIGN(SpiffeId b, SpiffeId::Parse("spiffe://example.org/b"));
  ASSERT_OK_AND_ASSIGN(SpiffeId a2, SpiffeId::Parse("spiffe://example.org/a"));
  EXPECT_EQ(a, a2);
  EXPECT_LT(a, b);
}

TEST(SpiffeIdTest, RejectsMalformedIdsSayingWhy) {
  struct Case {
    std::string text;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {"example.org/a", "scheme is not"},
           {"https://example.org/a", "scheme is not"},
           {"SPIFFE://example.org/a", "lower-case"},
           {"spiffe://", "trust domain is empty"},
           {"spiffe:///a", "trust domain is empty"},
           {"spiffe://Example.org/a", "lower case"},
           {"spiffe://example.org:8443/a", "port"},
           {"spiffe://user@example.org/a", "user info"},
           {"spiffe://example.org/a?x=1", "query"},
           {"spiffe://example.org?x=1", "query"},
           {"spiffe://example.org/a#frag", "fragment"},
           {"spiffe://example.org/a%20b", "percent-encoding"},
           {"spiffe://example.org/", "end with '/'"},
           {"spiffe://example.org/a/", "end with '/'"},
           {"spiffe://example.org//a", "empty segment"},
           {"spiffe://example.org/a/./b", "\".\" or \"..\""},
           {"spiffe://example.org/..", "\".\" or \"..\""},
           {"spiffe://example.org/a b", "invalid character ' '"},
           {"spiffe://exa*mple.org/a", "invalid character '*'"},
           {"spiffe://example.org/\x01", "byte 0x01"},
       }) {
    EXPECT_THAT(SpiffeId::Parse(c.text),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.reason)))
        << c.text;
  }
}

TEST(SpiffeIdTest, EnforcesLengthLimits) {
  std::string prefix = "spiffe://example.org/";
  EXPECT_OK(SpiffeId::Parse(prefix + std::string(kMaxSpiffeIdLength - prefix.size(), 'a')));
  EXPECT_THAT(SpiffeId::Parse(prefix + std::string(kMaxSpiffeIdLength - prefix.size() + 1, 'a')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("longer than 2048")));
  EXPECT_OK(SpiffeId::Parse("spiffe://" + std::string(kMaxTrustDomainLength, 'a')));
  EXPECT_THAT(SpiffeId::Parse("spiffe://" + std::string(kMaxTrustDomainLength + 1, 'a')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("longer than 255")));
}

TEST(ValidateTrustDomainTest, AcceptsNamesAndRejectsIds) {
  EXPECT_OK(ValidateTrustDomain("example.org"));
  EXPECT_THAT(ValidateTrustDomain("spiffe://example.org"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a SPIFFE ID")));
  EXPECT_THAT(ValidateTrustDomain(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTrustDomain("Example.org"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTrustDomain("example.org/x"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace plinth::server
