// Bundles (spec §C2) on every backend: CRUD, masks, append, list pages, DeleteBundle in its
// three modes (also as seen by a second replica, and chunked to the store's limits), the
// Restrict invariant under concurrent replicas, PruneBundle with plinth's deviations, and
// taint/revoke of X.509 roots and JWT keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "datastore/testing/datastore_fixture.h"
#include "store/fault/fault_injection_store.h"

namespace plinth::datastore {
namespace {

using testing::DatastoreTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeBundle;
using testing::MakeEntry;
using testing::OpLimitedStore;

using DatastoreBundlesTest = DatastoreTest;

constexpr char kTd[] = "spiffe://example.org";
constexpr char kFed[] = "spiffe://federated.org";
constexpr int64_t kNow = 1767225600;  // the fixture's wall clock: 2026-01-01T00:00:00Z
constexpr int64_t kDay = 86400;

// Lowercase hex of the first certificate's Subject Key Identifier.
std::string SkidOf(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));  // NOLINT(google-runtime-int)
  if (cert == nullptr) return "";
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(cert);
  std::string hex;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 0; skid != nullptr && i < ASN1_STRING_length(skid); ++i) {
    const unsigned char b = ASN1_STRING_get0_data(skid)[i];
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  X509_free(cert);
  return hex;
}

v1::PublicKey Key(const std::string& kid, int64_t not_after, bool tainted = false) {
  v1::PublicKey k;
  k.set_pkix_bytes("pkix-" + kid);
  k.set_kid(kid);
  k.set_not_after(not_after);
  k.set_tainted_key(tainted);
  return k;
}

v1::X509Certificate Root(int64_t not_after) {
  return MakeBundle("spiffe://unused", not_after).root_cas(0);
}

std::vector<std::string> Tds(const v1::ListBundlesResponse& r) {
  std::vector<std::string> out;
  for (const auto& b : r.bundles()) out.push_back(b.trust_domain_id());
  return out;
}

std::vector<std::string> Kids(const google::protobuf::RepeatedPtrField<v1::PublicKey>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.kid());
  return out;
}

bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

v1::RegistrationEntry Federating(const std::string& spiffe_id,
                                 const std::vector<std::string>& tds) {
  v1::RegistrationEntry e = MakeEntry(spiffe_id, "spiffe://example.org/agent", {"u:1"});
  for (const auto& td : tds) e.add_federates_with(td);
  return e;
}

