// Join tokens, federation relationships and CA journals (spec §C7) on every backend, with the
// change feed kinds they produce.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "datastore/testing/datastore_fixture.h"

namespace plinth::datastore {
namespace {

using testing::DatastoreTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeBundle;
using testing::OpLimitedStore;

using DatastoreTokensTest = DatastoreTest;
using DatastoreFederationTest = DatastoreTest;
using DatastoreJournalsTest = DatastoreTest;

bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

v1::JoinToken Token(const std::string& token, int64_t expiry) {
  v1::JoinToken t;
  t.set_token(token);
  t.set_expiry(expiry);
  return t;
}

v1::FederationRelationship Web(const std::string& td) {
  v1::FederationRelationship fr;
  fr.set_trust_domain(td);
  fr.set_bundle_endpoint_url("https://" + td + "/bundle");
  fr.set_bundle_endpoint_profile("https_web");
  return fr;
}

v1::FederationRelationship Spiffe(const std::string& td) {
  v1::FederationRelationship fr = Web(td);
  fr.set_bundle_endpoint_profile("https_spiffe");
  fr.set_endpoint_spiffe_id("spiffe://" + td + "/spire/server");
  return fr;
}

std::string JournalData(const std::vector<int64_t>& x509_not_after,
                        const std::vector<int64_t>& jwt_not_after,
                        const std::vector<int64_t>& wit_not_after = {}) {
  v1::CAJournalData data;
  for (int64_t t : x509_not_after) data.add_x509_cas()->set_not_after(t);
  for (int64_t t : jwt_not_after) data.add_jwt_keys()->set_not_after(t);
  for (int64_t t : wit_not_after) data.add_wit_keys()->set_not_after(t);
  return data.SerializeAsString();
}

v1::CAJournal Journal(int64_t id, const std::string& authority, const std::string& data) {
  v1::CAJournal j;
  j.set_id(id);
  j.set_active_x509_authority_id(authority);
  j.set_data(data);
  return j;
}

// Collects the change feed for the test's lifetime.
class ChangeCollector {
 public:
  explicit ChangeCollector(DataStore& ds)
      : sub_(ds.Subscribe([this](const v1::DataStoreChange& change, bool reset) {
          if (reset) return;
          std::lock_guard<std::mutex> lock(mu_);
          changes_.push_back(change);
          cv_.notify_all();
        })) {}

