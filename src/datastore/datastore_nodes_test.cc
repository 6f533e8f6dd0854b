// Attested nodes and node selectors (spec §C5) on every backend: CRUD, every ListAttestedNodes
// and CountAttestedNodes filter, exact pagination, ListNodeSelectors' strict valid_at, the
// join-token cascade, batched and chunked pruning, and the change feed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
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
using testing::MakeEntry;
using testing::MakeNode;
using testing::OpLimitedStore;
using testing::Sel;

using DatastoreNodesTest = DatastoreTest;

std::string Agent(const std::string& name) { return "spiffe://example.org/spire/agent/" + name; }

v1::AttestedNode Node(const std::string& name, int64_t not_after,
                      const std::string& type = "x509pop", bool can_reattest = false,
                      const std::string& serial = "serial-1") {
  v1::AttestedNode n = MakeNode(Agent(name), not_after, serial);
  n.set_attestation_data_type(type);
  n.set_can_reattest(can_reattest);
  return n;
}

std::vector<std::string> Ids(const v1::ListAttestedNodesResponse& response) {
  std::vector<std::string> out;
  for (const v1::AttestedNode& n : response.nodes()) out.push_back(n.spiffe_id());
  return out;
}

std::vector<std::string> SelectorStrings(
    const google::protobuf::RepeatedPtrField<v1::Selector>& s) {
  std::vector<std::string> out;
  for (const v1::Selector& sel : s) out.push_back(sel.type() + ":" + sel.value());
  return out;
}

std::vector<std::string> SelectorStrings(const std::vector<v1::Selector>& s) {
  std::vector<std::string> out;
  for (const v1::Selector& sel : s) out.push_back(sel.type() + ":" + sel.value());
  return out;
}

std::vector<v1::Selector> Sels(const std::vector<std::string>& specs) {
  std::vector<v1::Selector> out;
  for (const std::string& spec : specs) {
    const size_t colon = spec.find(':');
    out.push_back(Sel(spec.substr(0, colon), spec.substr(colon + 1)));
  }
  return out;
}

v1::BySelectors BySelectors(const std::vector<std::string>& specs, v1::MatchBehavior match) {
  v1::BySelectors by;
  for (const v1::Selector& s : Sels(specs)) *by.add_selectors() = s;
  by.set_match(match);
  return by;
}

// Every node the request matches, walking all pages of `page_size`; checks that each page but
// the last is full and that only the last has an empty token.
std::vector<std::string> ListAllPages(DataStore& ds, v1::ListAttestedNodesRequest request,
                                      int page_size, std::vector<size_t>* page_sizes = nullptr) {
  std::vector<std::string> out;
  request.mutable_pagination()->set_page_size(page_size);
  request.mutable_pagination()->set_token("");
  for (int guard = 0; guard < 1000; ++guard) {
    auto page = ds.ListAttestedNodes(request);
    EXPECT_THAT(page, IsOk());
    if (!page.ok()) break;
    if (page_sizes != nullptr) page_sizes->push_back(page->nodes_size());
    for (const auto& id : Ids(*page)) out.push_back(id);
    EXPECT_EQ(page->pagination().page_size(), page_size);
    if (page->pagination().token().empty()) break;
    EXPECT_EQ(page->nodes_size(), page_size) << "a page before the last is short";
    request.mutable_pagination()->set_token(page->pagination().token());
  }
  return out;
}

TEST_P(DatastoreNodesTest, CreateFetchAndCount) {
  v1::AttestedNode node = Node("a", 1000, "x509pop", true);
  node.set_new_cert_serial_number("serial-2");
  node.set_new_cert_not_after(2000);
  node.set_agent_version("1.2.3");
  *node.add_selectors() = Sel("ignored", "on-create");
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode created, ds().CreateAttestedNode(node));
  EXPECT_EQ(created.selectors_size(), 0);

  ASSERT_OK_AND_ASSIGN(v1::AttestedNode fetched, ds().FetchAttestedNode(Agent("a")));
  v1::AttestedNode expected = node;
  expected.clear_selectors();
  EXPECT_EQ(fetched.SerializeAsString(), expected.SerializeAsString());
  EXPECT_THAT(ds().GetNodeSelectors(Agent("a"), v1::READ_LOCAL), IsOk());
  EXPECT_THAT(*ds().GetNodeSelectors(Agent("a"), v1::READ_LOCAL), IsEmpty());

  EXPECT_THAT(ds().CreateAttestedNode(node), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(ds().FetchAttestedNode(Agent("missing")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().CreateAttestedNode(MakeNode("", 1)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("spiffe_id")));

  ASSERT_OK(ds().CreateAttestedNode(Node("b", 1000)));
  ASSERT_OK_AND_ASSIGN(int64_t count, ds().CountAttestedNodes({}));
  EXPECT_EQ(count, 2);
}

TEST_P(DatastoreNodesTest, FetchAttestedNodesIncludesSelectorsAndOmitsUnknownIds) {
  ASSERT_OK(ds().CreateAttestedNode(Node("a", 1000)));
  ASSERT_OK(ds().CreateAttestedNode(Node("b", 1000)));
  ASSERT_OK(ds().SetNodeSelectors(Agent("a"), Sels({"t:2", "t:1"})));
  ASSERT_OK_AND_ASSIGN(auto nodes,
                       ds().FetchAttestedNodes({Agent("a"), Agent("b"), Agent("missing")}));
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_THAT(SelectorStrings(nodes[Agent("a")].selectors()), ElementsAre("t:2", "t:1"));
  EXPECT_EQ(nodes[Agent("b")].selectors_size(), 0);
  ASSERT_OK_AND_ASSIGN(auto none, ds().FetchAttestedNodes({}));
  EXPECT_THAT(none, IsEmpty());
  // FetchAttestedNode never carries selectors.
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode a, ds().FetchAttestedNode(Agent("a")));
  EXPECT_EQ(a.selectors_size(), 0);
}

