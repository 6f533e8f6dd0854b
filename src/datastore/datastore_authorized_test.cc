// ListAuthorizedEntries (spec §D) on every backend, and the index's walk on its own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "datastore/internal/state.h"
#include "datastore/testing/datastore_fixture.h"

namespace plinth::datastore {
namespace {

using testing::DatastoreTest;
using ::testing::IsEmpty;
using testing::MakeEntry;
using testing::Sel;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

const std::string kServer = "spiffe://example.org/spire/server";
const std::string kAgent = "spiffe://example.org/spire/agent/k8s_psat/c1/n1";
const std::string kOtherAgent = "spiffe://example.org/spire/agent/k8s_psat/c1/n2";

std::string Id(const std::string& path) { return "spiffe://example.org/" + path; }

class AuthorizedTest : public DatastoreTest {
 protected:
  void Add(const std::string& spiffe_id, const std::string& parent_id,
           const std::vector<std::string>& selectors = {"unix:uid:1000"}) {
    ASSERT_OK(ds().CreateRegistrationEntry(MakeEntry(spiffe_id, parent_id, selectors)));
  }

  void SetAgentSelectors(const std::string& agent, const std::vector<std::string>& selectors) {
    std::vector<v1::Selector> sels;
    for (const std::string& s : selectors) {
      const size_t colon = s.find(':');
      sels.push_back(Sel(s.substr(0, colon), s.substr(colon + 1)));
    }
    ASSERT_OK(ds().SetNodeSelectors(agent, sels));
  }

  // The SPIFFE IDs of the entries `agent` is authorized for.
  std::vector<std::string> Authorized(const std::string& agent) {
    std::vector<std::string> ids;
    for (const EntryPtr& e : ds().ListAuthorizedEntries(agent)) ids.push_back(e->spiffe_id());
    return ids;
  }
};

TEST_P(AuthorizedTest, AnAgentGetsItsDirectChildren) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("w1"), kAgent);
  Add(Id("w2"), kAgent, {"unix:uid:1001"});
  Add(Id("w3"), kOtherAgent);
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("w1"), Id("w2")));
  EXPECT_THAT(Authorized(kOtherAgent), UnorderedElementsAre(Id("w3")));
}

TEST_P(AuthorizedTest, DescendantsAreFollowedToAnyDepth) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("downstream"), kAgent);
  Add(Id("level2"), Id("downstream"));
  Add(Id("level3"), Id("level2"));
  Add(Id("level3b"), Id("level2"));
  Add(Id("unrelated"), Id("elsewhere"));
  EXPECT_THAT(Authorized(kAgent),
              UnorderedElementsAre(Id("downstream"), Id("level2"), Id("level3"), Id("level3b")));
}

TEST_P(AuthorizedTest, NodeAliasesApplyWhenTheAgentHasAllTheirSelectors) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1", "k8s_psat:pool:p1", "k8s_psat:zone:z"});
  SetAgentSelectors(kOtherAgent, {"k8s_psat:cluster:c1"});
  Add(Id("alias-c1-p1"), kServer, {"k8s_psat:cluster:c1", "k8s_psat:pool:p1"});
  Add(Id("alias-c1"), kServer, {"k8s_psat:cluster:c1"});
  Add(Id("alias-p2"), kServer, {"k8s_psat:pool:p2"});
  Add(Id("via-c1-p1"), Id("alias-c1-p1"));
  Add(Id("via-c1"), Id("alias-c1"));
  Add(Id("via-p2"), Id("alias-p2"));
  // Aliases themselves are never returned.
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("via-c1-p1"), Id("via-c1")));
  // Every selector of an alias is required.
  EXPECT_THAT(Authorized(kOtherAgent), UnorderedElementsAre(Id("via-c1")));
}

TEST_P(AuthorizedTest, AliasDescendantsAreFollowedToAnyDepth) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("alias"), kServer, {"k8s_psat:cluster:c1"});
  Add(Id("a1"), Id("alias"));
  Add(Id("a2"), Id("a1"));
  Add(Id("a3"), Id("a2"));
  Add(Id("direct"), kAgent);
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("a1"), Id("a2"), Id("a3"), Id("direct")));
}