  // Waits for at least `n` changes and returns them all.
  std::vector<v1::DataStoreChange> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return changes_.size() >= n; });
    return changes_;
  }

  ~ChangeCollector() { sub_.reset(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::DataStoreChange> changes_;
  std::unique_ptr<Subscription> sub_;
};

// ---- Join tokens

TEST_P(DatastoreTokensTest, CreateFetchDelete) {
  ASSERT_OK(ds().CreateJoinToken(Token("t1", 1000)));
  ASSERT_OK_AND_ASSIGN(v1::JoinToken fetched, ds().FetchJoinToken("t1"));
  EXPECT_TRUE(Same(fetched, Token("t1", 1000)));
  EXPECT_THAT(ds().CreateJoinToken(Token("t1", 2000)), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(ds().CreateJoinToken(Token("", 2000)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("token")));
  EXPECT_THAT(ds().CreateJoinToken(Token("t2", 0)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("expiry")));
  EXPECT_THAT(ds().FetchJoinToken("t2"), StatusIs(StatusCode::kNotFound));

  ASSERT_OK(ds().DeleteJoinToken("t1"));
  EXPECT_THAT(ds().FetchJoinToken("t1"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().DeleteJoinToken("t1"), StatusIs(StatusCode::kNotFound));
}

TEST_P(DatastoreTokensTest, PruneDeletesTokensExpiredBeforeT) {
  ASSERT_OK(ds().CreateJoinToken(Token("old", 100)));
  ASSERT_OK(ds().CreateJoinToken(Token("older", 50)));
  ASSERT_OK(ds().CreateJoinToken(Token("at-limit", 200)));
  ASSERT_OK(ds().CreateJoinToken(Token("new", 300)));
  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneJoinTokens(200));
  EXPECT_EQ(pruned, 2);
  EXPECT_THAT(ds().FetchJoinToken("old"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchJoinToken("older"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchJoinToken("at-limit"), IsOk());
  EXPECT_THAT(ds().FetchJoinToken("new"), IsOk());
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneJoinTokens(200));
  EXPECT_EQ(pruned, 0);
}

TEST_P(DatastoreTokensTest, PruneIsChunkedToTheStoreLimits) {
  OpLimitedStore limited(&store(), 3);
  ASSERT_OK_AND_ASSIGN(auto small, DataStore::Open(&limited, Options()));
  for (int i = 0; i < 7; ++i) ASSERT_OK(ds().CreateJoinToken(Token("t" + std::to_string(i), 10)));
  ASSERT_OK(small->mirror().Sync(std::chrono::seconds(10)));
  const int before = limited.commits();
  ASSERT_OK_AND_ASSIGN(int64_t pruned, small->PruneJoinTokens(100));
  EXPECT_EQ(pruned, 7);
  EXPECT_EQ(limited.commits() - before, 3);
}

TEST_P(DatastoreTokensTest, TokenChangesReachSubscribers) {
  ChangeCollector feed(ds());
  ASSERT_OK(ds().CreateJoinToken(Token("t1", 1000)));
  ASSERT_OK(ds().DeleteJoinToken("t1"));
  auto changes = feed.WaitFor(2);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind(), v1::DataStoreChange::KIND_JOIN_TOKEN);
  EXPECT_EQ(changes[0].id(), "t1");
  EXPECT_EQ(changes[0].join_token().expiry(), 1000);
  EXPECT_EQ(changes[1].kind(), v1::DataStoreChange::KIND_JOIN_TOKEN);
  EXPECT_TRUE(changes[1].deleted());
}

// ---- Federation relationships

TEST_P(DatastoreFederationTest, ValidationNamesTheProblem) {
  v1::FederationRelationship no_td = Web("");
  EXPECT_THAT(ds().CreateFederationRelationship(no_td),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("trust domain is required")));
  v1::FederationRelationship no_url = Web("a.org");
  no_url.clear_bundle_endpoint_url();
  EXPECT_THAT(ds().CreateFederationRelationship(no_url),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bundle endpoint URL is required")));
  v1::FederationRelationship no_id = Spiffe("a.org");
  no_id.clear_endpoint_spiffe_id();
  EXPECT_THAT(
      ds().CreateFederationRelationship(no_id),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("bundle endpoint SPIFFE ID is required")));
  v1::FederationRelationship bad_profile = Web("a.org");
  bad_profile.set_bundle_endpoint_profile("ftp");
  EXPECT_THAT(ds().CreateFederationRelationship(bad_profile),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("unknown bundle endpoint profile type: \"ftp\"")));
  EXPECT_THAT(ds().FetchFederationRelationship(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ds().DeleteFederationRelationship(""), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(auto list, ds().ListFederationRelationships({}));
  EXPECT_THAT(list.relationships(), IsEmpty());
}

TEST_P(DatastoreFederationTest, CreateFetchAndDelete) {
  ASSERT_OK_AND_ASSIGN(auto created, ds().CreateFederationRelationship(Web("a.org")));
  EXPECT_TRUE(Same(created, Web("a.org")));
  EXPECT_THAT(ds().CreateFederationRelationship(Web("a.org")),
              StatusIs(StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(auto fetched, ds().FetchFederationRelationship("a.org"));
  EXPECT_TRUE(Same(fetched, Web("a.org")));  // no bundle yet
  EXPECT_FALSE(fetched.has_trust_domain_bundle());

  // A bundle created later is attached on reads.
  ASSERT_OK(ds().CreateBundle(MakeBundle("spiffe://a.org")));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchFederationRelationship("a.org"));
  ASSERT_TRUE(fetched.has_trust_domain_bundle());
  EXPECT_EQ(fetched.trust_domain_bundle().trust_domain_id(), "spiffe://a.org");

  // The endpoint SPIFFE ID is kept only for https_spiffe.
  v1::FederationRelationship web_with_id = Web("b.org");
  web_with_id.set_endpoint_spiffe_id("spiffe://b.org/ignored");
  ASSERT_OK(ds().CreateFederationRelationship(web_with_id));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchFederationRelationship("b.org"));
  EXPECT_EQ(fetched.endpoint_spiffe_id(), "");
  ASSERT_OK(ds().CreateFederationRelationship(Spiffe("c.org")));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchFederationRelationship("c.org"));
  EXPECT_EQ(fetched.endpoint_spiffe_id(), "spiffe://c.org/spire/server");

  EXPECT_THAT(ds().FetchFederationRelationship("missing.org"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(ds().DeleteFederationRelationship("a.org"));
  EXPECT_THAT(ds().FetchFederationRelationship("a.org"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().DeleteFederationRelationship("a.org"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchBundle("spiffe://a.org"), IsOk());  // the bundle is kept
}

TEST_P(DatastoreFederationTest, CreateWithABundleSetsItInTheSameWrite) {
  ChangeCollector feed(ds());
  v1::Bundle old_bundle = MakeBundle("spiffe://a.org");
  old_bundle.set_sequence_number(9);
  ASSERT_OK(ds().CreateBundle(old_bundle));
  v1::FederationRelationship fr = Spiffe("a.org");
  *fr.mutable_trust_domain_bundle() = MakeBundle("spiffe://a.org", 4102444800, "kid-1");
  ASSERT_OK_AND_ASSIGN(auto created, ds().CreateFederationRelationship(fr));
  EXPECT_TRUE(Same(created, fr));
  ASSERT_OK_AND_ASSIGN(v1::Bundle bundle, ds().FetchBundle("spiffe://a.org"));
  EXPECT_TRUE(Same(bundle, fr.trust_domain_bundle()));  // overwritten, as SetBundle does
  ASSERT_OK_AND_ASSIGN(auto fetched, ds().FetchFederationRelationship("a.org"));
  EXPECT_TRUE(Same(fetched, fr));

  auto changes = feed.WaitFor(3);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind(), v1::DataStoreChange::KIND_BUNDLE);
  EXPECT_EQ(changes[1].revision(), changes[2].revision());  // one transaction
  std::set<v1::DataStoreChange::Kind> kinds = {changes[1].kind(), changes[2].kind()};
  EXPECT_EQ(kinds, (std::set<v1::DataStoreChange::Kind>{
                       v1::DataStoreChange::KIND_BUNDLE,
                       v1::DataStoreChange::KIND_FEDERATION_RELATIONSHIP}));
  for (const auto& c : changes) {
    if (c.kind() == v1::DataStoreChange::KIND_FEDERATION_RELATIONSHIP) {
      EXPECT_EQ(c.id(), "a.org");
      EXPECT_FALSE(c.federation_relationship().has_trust_domain_bundle());  // stored without
    }
  }

  // A duplicate create writes nothing, bundle included.
  v1::FederationRelationship again = Web("a.org");
  *again.mutable_trust_domain_bundle() = MakeBundle("spiffe://a.org");
  EXPECT_THAT(ds().CreateFederationRelationship(again), StatusIs(StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(bundle, ds().FetchBundle("spiffe://a.org"));
  EXPECT_TRUE(Same(bundle, fr.trust_domain_bundle()));
}

TEST_P(DatastoreFederationTest, ListPagesInTrustDomainOrder) {
  for (const char* td : {"c.org", "a.org", "d.org", "b.org", "e.org"}) {
    ASSERT_OK(ds().CreateFederationRelationship(Web(td)));
  }
  ASSERT_OK(ds().CreateBundle(MakeBundle("spiffe://b.org")));
  auto tds = [](const v1::ListFederationRelationshipsResponse& r) {
    std::vector<std::string> out;
    for (const auto& fr : r.relationships()) out.push_back(fr.trust_domain());
    return out;
  };
  ASSERT_OK_AND_ASSIGN(auto all, ds().ListFederationRelationships({}));
  EXPECT_THAT(tds(all), ElementsAre("a.org", "b.org", "c.org", "d.org", "e.org"));
  EXPECT_FALSE(all.has_pagination());
  EXPECT_TRUE(all.relationships(1).has_trust_domain_bundle());
  EXPECT_FALSE(all.relationships(0).has_trust_domain_bundle());

  v1::ListFederationRelationshipsRequest r;
  r.mutable_pagination()->set_page_size(2);
  std::vector<std::string> seen;
  std::vector<int> sizes;
  for (int guard = 0; guard < 10; ++guard) {
    ASSERT_OK_AND_ASSIGN(auto page, ds().ListFederationRelationships(r));
    EXPECT_EQ(page.pagination().page_size(), 2);
    sizes.push_back(page.relationships_size());
    for (const auto& td : tds(page)) seen.push_back(td);
    if (page.pagination().token().empty()) break;
    r.mutable_pagination()->set_token(page.pagination().token());
  }
  EXPECT_THAT(seen, ElementsAre("a.org", "b.org", "c.org", "d.org", "e.org"));
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));

  r.mutable_pagination()->set_page_size(0);
  EXPECT_THAT(ds().ListFederationRelationships(r),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
}

TEST_P(DatastoreFederationTest, UpdateFollowsTheMask) {
  ASSERT_OK(ds().CreateFederationRelationship(Spiffe("a.org")));
  ASSERT_OK(ds().CreateBundle(MakeBundle("spiffe://a.org")));

  v1::FederationRelationship change = Web("a.org");
  change.set_bundle_endpoint_url("https://elsewhere.org/bundle");
  v1::FederationRelationshipMask mask;
  mask.set_bundle_endpoint_url(true);
  ASSERT_OK_AND_ASSIGN(auto updated, ds().UpdateFederationRelationship(change, mask));
  EXPECT_EQ(updated.bundle_endpoint_url(), "https://elsewhere.org/bundle");
  EXPECT_EQ(updated.bundle_endpoint_profile(), "https_spiffe");
  EXPECT_EQ(updated.endpoint_spiffe_id(), "spiffe://a.org/spire/server");
  EXPECT_TRUE(updated.has_trust_domain_bundle());

  // Switching to https_web drops the endpoint SPIFFE ID from reads.
  mask = v1::FederationRelationshipMask();
  mask.set_bundle_endpoint_profile(true);
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateFederationRelationship(change, mask));
  EXPECT_EQ(updated.bundle_endpoint_profile(), "https_web");
  EXPECT_EQ(updated.endpoint_spiffe_id(), "");
  ASSERT_OK_AND_ASSIGN(auto fetched, ds().FetchFederationRelationship("a.org"));
  EXPECT_TRUE(Same(fetched, updated));

  // Only masked fields are validated.
  v1::FederationRelationship partial;
  partial.set_trust_domain("a.org");
  partial.set_bundle_endpoint_profile("https_spiffe");  // without an ID: invalid if masked
  EXPECT_THAT(
      ds().UpdateFederationRelationship(partial, mask),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("bundle endpoint SPIFFE ID is required")));
  v1::FederationRelationshipMask url_only;
  url_only.set_bundle_endpoint_url(true);
  EXPECT_THAT(ds().UpdateFederationRelationship(partial, url_only),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bundle endpoint URL is required")));

  // The bundle bit with a bundle sets it; without a bundle it changes nothing.
  v1::FederationRelationshipMask bundle_mask;
  bundle_mask.set_trust_domain_bundle(true);
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateFederationRelationship(partial, bundle_mask));
  ASSERT_OK_AND_ASSIGN(v1::Bundle before, ds().FetchBundle("spiffe://a.org"));
  EXPECT_TRUE(Same(updated.trust_domain_bundle(), before));
  v1::FederationRelationship with_bundle = partial;
  v1::Bundle new_bundle = MakeBundle("spiffe://a.org", 4102444800, "kid-2");
  new_bundle.set_sequence_number(77);
  *with_bundle.mutable_trust_domain_bundle() = new_bundle;
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateFederationRelationship(with_bundle, bundle_mask));
  EXPECT_TRUE(Same(updated.trust_domain_bundle(), new_bundle));
  EXPECT_EQ(updated.bundle_endpoint_profile(), "https_web");  // not masked: unchanged
  ASSERT_OK_AND_ASSIGN(v1::Bundle after, ds().FetchBundle("spiffe://a.org"));
  EXPECT_TRUE(Same(after, new_bundle));

  EXPECT_THAT(ds().UpdateFederationRelationship(Web("missing.org"), url_only),
              StatusIs(StatusCode::kNotFound, HasSubstr("federation relationship")));
}

// ---- CA journals

TEST_P(DatastoreJournalsTest, SetCreatesThenOverwrites) {
  ASSERT_OK_AND_ASSIGN(v1::CAJournal first, ds().SetCAJournal(Journal(0, "auth-1", "d1")));
  EXPECT_GT(first.id(), 0);
  ASSERT_OK_AND_ASSIGN(v1::CAJournal second, ds().SetCAJournal(Journal(0, "auth-2", "d2")));
  EXPECT_GT(second.id(), first.id());

  ASSERT_OK_AND_ASSIGN(v1::CAJournal overwritten,
                       ds().SetCAJournal(Journal(first.id(), "auth-3", "d3")));
  EXPECT_EQ(overwritten.id(), first.id());
  ASSERT_OK_AND_ASSIGN(v1::CAJournal fetched, ds().FetchCAJournal("auth-3"));
  EXPECT_TRUE(Same(fetched, Journal(first.id(), "auth-3", "d3")));
  EXPECT_THAT(ds().FetchCAJournal("auth-1"), StatusIs(StatusCode::kNotFound));

  EXPECT_THAT(ds().SetCAJournal(Journal(second.id() + 100, "auth", "d")),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().SetCAJournal(Journal(-1, "auth", "d")), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ds().FetchCAJournal(""), StatusIs(StatusCode::kInvalidArgument,
                                                HasSubstr("active X509 authority ID is required")));

  auto all = ds().ListCAJournalsForTesting();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id(), first.id());
  EXPECT_EQ(all[1].id(), second.id());
}

TEST_P(DatastoreJournalsTest, FetchReturnsTheNewestJournalOfTheAuthority) {
  ASSERT_OK_AND_ASSIGN(auto a, ds().SetCAJournal(Journal(0, "auth", "first")));
  ASSERT_OK_AND_ASSIGN(auto b, ds().SetCAJournal(Journal(0, "other", "x")));
  ASSERT_OK_AND_ASSIGN(auto c, ds().SetCAJournal(Journal(0, "auth", "second")));
  ASSERT_OK_AND_ASSIGN(auto fetched, ds().FetchCAJournal("auth"));
  EXPECT_EQ(fetched.id(), c.id());
  EXPECT_EQ(fetched.data(), "second");
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchCAJournal("other"));
  EXPECT_EQ(fetched.id(), b.id());
  (void)a;
}