TEST_P(DatastoreNodesTest, UpdateAttestedNodeAppliesTheMask) {
  v1::AttestedNode node = Node("a", 1000, "join_token", false, "s1");
  node.set_agent_version("1.0");
  ASSERT_OK(ds().CreateAttestedNode(node));

  v1::AttestedNode change = Node("a", 5000, "other_type", true, "s2");
  change.set_new_cert_serial_number("s3");
  change.set_new_cert_not_after(6000);
  change.set_agent_version("2.0");

  v1::AttestedNodeMask mask;
  mask.set_cert_not_after(true);
  mask.set_agent_version(true);
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode updated, ds().UpdateAttestedNode(change, &mask));
  EXPECT_EQ(updated.cert_not_after(), 5000);
  EXPECT_EQ(updated.agent_version(), "2.0");
  EXPECT_EQ(updated.cert_serial_number(), "s1");
  EXPECT_FALSE(updated.can_reattest());
  EXPECT_EQ(updated.new_cert_serial_number(), "");
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode fetched, ds().FetchAttestedNode(Agent("a")));
  EXPECT_EQ(fetched.SerializeAsString(), updated.SerializeAsString());

  // No mask: every maskable field; the attestation type never changes.
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateAttestedNode(change, nullptr));
  EXPECT_EQ(updated.cert_serial_number(), "s2");
  EXPECT_EQ(updated.new_cert_serial_number(), "s3");
  EXPECT_EQ(updated.new_cert_not_after(), 6000);
  EXPECT_TRUE(updated.can_reattest());
  EXPECT_EQ(updated.attestation_data_type(), "join_token");
  ASSERT_OK_AND_ASSIGN(fetched, ds().FetchAttestedNode(Agent("a")));
  EXPECT_EQ(fetched.SerializeAsString(), updated.SerializeAsString());

  // An all-false mask changes nothing but still succeeds.
  v1::AttestedNodeMask none;
  ASSERT_OK_AND_ASSIGN(updated, ds().UpdateAttestedNode(Node("a", 1), &none));
  EXPECT_EQ(updated.cert_not_after(), 5000);

  EXPECT_THAT(ds().UpdateAttestedNode(Node("missing", 1), nullptr),
              StatusIs(StatusCode::kNotFound));
}