TEST_P(AuthorizedTest, CyclesTerminateAndReturnEachEntryOnce) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("x"), kAgent);
  Add(Id("y"), Id("x"));
  Add(Id("x"), Id("y"));  // y's child is x again
  Add(kAgent, Id("y"));   // an entry whose SPIFFE ID is the agent's own
  // An alias whose descendants loop back into the agent's tree.
  Add(Id("alias"), kServer, {"k8s_psat:cluster:c1"});
  Add(Id("alias"), Id("x"));
  Add(Id("z"), Id("alias"));
  const std::vector<std::string> got = Authorized(kAgent);
  EXPECT_THAT(got, UnorderedElementsAre(Id("x"), Id("y"), Id("x"), kAgent, Id("alias"), Id("z")));
}

TEST_P(AuthorizedTest, AnUnknownAgentGetsOnlyItsOwnDescendants) {
  // No node selectors are known for the agent (e.g. the cache is catching up with its
  // attestation): aliases cannot apply, but its own tree can.
  Add(Id("alias"), kServer, {"k8s_psat:cluster:c1"});
  Add(Id("via-alias"), Id("alias"));
  Add(Id("direct"), kAgent);
  Add(Id("deeper"), Id("direct"));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("direct"), Id("deeper")));
  EXPECT_THAT(Authorized("spiffe://example.org/spire/agent/nobody"), IsEmpty());
}

TEST_P(AuthorizedTest, AliasesOfAnotherTrustDomainAreIgnored) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("foreign-alias"), "spiffe://other.org/spire/server", {"k8s_psat:cluster:c1"});
  Add(Id("via-foreign"), Id("foreign-alias"));
  Add(Id("alias"), kServer, {"k8s_psat:cluster:c1"});
  Add(Id("via-own"), Id("alias"));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("via-own")));
}

TEST_P(AuthorizedTest, AnEntryNamedLikeTheServerDoesNotExposeAliases) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(kServer, kAgent);
  Add(Id("alias"), kServer, {"k8s_psat:pool:other"});
  Add(Id("via-alias"), Id("alias"));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(kServer));
}

TEST_P(AuthorizedTest, ChangesToEntriesAndNodeSelectorsApplyAtOnce) {
  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1"});
  Add(Id("alias"), kServer, {"k8s_psat:cluster:c1", "k8s_psat:pool:p1"});
  Add(Id("via-alias"), Id("alias"));
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry direct,
                       ds().CreateRegistrationEntry(MakeEntry(Id("direct"), kAgent, {"a:1"})));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("direct")));

  SetAgentSelectors(kAgent, {"k8s_psat:cluster:c1", "k8s_psat:pool:p1"});
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("direct"), Id("via-alias")));

  ASSERT_OK(ds().DeleteRegistrationEntry(direct.entry_id()));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("via-alias")));

  // Re-parenting an entry moves it between agents.
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry moved,
                       ds().CreateRegistrationEntry(MakeEntry(Id("moved"), kOtherAgent, {"a:1"})));
  moved.set_parent_id(kAgent);
  v1::RegistrationEntryMask mask;
  mask.set_parent_id(true);
  ASSERT_OK(ds().UpdateRegistrationEntry(moved, &mask));
  EXPECT_THAT(Authorized(kAgent), UnorderedElementsAre(Id("via-alias"), Id("moved")));
  EXPECT_THAT(Authorized(kOtherAgent), IsEmpty());
}

TEST_P(AuthorizedTest, ManyAgentsSeeOnlyTheirOwnEntries) {
  constexpr int kAgents = 20;
  for (int a = 0; a < kAgents; ++a) {
    const std::string agent = "spiffe://example.org/spire/agent/x/" + std::to_string(a);
    SetAgentSelectors(agent, {"pool:" + std::to_string(a % 2)});
    for (int w = 0; w < 3; ++w) {
      Add(Id("a" + std::to_string(a) + "/w" + std::to_string(w)), agent);
    }
  }
  Add(Id("alias-even"), kServer, {"pool:0"});
  Add(Id("even-workload"), Id("alias-even"));
  for (int a = 0; a < kAgents; ++a) {
    const std::string agent = "spiffe://example.org/spire/agent/x/" + std::to_string(a);
    std::vector<std::string> want;
    for (int w = 0; w < 3; ++w)
      want.push_back(Id("a" + std::to_string(a) + "/w" + std::to_string(w)));
    if (a % 2 == 0) want.push_back(Id("even-workload"));
    EXPECT_THAT(Authorized(agent), UnorderedElementsAreArray(want)) << agent;
  }
}

PLINTH_INSTANTIATE_DATASTORE_TEST(AuthorizedTest);