TEST_P(DatastoreBundlesTest, CreateFetchCountAndList) {
  const v1::Bundle b = MakeBundle(kTd, kNow + kDay, "kid-1");
  ASSERT_OK_AND_ASSIGN(v1::Bundle created, ds().CreateBundle(b));
  EXPECT_TRUE(Same(created, b));
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, b));
  EXPECT_THAT(ds().CreateBundle(b), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(ds().FetchBundle("spiffe://missing"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().CreateBundle(v1::Bundle()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("trust_domain_id")));

  for (const char* td : {"spiffe://c.org", "spiffe://a.org", "spiffe://b.org"}) {
    ASSERT_OK(ds().CreateBundle(MakeBundle(td)));
  }
  ASSERT_OK_AND_ASSIGN(int64_t count, ds().CountBundles());
  EXPECT_EQ(count, 4);

  ASSERT_OK_AND_ASSIGN(auto all, ds().ListBundles({}));
  EXPECT_THAT(Tds(all), ElementsAre("spiffe://a.org", "spiffe://b.org", "spiffe://c.org", kTd));
  EXPECT_FALSE(all.has_pagination());

  v1::ListBundlesRequest r;
  r.mutable_pagination()->set_page_size(3);
  ASSERT_OK_AND_ASSIGN(auto page1, ds().ListBundles(r));
  EXPECT_THAT(Tds(page1), ElementsAre("spiffe://a.org", "spiffe://b.org", "spiffe://c.org"));
  EXPECT_EQ(page1.pagination().page_size(), 3);
  ASSERT_FALSE(page1.pagination().token().empty());
  r.mutable_pagination()->set_token(page1.pagination().token());
  ASSERT_OK_AND_ASSIGN(auto page2, ds().ListBundles(r));
  EXPECT_THAT(Tds(page2), ElementsAre(kTd));
  EXPECT_EQ(page2.pagination().token(), "");

  r.mutable_pagination()->set_token("");
  r.mutable_pagination()->set_page_size(4);
  ASSERT_OK_AND_ASSIGN(auto exact, ds().ListBundles(r));
  EXPECT_EQ(exact.bundles_size(), 4);
  EXPECT_EQ(exact.pagination().token(), "");

  r.mutable_pagination()->set_page_size(0);
  EXPECT_THAT(ds().ListBundles(r), StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
  r.mutable_pagination()->set_page_size(1);
  r.mutable_pagination()->set_token("!!");
  EXPECT_THAT(ds().ListBundles(r), StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(DatastoreBundlesTest, UpdateBundleWritesTheMaskedFields) {
  v1::Bundle original = MakeBundle(kTd, kNow + kDay);
  original.set_refresh_hint(60);
  original.set_sequence_number(7);
  *original.add_jwt_signing_keys() = Key("old-jwt", kNow + kDay);
  *original.add_wit_signing_keys() = Key("old-wit", kNow + kDay);
  ASSERT_OK(ds().CreateBundle(original));

  v1::Bundle change = MakeBundle(kTd, kNow + 2 * kDay);
  change.set_refresh_hint(120);
  change.set_sequence_number(42);
  *change.add_jwt_signing_keys() = Key("new-jwt", kNow + kDay);
  *change.add_wit_signing_keys() = Key("new-wit", kNow + kDay);

  v1::BundleMask mask;
  mask.set_refresh_hint(true);
  mask.set_jwt_signing_keys(true);
  ASSERT_OK_AND_ASSIGN(v1::Bundle updated, ds().UpdateBundle(change, &mask));
  EXPECT_EQ(updated.refresh_hint(), 120);
  EXPECT_THAT(Kids(updated.jwt_signing_keys()), ElementsAre("new-jwt"));
  EXPECT_THAT(Kids(updated.wit_signing_keys()), ElementsAre("old-wit"));
  EXPECT_TRUE(Same(updated.root_cas(0), original.root_cas(0)));
  EXPECT_EQ(updated.sequence_number(), 7u);

  mask = v1::BundleMask();
  mask.set_root_cas(true);
  mask.set_wit_signing_keys(true);
  mask.set_sequence_number(true);
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateBundle(change, &mask));
  EXPECT_TRUE(Same(updated.root_cas(0), change.root_cas(0)));
  EXPECT_THAT(Kids(updated.wit_signing_keys()), ElementsAre("new-wit"));
  EXPECT_EQ(updated.sequence_number(), 42u);
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, updated));

  // No mask: the caller's bundle wins entirely, sequence number included.
  change.set_sequence_number(3);
  change.clear_wit_signing_keys();
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateBundle(change, nullptr));
  EXPECT_TRUE(Same(updated, change));

  EXPECT_THAT(ds().UpdateBundle(MakeBundle("spiffe://missing"), nullptr),
              StatusIs(StatusCode::kNotFound));
}

TEST_P(DatastoreBundlesTest, SetBundleCreatesOrOverwrites) {
  v1::Bundle b = MakeBundle(kTd);
  b.set_sequence_number(5);
  ASSERT_OK_AND_ASSIGN(v1::Bundle set, ds().SetBundle(b));
  EXPECT_TRUE(Same(set, b));
  v1::Bundle replacement = MakeBundle(kTd, kNow + kDay);
  replacement.set_refresh_hint(30);
  ASSERT_OK(ds().SetBundle(replacement));
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, replacement));
  EXPECT_EQ(fetched.sequence_number(), 0u);
}