TEST_P(DatastoreNodesTest, DeleteAttestedNodeReturnsItAndDropsItsSelectors) {
  ASSERT_OK(ds().CreateAttestedNode(Node("a", 1000)));
  ASSERT_OK(ds().SetNodeSelectors(Agent("a"), Sels({"t:1"})));
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode deleted, ds().DeleteAttestedNode(Agent("a")));
  EXPECT_EQ(deleted.spiffe_id(), Agent("a"));
  EXPECT_EQ(deleted.cert_not_after(), 1000);
  EXPECT_EQ(deleted.selectors_size(), 0);
  EXPECT_THAT(ds().FetchAttestedNode(Agent("a")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(*ds().GetNodeSelectors(Agent("a"), v1::READ_LOCAL), IsEmpty());
  EXPECT_THAT(ds().DeleteAttestedNode(Agent("a")), StatusIs(StatusCode::kNotFound));
}

TEST_P(DatastoreNodesTest, DeletingAJoinTokenNodeDeletesOnlyItsSingleSelectorChildren) {
  const std::string node_id = Agent("jt");
  ASSERT_OK(ds().CreateAttestedNode(Node("jt", 1000, "join_token")));
  ASSERT_OK_AND_ASSIGN(
      auto alias, ds().CreateRegistrationEntry(
                      MakeEntry("spiffe://example.org/alias", node_id, {"spiffe_id:" + node_id})));
  ASSERT_OK_AND_ASSIGN(auto two_selectors,
                       ds().CreateRegistrationEntry(MakeEntry("spiffe://example.org/w1", node_id,
                                                              {"spiffe_id:" + node_id, "u:1"})));
  ASSERT_OK_AND_ASSIGN(auto other_selector, ds().CreateRegistrationEntry(MakeEntry(
                                                "spiffe://example.org/w2", node_id, {"u:1"})));
  ASSERT_OK_AND_ASSIGN(auto other_parent,
                       ds().CreateRegistrationEntry(MakeEntry(
                           "spiffe://example.org/w3", Agent("else"), {"spiffe_id:" + node_id})));

  ASSERT_OK(ds().DeleteAttestedNode(node_id));
  EXPECT_THAT(ds().FetchRegistrationEntry(alias.entry_id()), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(two_selectors.entry_id()), IsOk());
  EXPECT_THAT(ds().FetchRegistrationEntry(other_selector.entry_id()), IsOk());
  EXPECT_THAT(ds().FetchRegistrationEntry(other_parent.entry_id()), IsOk());
}

// Another replica creates a cascade child after this one planned the node's deletion: the
// held deletion must abort, re-plan, and take the new child along (never leave it orphaned).
TEST_P(DatastoreNodesTest, JoinTokenNodeDeletionTakesAlongAChildCreatedConcurrently) {
  store::FaultInjectionStore gated(&store());
  ASSERT_OK_AND_ASSIGN(auto replica, DataStore::Open(&gated, Options()));
  const std::string node_id = Agent("jt");
  ASSERT_OK(ds().CreateAttestedNode(Node("jt", 1000, "join_token")));
  ASSERT_OK(replica->mirror().Sync(std::chrono::seconds(10)));

  gated.HoldCommits();
  StatusOr<v1::AttestedNode> deleted = UnknownError("not run");
  std::thread deleter([&] { deleted = replica->DeleteAttestedNode(node_id); });
  ASSERT_TRUE(gated.WaitForHeldCommits(
      1, std::chrono::seconds(10)));  // planned with no child; its commit waits
  ASSERT_OK_AND_ASSIGN(
      auto child, ds().CreateRegistrationEntry(
                      MakeEntry("spiffe://example.org/late", node_id, {"spiffe_id:" + node_id})));
  gated.ReleaseCommits();
  deleter.join();
  ASSERT_OK(deleted.status());
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_THAT(ds().FetchAttestedNode(node_id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(child.entry_id()), StatusIs(StatusCode::kNotFound));
}

TEST_P(DatastoreNodesTest, DeletingANonJoinTokenNodeKeepsItsChildren) {
  const std::string node_id = Agent("x");
  ASSERT_OK(ds().CreateAttestedNode(Node("x", 1000, "x509pop")));
  ASSERT_OK_AND_ASSIGN(
      auto child, ds().CreateRegistrationEntry(
                      MakeEntry("spiffe://example.org/alias", node_id, {"spiffe_id:" + node_id})));
  ASSERT_OK(ds().DeleteAttestedNode(node_id));
  EXPECT_THAT(ds().FetchRegistrationEntry(child.entry_id()), IsOk());
}

TEST_P(DatastoreNodesTest, JoinTokenCascadeLargerThanOneTransactionIsSplit) {
  // Each child deletion is three ops (entry, similar key, join-child key), the node two more:
  // five ops per transaction cannot hold them all.
  OpLimitedStore limited(&store(), 5);
  ASSERT_OK_AND_ASSIGN(auto small, DataStore::Open(&limited, Options()));
  const std::string node_id = Agent("jt");
  ASSERT_OK(ds().CreateAttestedNode(Node("jt", 1000, "join_token")));
  std::vector<std::string> children;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto e, ds().CreateRegistrationEntry(
                                     MakeEntry("spiffe://example.org/alias" + std::to_string(i),
                                               node_id, {"spiffe_id:" + node_id})));
    children.push_back(e.entry_id());
  }
  ASSERT_OK(small->mirror().Sync(std::chrono::seconds(10)));
  const int commits_before = limited.commits();
  ASSERT_OK_AND_ASSIGN(v1::AttestedNode deleted, small->DeleteAttestedNode(node_id));
  EXPECT_EQ(deleted.spiffe_id(), node_id);
  EXPECT_GE(limited.commits() - commits_before, 3);
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_THAT(ds().FetchAttestedNode(node_id), StatusIs(StatusCode::kNotFound));
  for (const std::string& id : children) {
    EXPECT_THAT(ds().FetchRegistrationEntry(id), StatusIs(StatusCode::kNotFound)) << id;
  }
}

