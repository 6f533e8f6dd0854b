// Registration entry operations (spec §C3, §C4, DESIGN.md deviations) on every backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "datastore/internal/state.h"
#include "datastore/testing/datastore_fixture.h"
#include "store/open.h"

namespace plinth::datastore {
namespace {

using testing::DatastoreTest;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeBundle;
using testing::MakeEntry;
using testing::Sel;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr int64_t kNow = 1767225600;  // the fixture's wall clock: 2026-01-01T00:00:00Z
const std::string kAgent = "spiffe://example.org/spire/agent/a1";
const std::string kFed1 = "spiffe://fed1.org";
const std::string kFed2 = "spiffe://fed2.org";
const std::string kFed3 = "spiffe://fed3.org";

class EntriesTest : public DatastoreTest {
 protected:
  // Creates `e` and returns the stored entry (an empty one after a test failure).
  v1::RegistrationEntry Create(const v1::RegistrationEntry& e) {
    auto created = ds().CreateRegistrationEntry(e);
    EXPECT_OK(created);
    return created.ok() ? *created : v1::RegistrationEntry();
  }

  std::vector<std::string> ListIds(const v1::ListRegistrationEntriesRequest& request) {
    auto listed = ds().ListRegistrationEntries(request);
    EXPECT_OK(listed);
    std::vector<std::string> ids;
    if (!listed.ok()) return ids;
    for (const auto& e : listed->entries()) ids.push_back(e.spiffe_id());
    return ids;
  }

  int64_t Count(const v1::CountRegistrationEntriesRequest& request) {
    auto n = ds().CountRegistrationEntries(request);
    EXPECT_OK(n);
    return n.ok() ? *n : -1;
  }

  void CreateBundles(const std::vector<std::string>& trust_domains) {
    for (const std::string& td : trust_domains) ASSERT_OK(ds().CreateBundle(MakeBundle(td)));
  }

  // A DataStore on a fresh, empty store of this backend that accepts at most `max_ops`
  // operations per transaction.
  StatusOr<Replica> OpenLimitedStore(int max_ops) {
    const std::string dir = temp_dir() + "/limited";
    std::error_code error;
    std::filesystem::create_directory(dir, error);
    if (error) return InternalError("creating " + dir + ": " + error.message());
    PLINTH_ASSIGN_OR_RETURN(std::string fresh, GetParam().make_url(dir));
    fresh += fresh.find('?') == std::string::npos ? "?" : "&";
    fresh += "max_ops=" + std::to_string(max_ops);
    Replica out;
    PLINTH_ASSIGN_OR_RETURN(out.store, store::OpenStore(fresh));
    if (out.store->limits().max_ops_per_txn != static_cast<size_t>(max_ops)) {
      return InternalError(fresh + " did not take max_ops");
    }
    PLINTH_ASSIGN_OR_RETURN(out.ds, DataStore::Open(out.store.get(), Options()));
    return out;
  }