TEST_P(DatastoreBundlesTest, AppendBundleMergesAndBumpsTheSequenceNumber) {
  v1::Bundle first = MakeBundle(kTd, kNow + kDay);
  first.set_refresh_hint(60);
  first.set_sequence_number(1);
  *first.add_jwt_signing_keys() = Key("k1", kNow + kDay);
  ASSERT_OK_AND_ASSIGN(v1::Bundle appended, ds().AppendBundle(first));  // absent: created
  EXPECT_TRUE(Same(appended, first));

  // Nothing new: unchanged, sequence number included.
  v1::Bundle same = first;
  same.set_refresh_hint(999);
  ASSERT_OK_AND_ASSIGN(appended, ds().AppendBundle(same));
  EXPECT_TRUE(Same(appended, first));

  v1::Bundle more;
  more.set_trust_domain_id(kTd);
  more.set_refresh_hint(999);
  *more.add_root_cas() = first.root_cas(0);  // present
  v1::X509Certificate tainted = first.root_cas(0);
  tainted.set_tainted_key(true);  // differs in tainted_key only: a new item
  *more.add_root_cas() = tainted;
  *more.add_jwt_signing_keys() = Key("k1", kNow + kDay);  // present
  *more.add_jwt_signing_keys() = Key("k2", kNow + kDay);
  *more.add_jwt_signing_keys() = Key("k2", kNow + kDay);  // repeated in the input
  *more.add_wit_signing_keys() = Key("w1", kNow + kDay);
  ASSERT_OK_AND_ASSIGN(appended, ds().AppendBundle(more));
  ASSERT_EQ(appended.root_cas_size(), 2);
  EXPECT_TRUE(appended.root_cas(1).tainted_key());
  EXPECT_THAT(Kids(appended.jwt_signing_keys()), ElementsAre("k1", "k2"));
  EXPECT_THAT(Kids(appended.wit_signing_keys()), ElementsAre("w1"));
  EXPECT_EQ(appended.refresh_hint(), 60);  // never merged
  EXPECT_EQ(appended.sequence_number(), 2u);
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, appended));
}