class NodeFilterTest : public DatastoreNodesTest {
 protected:
  // n1..n6 with distinct attributes; see each test for what it relies on.
  void SetUp() override {
    DatastoreNodesTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK(ds().CreateAttestedNode(Node("n1", 100, "join_token", true)));
    ASSERT_OK(ds().CreateAttestedNode(Node("n2", 200, "x509pop", false)));
    ASSERT_OK(ds().CreateAttestedNode(Node("n3", 300, "x509pop", true, /*serial=*/"")));
    ASSERT_OK(ds().CreateAttestedNode(Node("n4", 400, "aws_iid", false)));
    ASSERT_OK(ds().CreateAttestedNode(Node("n5", 500, "x509pop", true)));
    ASSERT_OK(ds().CreateAttestedNode(Node("n6", 600, "x509pop", false)));
    ASSERT_OK(ds().SetNodeSelectors(Agent("n1"), Sels({"a:1"})));
    ASSERT_OK(ds().SetNodeSelectors(Agent("n2"), Sels({"a:1", "b:2"})));
    ASSERT_OK(ds().SetNodeSelectors(Agent("n3"), Sels({"c:3", "b:2", "a:1"})));
    ASSERT_OK(ds().SetNodeSelectors(Agent("n4"), Sels({"b:2"})));
    // n5 has no selectors.
    ASSERT_OK(ds().SetNodeSelectors(Agent("n6"), Sels({"d:4"})));
    // Selectors of a node that does not exist: never listed as a node.
    ASSERT_OK(ds().SetNodeSelectors(Agent("ghost"), Sels({"a:1", "b:2"})));
  }

  std::vector<std::string> List(const v1::ListAttestedNodesRequest& request) {
    auto response = ds().ListAttestedNodes(request);
    EXPECT_THAT(response, IsOk());
    if (!response.ok()) return {};
    EXPECT_FALSE(response->has_pagination());
    return Ids(*response);
  }

  int64_t Count(const v1::CountAttestedNodesRequest& request) {
    auto count = ds().CountAttestedNodes(request);
    EXPECT_THAT(count, IsOk());
    return count.ok() ? *count : -1;
  }

  std::vector<std::string> A(std::initializer_list<const char*> names) {
    std::vector<std::string> out;
    for (const char* n : names) out.push_back(Agent(n));
    return out;
  }
};