  // Every page of `request` with `page_size`: the SPIFFE IDs on each page, and checks that
  // only the last page has an empty token.
  std::vector<std::vector<std::string>> Pages(v1::ListRegistrationEntriesRequest request,
                                              int page_size) {
    std::vector<std::vector<std::string>> pages;
    request.mutable_pagination()->set_page_size(page_size);
    request.mutable_pagination()->set_token("");
    for (int i = 0; i < 100; ++i) {
      auto page = ds().ListRegistrationEntries(request);
      EXPECT_OK(page);
      if (!page.ok()) break;
      EXPECT_EQ(page->pagination().page_size(), page_size);
      pages.emplace_back();
      for (const auto& e : page->entries()) pages.back().push_back(e.spiffe_id());
      if (page->pagination().token().empty()) break;
      request.mutable_pagination()->set_token(page->pagination().token());
    }
    return pages;
  }
};

v1::ListRegistrationEntriesRequest BySelectors(std::vector<v1::Selector> selectors,
                                               v1::MatchBehavior match) {
  v1::ListRegistrationEntriesRequest r;
  for (auto& s : selectors) *r.mutable_by_selectors()->add_selectors() = s;
  r.mutable_by_selectors()->set_match(match);
  return r;
}

v1::ListRegistrationEntriesRequest ByFederatesWith(std::vector<std::string> trust_domains,
                                                   v1::MatchBehavior match) {
  v1::ListRegistrationEntriesRequest r;
  for (auto& td : trust_domains) r.mutable_by_federates_with()->add_trust_domains(td);
  r.mutable_by_federates_with()->set_match(match);
  return r;
}

// The Count request with the same filters as a List request.
v1::CountRegistrationEntriesRequest AsCount(const v1::ListRegistrationEntriesRequest& list) {
  v1::CountRegistrationEntriesRequest c;
  c.set_consistency(list.consistency());
  if (list.has_by_parent_id()) c.set_by_parent_id(list.by_parent_id());
  if (list.has_by_selectors()) *c.mutable_by_selectors() = list.by_selectors();
  if (list.has_by_spiffe_id()) c.set_by_spiffe_id(list.by_spiffe_id());
  if (list.has_by_federates_with()) *c.mutable_by_federates_with() = list.by_federates_with();
  if (list.has_by_hint()) c.set_by_hint(list.by_hint());
  if (list.has_by_downstream()) c.set_by_downstream(list.by_downstream());
  return c;
}

std::string W(int i) { return "spiffe://example.org/w" + std::to_string(i); }

// ---- Create

TEST_P(EntriesTest, CreateAssignsIdRevisionZeroAndCreationTime) {
  v1::RegistrationEntry in = MakeEntry(W(1), kAgent, {"unix:uid:1000"});
  in.set_revision_number(7);
  in.set_created_at_unix_nanos(42);
  in.set_x509_svid_ttl(3600);
  in.add_dns_names("w1.example.org");
  const v1::RegistrationEntry created = Create(in);
  EXPECT_EQ(created.entry_id(), "entry-000001");
  EXPECT_EQ(created.revision_number(), 0);
  EXPECT_EQ(created.created_at_unix_nanos(), kNow * 1'000'000'000);
  EXPECT_EQ(created.spiffe_id(), W(1));
  EXPECT_EQ(created.x509_svid_ttl(), 3600);

  ASSERT_OK_AND_ASSIGN(EntryPtr fetched, ds().FetchRegistrationEntry("entry-000001"));
  EXPECT_EQ(fetched->SerializeAsString(), created.SerializeAsString());
}

TEST_P(EntriesTest, CreateKeepsACallerSuppliedId) {
  v1::RegistrationEntry in = MakeEntry(W(1), kAgent, {"unix:uid:1000"});
  in.set_entry_id("My-Entry_1.a");
  EXPECT_EQ(Create(in).entry_id(), "My-Entry_1.a");
  EXPECT_OK(ds().FetchRegistrationEntry("My-Entry_1.a"));
}

TEST_P(EntriesTest, CreateWithATakenIdIsAlreadyExists) {
  v1::RegistrationEntry in = MakeEntry(W(1), kAgent, {"unix:uid:1000"});
  in.set_entry_id("fixed");
  Create(in);
  in.set_spiffe_id(W(2));
  EXPECT_THAT(ds().CreateRegistrationEntry(in),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("\"fixed\"")));
}

TEST_P(EntriesTest, CreateReturnsTheSimilarEntryInsteadOfADuplicate) {
  const v1::RegistrationEntry first = Create(MakeEntry(W(1), kAgent, {"a:1", "b:2"}));
  // Selector order, the caller's ID and other fields do not matter to the similar rule.
  v1::RegistrationEntry again = MakeEntry(W(1), kAgent, {"b:2", "a:1"});
  again.set_entry_id("would-be-new");
  again.set_x509_svid_ttl(99);
  EXPECT_EQ(Create(again).entry_id(), first.entry_id());
  ASSERT_OK_AND_ASSIGN(CreateOrReturnResult r, ds().CreateOrReturnRegistrationEntry(again));
  EXPECT_TRUE(r.existing);
  EXPECT_EQ(r.entry.entry_id(), first.entry_id());
  EXPECT_EQ(r.entry.x509_svid_ttl(), 0);
  EXPECT_THAT(ds().FetchRegistrationEntry("would-be-new"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Count({}), 1);
}

TEST_P(EntriesTest, CreateOrReturnReportsANewEntryAsNotExisting) {
  ASSERT_OK_AND_ASSIGN(CreateOrReturnResult r,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1"})));
  EXPECT_FALSE(r.existing);
  EXPECT_EQ(r.entry.entry_id(), "entry-000001");
}

TEST_P(EntriesTest, SimilarRuleLetsAnEmptyParentMatchAnyParent) {
  const v1::RegistrationEntry first = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(CreateOrReturnResult r,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), "", {"a:1"})));
  EXPECT_TRUE(r.existing);
  EXPECT_EQ(r.entry.entry_id(), first.entry_id());
  // A different, non-empty parent is a different entry.
  ASSERT_OK_AND_ASSIGN(r, ds().CreateOrReturnRegistrationEntry(
                              MakeEntry(W(1), "spiffe://example.org/other", {"a:1"})));
  EXPECT_FALSE(r.existing);
  EXPECT_EQ(Count({}), 2);
}

TEST_P(EntriesTest, SimilarRuleNeedsEqualSelectorSets) {
  Create(MakeEntry(W(1), kAgent, {"a:1", "b:2"}));
  ASSERT_OK_AND_ASSIGN(CreateOrReturnResult subset,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1"})));
  EXPECT_FALSE(subset.existing);
  ASSERT_OK_AND_ASSIGN(
      CreateOrReturnResult superset,
      ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1", "b:2", "c:3"})));
  EXPECT_FALSE(superset.existing);
  EXPECT_EQ(Count({}), 3);
}

struct ValidationCase {
  std::string name;
  std::function<void(v1::RegistrationEntry*)> mutate;
  std::string message;  // a substring naming the field
};

TEST_P(EntriesTest, CreateValidationErrorsNameTheField) {
  const std::vector<ValidationCase> cases = {
      {"no selectors", [](auto* e) { e->clear_selectors(); }, "selectors must not be empty"},
      {"store_svid with prefetch disabled",
       [](auto* e) {
         e->set_store_svid(true);
         e->mutable_additional_attributes()->set_disable_x509_svid_prefetch(true);
       },
       "additional_attributes.disable_x509_svid_prefetch"},
      {"store_svid with mixed selector types",
       [](auto* e) {
         e->set_store_svid(true);
         *e->add_selectors() = Sel("k8s", "ns:default");
       },
       "selectors must all have the same type when store_svid"},
      {"entry_id too long", [](auto* e) { e->set_entry_id(std::string(256, 'a')); },
       "entry_id is longer than 255"},
      {"entry_id with a slash", [](auto* e) { e->set_entry_id("a/b"); },
       "entry_id \"a/b\" contains characters outside"},
      {"no spiffe_id", [](auto* e) { e->clear_spiffe_id(); }, "spiffe_id is required"},
      {"negative x509_svid_ttl", [](auto* e) { e->set_x509_svid_ttl(-1); },
       "x509_svid_ttl must not be negative"},
      {"negative jwt_svid_ttl", [](auto* e) { e->set_jwt_svid_ttl(-1); },
       "jwt_svid_ttl must not be negative"},
      // SPIRE's order: the selector check comes before the SPIFFE ID check.
      {"no selectors and no spiffe_id",
       [](auto* e) {
         e->clear_selectors();
         e->clear_spiffe_id();
       },
       "selectors must not be empty"},
  };
  for (const ValidationCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"unix:uid:1000"});
    c.mutate(&e);
    EXPECT_THAT(ds().CreateRegistrationEntry(e),
                StatusIs(StatusCode::kInvalidArgument,
                         ::testing::AllOf(::testing::StartsWith("datastore-validation: "),
                                          HasSubstr(c.message))));
  }
  EXPECT_EQ(Count({}), 0);
}

TEST_P(EntriesTest, CreateAcceptsAnEntryIdOf255CharactersAndAnEmptyParent) {
  v1::RegistrationEntry e = MakeEntry(W(1), "", {"unix:uid:1000"});
  e.set_entry_id(std::string(255, 'x'));
  EXPECT_EQ(Create(e).entry_id(), std::string(255, 'x'));
}

TEST_P(EntriesTest, DuplicateSelectorsOrDnsNamesAreAlreadyExists) {
  EXPECT_THAT(ds().CreateRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1", "a:1"})),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("selector \"a:1\"")));
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1"});
  e.add_dns_names("x.org");
  e.add_dns_names("x.org");
  EXPECT_THAT(ds().CreateRegistrationEntry(e),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("DNS name \"x.org\"")));
  EXPECT_EQ(Count({}), 0);
}

TEST_P(EntriesTest, FederatingWithATrustDomainWithoutBundleIsUnknown) {
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1"});
  e.add_federates_with(kFed1);
  EXPECT_THAT(
      ds().CreateRegistrationEntry(e),
      StatusIs(StatusCode::kUnknown, "unable to find federated bundle \"spiffe://fed1.org\""));
}

TEST_P(EntriesTest, FederatesWithIsDeduplicated) {
  CreateBundles({kFed1, kFed2});
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1"});
  e.add_federates_with(kFed1);
  e.add_federates_with(kFed2);
  e.add_federates_with(kFed1);
  const v1::RegistrationEntry created = Create(e);
  EXPECT_THAT(created.federates_with(), ElementsAre(kFed1, kFed2));
}

// ---- Fetch