TEST_P(DatastoreJournalsTest, IdsAreUniqueAcrossReplicasAndNeverReused) {
  ASSERT_OK_AND_ASSIGN(auto replica, OpenReplica());
  std::vector<int64_t> ids_a, ids_b;
  Status error_a, error_b;
  std::thread a([&] {
    for (int i = 0; i < 10 && error_a.ok(); ++i) {
      auto j = ds().SetCAJournal(Journal(0, "a", JournalData({1}, {})));
      if (j.ok())
        ids_a.push_back(j->id());
      else
        error_a = j.status();
    }
  });
  std::thread b([&] {
    for (int i = 0; i < 10 && error_b.ok(); ++i) {
      auto j = replica.ds->SetCAJournal(Journal(0, "b", JournalData({1}, {})));
      if (j.ok())
        ids_b.push_back(j->id());
      else
        error_b = j.status();
    }
  });
  a.join();
  b.join();
  ASSERT_OK(error_a);
  ASSERT_OK(error_b);
  std::set<int64_t> all(ids_a.begin(), ids_a.end());
  all.insert(ids_b.begin(), ids_b.end());
  EXPECT_EQ(all.size(), 20u);

  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneCAJournals(10));
  EXPECT_EQ(pruned, 20);
  ASSERT_OK_AND_ASSIGN(auto next, ds().SetCAJournal(Journal(0, "a", "d")));
  EXPECT_GT(next.id(), *all.rbegin());
}