TEST_P(DatastoreBundlesTest, DeleteBundleRestrictFailsWhileEntriesFederate) {
  EXPECT_THAT(ds().DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  v1::FederationRelationship fr;
  fr.set_trust_domain("federated.org");
  fr.set_bundle_endpoint_url("https://federated.org/bundle");
  fr.set_bundle_endpoint_profile("https_web");
  ASSERT_OK(ds().CreateFederationRelationship(fr));
  ASSERT_OK_AND_ASSIGN(auto e1,
                       ds().CreateRegistrationEntry(Federating("spiffe://example.org/1", {kFed})));
  ASSERT_OK_AND_ASSIGN(auto e2,
                       ds().CreateRegistrationEntry(Federating("spiffe://example.org/2", {kFed})));

  EXPECT_THAT(ds().DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("cannot delete bundle; federated with 2 registration entries")));
  EXPECT_THAT(ds().FetchBundle(kFed), IsOk());

  ASSERT_OK(ds().DeleteRegistrationEntry(e1.entry_id()));
  ASSERT_OK(ds().DeleteRegistrationEntry(e2.entry_id()));
  ASSERT_OK(ds().DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT));
  EXPECT_THAT(ds().FetchBundle(kFed), StatusIs(StatusCode::kNotFound));
  // The federation relationship stays.
  EXPECT_THAT(ds().FetchFederationRelationship("federated.org"), IsOk());
  EXPECT_THAT(ds().DeleteBundle(kFed, static_cast<v1::DeleteBundleMode>(7)),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_P(DatastoreBundlesTest, DeleteBundleDeleteModeDeletesFederatingEntriesOnEveryReplica) {
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  ASSERT_OK(ds().CreateBundle(MakeBundle("spiffe://other.org")));
  ASSERT_OK_AND_ASSIGN(auto fed,
                       ds().CreateRegistrationEntry(Federating("spiffe://example.org/1", {kFed})));
  ASSERT_OK_AND_ASSIGN(auto both, ds().CreateRegistrationEntry(Federating(
                                      "spiffe://example.org/2", {"spiffe://other.org", kFed})));
  ASSERT_OK_AND_ASSIGN(auto other, ds().CreateRegistrationEntry(Federating(
                                       "spiffe://example.org/3", {"spiffe://other.org"})));
  ASSERT_OK_AND_ASSIGN(auto replica, OpenReplica());
  ASSERT_OK(replica.ds->mirror().Sync(std::chrono::seconds(10)));

  ASSERT_OK(replica.ds->DeleteBundle(kFed, v1::DELETE_BUNDLE_DELETE));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_THAT(ds().FetchBundle(kFed), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(fed.entry_id()), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(both.entry_id()), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(other.entry_id()), IsOk());
  // The deleted entries' similar-entry guards went with them: the same entry can come back.
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  ASSERT_OK_AND_ASSIGN(auto again, ds().CreateOrReturnRegistrationEntry(
                                       Federating("spiffe://example.org/1", {kFed})));
  EXPECT_FALSE(again.existing);
}

TEST_P(DatastoreBundlesTest, DeleteBundleDissociateModeUnlinksEntriesOnEveryReplica) {
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  ASSERT_OK(ds().CreateBundle(MakeBundle("spiffe://other.org")));
  ASSERT_OK_AND_ASSIGN(auto both, ds().CreateRegistrationEntry(Federating(
                                      "spiffe://example.org/2", {"spiffe://other.org", kFed})));
  ASSERT_OK_AND_ASSIGN(auto replica, OpenReplica());

  ASSERT_OK(ds().DeleteBundle(kFed, v1::DELETE_BUNDLE_DISSOCIATE));
  EXPECT_THAT(ds().FetchBundle(kFed), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(replica.ds->mirror().Sync(std::chrono::seconds(10)));
  ASSERT_OK_AND_ASSIGN(EntryPtr seen, replica.ds->FetchRegistrationEntry(both.entry_id()));
  EXPECT_THAT(seen->federates_with(), ElementsAre("spiffe://other.org"));
  EXPECT_EQ(seen->revision_number(), both.revision_number() + 1);
  EXPECT_THAT(replica.ds->FetchBundle(kFed), StatusIs(StatusCode::kNotFound));

  // Nothing federates with it any more: a new bundle of that name can go in Restrict mode.
  ASSERT_OK(replica.ds->CreateBundle(MakeBundle(kFed)));
  ASSERT_OK(replica.ds->DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT));
}

TEST_P(DatastoreBundlesTest, DeleteBundleSplitsLargeEntrySetsIntoSeveralTransactions) {
  // Each entry write is 3 ops (entry, similar key, fedlink): two fit in 7 ops per transaction.
  OpLimitedStore limited(&store(), 7);
  ASSERT_OK_AND_ASSIGN(auto small, DataStore::Open(&limited, Options()));
  for (const auto mode : {v1::DELETE_BUNDLE_DELETE, v1::DELETE_BUNDLE_DISSOCIATE}) {
    SCOPED_TRACE(mode);
    ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
    std::vector<std::string> ids;
    for (int i = 0; i < 7; ++i) {
      ASSERT_OK_AND_ASSIGN(
          auto e,
          ds().CreateRegistrationEntry(Federating(
              "spiffe://example.org/m" + std::to_string(mode) + "/" + std::to_string(i), {kFed})));
      ids.push_back(e.entry_id());
    }
    ASSERT_OK(small->mirror().Sync(std::chrono::seconds(10)));
    const int commits_before = limited.commits();
    ASSERT_OK(small->DeleteBundle(kFed, mode));
    // Delete: 2 entries per transaction (4 commits); Dissociate rewrites only the entry and
    // its fedlink, 3 per transaction (3 commits).
    EXPECT_GE(limited.commits() - commits_before, mode == v1::DELETE_BUNDLE_DELETE ? 4 : 3);
    ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
    EXPECT_THAT(ds().FetchBundle(kFed), StatusIs(StatusCode::kNotFound));
    for (const std::string& id : ids) {
      auto e = ds().FetchRegistrationEntry(id);
      if (mode == v1::DELETE_BUNDLE_DELETE) {
        EXPECT_THAT(e, StatusIs(StatusCode::kNotFound)) << id;
      } else {
        ASSERT_THAT(e, IsOk()) << id;
        EXPECT_THAT((*e)->federates_with(), IsEmpty()) << id;
      }
    }
  }
}

// One replica creates an entry federating with a bundle while another deletes the bundle in
// Restrict mode: never may both succeed (the entry would point at a missing bundle).
TEST_P(DatastoreBundlesTest, RestrictDeleteAndFederatingCreateNeverBothSucceed) {
  ASSERT_OK_AND_ASSIGN(auto replica, OpenReplica());
  const int rounds = GetParam().name == "memory" || GetParam().name == "sqlite" ? 20 : 8;
  int creates_won = 0;
  int deletes_won = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string td = "spiffe://race" + std::to_string(i) + ".org";
    ASSERT_OK(ds().CreateBundle(MakeBundle(td)));
    ASSERT_OK(replica.ds->mirror().Sync(std::chrono::seconds(10)));

    std::latch start(2);
    StatusOr<v1::RegistrationEntry> created = UnknownError("not run");
    Status deleted = UnknownError("not run");
    std::thread creator([&] {
      start.arrive_and_wait();
      created = ds().CreateRegistrationEntry(
          Federating("spiffe://example.org/race/" + std::to_string(i), {td}));
    });
    std::thread deleter([&] {
      start.arrive_and_wait();
      // Vary who gets ahead, so that both orders (and near-ties) occur on fast backends.
      std::this_thread::sleep_for(std::chrono::microseconds(150 * (i % 4)));
      deleted = replica.ds->DeleteBundle(td, v1::DELETE_BUNDLE_RESTRICT);
    });
    creator.join();
    deleter.join();

    ASSERT_NE(created.ok(), deleted.ok())
        << "round " << i << ": create " << created.status() << ", delete " << deleted;
    ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
    if (created.ok()) {
      ++creates_won;
      EXPECT_THAT(deleted, StatusIs(StatusCode::kFailedPrecondition));
      EXPECT_THAT(ds().FetchBundle(td), IsOk());
      ASSERT_OK_AND_ASSIGN(EntryPtr e, ds().FetchRegistrationEntry(created->entry_id()));
      EXPECT_THAT(e->federates_with(), ElementsAre(td));
    } else {
      ++deletes_won;
      EXPECT_THAT(ds().FetchBundle(td), StatusIs(StatusCode::kNotFound));
      v1::CountRegistrationEntriesRequest count;
      count.mutable_by_federates_with()->add_trust_domains(td);
      count.mutable_by_federates_with()->set_match(v1::MATCH_ANY);
      ASSERT_OK_AND_ASSIGN(int64_t n, ds().CountRegistrationEntries(count));
      EXPECT_EQ(n, 0);
    }
  }
  RecordProperty("creates_won", creates_won);
  RecordProperty("deletes_won", deletes_won);
}