TEST_P(EntriesTest, FetchOfAMissingEntryIsNotFound) {
  EXPECT_THAT(ds().FetchRegistrationEntry("nope"),
              StatusIs(StatusCode::kNotFound, HasSubstr("\"nope\"")));
}

TEST_P(EntriesTest, FetchRegistrationEntriesOmitsUnknownIds) {
  const auto a = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  const auto b = Create(MakeEntry(W(2), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(auto got,
                       ds().FetchRegistrationEntries({a.entry_id(), "unknown", b.entry_id()}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at(a.entry_id())->spiffe_id(), W(1));
  EXPECT_EQ(got.at(b.entry_id())->spiffe_id(), W(2));
  ASSERT_OK_AND_ASSIGN(got, ds().FetchRegistrationEntries({}));
  EXPECT_THAT(got, IsEmpty());
}

// ---- Update

TEST_P(EntriesTest, UpdateWithoutMaskWritesEveryFieldAndKeepsCreation) {
  CreateBundles({kFed1});
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1", "b:2"});
  e.add_dns_names("old.org");
  const v1::RegistrationEntry created = Create(e);
  clock().Advance(std::chrono::seconds(10));

  v1::RegistrationEntry in = MakeEntry(W(9), "spiffe://example.org/p2", {"c:3"});
  in.set_entry_id(created.entry_id());
  in.set_x509_svid_ttl(10);
  in.set_jwt_svid_ttl(20);
  in.add_federates_with(kFed1);
  in.set_admin(true);
  in.set_downstream(true);
  in.set_entry_expiry(kNow + 100);
  in.add_dns_names("new.org");
  in.set_hint("h");
  in.mutable_additional_attributes()->set_jwt_svid_include_jti(true);
  in.set_created_at_unix_nanos(5);
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry updated, ds().UpdateRegistrationEntry(in, nullptr));
  EXPECT_EQ(updated.revision_number(), 1);
  EXPECT_EQ(updated.created_at_unix_nanos(), created.created_at_unix_nanos());
  EXPECT_EQ(updated.spiffe_id(), W(9));
  EXPECT_EQ(updated.parent_id(), "spiffe://example.org/p2");
  ASSERT_EQ(updated.selectors_size(), 1);
  EXPECT_EQ(updated.selectors(0).type(), "c");
  EXPECT_THAT(updated.dns_names(), ElementsAre("new.org"));
  EXPECT_THAT(updated.federates_with(), ElementsAre(kFed1));
  EXPECT_TRUE(updated.admin());
  EXPECT_TRUE(updated.downstream());
  EXPECT_EQ(updated.entry_expiry(), kNow + 100);
  EXPECT_EQ(updated.hint(), "h");
  EXPECT_TRUE(updated.additional_attributes().jwt_svid_include_jti());

  ASSERT_OK_AND_ASSIGN(EntryPtr fetched, ds().FetchRegistrationEntry(created.entry_id()));
  EXPECT_EQ(fetched->SerializeAsString(), updated.SerializeAsString());
}

TEST_P(EntriesTest, UpdateWritesOnlyMaskedFields) {
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  v1::RegistrationEntry in = MakeEntry("", "", {});
  in.set_entry_id(created.entry_id());
  in.set_x509_svid_ttl(77);
  in.set_jwt_svid_ttl(-5);  // not masked: neither written nor validated
  v1::RegistrationEntryMask mask;
  mask.set_x509_svid_ttl(true);
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry updated, ds().UpdateRegistrationEntry(in, &mask));
  EXPECT_EQ(updated.x509_svid_ttl(), 77);
  EXPECT_EQ(updated.jwt_svid_ttl(), 0);
  EXPECT_EQ(updated.spiffe_id(), W(1));
  EXPECT_EQ(updated.parent_id(), kAgent);
  EXPECT_EQ(updated.selectors_size(), 1);
  EXPECT_EQ(updated.revision_number(), 1);
}

TEST_P(EntriesTest, UpdateWithAnAllFalseMaskStillBumpsTheRevision) {
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  v1::RegistrationEntryMask none;
  ASSERT_OK_AND_ASSIGN(auto once, ds().UpdateRegistrationEntry(created, &none));
  ASSERT_OK_AND_ASSIGN(auto twice, ds().UpdateRegistrationEntry(created, &none));
  EXPECT_EQ(once.revision_number(), 1);
  EXPECT_EQ(twice.revision_number(), 2);
}

TEST_P(EntriesTest, UpdateValidatesMaskedFields) {
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  struct Case {
    std::function<void(v1::RegistrationEntry*, v1::RegistrationEntryMask*)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto* e, auto* m) {
         e->clear_selectors();
         m->set_selectors(true);
       },
       "selectors must not be empty"},
      {[](auto* e, auto* m) {
         e->clear_spiffe_id();
         m->set_spiffe_id(true);
       },
       "spiffe_id is required"},
      {[](auto* e, auto* m) {
         e->set_x509_svid_ttl(-1);
         m->set_x509_svid_ttl(true);
       },
       "x509_svid_ttl must not be negative"},
      {[](auto* e, auto* m) {
         e->set_jwt_svid_ttl(-1);
         m->set_jwt_svid_ttl(true);
       },
       "jwt_svid_ttl must not be negative"},
  };
  for (const Case& c : cases) {
    v1::RegistrationEntry in = created;
    v1::RegistrationEntryMask mask;
    c.set(&in, &mask);
    EXPECT_THAT(ds().UpdateRegistrationEntry(in, &mask),
                StatusIs(StatusCode::kInvalidArgument,
                         ::testing::AllOf(::testing::StartsWith("datastore-validation: "),
                                          HasSubstr(c.message))));
  }
  ASSERT_OK_AND_ASSIGN(EntryPtr unchanged, ds().FetchRegistrationEntry(created.entry_id()));
  EXPECT_EQ(unchanged->revision_number(), 0);
}

TEST_P(EntriesTest, UpdateOfAMissingEntryIsNotFound) {
  v1::RegistrationEntry in = MakeEntry(W(1), kAgent, {"a:1"});
  in.set_entry_id("missing");
  EXPECT_THAT(ds().UpdateRegistrationEntry(in, nullptr),
              StatusIs(StatusCode::kNotFound, HasSubstr("\"missing\"")));
}