TEST_P(NodeFilterTest, NoFilterListsEveryNodeInIdOrder) {
  EXPECT_EQ(List({}), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  EXPECT_EQ(Count({}), 6);
}

TEST_P(NodeFilterTest, ByAttestationType) {
  v1::ListAttestedNodesRequest r;
  r.set_by_attestation_type("x509pop");
  EXPECT_EQ(List(r), A({"n2", "n3", "n5", "n6"}));
  r.set_by_attestation_type("none");
  EXPECT_THAT(List(r), IsEmpty());
  v1::CountAttestedNodesRequest c;
  c.set_by_attestation_type("join_token");
  EXPECT_EQ(Count(c), 1);
}

TEST_P(NodeFilterTest, ByBanned) {
  v1::ListAttestedNodesRequest r;
  r.set_by_banned(true);
  EXPECT_EQ(List(r), A({"n3"}));
  r.set_by_banned(false);
  EXPECT_EQ(List(r), A({"n1", "n2", "n4", "n5", "n6"}));
  v1::CountAttestedNodesRequest c;
  c.set_by_banned(true);
  EXPECT_EQ(Count(c), 1);
  c.set_by_banned(false);
  EXPECT_EQ(Count(c), 5);
}

TEST_P(NodeFilterTest, ByExpiresBeforeIsStrictAndValidAtIsInclusive) {
  v1::ListAttestedNodesRequest r;
  r.set_by_expires_before(300);
  EXPECT_EQ(List(r), A({"n1", "n2"}));
  v1::CountAttestedNodesRequest c;
  c.set_by_expires_before(300);
  EXPECT_EQ(Count(c), 2);

  v1::ListAttestedNodesRequest v;
  v.set_valid_at(300);
  EXPECT_EQ(List(v), A({"n3", "n4", "n5", "n6"}));
  v.set_by_expires_before(500);
  EXPECT_EQ(List(v), A({"n3", "n4"}));
}

TEST_P(NodeFilterTest, ByCanReattest) {
  v1::ListAttestedNodesRequest r;
  r.set_by_can_reattest(true);
  EXPECT_EQ(List(r), A({"n1", "n3", "n5"}));
  r.set_by_can_reattest(false);
  EXPECT_EQ(List(r), A({"n2", "n4", "n6"}));
  v1::CountAttestedNodesRequest c;
  c.set_by_can_reattest(false);
  EXPECT_EQ(Count(c), 3);
}

TEST_P(NodeFilterTest, BySpiffeIds) {
  v1::ListAttestedNodesRequest r;
  r.add_by_spiffe_ids(Agent("n4"));
  r.add_by_spiffe_ids(Agent("n2"));
  r.add_by_spiffe_ids(Agent("n2"));
  r.add_by_spiffe_ids(Agent("ghost"));
  r.add_by_spiffe_ids(Agent("missing"));
  EXPECT_EQ(List(r), A({"n2", "n4"}));
  r.set_by_attestation_type("aws_iid");
  EXPECT_EQ(List(r), A({"n4"}));
}

TEST_P(NodeFilterTest, BySelectorMatchInAllFourBehaviours) {
  const std::vector<std::string> wanted = {"a:1", "b:2", "a:1"};  // duplicates are ignored
  v1::ListAttestedNodesRequest r;
  v1::CountAttestedNodesRequest c;
  struct Case {
    v1::MatchBehavior match;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {v1::MATCH_EXACT, A({"n2"})},
      {v1::MATCH_SUBSET, A({"n1", "n2", "n4"})},
      {v1::MATCH_SUPERSET, A({"n2", "n3"})},
      {v1::MATCH_ANY, A({"n1", "n2", "n3", "n4"})},
  };
  for (const Case& tc : cases) {
    *r.mutable_by_selector_match() = BySelectors(wanted, tc.match);
    *c.mutable_by_selector_match() = BySelectors(wanted, tc.match);
    EXPECT_EQ(List(r), tc.expected) << "match " << tc.match;
    EXPECT_EQ(Count(c), static_cast<int64_t>(tc.expected.size())) << "match " << tc.match;
  }
  // A selector no node has: Exact/Superset match nothing, Subset/Any ignore it.
  *r.mutable_by_selector_match() = BySelectors({"a:1", "zz:9"}, v1::MATCH_SUPERSET);
  EXPECT_THAT(List(r), IsEmpty());
  *r.mutable_by_selector_match() = BySelectors({"a:1", "zz:9"}, v1::MATCH_SUBSET);
  EXPECT_EQ(List(r), A({"n1"}));
  // Combined with another filter.
  *r.mutable_by_selector_match() = BySelectors(wanted, v1::MATCH_ANY);
  r.set_by_attestation_type("x509pop");
  EXPECT_EQ(List(r), A({"n2", "n3"}));
}

TEST_P(NodeFilterTest, FetchSelectorsOnlyControlsTheOutput) {
  v1::ListAttestedNodesRequest r;
  *r.mutable_by_selector_match() = BySelectors({"a:1"}, v1::MATCH_SUPERSET);
  ASSERT_OK_AND_ASSIGN(auto stripped, ds().ListAttestedNodes(r));
  EXPECT_EQ(Ids(stripped), A({"n1", "n2", "n3"}));
  for (const auto& n : stripped.nodes()) EXPECT_EQ(n.selectors_size(), 0) << n.spiffe_id();

  r.set_fetch_selectors(true);
  ASSERT_OK_AND_ASSIGN(auto full, ds().ListAttestedNodes(r));
  ASSERT_EQ(full.nodes_size(), 3);
  EXPECT_THAT(SelectorStrings(full.nodes(2).selectors()), ElementsAre("c:3", "b:2", "a:1"));

  v1::ListAttestedNodesRequest all;
  all.set_fetch_selectors(true);
  ASSERT_OK_AND_ASSIGN(auto every, ds().ListAttestedNodes(all));
  ASSERT_EQ(every.nodes_size(), 6);
  EXPECT_EQ(every.nodes(4).selectors_size(), 0);  // n5 has none
  EXPECT_THAT(SelectorStrings(every.nodes(5).selectors()), ElementsAre("d:4"));
}

TEST_P(NodeFilterTest, PagesHoldExactlyThePageSizeUntilTheLast) {
  std::vector<size_t> sizes;
  EXPECT_EQ(ListAllPages(ds(), {}, 2, &sizes), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  EXPECT_THAT(sizes, ElementsAre(2, 2, 2));
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), {}, 4, &sizes), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  EXPECT_THAT(sizes, ElementsAre(4, 2));
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), {}, 6, &sizes), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  EXPECT_THAT(sizes, ElementsAre(6));
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), {}, 100, &sizes), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  EXPECT_THAT(sizes, ElementsAre(6));

  // Filters apply before the page limit, also for the post-filtered behaviours.
  v1::ListAttestedNodesRequest subset;
  *subset.mutable_by_selector_match() = BySelectors({"a:1", "b:2"}, v1::MATCH_SUBSET);
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), subset, 2, &sizes), A({"n1", "n2", "n4"}));
  EXPECT_THAT(sizes, ElementsAre(2, 1));
  v1::ListAttestedNodesRequest exact;
  *exact.mutable_by_selector_match() = BySelectors({"a:1", "b:2"}, v1::MATCH_EXACT);
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), exact, 1, &sizes), A({"n2"}));
  EXPECT_THAT(sizes, ElementsAre(1));
  v1::ListAttestedNodesRequest reattest;
  reattest.set_by_can_reattest(false);
  reattest.add_by_spiffe_ids(Agent("n6"));
  reattest.add_by_spiffe_ids(Agent("n4"));
  reattest.add_by_spiffe_ids(Agent("n1"));
  sizes.clear();
  EXPECT_EQ(ListAllPages(ds(), reattest, 1, &sizes), A({"n4", "n6"}));
  EXPECT_THAT(sizes, ElementsAre(1, 1));

  // No match: one empty page with an empty token.
  v1::ListAttestedNodesRequest none;
  none.set_by_attestation_type("none");
  none.mutable_pagination()->set_page_size(3);
  ASSERT_OK_AND_ASSIGN(auto empty, ds().ListAttestedNodes(none));
  EXPECT_EQ(empty.nodes_size(), 0);
  EXPECT_EQ(empty.pagination().token(), "");
  EXPECT_EQ(empty.pagination().page_size(), 3);
}