// The same race, made deterministic: each side's commit is held after it planned while the
// other side commits. The held side must then abort, re-plan and fail.
TEST_P(DatastoreBundlesTest, RestrictDeletePlannedBeforeAFederatingCreateFails) {
  store::FaultInjectionStore gated(&store());
  ASSERT_OK_AND_ASSIGN(auto replica, DataStore::Open(&gated, Options()));
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  ASSERT_OK(replica->mirror().Sync(std::chrono::seconds(10)));

  gated.HoldCommits();
  Status deleted;
  std::thread deleter([&] { deleted = replica->DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT); });
  ASSERT_TRUE(gated.WaitForHeldCommits(
      1, std::chrono::seconds(
             10)));  // the delete planned with no federating entry and waits to commit
  ASSERT_OK_AND_ASSIGN(auto entry,
                       ds().CreateRegistrationEntry(Federating("spiffe://example.org/1", {kFed})));
  gated.ReleaseCommits();
  deleter.join();
  EXPECT_THAT(deleted, StatusIs(StatusCode::kFailedPrecondition,
                                HasSubstr("federated with 1 registration entries")));
  EXPECT_THAT(ds().FetchBundle(kFed), IsOk());
  EXPECT_THAT(ds().FetchRegistrationEntry(entry.entry_id()), IsOk());
}

TEST_P(DatastoreBundlesTest, FederatingCreatePlannedBeforeARestrictDeleteFails) {
  store::FaultInjectionStore gated(&store());
  ASSERT_OK_AND_ASSIGN(auto replica, DataStore::Open(&gated, Options()));
  ASSERT_OK(ds().CreateBundle(MakeBundle(kFed)));
  ASSERT_OK(replica->mirror().Sync(std::chrono::seconds(10)));

  gated.HoldCommits();
  StatusOr<v1::RegistrationEntry> created = UnknownError("not run");
  std::thread creator([&] {
    created = replica->CreateRegistrationEntry(Federating("spiffe://example.org/1", {kFed}));
  });
  ASSERT_TRUE(gated.WaitForHeldCommits(1, std::chrono::seconds(10)));
  ASSERT_OK(ds().DeleteBundle(kFed, v1::DELETE_BUNDLE_RESTRICT));
  gated.ReleaseCommits();
  creator.join();
  EXPECT_FALSE(created.ok());
  ASSERT_OK(replica->mirror().Sync(std::chrono::seconds(10)));
  v1::CountRegistrationEntriesRequest count;
  ASSERT_OK_AND_ASSIGN(int64_t n, replica->CountRegistrationEntries(count));
  EXPECT_EQ(n, 0);
}