// DESIGN.md deviation: the store_svid rule holds for the entry an update produces, even when
// the update does not touch the selectors.
TEST_P(EntriesTest, UpdateChecksStoreSvidAgainstTheResultingSelectors) {
  const v1::RegistrationEntry mixed = Create(MakeEntry(W(1), kAgent, {"a:1", "b:2"}));
  v1::RegistrationEntry in = mixed;
  in.set_store_svid(true);
  v1::RegistrationEntryMask store_svid_only;
  store_svid_only.set_store_svid(true);
  EXPECT_THAT(ds().UpdateRegistrationEntry(in, &store_svid_only),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("same type when store_svid")));

  v1::RegistrationEntry single = Create(MakeEntry(W(2), kAgent, {"a:1", "a:2"}));
  single.set_store_svid(true);
  ASSERT_OK(ds().UpdateRegistrationEntry(single, &store_svid_only));
  // Now stored with store_svid: new selectors of mixed types are refused.
  v1::RegistrationEntry selectors = MakeEntry(W(2), kAgent, {"a:1", "b:1"});
  selectors.set_entry_id(single.entry_id());
  v1::RegistrationEntryMask selectors_only;
  selectors_only.set_selectors(true);
  EXPECT_THAT(ds().UpdateRegistrationEntry(selectors, &selectors_only),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("same type when store_svid")));
}

TEST_P(EntriesTest, UpdateReplacesSetsAndChecksFederatedBundles) {
  CreateBundles({kFed1, kFed2});
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1", "b:2"});
  e.add_federates_with(kFed1);
  e.add_dns_names("one.org");
  const v1::RegistrationEntry created = Create(e);

  v1::RegistrationEntry in = created;
  in.clear_federates_with();
  in.add_federates_with(kFed2);
  in.add_federates_with(kFed2);
  in.clear_dns_names();
  in.add_dns_names("two.org");
  v1::RegistrationEntryMask mask;
  mask.set_federates_with(true);
  mask.set_dns_names(true);
  ASSERT_OK_AND_ASSIGN(auto updated, ds().UpdateRegistrationEntry(in, &mask));
  EXPECT_THAT(updated.federates_with(), ElementsAre(kFed2));
  EXPECT_THAT(updated.dns_names(), ElementsAre("two.org"));
  EXPECT_THAT(ListIds(ByFederatesWith({kFed1}, v1::MATCH_ANY)), IsEmpty());
  EXPECT_THAT(ListIds(ByFederatesWith({kFed2}, v1::MATCH_ANY)), ElementsAre(W(1)));

  in.add_federates_with(kFed3);
  EXPECT_THAT(ds().UpdateRegistrationEntry(in, &mask),
              StatusIs(StatusCode::kUnknown, HasSubstr("\"spiffe://fed3.org\"")));
  in.clear_federates_with();
  in.add_dns_names("two.org");
  EXPECT_THAT(ds().UpdateRegistrationEntry(in, &mask), StatusIs(StatusCode::kAlreadyExists));
}

TEST_P(EntriesTest, UpdateMovesTheSimilarEntryGuard) {
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  v1::RegistrationEntry in = MakeEntry(W(1), kAgent, {"b:2"});
  in.set_entry_id(created.entry_id());
  v1::RegistrationEntryMask mask;
  mask.set_selectors(true);
  ASSERT_OK(ds().UpdateRegistrationEntry(in, &mask));

  ASSERT_OK_AND_ASSIGN(auto old_shape,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1"})));
  EXPECT_FALSE(old_shape.existing);
  ASSERT_OK_AND_ASSIGN(auto new_shape,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"b:2"})));
  EXPECT_TRUE(new_shape.existing);
  EXPECT_EQ(new_shape.entry.entry_id(), created.entry_id());
}

TEST_P(EntriesTest, UpdateIntoAnExactTwinOfAnotherEntryIsAlreadyExists) {
  const v1::RegistrationEntry a = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  const v1::RegistrationEntry b = Create(MakeEntry(W(1), kAgent, {"b:2"}));
  v1::RegistrationEntry in = b;
  in.clear_selectors();
  *in.add_selectors() = Sel("a", "1");
  v1::RegistrationEntryMask mask;
  mask.set_selectors(true);
  EXPECT_THAT(ds().UpdateRegistrationEntry(in, &mask),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr(a.entry_id())));
}

// ---- Delete and prune

TEST_P(EntriesTest, DeleteReturnsTheEntryAndFreesItsSimilarShape) {
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry deleted,
                       ds().DeleteRegistrationEntry(created.entry_id()));
  EXPECT_EQ(deleted.SerializeAsString(), created.SerializeAsString());
  EXPECT_THAT(ds().FetchRegistrationEntry(created.entry_id()), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().DeleteRegistrationEntry(created.entry_id()), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto again,
                       ds().CreateOrReturnRegistrationEntry(MakeEntry(W(1), kAgent, {"a:1"})));
  EXPECT_FALSE(again.existing);
}

TEST_P(EntriesTest, PruneDeletesEntriesExpiringStrictlyBefore) {
  auto with_expiry = [&](int i, int64_t expiry) {
    v1::RegistrationEntry e = MakeEntry(W(i), kAgent, {"a:1"});
    e.set_entry_expiry(expiry);
    return Create(e);
  };
  with_expiry(1, kNow - 1);
  with_expiry(2, kNow);  // expiry == t is kept
  with_expiry(3, kNow + 1);
  with_expiry(4, 0);  // never expires
  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneRegistrationEntries(kNow));
  EXPECT_EQ(pruned, 1);
  EXPECT_THAT(ListIds({}), ElementsAre(W(2), W(3), W(4)));
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneRegistrationEntries(kNow));
  EXPECT_EQ(pruned, 0);
}

TEST_P(EntriesTest, PruneSplitsIntoTransactionsTheStoreAccepts) {
  // A fresh store that takes 5 operations per transaction: 2 entry deletes (entry and similar
  // key each) per transaction.
  ASSERT_OK_AND_ASSIGN(Replica limited, OpenLimitedStore(5));
  for (int i = 0; i < 7; ++i) {
    v1::RegistrationEntry e = MakeEntry(W(i), kAgent, {"a:1"});
    e.set_entry_expiry(kNow - 10);
    ASSERT_OK(limited.ds->CreateRegistrationEntry(e));
  }
  ASSERT_OK_AND_ASSIGN(store::Revision before, limited.store->CurrentRevision());
  ASSERT_OK_AND_ASSIGN(int64_t pruned, limited.ds->PruneRegistrationEntries(kNow));
  EXPECT_EQ(pruned, 7);
  ASSERT_OK_AND_ASSIGN(store::Revision after, limited.store->CurrentRevision());
  EXPECT_EQ(after - before, 4);
  ASSERT_OK_AND_ASSIGN(int64_t left, limited.ds->CountRegistrationEntries({}));
  EXPECT_EQ(left, 0);
}

// ---- List and Count