TEST_P(NodeFilterTest, InvalidRequestsAreRejected) {
  v1::ListAttestedNodesRequest r;
  r.mutable_pagination()->set_page_size(0);
  EXPECT_THAT(ds().ListAttestedNodes(r),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
  r.mutable_pagination()->set_page_size(2);
  r.mutable_pagination()->set_token("not a token");
  EXPECT_THAT(ds().ListAttestedNodes(r),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("could not parse token")));

  v1::ListAttestedNodesRequest empty_selectors;
  empty_selectors.mutable_by_selector_match()->set_match(v1::MATCH_ANY);
  EXPECT_THAT(
      ds().ListAttestedNodes(empty_selectors),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("cannot list by empty selectors set")));
  v1::CountAttestedNodesRequest count_empty;
  count_empty.mutable_by_selector_match();
  EXPECT_THAT(
      ds().CountAttestedNodes(count_empty),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("cannot list by empty selectors set")));
}

TEST_P(NodeFilterTest, ConsistentReadsSeeEverything) {
  v1::ListAttestedNodesRequest r;
  r.set_consistency(v1::READ_CONSISTENT);
  EXPECT_EQ(List(r), A({"n1", "n2", "n3", "n4", "n5", "n6"}));
  v1::CountAttestedNodesRequest c;
  c.set_consistency(v1::READ_CONSISTENT);
  EXPECT_EQ(Count(c), 6);
}

TEST_P(NodeFilterTest, ListNodeSelectorsValidAtIsStrictAndNeedsANode) {
  auto ids = [](const v1::ListNodeSelectorsResponse& r) {
    std::vector<std::string> out;
    for (const auto& s : r.selectors()) out.push_back(s.spiffe_id());
    return out;
  };
  ASSERT_OK_AND_ASSIGN(auto all, ds().ListNodeSelectors({}));
  // Every ID with selectors, the node-less one included; n5 has none.
  EXPECT_EQ(ids(all), A({"ghost", "n1", "n2", "n3", "n4", "n6"}));
  EXPECT_THAT(SelectorStrings(all.selectors(3).selectors()), ElementsAre("c:3", "b:2", "a:1"));

  v1::ListNodeSelectorsRequest r;
  r.set_valid_at(300);
  ASSERT_OK_AND_ASSIGN(auto valid, ds().ListNodeSelectors(r));
  EXPECT_EQ(ids(valid), A({"n4", "n6"}));  // n3 expires exactly at 300: excluded
  r.set_valid_at(299);
  r.set_consistency(v1::READ_CONSISTENT);
  ASSERT_OK_AND_ASSIGN(valid, ds().ListNodeSelectors(r));
  EXPECT_EQ(ids(valid), A({"n3", "n4", "n6"}));
}