TEST_P(DatastoreBundlesTest, PruneBundleDropsExpiredRootsAndKeys) {
  ASSERT_OK_AND_ASSIGN(bool absent_changed, ds().PruneBundle("spiffe://missing", kNow));
  EXPECT_FALSE(absent_changed);

  v1::Bundle b;
  b.set_trust_domain_id(kTd);
  b.set_refresh_hint(300);
  b.set_sequence_number(10);
  const v1::X509Certificate long_lived = Root(kNow + 10 * kDay);
  const v1::X509Certificate short_lived = Root(kNow + kDay);
  v1::X509Certificate chain;  // one long-lived and one short-lived certificate
  chain.set_der_bytes(long_lived.der_bytes() + short_lived.der_bytes());
  *b.add_root_cas() = long_lived;
  *b.add_root_cas() = chain;
  *b.add_root_cas() = short_lived;
  *b.add_jwt_signing_keys() = Key("never", 0);
  *b.add_jwt_signing_keys() = Key("at-limit", kNow + 2 * kDay);
  *b.add_jwt_signing_keys() = Key("later", kNow + 3 * kDay);
  *b.add_wit_signing_keys() = Key("wit-never", 0);
  *b.add_wit_signing_keys() = Key("wit-soon", kNow + kDay);
  ASSERT_OK(ds().CreateBundle(b));

  EXPECT_THAT(ds().PruneBundle(kTd, 0), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(bool changed, ds().PruneBundle(kTd, kNow));
  EXPECT_FALSE(changed);
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, b));

  // NotAfter <= t goes: the chain goes as a whole because of its short-lived member.
  ASSERT_OK_AND_ASSIGN(changed, ds().PruneBundle(kTd, kNow + 2 * kDay));
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle(kTd));
  ASSERT_EQ(fetched.root_cas_size(), 1);
  EXPECT_TRUE(Same(fetched.root_cas(0), long_lived));
  EXPECT_THAT(Kids(fetched.jwt_signing_keys()), ElementsAre("never", "later"));
  EXPECT_THAT(Kids(fetched.wit_signing_keys()), ElementsAre("wit-never"));
  EXPECT_EQ(fetched.sequence_number(), 11u);
  EXPECT_EQ(fetched.refresh_hint(), 300);  // plinth keeps it (SPIRE resets it to 0)

  // Keys with not_after = 0 never expire, however late t is; "would prune all" does not
  // trigger for them.
  ASSERT_OK_AND_ASSIGN(changed, ds().PruneBundle(kTd, kNow + 5 * kDay));
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle(kTd));
  EXPECT_THAT(Kids(fetched.jwt_signing_keys()), ElementsAre("never"));
  EXPECT_EQ(fetched.sequence_number(), 12u);
}

TEST_P(DatastoreBundlesTest, PruneBundleRefusesToEmptyTheBundle) {
  v1::Bundle b;
  b.set_trust_domain_id(kTd);
  *b.add_root_cas() = Root(kNow + kDay);
  ASSERT_OK(ds().CreateBundle(b));
  EXPECT_THAT(
      ds().PruneBundle(kTd, kNow + kDay),
      StatusIs(StatusCode::kUnknown, HasSubstr("prune failed: would prune all certificates")));

  v1::Bundle jwt;
  jwt.set_trust_domain_id("spiffe://jwt.org");
  *jwt.add_root_cas() = Root(kNow + 10 * kDay);
  *jwt.add_jwt_signing_keys() = Key("a", kNow + kDay);
  *jwt.add_jwt_signing_keys() = Key("b", kNow + 2 * kDay);
  ASSERT_OK(ds().CreateBundle(jwt));
  EXPECT_THAT(ds().PruneBundle("spiffe://jwt.org", kNow + 2 * kDay),
              StatusIs(StatusCode::kUnknown, HasSubstr("would prune all JWT signing keys")));

  v1::Bundle wit;
  wit.set_trust_domain_id("spiffe://wit.org");
  *wit.add_root_cas() = Root(kNow + 10 * kDay);
  *wit.add_wit_signing_keys() = Key("w", kNow + kDay);
  ASSERT_OK(ds().CreateBundle(wit));
  EXPECT_THAT(ds().PruneBundle("spiffe://wit.org", kNow + kDay),
              StatusIs(StatusCode::kUnknown, HasSubstr("would prune all WIT signing keys")));

  v1::Bundle no_roots;
  no_roots.set_trust_domain_id("spiffe://empty.org");
  ASSERT_OK(ds().CreateBundle(no_roots));
  EXPECT_THAT(ds().PruneBundle("spiffe://empty.org", kNow),
              StatusIs(StatusCode::kUnknown, HasSubstr("would prune all certificates")));

  v1::Bundle garbage;
  garbage.set_trust_domain_id("spiffe://garbage.org");
  garbage.add_root_cas()->set_der_bytes("not DER");
  ASSERT_OK(ds().CreateBundle(garbage));
  EXPECT_THAT(ds().PruneBundle("spiffe://garbage.org", kNow),
              StatusIs(StatusCode::kUnknown, HasSubstr("root_cas[0]")));

  // Failed prunes change nothing.
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(Same(fetched, b));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle("spiffe://jwt.org"));
  EXPECT_TRUE(Same(fetched, jwt));
}