TEST_P(EntriesTest, ListWithoutFiltersReturnsEveryEntryInIdOrder) {
  for (int i = 1; i <= 3; ++i) Create(MakeEntry(W(i), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(auto all, ds().ListRegistrationEntries({}));
  ASSERT_EQ(all.entries_size(), 3);
  EXPECT_EQ(all.entries(0).entry_id(), "entry-000001");
  EXPECT_EQ(all.entries(2).entry_id(), "entry-000003");
  EXPECT_FALSE(all.has_pagination());
  EXPECT_EQ(Count({}), 3);
}

TEST_P(EntriesTest, ListFiltersByParentSpiffeIdHintAndDownstream) {
  v1::RegistrationEntry e1 = MakeEntry(W(1), kAgent, {"a:1"});
  e1.set_hint("web");
  v1::RegistrationEntry e2 = MakeEntry(W(2), "spiffe://example.org/other", {"a:1"});
  e2.set_downstream(true);
  v1::RegistrationEntry e3 = MakeEntry(W(1), "spiffe://example.org/other", {"b:1"});
  e3.set_hint("web");
  e3.set_downstream(true);
  Create(e1);
  Create(e2);
  Create(e3);

  v1::ListRegistrationEntriesRequest r;
  r.set_by_parent_id(kAgent);
  EXPECT_THAT(ListIds(r), ElementsAre(W(1)));
  r.Clear();
  r.set_by_spiffe_id(W(1));
  EXPECT_THAT(ListIds(r), ElementsAre(W(1), W(1)));
  r.Clear();
  r.set_by_hint("web");
  EXPECT_THAT(ListIds(r), ElementsAre(W(1), W(1)));
  r.Clear();
  r.set_by_hint("");
  EXPECT_THAT(ListIds(r), ElementsAre(W(2)));
  r.Clear();
  r.set_by_downstream(true);
  EXPECT_THAT(ListIds(r), ElementsAre(W(2), W(1)));
  // Only true filters, as in SPIRE.
  r.set_by_downstream(false);
  EXPECT_THAT(ListIds(r), SizeIs(3));
  r.Clear();
  r.set_by_parent_id("spiffe://example.org/nobody");
  EXPECT_THAT(ListIds(r), IsEmpty());
}

TEST_P(EntriesTest, ListBySelectorsFollowsEachMatchBehavior) {
  Create(MakeEntry(W(1), kAgent, {"a:1"}));
  Create(MakeEntry(W(2), kAgent, {"a:1", "b:2"}));
  Create(MakeEntry(W(3), kAgent, {"a:1", "b:2", "c:3"}));
  Create(MakeEntry(W(4), kAgent, {"b:2"}));
  Create(MakeEntry(W(5), kAgent, {"d:4"}));
  const std::vector<v1::Selector> r = {Sel("a", "1"), Sel("b", "2")};
  // Duplicates in the request are ignored.
  const std::vector<v1::Selector> r_dup = {Sel("b", "2"), Sel("a", "1"), Sel("a", "1")};
  struct Case {
    v1::MatchBehavior match;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{{v1::MATCH_EXACT, {W(2)}},
                                         {v1::MATCH_SUBSET, {W(1), W(2), W(4)}},
                                         {v1::MATCH_SUPERSET, {W(2), W(3)}},
                                         {v1::MATCH_ANY, {W(1), W(2), W(3), W(4)}}}) {
    SCOPED_TRACE(v1::MatchBehavior_Name(c.match));
    EXPECT_THAT(ListIds(BySelectors(r, c.match)), ElementsAreArray(c.want));
    EXPECT_THAT(ListIds(BySelectors(r_dup, c.match)), ElementsAreArray(c.want));
    EXPECT_EQ(Count(AsCount(BySelectors(r, c.match))), static_cast<int64_t>(c.want.size()));
  }
  EXPECT_THAT(ListIds(BySelectors({Sel("z", "9")}, v1::MATCH_ANY)), IsEmpty());
  EXPECT_THAT(ListIds(BySelectors({Sel("a", "1"), Sel("z", "9")}, v1::MATCH_SUPERSET)), IsEmpty());
  EXPECT_THAT(ListIds(BySelectors({Sel("a", "1"), Sel("z", "9")}, v1::MATCH_SUBSET)),
              ElementsAre(W(1)));
}

TEST_P(EntriesTest, ListByFederatesWithFollowsEachMatchBehavior) {
  CreateBundles({kFed1, kFed2, kFed3});
  auto federating = [&](int i, std::vector<std::string> tds) {
    v1::RegistrationEntry e = MakeEntry(W(i), kAgent, {"a:" + std::to_string(i)});
    for (auto& td : tds) e.add_federates_with(td);
    Create(e);
  };
  federating(1, {kFed1});
  federating(2, {kFed1, kFed2});
  federating(3, {kFed1, kFed2, kFed3});
  federating(4, {kFed2});
  federating(5, {});
  federating(6, {kFed3});
  struct Case {
    v1::MatchBehavior match;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{{v1::MATCH_EXACT, {W(2)}},
                                         {v1::MATCH_SUBSET, {W(1), W(2), W(4)}},
                                         {v1::MATCH_SUPERSET, {W(2), W(3)}},
                                         {v1::MATCH_ANY, {W(1), W(2), W(3), W(4)}}}) {
    SCOPED_TRACE(v1::MatchBehavior_Name(c.match));
    EXPECT_THAT(ListIds(ByFederatesWith({kFed2, kFed1, kFed2}, c.match)), ElementsAreArray(c.want));
    EXPECT_EQ(Count(AsCount(ByFederatesWith({kFed1, kFed2}, c.match))),
              static_cast<int64_t>(c.want.size()));
  }
}

TEST_P(EntriesTest, ListAndsEveryFilter) {
  CreateBundles({kFed1});
  auto make = [&](int i, const std::string& parent, std::vector<std::string> selectors,
                  bool federated, bool downstream) {
    v1::RegistrationEntry e = MakeEntry(W(i), parent, selectors);
    if (federated) e.add_federates_with(kFed1);
    e.set_downstream(downstream);
    e.set_hint(i % 2 == 0 ? "even" : "odd");
    Create(e);
  };
  make(1, kAgent, {"a:1"}, true, true);                    // all but hint
  make(2, kAgent, {"a:1"}, true, true);                    // match
  make(4, kAgent, {"a:1"}, false, true);                   // not federated
  make(6, kAgent, {"b:1"}, true, true);                    // other selector
  make(8, "spiffe://example.org/x", {"a:1"}, true, true);  // other parent
  make(10, kAgent, {"a:1", "c:1"}, true, false);           // not downstream
  v1::ListRegistrationEntriesRequest r =
      BySelectors({Sel("a", "1"), Sel("c", "1")}, v1::MATCH_SUBSET);
  *r.mutable_by_federates_with() = ByFederatesWith({kFed1}, v1::MATCH_EXACT).by_federates_with();
  r.set_by_parent_id(kAgent);
  r.set_by_hint("even");
  r.set_by_downstream(true);
  EXPECT_THAT(ListIds(r), ElementsAre(W(2)));
  EXPECT_EQ(Count(AsCount(r)), 1);
  r.set_by_spiffe_id(W(4));
  EXPECT_THAT(ListIds(r), IsEmpty());
}

TEST_P(EntriesTest, EveryPageHoldsExactlyPageSizeUntilTheLast) {
  // 7 matches among 14 entries, interleaved with non-matches.
  for (int i = 0; i < 14; ++i) {
    Create(MakeEntry(W(10 + i), kAgent, {i % 2 == 0 ? "a:1" : "b:1"}));
  }
  const auto request = BySelectors({Sel("a", "1")}, v1::MATCH_EXACT);
  EXPECT_THAT(Pages(request, 3), ElementsAre(ElementsAre(W(10), W(12), W(14)),
                                             ElementsAre(W(16), W(18), W(20)), ElementsAre(W(22))));
  // A last page that is exactly full carries no token: no empty page follows.
  EXPECT_THAT(Pages(request, 7), ElementsAre(SizeIs(7)));
  EXPECT_THAT(Pages(request, 100), ElementsAre(SizeIs(7)));
  EXPECT_THAT(Pages({}, 5), ElementsAre(SizeIs(5), SizeIs(5), SizeIs(4)));
}

TEST_P(EntriesTest, DownstreamFilterAppliesBeforeThePageLimit) {
  for (int i = 0; i < 10; ++i) {
    v1::RegistrationEntry e = MakeEntry(W(10 + i), kAgent, {"a:1"});
    e.set_downstream(i >= 7);
    Create(e);
  }
  v1::ListRegistrationEntriesRequest r;
  r.set_by_downstream(true);
  EXPECT_THAT(Pages(r, 2), ElementsAre(ElementsAre(W(17), W(18)), ElementsAre(W(19))));
}

TEST_P(EntriesTest, PaginationSurvivesDeletionOfTheTokenEntry) {
  for (int i = 0; i < 4; ++i) Create(MakeEntry(W(10 + i), kAgent, {"a:1"}));
  v1::ListRegistrationEntriesRequest r;
  r.mutable_pagination()->set_page_size(2);
  ASSERT_OK_AND_ASSIGN(auto first, ds().ListRegistrationEntries(r));
  ASSERT_EQ(first.entries_size(), 2);
  ASSERT_OK(ds().DeleteRegistrationEntry(first.entries(1).entry_id()));
  r.mutable_pagination()->set_token(first.pagination().token());
  EXPECT_THAT(ListIds(r), ElementsAre(W(12), W(13)));
}

TEST_P(EntriesTest, BadListRequestsAreInvalidArgument) {
  v1::ListRegistrationEntriesRequest r;
  r.mutable_pagination()->set_page_size(0);
  EXPECT_THAT(ds().ListRegistrationEntries(r),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
  r.mutable_pagination()->set_page_size(10);
  r.mutable_pagination()->set_token("garbage!");
  EXPECT_THAT(ds().ListRegistrationEntries(r),
              StatusIs(StatusCode::kInvalidArgument, "could not parse token 'garbage!'"));
  r.mutable_pagination()->set_token("AQ");  // valid base64url, but no key after the version
  EXPECT_THAT(ds().ListRegistrationEntries(r),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("could not parse token")));

  v1::ListRegistrationEntriesRequest empty_selectors;
  empty_selectors.mutable_by_selectors()->set_match(v1::MATCH_ANY);
  EXPECT_THAT(ds().ListRegistrationEntries(empty_selectors),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("by_selectors")));
  EXPECT_THAT(ds().CountRegistrationEntries(AsCount(empty_selectors)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("by_selectors")));
  v1::ListRegistrationEntriesRequest empty_federation;
  empty_federation.mutable_by_federates_with()->set_match(v1::MATCH_ANY);
  EXPECT_THAT(ds().ListRegistrationEntries(empty_federation),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("by_federates_with")));
}