TEST_P(DatastoreNodesTest, SetNodeSelectorsReplacesTheWholeSet) {
  const std::string id = Agent("a");  // the node need not exist
  ASSERT_OK(ds().SetNodeSelectors(id, Sels({"t:2", "t:1", "u:1"})));
  ASSERT_OK_AND_ASSIGN(auto got, ds().GetNodeSelectors(id, v1::READ_LOCAL));
  EXPECT_THAT(SelectorStrings(got), ElementsAre("t:2", "t:1", "u:1"));

  ASSERT_OK(ds().SetNodeSelectors(id, Sels({"v:1"})));
  ASSERT_OK_AND_ASSIGN(got, ds().GetNodeSelectors(id, v1::READ_CONSISTENT));
  EXPECT_THAT(SelectorStrings(got), ElementsAre("v:1"));

  EXPECT_THAT(ds().SetNodeSelectors(id, Sels({"w:1", "w:1"})),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("w:1")));
  ASSERT_OK_AND_ASSIGN(got, ds().GetNodeSelectors(id, v1::READ_LOCAL));
  EXPECT_THAT(SelectorStrings(got), ElementsAre("v:1"));

  ASSERT_OK(ds().SetNodeSelectors(id, {}));
  ASSERT_OK_AND_ASSIGN(got, ds().GetNodeSelectors(id, v1::READ_LOCAL));
  EXPECT_THAT(got, IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto listed, ds().ListNodeSelectors({}));
  EXPECT_EQ(listed.selectors_size(), 0);
  ASSERT_OK(ds().SetNodeSelectors(id, {}));  // clearing an empty set is fine
  EXPECT_THAT(ds().SetNodeSelectors("", Sels({"t:1"})),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("spiffe_id")));
}

TEST_P(DatastoreNodesTest, SelectorIndexFollowsReplacements) {
  ASSERT_OK(ds().CreateAttestedNode(Node("a", 1000)));
  ASSERT_OK(ds().SetNodeSelectors(Agent("a"), Sels({"t:1"})));
  v1::ListAttestedNodesRequest r;
  *r.mutable_by_selector_match() = BySelectors({"t:1"}, v1::MATCH_ANY);
  ASSERT_OK_AND_ASSIGN(auto got, ds().ListAttestedNodes(r));
  EXPECT_EQ(Ids(got), std::vector<std::string>{Agent("a")});
  ASSERT_OK(ds().SetNodeSelectors(Agent("a"), Sels({"t:2"})));
  ASSERT_OK_AND_ASSIGN(got, ds().ListAttestedNodes(r));
  EXPECT_THAT(Ids(got), IsEmpty());
  ASSERT_OK(ds().DeleteAttestedNode(Agent("a")));
  *r.mutable_by_selector_match() = BySelectors({"t:2"}, v1::MATCH_ANY);
  ASSERT_OK_AND_ASSIGN(got, ds().ListAttestedNodes(r));
  EXPECT_THAT(Ids(got), IsEmpty());
}

TEST_P(DatastoreNodesTest, PruneDeletesExpiredReattestableNodesWithTheirCascade) {
  ASSERT_OK(ds().CreateAttestedNode(Node("reattest", 100, "x509pop", true)));
  ASSERT_OK(ds().CreateAttestedNode(Node("no-reattest", 100, "x509pop", false)));
  ASSERT_OK(ds().CreateAttestedNode(Node("banned", 100, "x509pop", true, "")));
  ASSERT_OK(ds().CreateAttestedNode(Node("at-limit", 500, "x509pop", true)));
  ASSERT_OK(ds().CreateAttestedNode(Node("valid", 1000, "x509pop", true)));
  ASSERT_OK(ds().CreateAttestedNode(Node("jt", 100, "join_token", true)));
  ASSERT_OK(ds().SetNodeSelectors(Agent("reattest"), Sels({"t:1"})));
  ASSERT_OK_AND_ASSIGN(
      auto alias, ds().CreateRegistrationEntry(MakeEntry("spiffe://example.org/alias", Agent("jt"),
                                                         {"spiffe_id:" + Agent("jt")})));

  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneAttestedExpiredNodes(500, false, 0));
  EXPECT_EQ(pruned, 2);
  EXPECT_THAT(ds().FetchAttestedNode(Agent("reattest")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(*ds().GetNodeSelectors(Agent("reattest"), v1::READ_LOCAL), IsEmpty());
  EXPECT_THAT(ds().FetchAttestedNode(Agent("jt")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchRegistrationEntry(alias.entry_id()), StatusIs(StatusCode::kNotFound));
  for (const char* kept : {"no-reattest", "banned", "at-limit", "valid"}) {
    EXPECT_THAT(ds().FetchAttestedNode(Agent(kept)), IsOk()) << kept;
  }

  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneAttestedExpiredNodes(500, true, 0));
  EXPECT_EQ(pruned, 1);
  EXPECT_THAT(ds().FetchAttestedNode(Agent("no-reattest")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ds().FetchAttestedNode(Agent("banned")), IsOk());
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneAttestedExpiredNodes(500, true, 0));
  EXPECT_EQ(pruned, 0);
}

TEST_P(DatastoreNodesTest, PruneTakesAtMostOneBatch) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(ds().CreateAttestedNode(Node("n" + std::to_string(i), 100 + i, "x509pop", true)));
  }
  ASSERT_OK_AND_ASSIGN(int64_t pruned, ds().PruneAttestedExpiredNodes(1000, false, 2));
  EXPECT_EQ(pruned, 2);
  ASSERT_OK_AND_ASSIGN(int64_t left, ds().CountAttestedNodes({}));
  EXPECT_EQ(left, 3);
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneAttestedExpiredNodes(1000, false, 2));
  EXPECT_EQ(pruned, 2);
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneAttestedExpiredNodes(1000, false, 2));
  EXPECT_EQ(pruned, 1);
  ASSERT_OK_AND_ASSIGN(pruned, ds().PruneAttestedExpiredNodes(1000, false, -1));
  EXPECT_EQ(pruned, 0);
}