TEST_P(DatastoreBundlesTest, TaintAndRevokeX509CA) {
  v1::Bundle b;
  b.set_trust_domain_id(kTd);
  b.set_sequence_number(1);
  *b.add_root_cas() = Root(kNow + kDay);
  *b.add_root_cas() = Root(kNow + 2 * kDay);
  ASSERT_OK(ds().CreateBundle(b));
  const std::string skid = SkidOf(b.root_cas(0).der_bytes());
  ASSERT_FALSE(skid.empty()) << "the fixture's certificates carry a Subject Key Identifier";
  ASSERT_NE(skid, SkidOf(b.root_cas(1).der_bytes()));

  EXPECT_THAT(ds().TaintX509CA("spiffe://missing", skid), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(
      ds().TaintX509CA(kTd, "00ff"),
      StatusIs(StatusCode::kNotFound, HasSubstr("no ca found with provided subject key ID")));
  EXPECT_THAT(ds().RevokeX509CA(kTd, skid),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("it is not possible to revoke an untainted root CA")));

  ASSERT_OK(ds().TaintX509CA(kTd, skid));
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(fetched.root_cas(0).tainted_key());
  EXPECT_FALSE(fetched.root_cas(1).tainted_key());
  EXPECT_EQ(fetched.sequence_number(), 2u);
  EXPECT_THAT(ds().TaintX509CA(kTd, skid),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("root CA is already tainted")));

  EXPECT_THAT(
      ds().RevokeX509CA(kTd, "00ff"),
      StatusIs(StatusCode::kNotFound, HasSubstr("no root CA found with provided subject key ID")));
  ASSERT_OK(ds().RevokeX509CA(kTd, skid));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle(kTd));
  ASSERT_EQ(fetched.root_cas_size(), 1);
  EXPECT_TRUE(Same(fetched.root_cas(0), b.root_cas(1)));
  EXPECT_EQ(fetched.sequence_number(), 3u);
  EXPECT_THAT(ds().RevokeX509CA("spiffe://missing", skid), StatusIs(StatusCode::kNotFound));

  // A root that does not parse fails both with Internal; nothing changes.
  v1::Bundle garbage = MakeBundle("spiffe://garbage.org");
  garbage.add_root_cas()->set_der_bytes("not DER");
  ASSERT_OK(ds().CreateBundle(garbage));
  EXPECT_THAT(ds().TaintX509CA("spiffe://garbage.org", "00ff"),
              StatusIs(StatusCode::kInternal, HasSubstr("failed to parse rootCA")));
  EXPECT_THAT(ds().RevokeX509CA("spiffe://garbage.org", "00ff"),
              StatusIs(StatusCode::kInternal, HasSubstr("failed to parse root CA")));
}