// ---- Change feed and replicas

TEST_P(EntriesTest, ChangeFeedDeliversEntryChangesWithTheirRevisions) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::DataStoreChange> changes;
  auto subscription = ds().Subscribe([&](const v1::DataStoreChange& change, bool reset) {
    if (reset) return;
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(change);
    cv.notify_all();
  });
  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  const store::Revision created_at = ds().mirror().applied_revision();
  v1::RegistrationEntryMask mask;
  mask.set_x509_svid_ttl(true);
  v1::RegistrationEntry in = created;
  in.set_x509_svid_ttl(5);
  ASSERT_OK(ds().UpdateRegistrationEntry(in, &mask));
  const store::Revision updated_at = ds().mirror().applied_revision();
  ASSERT_OK(ds().DeleteRegistrationEntry(created.entry_id()));
  const store::Revision deleted_at = ds().mirror().applied_revision();

  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return changes.size() >= 3; }))
      << "got " << changes.size() << " changes";
  ASSERT_EQ(changes.size(), 3u);
  for (const auto& c : changes) {
    EXPECT_EQ(c.kind(), v1::DataStoreChange::KIND_ENTRY);
    EXPECT_EQ(c.id(), created.entry_id());
  }
  EXPECT_EQ(changes[0].revision(), created_at);
  EXPECT_FALSE(changes[0].deleted());
  EXPECT_EQ(changes[0].entry().spiffe_id(), W(1));
  EXPECT_EQ(changes[1].revision(), updated_at);
  EXPECT_EQ(changes[1].entry().x509_svid_ttl(), 5);
  EXPECT_EQ(changes[2].revision(), deleted_at);
  EXPECT_TRUE(changes[2].deleted());
  EXPECT_FALSE(changes[2].has_entry());
  lock.unlock();

  // Dropping the subscription stops the deliveries.
  subscription.reset();
  Create(MakeEntry(W(2), kAgent, {"a:1"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  lock.lock();
  EXPECT_EQ(changes.size(), 3u);
}

TEST_P(EntriesTest, ASecondReplicaSeesCreatesUpdatesAndDeletes) {
  ASSERT_OK_AND_ASSIGN(Replica replica, OpenReplica());
  v1::ListRegistrationEntriesRequest consistent;
  consistent.set_consistency(v1::READ_CONSISTENT);

  const v1::RegistrationEntry created = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(auto seen, replica.ds->ListRegistrationEntries(consistent));
  ASSERT_EQ(seen.entries_size(), 1);
  EXPECT_EQ(seen.entries(0).SerializeAsString(), created.SerializeAsString());

  v1::RegistrationEntry in = created;
  in.set_hint("changed");
  ASSERT_OK(ds().UpdateRegistrationEntry(in, nullptr));
  ASSERT_OK_AND_ASSIGN(seen, replica.ds->ListRegistrationEntries(consistent));
  ASSERT_EQ(seen.entries_size(), 1);
  EXPECT_EQ(seen.entries(0).hint(), "changed");
  EXPECT_EQ(seen.entries(0).revision_number(), 1);

  ASSERT_OK(ds().DeleteRegistrationEntry(created.entry_id()));
  ASSERT_OK_AND_ASSIGN(seen, replica.ds->ListRegistrationEntries(consistent));
  EXPECT_EQ(seen.entries_size(), 0);

  // And the other way round: the replica's create reaches this one.
  ASSERT_OK(replica.ds->CreateRegistrationEntry(MakeEntry(W(2), kAgent, {"a:1"})));
  ASSERT_OK_AND_ASSIGN(seen, ds().ListRegistrationEntries(consistent));
  ASSERT_EQ(seen.entries_size(), 1);
  EXPECT_EQ(seen.entries(0).spiffe_id(), W(2));
}

// Two replicas create similar entries at the same moment: the similar key in the store lets
// only one commit; the other re-plans and returns the winner's entry.
TEST_P(EntriesTest, ConcurrentSimilarCreatesOnTwoReplicasMakeOneEntry) {
  ASSERT_OK_AND_ASSIGN(Replica replica, OpenReplica());
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const v1::RegistrationEntry e = MakeEntry(W(100 + round), kAgent, {"a:1", "b:2"});
    std::atomic<int> ready{0};
    StatusOr<CreateOrReturnResult> results[2] = {UnknownError("not run"), UnknownError("not run")};
    DataStore* stores[2] = {&ds(), replica.ds.get()};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < 2) std::this_thread::yield();
        results[t] = stores[t]->CreateOrReturnRegistrationEntry(e);
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_OK(results[0]);
    ASSERT_OK(results[1]);
    EXPECT_EQ(results[0]->entry.entry_id(), results[1]->entry.entry_id());
    EXPECT_NE(results[0]->existing, results[1]->existing);
    v1::CountRegistrationEntriesRequest count;
    count.set_consistency(v1::READ_CONSISTENT);
    count.set_by_spiffe_id(W(100 + round));
    EXPECT_EQ(Count(count), 1);
    ASSERT_OK_AND_ASSIGN(int64_t on_replica, replica.ds->CountRegistrationEntries(count));
    EXPECT_EQ(on_replica, 1);
  }
}