TEST_P(DatastoreNodesTest, PruneIsChunkedToTheStoreLimits) {
  OpLimitedStore limited(&store(), 5);  // two node deletions (two ops each) per transaction
  ASSERT_OK_AND_ASSIGN(auto small, DataStore::Open(&limited, Options()));
  for (int i = 0; i < 9; ++i) {
    ASSERT_OK(ds().CreateAttestedNode(Node("n" + std::to_string(i), 100, "x509pop", true)));
  }
  ASSERT_OK(small->mirror().Sync(std::chrono::seconds(10)));
  const int commits_before = limited.commits();
  ASSERT_OK_AND_ASSIGN(int64_t pruned, small->PruneAttestedExpiredNodes(1000, false, 0));
  EXPECT_EQ(pruned, 9);
  EXPECT_EQ(limited.commits() - commits_before, 5);
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  ASSERT_OK_AND_ASSIGN(int64_t left, ds().CountAttestedNodes({}));
  EXPECT_EQ(left, 0);
}

TEST_P(DatastoreNodesTest, ChangesReachSubscribersAndOtherReplicas) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::DataStoreChange> changes;
  auto sub = ds().Subscribe([&](const v1::DataStoreChange& change, bool reset) {
    if (reset) return;
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(change);
    cv.notify_all();
  });
  ASSERT_OK_AND_ASSIGN(auto replica, OpenReplica());

  ASSERT_OK(ds().CreateAttestedNode(Node("a", 1000)));
  ASSERT_OK(ds().SetNodeSelectors(Agent("a"), Sels({"t:1"})));
  ASSERT_OK(ds().DeleteAttestedNode(Agent("a")));

  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return changes.size() >= 4; }))
      << changes.size() << " changes";
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].kind(), v1::DataStoreChange::KIND_NODE);
  EXPECT_FALSE(changes[0].deleted());
  EXPECT_EQ(changes[0].id(), Agent("a"));
  EXPECT_EQ(changes[0].node().cert_not_after(), 1000);
  EXPECT_EQ(changes[1].kind(), v1::DataStoreChange::KIND_NODE_SELECTORS);
  EXPECT_EQ(changes[1].node_selectors().selectors_size(), 1);
  // The delete is one transaction: node and selectors, in key order.
  std::set<v1::DataStoreChange::Kind> kinds = {changes[2].kind(), changes[3].kind()};
  EXPECT_EQ(kinds, (std::set<v1::DataStoreChange::Kind>{v1::DataStoreChange::KIND_NODE,
                                                        v1::DataStoreChange::KIND_NODE_SELECTORS}));
  EXPECT_TRUE(changes[2].deleted());
  EXPECT_TRUE(changes[3].deleted());
  EXPECT_EQ(changes[2].revision(), changes[3].revision());
  EXPECT_LT(changes[1].revision(), changes[2].revision());
  lock.unlock();

  ASSERT_OK(replica.ds->mirror().Sync(std::chrono::seconds(10)));
  EXPECT_THAT(replica.ds->FetchAttestedNode(Agent("a")), StatusIs(StatusCode::kNotFound));
  ASSERT_OK(replica.ds->CreateAttestedNode(Node("b", 1000)));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(10)));
  EXPECT_THAT(ds().FetchAttestedNode(Agent("b")), IsOk());
}

PLINTH_INSTANTIATE_DATASTORE_TEST(DatastoreNodesTest);
PLINTH_INSTANTIATE_DATASTORE_TEST(NodeFilterTest);

}  // namespace
}  // namespace plinth::datastore