TEST_P(DatastoreJournalsTest, PruneDeletesJournalsWhoseEveryCaAndJwtKeyExpired) {
  ASSERT_OK_AND_ASSIGN(auto expired,
                       ds().SetCAJournal(Journal(0, "a", JournalData({100, 200}, {150}))));
  ASSERT_OK_AND_ASSIGN(auto at_limit,
                       ds().SetCAJournal(Journal(0, "b", JournalData({200}, {200}))));
  ASSERT_OK_AND_ASSIGN(auto live_ca,
                       ds().SetCAJournal(Journal(0, "c", JournalData({100, 300}, {}))));
  ASSERT_OK_AND_ASSIGN(auto live_jwt,
                       ds().SetCAJournal(Journal(0, "d", JournalData({100}, {300}))));
  ASSERT_OK_AND_ASSIGN(auto wit_only,
                       ds().SetCAJournal(Journal(0, "e", JournalData({100}, {}, {900}))));
  ASSERT_OK_AND_ASSIGN(auto empty, ds().SetCAJournal(Journal(0, "f", JournalData({}, {}))));

  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneCAJournals(200));
  EXPECT_EQ(pruned, 4);
  std::vector<int64_t> left;
  for (const auto& j : ds().ListCAJournalsForTesting()) left.push_back(j.id());
  EXPECT_THAT(left, ElementsAre(live_ca.id(), live_jwt.id()));
  (void)expired;
  (void)at_limit;
  (void)wit_only;
  (void)empty;

  // A journal whose data does not parse fails the prune; nothing is deleted.
  ASSERT_OK(ds().SetCAJournal(Journal(0, "g", std::string("\xff\xff\xff", 3))));
  EXPECT_THAT(ds().PruneCAJournals(1000), StatusIs(StatusCode::kInternal));
  EXPECT_EQ(ds().ListCAJournalsForTesting().size(), 3u);
}