// ---- The state's digest

TEST_P(EntriesTest, TheMirrorDigestMatchesTheBackendThroughEveryKindOfChange) {
  CreateBundles({kFed1});
  v1::RegistrationEntry e = MakeEntry(W(1), kAgent, {"a:1"});
  e.add_federates_with(kFed1);
  const v1::RegistrationEntry created = Create(e);
  Create(MakeEntry(W(2), kAgent, {"a:1"}));
  v1::RegistrationEntry in = created;
  in.set_hint("x");
  ASSERT_OK(ds().UpdateRegistrationEntry(in, nullptr));
  ASSERT_OK(ds().DeleteRegistrationEntry(created.entry_id()));
  // Values no table accepts (undecodable, or of a kind this version does not know) are still
  // mirrored keys: the digest covers them, and they are not served.
  ASSERT_OK(store().Put("ds/entry/garbage", "\xff\xff\xff"));
  ASSERT_OK(store().Put("ds/future-kind/x", "whatever"));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_OK(ds().mirror().Verify());
  EXPECT_THAT(ds().FetchRegistrationEntry("garbage"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Count({}), 1);
  // Replacing and deleting them keeps the digest right.
  ASSERT_OK(store().Put("ds/entry/garbage", "\xfe"));
  ASSERT_OK(store().Delete("ds/future-kind/x"));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_OK(ds().mirror().Verify());
  EXPECT_EQ(ds().mirror().status().verify_mismatches, 0);
}

// ---- Batched create

TEST_P(EntriesTest, BatchedCreateResolvesSimilarEntriesInAndBeforeTheBatch) {
  const v1::RegistrationEntry stored = Create(MakeEntry(W(1), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(auto results, ds().CreateOrReturnRegistrationEntries({
                                         MakeEntry(W(1), kAgent, {"a:1"}),  // stored before
                                         MakeEntry(W(2), kAgent, {"a:1"}),  // new
                                         MakeEntry(W(2), "", {"a:1"}),      // earlier in batch
                                         MakeEntry(W(3), kAgent, {"a:1"}),  // new
                                     }));
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].existing);
  EXPECT_EQ(results[0].entry.entry_id(), stored.entry_id());
  EXPECT_FALSE(results[1].existing);
  EXPECT_TRUE(results[2].existing);
  EXPECT_EQ(results[2].entry.entry_id(), results[1].entry.entry_id());
  EXPECT_FALSE(results[3].existing);
  EXPECT_EQ(Count({}), 3);
}

TEST_P(EntriesTest, BatchedCreateValidatesEverythingFirst) {
  EXPECT_THAT(ds().CreateOrReturnRegistrationEntries(
                  {MakeEntry(W(1), kAgent, {"a:1"}), MakeEntry("", kAgent, {"a:1"})}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("entries[1]")));
  EXPECT_EQ(Count({}), 0);
}

TEST_P(EntriesTest, BatchedCreateSplitsIntoTransactionsTheStoreAccepts) {
  ASSERT_OK_AND_ASSIGN(Replica limited, OpenLimitedStore(5));
  std::vector<v1::RegistrationEntry> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(MakeEntry(W(i), kAgent, {"a:1"}));
  ASSERT_OK_AND_ASSIGN(store::Revision before, limited.store->CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto results, limited.ds->CreateOrReturnRegistrationEntries(batch));
  ASSERT_OK_AND_ASSIGN(store::Revision after, limited.store->CurrentRevision());
  EXPECT_EQ(after - before, 3);  // 2 + 2 + 1 entries
  ASSERT_EQ(results.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(results[i].existing);
    EXPECT_EQ(results[i].entry.spiffe_id(), W(i));
  }
  ASSERT_OK_AND_ASSIGN(int64_t stored, limited.ds->CountRegistrationEntries({}));
  EXPECT_EQ(stored, 5);
}

PLINTH_INSTANTIATE_DATASTORE_TEST(EntriesTest);

// ---- The index against a brute-force model

// Whether `e` matches `r`'s filters, straight from spec §C4's tables.
bool ModelMatches(const v1::RegistrationEntry& e, const v1::ListRegistrationEntriesRequest& r) {
  if (r.has_by_parent_id() && e.parent_id() != r.by_parent_id()) return false;
  if (r.has_by_spiffe_id() && e.spiffe_id() != r.by_spiffe_id()) return false;
  if (r.has_by_hint() && e.hint() != r.by_hint()) return false;
  if (r.has_by_downstream() && r.by_downstream() && !e.downstream()) return false;
  auto set_match = [](std::set<std::string> s, std::set<std::string> req, v1::MatchBehavior m) {
    size_t common = 0;
    for (const auto& x : s) common += req.count(x);
    switch (m) {
      case v1::MATCH_EXACT:
        return s == req;
      case v1::MATCH_SUBSET:
        return !s.empty() && common == s.size();
      case v1::MATCH_SUPERSET:
        return common == req.size();
      default:
        return common > 0;
    }
  };
  if (r.has_by_selectors()) {
    std::set<std::string> s, req;
    for (const auto& x : e.selectors()) s.insert(x.type() + ":" + x.value());
    for (const auto& x : r.by_selectors().selectors()) req.insert(x.type() + ":" + x.value());
    if (!set_match(s, req, r.by_selectors().match())) return false;
  }
  if (r.has_by_federates_with()) {
    std::set<std::string> s(e.federates_with().begin(), e.federates_with().end());
    std::set<std::string> req(r.by_federates_with().trust_domains().begin(),
                              r.by_federates_with().trust_domains().end());
    if (!set_match(s, req, r.by_federates_with().match())) return false;
  }
  return true;
}

TEST(EntryIndexModel, QueriesAndPagesMatchABruteForceModelThroughRandomChanges) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  internal::EntryIndex index;
  std::map<std::string, v1::RegistrationEntry> model;
  // Parents include SPIFFE IDs of other entries, so the walk goes deep and meets cycles;
  // enough IDs and values that lists grow past the small-array size and the hash tables
  // grow, probe and shift on removal.
  std::vector<std::string> parents = {kAgent, "spiffe://example.org/p"};
  for (int i = 0; i < 40; ++i) parents.push_back(W(i));
  const std::vector<std::string> tds = {kFed1, kFed2, kFed3};
  auto random_selectors = [&](int max) {
    std::vector<std::string> out;
    const int n = 1 + pick(max);
    for (int i = 0; i < n; ++i) {
      std::string s =
          std::string(1, static_cast<char>('a' + pick(3))) + ":" + std::to_string(pick(4));
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
    return out;
  };
  for (int step = 0; step < 20000; ++step) {
    const std::string id = "id" + std::to_string(pick(2000));
    if (pick(4) == 0) {
      index.Remove(id);
      model.erase(id);
    } else {
      v1::RegistrationEntry e = MakeEntry(
          W(pick(60)), parents[pick(static_cast<int>(parents.size()))], random_selectors(3));
      e.set_entry_id(id);
      for (const std::string& td : tds) {
        if (pick(3) == 0) e.add_federates_with(td);
      }
      if (pick(3) == 0) e.set_hint(pick(2) == 0 ? "h1" : "h2");
      e.set_downstream(pick(4) == 0);
      e.set_entry_expiry(pick(3) == 0 ? 100 + pick(10) : 0);
      index.Put(std::make_shared<v1::RegistrationEntry>(e), step + 1);
      model[id] = e;
    }
    if (step % 250 != 0) continue;

    ASSERT_EQ(index.size(), model.size());
    v1::ListRegistrationEntriesRequest r;
    if (pick(3) == 0) r.set_by_parent_id(parents[pick(static_cast<int>(parents.size()))]);
    if (pick(4) == 0) r.set_by_spiffe_id(W(pick(60)));
    if (pick(5) == 0) r.set_by_hint(pick(3) == 0 ? "" : "h1");
    if (pick(4) == 0) r.set_by_downstream(pick(2) == 0);
    if (pick(2) == 0) {
      for (const std::string& sel : random_selectors(3)) {
        *r.mutable_by_selectors()->add_selectors() = Sel(sel.substr(0, 1), sel.substr(2));
      }
      r.mutable_by_selectors()->set_match(static_cast<v1::MatchBehavior>(pick(4)));
    }
    if (pick(3) == 0) {
      r.mutable_by_federates_with()->add_trust_domains(tds[pick(3)]);
      if (pick(2) == 0) r.mutable_by_federates_with()->add_trust_domains(tds[pick(3)]);
      r.mutable_by_federates_with()->set_match(static_cast<v1::MatchBehavior>(pick(4)));
    }
    std::vector<std::string> want;
    for (const auto& [id, e] : model) {
      if (ModelMatches(e, r)) want.push_back(id);
    }
    SCOPED_TRACE("step " + std::to_string(step) + ": " + r.ShortDebugString());
    bool more = true;
    std::vector<std::string> got;
    for (const EntryPtr& e : index.Query(r, "", 0, &more)) got.push_back(e->entry_id());
    EXPECT_EQ(got, want);
    EXPECT_FALSE(more);
    // Pages of 3, resuming after the last ID of each page.
    std::vector<std::string> paged;
    std::string after;
    for (int page = 0; page < 1000; ++page) {
      std::vector<EntryPtr> entries = index.Query(r, after, 3, &more);
      for (const EntryPtr& e : entries) paged.push_back(e->entry_id());
      EXPECT_TRUE(entries.size() == 3 || !more);
      if (!more) break;
      after = entries.back()->entry_id();
    }
    EXPECT_EQ(paged, want);
    v1::CountRegistrationEntriesRequest count;
    if (r.has_by_parent_id()) count.set_by_parent_id(r.by_parent_id());
    if (r.has_by_spiffe_id()) count.set_by_spiffe_id(r.by_spiffe_id());
    if (r.has_by_hint()) count.set_by_hint(r.by_hint());
    if (r.has_by_downstream()) count.set_by_downstream(r.by_downstream());
    if (r.has_by_selectors()) *count.mutable_by_selectors() = r.by_selectors();
    if (r.has_by_federates_with()) *count.mutable_by_federates_with() = r.by_federates_with();
    EXPECT_EQ(index.Count(count), static_cast<int64_t>(want.size()));

    // The walk from the agent: every descendant, each once.
    std::multiset<std::string> walk_want;
    std::set<std::string> seen = {kAgent};
    std::vector<std::string> stack = {kAgent};
    while (!stack.empty()) {
      const std::string parent = stack.back();
      stack.pop_back();
      for (const auto& [id, e] : model) {
        if (e.parent_id() != parent) continue;
        walk_want.insert(id);
        if (seen.insert(e.spiffe_id()).second) stack.push_back(e.spiffe_id());
      }
    }
    std::multiset<std::string> walk_got;
    for (const EntryPtr& e : index.Authorized(kAgent, std::vector<v1::Selector>{})) {
      walk_got.insert(e->entry_id());
    }
    EXPECT_EQ(walk_got, walk_want);

    std::vector<std::string> expired_want, expired_got;
    for (const auto& [id, e] : model) {
      if (e.entry_expiry() > 0 && e.entry_expiry() < 105) expired_want.push_back(id);
    }
    for (const auto* e : index.ExpiredBefore(105, 1000))
      expired_got.push_back(e->value->entry_id());
    std::sort(expired_got.begin(), expired_got.end());
    EXPECT_EQ(expired_got, expired_want);
  }
}

}  // namespace
}  // namespace plinth::datastore