// The walk on the index directly, with inputs the DataStore's validation would refuse.
std::shared_ptr<const v1::RegistrationEntry> Entry(const std::string& id,
                                                   const std::string& spiffe_id,
                                                   const std::string& parent_id,
                                                   const std::vector<std::string>& selectors) {
  auto e = std::make_shared<v1::RegistrationEntry>(MakeEntry(spiffe_id, parent_id, selectors));
  e->set_entry_id(id);
  return e;
}

using Sels = std::vector<v1::Selector>;

std::vector<std::string> Ids(const std::vector<EntryPtr>& entries) {
  std::vector<std::string> out;
  for (const EntryPtr& e : entries) out.push_back(e->entry_id());
  return out;
}

TEST(EntryIndexAuthorized, RepeatedAgentSelectorsDoNotStandInForMissingOnes) {
  internal::EntryIndex index;
  index.Put(Entry("alias", Id("alias"), kServer, {"a:1", "b:2"}), 1);
  index.Put(Entry("child", Id("child"), Id("alias"), {"x:1"}), 1);
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "1"), Sel("a", "1")})), IsEmpty());
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("b", "2"), Sel("a", "1"), Sel("a", "1")})),
              UnorderedElementsAre("child"));
}

TEST(EntryIndexAuthorized, AnAliasWithRepeatedSelectorsNeedsEachOnce) {
  internal::EntryIndex index;
  index.Put(Entry("alias", Id("alias"), kServer, {"a:1", "a:1"}), 1);
  index.Put(Entry("child", Id("child"), Id("alias"), {"x:1"}), 1);
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "1")})), UnorderedElementsAre("child"));
}

TEST(EntryIndexAuthorized, ReplacingAndRemovingEntriesUpdatesTheWalk) {
  internal::EntryIndex index;
  index.Put(Entry("alias", Id("alias"), kServer, {"a:1"}), 1);
  index.Put(Entry("child", Id("child"), Id("alias"), {"x:1"}), 1);
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "1")})), UnorderedElementsAre("child"));
  // The alias changes its selector: the agent no longer qualifies.
  index.Put(Entry("alias", Id("alias"), kServer, {"a:2"}), 2);
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "1")})), IsEmpty());
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "2")})), UnorderedElementsAre("child"));
  index.Remove("alias");
  EXPECT_THAT(Ids(index.Authorized(kAgent, Sels{Sel("a", "2")})), IsEmpty());
  EXPECT_EQ(index.size(), 1u);
}

TEST(EntryIndexAuthorized, LargeFamiliesKeepTheirOrderThroughChunkSplits) {
  // Enough children of one parent for several chunks of postings, inserted in ID order (as
  // hydration does) or scattered (as live writes do), then every other one removed.
  constexpr int kChildren = 2000;
  for (const bool scattered : {false, true}) {
    SCOPED_TRACE(scattered ? "scattered" : "in order");
    internal::EntryIndex index;
    auto id_of = [](int n) {
      char id[16];
      std::snprintf(id, sizeof(id), "e%05d", n);
      return std::string(id);
    };
    for (int i = 0; i < kChildren; ++i) {
      const int n = scattered ? (i * 7919) % kChildren : i;
      index.Put(Entry(id_of(n), Id("w" + std::to_string(n)), kAgent, {"x:1"}), 1);
    }
    for (int n = 0; n < kChildren; n += 2) index.Remove(id_of(n));
    EXPECT_EQ(index.Authorized(kAgent, Sels{}).size(), kChildren / 2u);
    v1::ListRegistrationEntriesRequest r;
    r.set_by_parent_id(kAgent);
    bool more = false;
    std::vector<EntryPtr> page = index.Query(r, "e00999", 3, &more);
    EXPECT_THAT(Ids(page), ::testing::ElementsAre("e01001", "e01003", "e01005"));
    EXPECT_TRUE(more);
    page = index.Query(r, "e01995", 3, &more);
    EXPECT_THAT(Ids(page), ::testing::ElementsAre("e01997", "e01999"));
    EXPECT_FALSE(more);
    std::vector<EntryPtr> all = index.Query(r, "", 0, &more);
    ASSERT_EQ(all.size(), kChildren / 2u);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i]->entry_id(), id_of(2 * i + 1));
    r.Clear();
    *r.mutable_by_selectors()->add_selectors() = Sel("x", "1");
    EXPECT_EQ(index.Query(r, "", 0, &more).size(), kChildren / 2u);
  }
}

}  // namespace
}  // namespace plinth::datastore
