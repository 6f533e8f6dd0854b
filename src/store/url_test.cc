#include "store/url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status_matchers.h"
#include "store/open.h"

namespace plinth::store {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseStoreUrl, SplitsSchemeLocationAndOptions) {
  ASSERT_OK_AND_ASSIGN(StoreUrl url,
                       ParseStoreUrl("SQLite:///var/lib/plinth%20x/p.db?synchronous=normal&a=%3D"));
  EXPECT_EQ(url.scheme, "sqlite");
  EXPECT_EQ(url.location, "/var/lib/plinth x/p.db");
  EXPECT_EQ(url.options.at("synchronous"), "normal");
  EXPECT_EQ(url.options.at("a"), "=");
}

TEST(ParseStoreUrl, RejectsMissingSchemeAndRepeatedOptions) {
  EXPECT_THAT(ParseStoreUrl("/tmp/x.db"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no scheme")));
  EXPECT_THAT(ParseStoreUrl("memory://?retention=1&retention=2"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("given twice")));
  EXPECT_THAT(ParseStoreUrl("memory://?oops"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("name=value")));
  EXPECT_THAT(ParseStoreUrl("memory://x%zz"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("percent escape")));
}

TEST(RedactUrl, HidesOnlyThePassword) {
  EXPECT_EQ(RedactUrl("postgres://alice:s3cr@t@db:5432/x?sslmode=require"),
            "postgres://alice:***@db:5432/x?sslmode=require");
  EXPECT_EQ(RedactUrl("mysql://root@127.0.0.1:3306/plinth"), "mysql://root@127.0.0.1:3306/plinth");
  EXPECT_EQ(RedactUrl("sqlite:///var/lib/a:b@c.db"), "sqlite:///var/lib/a:b@c.db");
}

TEST(UrlOptions, MessagesNeverQuoteThePassword) {
  ASSERT_OK_AND_ASSIGN(StoreUrl url, ParseStoreUrl("x://u:hunter2@h/db?bogus=1"));
  UrlOptions o(url);
  EXPECT_THAT(o.CheckAllTaken(), StatusIs(StatusCode::kInvalidArgument,
                                          AllOf(HasSubstr("bogus"), Not(HasSubstr("hunter2")))));
  EXPECT_THAT(OpenStore("nosuch://u:hunter2@h/db"),
              StatusIs(StatusCode::kInvalidArgument, Not(HasSubstr("hunter2"))));
}

TEST(UrlOptions, TypedAccessNamesTheBadOption) {
  ASSERT_OK_AND_ASSIGN(StoreUrl url,
                       ParseStoreUrl("x://?n=12&d=5s&e=Fast&bad=1&big=99999&dur=3parsecs"));
  UrlOptions o(url);
  ASSERT_OK_AND_ASSIGN(auto n, o.TakeInt("n", 0, 100));
  EXPECT_EQ(*n, 12);
  ASSERT_OK_AND_ASSIGN(auto d, o.TakeDuration("d"));
  EXPECT_EQ(d->count(), 5000);
  ASSERT_OK_AND_ASSIGN(auto e, o.TakeEnum("e", {"fast", "slow"}));
  EXPECT_EQ(*e, "fast");
  EXPECT_THAT(o.TakeInt("big", 0, 100), StatusIs(StatusCode::kInvalidArgument, HasSubstr("big")));
  EXPECT_THAT(o.TakeDuration("dur"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("duration")));
  ASSERT_OK_AND_ASSIGN(auto absent, o.TakeInt("absent", 0, 1));
  EXPECT_FALSE(absent.has_value());
  EXPECT_THAT(o.CheckAllTaken(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"bad\"")));
}

TEST(OpenStore, UnknownSchemeListsTheKnownOnes) {
  EXPECT_THAT(OpenStore("cassandra://db"),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("cassandra"), HasSubstr("memory"), HasSubstr("sqlite"))));
}

TEST(OpenStore, UnknownOptionIsAnError) {
  EXPECT_THAT(OpenStore("memory://?retension=5"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("retension")));
}

TEST(OpenStore, NamedMemoryStoresAreSharedWhileOpen) {
  ASSERT_OK_AND_ASSIGN(auto a, OpenStore("memory://shared-test"));
  ASSERT_OK_AND_ASSIGN(auto b, OpenStore("memory://shared-test"));
  ASSERT_OK(a->Put("k", "v"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, b->Get("k"));
  EXPECT_EQ(kv.value, "v");
  ASSERT_OK_AND_ASSIGN(auto c, OpenStore("memory://"));
  EXPECT_THAT(c->Get("k"), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace plinth::store