TEST_P(DatastoreJournalsTest, JournalAndFederationChangesReachSubscribers) {
  ChangeCollector feed(ds());
  ASSERT_OK_AND_ASSIGN(auto j, ds().SetCAJournal(Journal(0, "a", JournalData({1}, {}))));
  ASSERT_OK(ds().CreateFederationRelationship(Web("a.org")));
  ASSERT_OK(ds().DeleteFederationRelationship("a.org"));
  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneCAJournals(10));
  ASSERT_EQ(pruned, 1);
  auto changes = feed.WaitFor(4);
  ASSERT_EQ(changes.size(), 4u);  // journal-next is not an object: no change for it
  EXPECT_EQ(changes[0].kind(), v1::DataStoreChange::KIND_CA_JOURNAL);
  EXPECT_EQ(changes[0].id(), std::to_string(j.id()));
  EXPECT_EQ(changes[0].ca_journal().active_x509_authority_id(), "a");
  EXPECT_EQ(changes[1].kind(), v1::DataStoreChange::KIND_FEDERATION_RELATIONSHIP);
  EXPECT_EQ(changes[2].kind(), v1::DataStoreChange::KIND_FEDERATION_RELATIONSHIP);
  EXPECT_TRUE(changes[2].deleted());
  EXPECT_EQ(changes[3].kind(), v1::DataStoreChange::KIND_CA_JOURNAL);
  EXPECT_TRUE(changes[3].deleted());
}

PLINTH_INSTANTIATE_DATASTORE_TEST(DatastoreTokensTest);
PLINTH_INSTANTIATE_DATASTORE_TEST(DatastoreFederationTest);
PLINTH_INSTANTIATE_DATASTORE_TEST(DatastoreJournalsTest);

}  // namespace
}  // namespace plinth::datastore