TEST_P(DatastoreBundlesTest, TaintAndRevokeJWTKey) {
  v1::Bundle b = MakeBundle(kTd);
  *b.add_jwt_signing_keys() = Key("k1", kNow + kDay);
  *b.add_jwt_signing_keys() = Key("k2", kNow + kDay);
  ASSERT_OK(ds().CreateBundle(b));

  EXPECT_THAT(ds().TaintJWTKey("spiffe://missing", "k1"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().TaintJWTKey(kTd, "nope"),
              StatusIs(StatusCode::kNotFound, HasSubstr("no JWT Key found with provided key ID")));
  EXPECT_THAT(ds().RevokeJWTKey(kTd, "k1"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("it is not possible to revoke an untainted key")));

  ASSERT_OK_AND_ASSIGN(v1::PublicKey tainted, ds().TaintJWTKey(kTd, "k1"));
  EXPECT_EQ(tainted.kid(), "k1");
  EXPECT_TRUE(tainted.tainted_key());
  ASSERT_OK_AND_ASSIGN(v1::Bundle fetched, ds().FetchBundle(kTd));
  EXPECT_TRUE(fetched.jwt_signing_keys(0).tainted_key());
  EXPECT_FALSE(fetched.jwt_signing_keys(1).tainted_key());
  EXPECT_EQ(fetched.sequence_number(), b.sequence_number() + 1);
  EXPECT_THAT(ds().TaintJWTKey(kTd, "k1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("key is already tainted")));

  EXPECT_THAT(ds().RevokeJWTKey(kTd, "nope"),
              StatusIs(StatusCode::kNotFound, HasSubstr("no JWT Key found with provided key ID")));
  ASSERT_OK_AND_ASSIGN(v1::PublicKey revoked, ds().RevokeJWTKey(kTd, "k1"));
  EXPECT_EQ(revoked.kid(), "k1");
  EXPECT_TRUE(revoked.tainted_key());
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle(kTd));
  EXPECT_THAT(Kids(fetched.jwt_signing_keys()), ElementsAre("k2"));
  EXPECT_EQ(fetched.sequence_number(), b.sequence_number() + 2);

  // A repeated kid is a broken invariant: Internal, nothing changes.
  v1::Bundle dup = MakeBundle("spiffe://dup.org");
  *dup.add_jwt_signing_keys() = Key("same", kNow + kDay);
  *dup.add_jwt_signing_keys() = Key("same", kNow + 2 * kDay);
  ASSERT_OK(ds().CreateBundle(dup));
  EXPECT_THAT(
      ds().TaintJWTKey("spiffe://dup.org", "same"),
      StatusIs(StatusCode::kInternal, HasSubstr("another JWT Key found with the same KeyID")));
  v1::Bundle dup_tainted = MakeBundle("spiffe://dup2.org");
  *dup_tainted.add_jwt_signing_keys() = Key("same", kNow + kDay, true);
  *dup_tainted.add_jwt_signing_keys() = Key("same", kNow + 2 * kDay, true);
  ASSERT_OK(ds().CreateBundle(dup_tainted));
  EXPECT_THAT(ds().RevokeJWTKey("spiffe://dup2.org", "same"),
              StatusIs(StatusCode::kInternal, HasSubstr("another key found with the same KeyID")));
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchBundle("spiffe://dup.org"));
  EXPECT_TRUE(Same(fetched, dup));
}

TEST_P(DatastoreBundlesTest, BundleChangesReachSubscribers) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::DataStoreChange> changes;
  auto sub = ds().Subscribe([&](const v1::DataStoreChange& change, bool reset) {
    if (reset) return;
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(change);
    cv.notify_all();
  });
  ASSERT_OK(ds().CreateBundle(MakeBundle(kTd)));
  ASSERT_OK(ds().AppendBundle(MakeBundle(kTd, kNow + kDay)));
  ASSERT_OK(ds().DeleteBundle(kTd, v1::DELETE_BUNDLE_RESTRICT));
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return changes.size() >= 3; }));
  ASSERT_EQ(changes.size(), 3u);
  for (const auto& c : changes) {
    EXPECT_EQ(c.kind(), v1::DataStoreChange::KIND_BUNDLE);
    EXPECT_EQ(c.id(), kTd);
  }
  EXPECT_EQ(changes[1].bundle().root_cas_size(), 2);
  EXPECT_EQ(changes[1].bundle().sequence_number(), changes[0].bundle().sequence_number() + 1);
  EXPECT_TRUE(changes[2].deleted());
}

PLINTH_INSTANTIATE_DATASTORE_TEST(DatastoreBundlesTest);

}  // namespace
}  // namespace plinth::datastore
