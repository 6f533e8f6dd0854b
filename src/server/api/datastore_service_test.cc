// The DataStore and Operator services end to end: a real grpc::Server on 127.0.0.1:0 over a
// DataStore on a memory store, called through the generated stubs.
#include "server/api/datastore_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "plinth/v1/datastore_service.grpc.pb.h"
#include "server/api/internal/watch_queue.h"
#include "server/api/operator_service.h"
#include "server/api/status.h"
#include "store/fault/fault_injection_store.h"
#include "store/open.h"

namespace plinth::server::api {
namespace {

using ::google::protobuf::Empty;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using DsStub = v1::DataStore::Stub;
using OpStub = v1::Operator::Stub;

constexpr char kDenyHeader[] = "x-test-deny";

// Refuses callers that send kDenyHeader, as the server's TLS/admin check would.
grpc::Status DenyMarkedCallers(grpc::ServerContext* context) {
  if (context->client_metadata().count(kDenyHeader) > 0) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "caller is not an admin");
  }
  return grpc::Status::OK;
}

std::string UniqueStoreUrl() {
  static std::atomic<int> counter{0};
  return "memory://datastore-service-test-" + std::to_string(getpid()) + "-" +
         std::to_string(counter++);
}

v1::Selector Sel(const std::string& type, const std::string& value) {
  v1::Selector s;
  s.set_type(type);
  s.set_value(value);
  return s;
}

v1::RegistrationEntry MakeEntry(const std::string& spiffe_id, const std::string& parent_id,
                                const std::string& selector_value) {
  v1::RegistrationEntry e;
  e.set_spiffe_id(spiffe_id);
  e.set_parent_id(parent_id);
  *e.add_selectors() = Sel("unix", selector_value);
  e.set_x509_svid_ttl(3600);
  return e;
}

v1::PublicKey JwtKey(const std::string& kid, int64_t not_after) {
  v1::PublicKey k;
  k.set_pkix_bytes("pkix-" + kid);
  k.set_kid(kid);
  k.set_not_after(not_after);
  return k;
}

// A gRPC server on a free loopback port serving the given services.
class TestServer {
 public:
  explicit TestServer(const std::vector<grpc::Service*>& services) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    for (grpc::Service* service : services) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  ~TestServer() {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
  }

  bool ok() const { return server_ != nullptr && port_ > 0; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

class DataStoreServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith({}); }

  void TearDown() override {
    if (service_ != nullptr) service_->Shutdown();
    server_.reset();
    operator_.reset();
    service_.reset();
    ds_.reset();
    store_.reset();
  }

  // (Re)starts everything with `options` for the DataStore service.
  void StartWith(DataStoreServiceOptions options) {
    TearDown();
    url_ = UniqueStoreUrl();
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> memory, store::OpenStore(url_));
    store_ = std::make_unique<store::FaultInjectionStore>(std::move(memory));
    ASSERT_OK_AND_ASSIGN(ds_, datastore::DataStore::Open(store_.get(), {}));
    service_ = std::make_unique<DataStoreService>(ds_.get(), DenyMarkedCallers, options);
    operator_ = std::make_unique<OperatorService>(
        store_.get(), ds_.get(), url_, /*retention=*/0, [] { return true; }, DenyMarkedCallers);
    server_ =
        std::make_unique<TestServer>(std::vector<grpc::Service*>{service_.get(), operator_.get()});
    ASSERT_TRUE(server_->ok());
    ds_stub_ = v1::DataStore::NewStub(server_->channel());
    op_stub_ = v1::Operator::NewStub(server_->channel());
  }

  // Calls a unary RPC; returns its status as a plinth::Status (through FromGrpcStatus).
  template <typename Stub, typename Request, typename Response>
  Status Call(Stub* stub,
              grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
              const Request& request, Response* response, bool deny = false) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (deny) context.AddMetadata(kDenyHeader, "1");
    return FromGrpcStatus((stub->*method)(&context, request, response));
  }
  template <typename Request, typename Response>
  Status Ds(grpc::Status (DsStub::*method)(grpc::ClientContext*, const Request&, Response*),
            const Request& request, Response* response, bool deny = false) {
    return Call(ds_stub_.get(), method, request, response, deny);
  }
  template <typename Request, typename Response>
  Status Op(grpc::Status (OpStub::*method)(grpc::ClientContext*, const Request&, Response*),
            const Request& request, Response* response, bool deny = false) {
    return Call(op_stub_.get(), method, request, response, deny);
  }

  // Reads a whole server stream; returns the messages and the final status.
  template <typename Response, typename Request>
  Status ReadAll(std::unique_ptr<grpc::ClientReader<Response>> (DsStub::*method)(
                     grpc::ClientContext*, const Request&),
                 const Request& request, std::vector<Response>* messages) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    std::unique_ptr<grpc::ClientReader<Response>> reader =
        (ds_stub_.get()->*method)(&context, request);
    Response message;
    while (reader->Read(&message)) messages->push_back(message);
    return FromGrpcStatus(reader->Finish());
  }

  // Creates `n` entries under `parent_id` directly through the DataStore (fast setup).
  void CreateEntries(int n, const std::string& parent_id, const std::string& prefix) {
    std::vector<v1::RegistrationEntry> entries;
    for (int i = 0; i < n; ++i) {
      entries.push_back(MakeEntry("spiffe://example.org/" + prefix + std::to_string(i), parent_id,
                                  prefix + std::to_string(i)));
    }
    ASSERT_OK_AND_ASSIGN(auto results, ds_->CreateOrReturnRegistrationEntries(entries));
    ASSERT_THAT(results, SizeIs(n));
  }

  std::string url_;
  std::unique_ptr<store::FaultInjectionStore> store_;  // over a memory store
  std::unique_ptr<datastore::DataStore> ds_;
  std::unique_ptr<DataStoreService> service_;
  std::unique_ptr<OperatorService> operator_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<DsStub> ds_stub_;
  std::unique_ptr<OpStub> op_stub_;
};

// ---- Status mapping

TEST(StatusMapping, KeepsCodeAndMessageBothWays) {
  for (int code = 1; code <= 16; ++code) {
    const Status status(static_cast<StatusCode>(code), "message " + std::to_string(code));
    const grpc::Status grpc_status = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), code);
    EXPECT_EQ(grpc_status.error_message(), "message " + std::to_string(code));
    EXPECT_EQ(FromGrpcStatus(grpc_status), status);
  }
  EXPECT_TRUE(ToGrpcStatus(Status()).ok());
  EXPECT_OK(FromGrpcStatus(grpc::Status::OK));
}

TEST(StatusMapping, UnknownGrpcCodeBecomesUnknown) {
  // 20: past UNAUTHENTICATED, yet a valid value of the enum (42 would not be).
  const grpc::Status odd(static_cast<grpc::StatusCode>(20), "odd");
  EXPECT_THAT(FromGrpcStatus(odd), StatusIs(StatusCode::kUnknown, HasSubstr("20: odd")));
}

// ---- The watch queue

TEST(WatchQueue, DeliversChangesInOrderThenTimesOut) {
  internal::WatchQueue queue(4);
  v1::DataStoreChange change;
  for (int i = 1; i <= 3; ++i) {
    change.set_revision(i);
    queue.Push(change);
  }
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(queue.Pop(std::chrono::milliseconds(0), &change),
              internal::WatchQueue::Event::kChange);
    EXPECT_EQ(change.revision(), i);
  }
  EXPECT_EQ(queue.Pop(std::chrono::milliseconds(10), &change),
            internal::WatchQueue::Event::kTimeout);
}

TEST(WatchQueue, OverflowIsTerminalAndDropsHeldChanges) {
  internal::WatchQueue queue(2);
  v1::DataStoreChange change;
  for (int i = 0; i < 3; ++i) queue.Push(change);
  EXPECT_EQ(queue.Pop(std::chrono::milliseconds(0), &change),
            internal::WatchQueue::Event::kOverflow);
  queue.Push(change);
  EXPECT_EQ(queue.Pop(std::chrono::milliseconds(0), &change),
            internal::WatchQueue::Event::kOverflow);
}

TEST(WatchQueue, ResetAndCloseEndTheQueueFirstOneWins) {
  internal::WatchQueue reset(8);
  v1::DataStoreChange change;
  reset.Push(change);
  reset.PushReset();
  reset.Close();
  EXPECT_EQ(reset.Pop(std::chrono::milliseconds(0), &change), internal::WatchQueue::Event::kReset);

  internal::WatchQueue closed(8);
  closed.Close();
  closed.PushReset();
  EXPECT_EQ(closed.Pop(std::chrono::milliseconds(0), &change),
            internal::WatchQueue::Event::kClosed);
}

// ---- Bundles

TEST_F(DataStoreServiceTest, BundlesRoundTrip) {
  v1::Bundle bundle;
  bundle.set_trust_domain_id("spiffe://example.org");
  bundle.set_refresh_hint(60);
  *bundle.add_jwt_signing_keys() = JwtKey("kid-1", 0);

  v1::Bundle out;
  ASSERT_OK(Ds(&DsStub::CreateBundle, bundle, &out));
  EXPECT_EQ(out.trust_domain_id(), "spiffe://example.org");
  EXPECT_THAT(Ds(&DsStub::CreateBundle, bundle, &out),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("already exists")));

  v1::TrustDomainRequest fetch;
  fetch.set_trust_domain("spiffe://example.org");
  ASSERT_OK(Ds(&DsStub::FetchBundle, fetch, &out));
  EXPECT_EQ(out.refresh_hint(), 60);
  EXPECT_THAT(out.jwt_signing_keys(), SizeIs(1));

  v1::CountResponse count;
  ASSERT_OK(Ds(&DsStub::CountBundles, Empty(), &count));
  EXPECT_EQ(count.count(), 1);

  v1::ListBundlesResponse list;
  ASSERT_OK(Ds(&DsStub::ListBundles, v1::ListBundlesRequest(), &list));
  ASSERT_THAT(list.bundles(), SizeIs(1));
  EXPECT_FALSE(list.has_pagination());

  // A mask writes only its fields.
  v1::UpdateBundleRequest update;
  update.mutable_bundle()->set_trust_domain_id("spiffe://example.org");
  update.mutable_bundle()->set_refresh_hint(120);
  update.mutable_mask()->set_refresh_hint(true);
  ASSERT_OK(Ds(&DsStub::UpdateBundle, update, &out));
  EXPECT_EQ(out.refresh_hint(), 120);
  EXPECT_THAT(out.jwt_signing_keys(), SizeIs(1));

  // No mask: every field.
  update.clear_mask();
  ASSERT_OK(Ds(&DsStub::UpdateBundle, update, &out));
  EXPECT_THAT(out.jwt_signing_keys(), SizeIs(0));

  v1::Bundle append;
  append.set_trust_domain_id("spiffe://example.org");
  *append.add_jwt_signing_keys() = JwtKey("kid-1", 0);
  *append.add_jwt_signing_keys() = JwtKey("kid-2", 100);
  ASSERT_OK(Ds(&DsStub::AppendBundle, append, &out));
  EXPECT_THAT(out.jwt_signing_keys(), SizeIs(2));

  v1::JWTKeyRequest key;
  key.set_trust_domain_id("spiffe://example.org");
  key.set_kid("kid-1");
  v1::PublicKey tainted;
  ASSERT_OK(Ds(&DsStub::TaintJWTKey, key, &tainted));
  EXPECT_EQ(tainted.kid(), "kid-1");
  EXPECT_TRUE(tainted.tainted_key());
  v1::PublicKey revoked;
  ASSERT_OK(Ds(&DsStub::RevokeJWTKey, key, &revoked));
  EXPECT_EQ(revoked.kid(), "kid-1");
  ASSERT_OK(Ds(&DsStub::FetchBundle, fetch, &out));
  ASSERT_THAT(out.jwt_signing_keys(), SizeIs(1));
  EXPECT_EQ(out.jwt_signing_keys(0).kid(), "kid-2");

  // PruneBundle: nothing to prune in an unknown trust domain; the datastore's refusal to
  // prune a bundle down to no certificate reaches the client as it is.
  v1::PruneBundleRequest prune;
  prune.set_trust_domain_id("spiffe://unknown.org");
  prune.set_expires_before_unix(50);
  v1::PruneBundleResponse pruned;
  ASSERT_OK(Ds(&DsStub::PruneBundle, prune, &pruned));
  EXPECT_FALSE(pruned.changed());
  prune.set_trust_domain_id("spiffe://example.org");
  const Status direct = ds_->PruneBundle("spiffe://example.org", 50).status();
  EXPECT_EQ(Ds(&DsStub::PruneBundle, prune, &pruned), direct);

  v1::Bundle set;
  set.set_trust_domain_id("spiffe://example.org");
  set.set_refresh_hint(7);
  ASSERT_OK(Ds(&DsStub::SetBundle, set, &out));
  ASSERT_OK(Ds(&DsStub::FetchBundle, fetch, &out));
  EXPECT_EQ(out.refresh_hint(), 7);
  EXPECT_THAT(out.jwt_signing_keys(), SizeIs(0));

  v1::DeleteBundleRequest del;
  del.set_trust_domain_id("spiffe://example.org");
  Empty empty;
  ASSERT_OK(Ds(&DsStub::DeleteBundle, del, &empty));
  EXPECT_THAT(Ds(&DsStub::FetchBundle, fetch, &out),
              StatusIs(StatusCode::kNotFound, HasSubstr("spiffe://example.org")));
}

TEST_F(DataStoreServiceTest, DeleteBundleInUseIsFailedPrecondition) {
  v1::Bundle bundle;
  bundle.set_trust_domain_id("spiffe://other.org");
  v1::Bundle out;
  ASSERT_OK(Ds(&DsStub::CreateBundle, bundle, &out));
  v1::RegistrationEntry entry = MakeEntry("spiffe://example.org/w", "spiffe://example.org/a", "1");
  entry.add_federates_with("spiffe://other.org");
  v1::RegistrationEntry created;
  ASSERT_OK(Ds(&DsStub::CreateRegistrationEntry, entry, &created));

  v1::DeleteBundleRequest del;
  del.set_trust_domain_id("spiffe://other.org");
  del.set_mode(v1::DELETE_BUNDLE_RESTRICT);
  Empty empty;
  const Status refused = Ds(&DsStub::DeleteBundle, del, &empty);
  EXPECT_THAT(refused, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_FALSE(refused.message().empty());

  del.set_mode(v1::DELETE_BUNDLE_DISSOCIATE);
  ASSERT_OK(Ds(&DsStub::DeleteBundle, del, &empty));
  v1::EntryIdRequest fetch;
  fetch.set_entry_id(created.entry_id());
  ASSERT_OK(Ds(&DsStub::FetchRegistrationEntry, fetch, &created));
  EXPECT_THAT(created.federates_with(), SizeIs(0));
}

// ---- Registration entries

TEST_F(DataStoreServiceTest, EntriesRoundTrip) {
  const v1::RegistrationEntry entry =
      MakeEntry("spiffe://example.org/workload", "spiffe://example.org/agent", "uid:1000");
  v1::RegistrationEntry created;
  ASSERT_OK(Ds(&DsStub::CreateRegistrationEntry, entry, &created));
  ASSERT_FALSE(created.entry_id().empty());
  EXPECT_EQ(created.spiffe_id(), "spiffe://example.org/workload");

  // A similar entry comes back as the existing one.
  v1::CreateOrReturnRegistrationEntryResponse again;
  ASSERT_OK(Ds(&DsStub::CreateOrReturnRegistrationEntry, entry, &again));
  EXPECT_TRUE(again.existing());
  EXPECT_EQ(again.entry().entry_id(), created.entry_id());

  v1::RegistrationEntry other = entry;
  other.set_spiffe_id("spiffe://example.org/other");
  ASSERT_OK(Ds(&DsStub::CreateOrReturnRegistrationEntry, other, &again));
  EXPECT_FALSE(again.existing());
  const std::string other_id = again.entry().entry_id();
  EXPECT_NE(other_id, created.entry_id());

  v1::EntryIdRequest id;
  id.set_entry_id(created.entry_id());
  v1::RegistrationEntry fetched;
  ASSERT_OK(Ds(&DsStub::FetchRegistrationEntry, id, &fetched));
  EXPECT_EQ(fetched.spiffe_id(), "spiffe://example.org/workload");

  v1::FetchRegistrationEntriesRequest many;
  many.add_entry_ids(created.entry_id());
  many.add_entry_ids(other_id);
  many.add_entry_ids("no-such-entry");
  v1::FetchRegistrationEntriesResponse fetched_many;
  ASSERT_OK(Ds(&DsStub::FetchRegistrationEntries, many, &fetched_many));
  EXPECT_EQ(fetched_many.entries().size(), 2u);
  EXPECT_EQ(fetched_many.entries().at(other_id).spiffe_id(), "spiffe://example.org/other");

  v1::CountRegistrationEntriesRequest count_request;
  v1::CountResponse count;
  ASSERT_OK(Ds(&DsStub::CountRegistrationEntries, count_request, &count));
  EXPECT_EQ(count.count(), 2);
  count_request.set_by_spiffe_id("spiffe://example.org/other");
  ASSERT_OK(Ds(&DsStub::CountRegistrationEntries, count_request, &count));
  EXPECT_EQ(count.count(), 1);

  v1::UpdateRegistrationEntryRequest update;
  update.mutable_entry()->set_entry_id(created.entry_id());
  update.mutable_entry()->set_x509_svid_ttl(60);
  update.mutable_mask()->set_x509_svid_ttl(true);
  v1::RegistrationEntry updated;
  ASSERT_OK(Ds(&DsStub::UpdateRegistrationEntry, update, &updated));
  EXPECT_EQ(updated.x509_svid_ttl(), 60);
  EXPECT_EQ(updated.spiffe_id(), "spiffe://example.org/workload");
  EXPECT_EQ(updated.revision_number(), created.revision_number() + 1);

  v1::RegistrationEntry deleted;
  ASSERT_OK(Ds(&DsStub::DeleteRegistrationEntry, id, &deleted));
  EXPECT_EQ(deleted.entry_id(), created.entry_id());
  EXPECT_THAT(Ds(&DsStub::FetchRegistrationEntry, id, &fetched),
              StatusIs(StatusCode::kNotFound, HasSubstr(created.entry_id())));

  v1::RegistrationEntry expiring =
      MakeEntry("spiffe://example.org/expiring", "spiffe://example.org/agent", "uid:1");
  expiring.set_entry_expiry(100);
  ASSERT_OK(Ds(&DsStub::CreateRegistrationEntry, expiring, &created));
  v1::PruneRequest prune;
  prune.set_before_unix(200);
  v1::PruneResponse pruned;
  ASSERT_OK(Ds(&DsStub::PruneRegistrationEntries, prune, &pruned));
  EXPECT_EQ(pruned.pruned(), 1);
}

TEST_F(DataStoreServiceTest, ErrorsKeepTheirCodeAndMessage) {
  v1::RegistrationEntry out;
  v1::EntryIdRequest empty_id;
  EXPECT_THAT(Ds(&DsStub::FetchRegistrationEntry, empty_id, &out),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("entry_id")));
  EXPECT_THAT(Ds(&DsStub::DeleteRegistrationEntry, empty_id, &out),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("entry_id")));

  v1::EntryIdRequest missing;
  missing.set_entry_id("missing-entry");
  EXPECT_THAT(Ds(&DsStub::FetchRegistrationEntry, missing, &out),
              StatusIs(StatusCode::kNotFound, HasSubstr("missing-entry")));

  // The datastore's own validation message reaches the client unchanged.
  v1::RegistrationEntry no_selectors = MakeEntry("spiffe://example.org/w", "spiffe://x/y", "1");
  no_selectors.clear_selectors();
  const Status direct = ds_->CreateRegistrationEntry(no_selectors).status();
  ASSERT_THAT(direct, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(Ds(&DsStub::CreateRegistrationEntry, no_selectors, &out), direct);

  v1::AttestedNode node;
  v1::SpiffeIdRequest empty_spiffe_id;
  EXPECT_THAT(Ds(&DsStub::FetchAttestedNode, empty_spiffe_id, &node),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("spiffe_id")));
  v1::UpdateFederationRelationshipRequest no_mask;
  no_mask.mutable_relationship()->set_trust_domain("example.org");
  v1::FederationRelationship relationship;
  EXPECT_THAT(Ds(&DsStub::UpdateFederationRelationship, no_mask, &relationship),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("mask")));
  v1::ListAuthorizedEntriesRequest no_agent;
  std::vector<v1::ListRegistrationEntriesResponse> pages;
  EXPECT_THAT(ReadAll(&DsStub::ListAuthorizedEntries, no_agent, &pages),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("agent_spiffe_id")));
}

// ---- Streaming lists

TEST_F(DataStoreServiceTest, ListWithoutPaginationStreamsEveryMatchInPages) {
  CreateEntries(2500, "spiffe://example.org/agent", "w");

  std::vector<v1::ListRegistrationEntriesResponse> pages;
  ASSERT_OK(
      ReadAll(&DsStub::ListRegistrationEntries, v1::ListRegistrationEntriesRequest(), &pages));
  ASSERT_THAT(pages, SizeIs(3));
  std::set<std::string> ids;
  for (const auto& page : pages) {
    EXPECT_FALSE(page.has_pagination());
    for (const auto& entry : page.entries()) ids.insert(entry.entry_id());
  }
  EXPECT_EQ(pages[0].entries_size(), 1000);
  EXPECT_EQ(pages[1].entries_size(), 1000);
  EXPECT_EQ(pages[2].entries_size(), 500);
  EXPECT_THAT(ids, SizeIs(2500));

  // Filters apply across pages.
  v1::ListRegistrationEntriesRequest by_spiffe_id;
  by_spiffe_id.set_by_spiffe_id("spiffe://example.org/w1234");
  pages.clear();
  ASSERT_OK(ReadAll(&DsStub::ListRegistrationEntries, by_spiffe_id, &pages));
  ASSERT_THAT(pages, SizeIs(1));
  ASSERT_THAT(pages[0].entries(), SizeIs(1));

  // Nothing matches: no message.
  by_spiffe_id.set_by_spiffe_id("spiffe://example.org/nobody");
  pages.clear();
  ASSERT_OK(ReadAll(&DsStub::ListRegistrationEntries, by_spiffe_id, &pages));
  EXPECT_THAT(pages, SizeIs(0));
}

TEST_F(DataStoreServiceTest, ListWithPaginationReturnsOnePageAndAToken) {
  CreateEntries(25, "spiffe://example.org/agent", "w");

  v1::ListRegistrationEntriesRequest request;
  request.mutable_pagination()->set_page_size(10);
  std::vector<v1::ListRegistrationEntriesResponse> pages;
  ASSERT_OK(ReadAll(&DsStub::ListRegistrationEntries, request, &pages));
  ASSERT_THAT(pages, SizeIs(1));
  EXPECT_EQ(pages[0].entries_size(), 10);
  ASSERT_FALSE(pages[0].pagination().token().empty());

  std::set<std::string> ids;
  for (const auto& e : pages[0].entries()) ids.insert(e.entry_id());
  int calls = 1;
  while (!pages.back().pagination().token().empty()) {
    request.mutable_pagination()->set_token(pages.back().pagination().token());
    std::vector<v1::ListRegistrationEntriesResponse> next;
    ASSERT_OK(ReadAll(&DsStub::ListRegistrationEntries, request, &next));
    ASSERT_THAT(next, SizeIs(1));
    for (const auto& e : next[0].entries()) ids.insert(e.entry_id());
    pages.push_back(next[0]);
    ++calls;
  }
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(ids, SizeIs(25));

  request.mutable_pagination()->set_page_size(0);
  request.mutable_pagination()->clear_token();
  pages.clear();
  EXPECT_THAT(ReadAll(&DsStub::ListRegistrationEntries, request, &pages),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("page_size")));
}

TEST_F(DataStoreServiceTest, ListAuthorizedEntriesStreamsTheAgentsEntriesInPages) {
  const std::string agent = "spiffe://example.org/spire/agent/join_token/t1";
  CreateEntries(1001, agent, "a");
  CreateEntries(3, "spiffe://example.org/spire/agent/other", "b");

  v1::ListAuthorizedEntriesRequest request;
  request.set_agent_spiffe_id(agent);
  std::vector<v1::ListRegistrationEntriesResponse> pages;
  ASSERT_OK(ReadAll(&DsStub::ListAuthorizedEntries, request, &pages));
  ASSERT_THAT(pages, SizeIs(2));
  std::set<std::string> spiffe_ids;
  for (const auto& page : pages) {
    for (const auto& e : page.entries()) {
      EXPECT_EQ(e.parent_id(), agent);
      spiffe_ids.insert(e.spiffe_id());
    }
  }
  EXPECT_THAT(spiffe_ids, SizeIs(1001));
}

// ---- Attested nodes and selectors

TEST_F(DataStoreServiceTest, NodesAndSelectorsRoundTrip) {
  v1::AttestedNode node;
  node.set_spiffe_id("spiffe://example.org/spire/agent/x");
  node.set_attestation_data_type("join_token");
  node.set_cert_serial_number("1");
  node.set_cert_not_after(1000);
  node.set_can_reattest(true);
  v1::AttestedNode out;
  ASSERT_OK(Ds(&DsStub::CreateAttestedNode, node, &out));
  EXPECT_THAT(Ds(&DsStub::CreateAttestedNode, node, &out), StatusIs(StatusCode::kAlreadyExists));

  v1::NodeSelectors selectors;
  selectors.set_spiffe_id(node.spiffe_id());
  *selectors.add_selectors() = Sel("k8s", "ns:a");
  *selectors.add_selectors() = Sel("k8s", "ns:b");
  Empty empty;
  ASSERT_OK(Ds(&DsStub::SetNodeSelectors, selectors, &empty));

  v1::GetNodeSelectorsRequest get;
  get.set_spiffe_id(node.spiffe_id());
  v1::NodeSelectors got;
  ASSERT_OK(Ds(&DsStub::GetNodeSelectors, get, &got));
  EXPECT_EQ(got.spiffe_id(), node.spiffe_id());
  ASSERT_THAT(got.selectors(), SizeIs(2));
  EXPECT_EQ(got.selectors(1).value(), "ns:b");

  v1::ListNodeSelectorsResponse all_selectors;
  ASSERT_OK(Ds(&DsStub::ListNodeSelectors, v1::ListNodeSelectorsRequest(), &all_selectors));
  ASSERT_THAT(all_selectors.selectors(), SizeIs(1));

  v1::SpiffeIdRequest id;
  id.set_spiffe_id(node.spiffe_id());
  ASSERT_OK(Ds(&DsStub::FetchAttestedNode, id, &out));
  EXPECT_EQ(out.cert_serial_number(), "1");

  v1::FetchAttestedNodesRequest many;
  many.add_spiffe_ids(node.spiffe_id());
  many.add_spiffe_ids("spiffe://example.org/spire/agent/nobody");
  v1::FetchAttestedNodesResponse fetched;
  ASSERT_OK(Ds(&DsStub::FetchAttestedNodes, many, &fetched));
  ASSERT_EQ(fetched.nodes().size(), 1u);
  EXPECT_THAT(fetched.nodes().at(node.spiffe_id()).selectors(), SizeIs(2));

  v1::UpdateAttestedNodeRequest update;
  update.mutable_node()->set_spiffe_id(node.spiffe_id());
  update.mutable_node()->set_cert_serial_number("2");
  update.mutable_node()->set_cert_not_after(2000);
  update.mutable_mask()->set_cert_serial_number(true);
  ASSERT_OK(Ds(&DsStub::UpdateAttestedNode, update, &out));
  EXPECT_EQ(out.cert_serial_number(), "2");
  EXPECT_EQ(out.cert_not_after(), 1000);

  v1::CountResponse count;
  ASSERT_OK(Ds(&DsStub::CountAttestedNodes, v1::CountAttestedNodesRequest(), &count));
  EXPECT_EQ(count.count(), 1);

  v1::ListAttestedNodesRequest list;
  list.set_fetch_selectors(true);
  std::vector<v1::ListAttestedNodesResponse> pages;
  ASSERT_OK(ReadAll(&DsStub::ListAttestedNodes, list, &pages));
  ASSERT_THAT(pages, SizeIs(1));
  ASSERT_THAT(pages[0].nodes(), SizeIs(1));
  EXPECT_THAT(pages[0].nodes(0).selectors(), SizeIs(2));
  list.mutable_pagination()->set_page_size(5);
  pages.clear();
  ASSERT_OK(ReadAll(&DsStub::ListAttestedNodes, list, &pages));
  ASSERT_THAT(pages, SizeIs(1));
  EXPECT_TRUE(pages[0].has_pagination());
  EXPECT_EQ(pages[0].pagination().token(), "");

  ASSERT_OK(Ds(&DsStub::DeleteAttestedNode, id, &out));
  EXPECT_EQ(out.spiffe_id(), node.spiffe_id());
  EXPECT_THAT(Ds(&DsStub::FetchAttestedNode, id, &out), StatusIs(StatusCode::kNotFound));

  node.set_spiffe_id("spiffe://example.org/spire/agent/expired");
  ASSERT_OK(Ds(&DsStub::CreateAttestedNode, node, &out));
  v1::PruneAttestedExpiredNodesRequest prune;
  prune.set_expired_before_unix(5000);
  v1::PruneResponse pruned;
  ASSERT_OK(Ds(&DsStub::PruneAttestedExpiredNodes, prune, &pruned));
  EXPECT_EQ(pruned.pruned(), 1);
}

// ---- Join tokens, federation, journals

TEST_F(DataStoreServiceTest, JoinTokensRoundTrip) {
  v1::JoinToken token;
  token.set_token("token-1");
  token.set_expiry(100);
  Empty empty;
  ASSERT_OK(Ds(&DsStub::CreateJoinToken, token, &empty));
  EXPECT_THAT(Ds(&DsStub::CreateJoinToken, token, &empty), StatusIs(StatusCode::kAlreadyExists));

  v1::JoinTokenRequest request;
  request.set_token("token-1");
  v1::JoinToken fetched;
  ASSERT_OK(Ds(&DsStub::FetchJoinToken, request, &fetched));
  EXPECT_EQ(fetched.expiry(), 100);
  ASSERT_OK(Ds(&DsStub::DeleteJoinToken, request, &empty));
  EXPECT_THAT(Ds(&DsStub::FetchJoinToken, request, &fetched), StatusIs(StatusCode::kNotFound));

  token.set_token("token-2");
  ASSERT_OK(Ds(&DsStub::CreateJoinToken, token, &empty));
  v1::PruneRequest prune;
  prune.set_before_unix(200);
  v1::PruneResponse pruned;
  ASSERT_OK(Ds(&DsStub::PruneJoinTokens, prune, &pruned));
  EXPECT_EQ(pruned.pruned(), 1);
}

TEST_F(DataStoreServiceTest, FederationRelationshipsRoundTrip) {
  v1::FederationRelationship relationship;
  relationship.set_trust_domain("other.org");
  relationship.set_bundle_endpoint_url("https://other.org/bundle");
  relationship.set_bundle_endpoint_profile("https_web");
  v1::FederationRelationship out;
  ASSERT_OK(Ds(&DsStub::CreateFederationRelationship, relationship, &out));
  EXPECT_EQ(out.trust_domain(), "other.org");

  v1::TrustDomainRequest td;
  td.set_trust_domain("other.org");
  ASSERT_OK(Ds(&DsStub::FetchFederationRelationship, td, &out));
  EXPECT_EQ(out.bundle_endpoint_url(), "https://other.org/bundle");

  v1::ListFederationRelationshipsResponse list;
  ASSERT_OK(
      Ds(&DsStub::ListFederationRelationships, v1::ListFederationRelationshipsRequest(), &list));
  ASSERT_THAT(list.relationships(), SizeIs(1));

  v1::UpdateFederationRelationshipRequest update;
  update.mutable_relationship()->set_trust_domain("other.org");
  update.mutable_relationship()->set_bundle_endpoint_url("https://other.org/v2");
  update.mutable_mask()->set_bundle_endpoint_url(true);
  ASSERT_OK(Ds(&DsStub::UpdateFederationRelationship, update, &out));
  EXPECT_EQ(out.bundle_endpoint_url(), "https://other.org/v2");
  EXPECT_EQ(out.bundle_endpoint_profile(), "https_web");

  Empty empty;
  ASSERT_OK(Ds(&DsStub::DeleteFederationRelationship, td, &empty));
  EXPECT_THAT(Ds(&DsStub::FetchFederationRelationship, td, &out),
              StatusIs(StatusCode::kNotFound, HasSubstr("other.org")));
}

TEST_F(DataStoreServiceTest, CAJournalsRoundTrip) {
  v1::CAJournalData data;
  auto* ca = data.add_x509_cas();
  ca->set_authority_id("authority-1");
  ca->set_not_after(100);
  v1::CAJournal journal;
  journal.set_data(data.SerializeAsString());
  journal.set_active_x509_authority_id("authority-1");
  v1::CAJournal created;
  ASSERT_OK(Ds(&DsStub::SetCAJournal, journal, &created));
  EXPECT_GT(created.id(), 0);

  v1::FetchCAJournalRequest fetch;
  fetch.set_active_x509_authority_id("authority-1");
  v1::CAJournal fetched;
  ASSERT_OK(Ds(&DsStub::FetchCAJournal, fetch, &fetched));
  EXPECT_EQ(fetched.id(), created.id());
  EXPECT_EQ(fetched.data(), journal.data());

  v1::PruneRequest prune;
  prune.set_before_unix(200);
  v1::PruneResponse pruned;
  ASSERT_OK(Ds(&DsStub::PruneCAJournals, prune, &pruned));
  EXPECT_EQ(pruned.pruned(), 1);
  EXPECT_THAT(Ds(&DsStub::FetchCAJournal, fetch, &fetched), StatusIs(StatusCode::kNotFound));
}

// ---- WatchChanges

TEST_F(DataStoreServiceTest, WatchReceivesAChangeMadeAfterSubscribing) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = ds_stub_->WatchChanges(&context, v1::WatchChangesRequest());
  reader->WaitForInitialMetadata();  // the subscription is in place

  v1::JoinToken token;
  token.set_token("watched-token");
  token.set_expiry(100);
  Empty empty;
  ASSERT_OK(Ds(&DsStub::CreateJoinToken, token, &empty));

  v1::DataStoreChange change;
  ASSERT_TRUE(reader->Read(&change));
  EXPECT_EQ(change.kind(), v1::DataStoreChange::KIND_JOIN_TOKEN);
  EXPECT_EQ(change.id(), "watched-token");
  EXPECT_FALSE(change.deleted());
  EXPECT_EQ(change.join_token().expiry(), 100);
  EXPECT_GT(change.revision(), 0);

  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(DataStoreServiceTest, ShutdownEndsWatchesWithUnavailable) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = ds_stub_->WatchChanges(&context, v1::WatchChangesRequest());
  reader->WaitForInitialMetadata();

  service_->Shutdown();
  v1::DataStoreChange change;
  EXPECT_FALSE(reader->Read(&change));
  EXPECT_THAT(FromGrpcStatus(reader->Finish()),
              StatusIs(StatusCode::kUnavailable, HasSubstr("shutting down")));

  grpc::ClientContext later;
  later.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto refused = ds_stub_->WatchChanges(&later, v1::WatchChangesRequest());
  EXPECT_FALSE(refused->Read(&change));
  EXPECT_THAT(FromGrpcStatus(refused->Finish()), StatusIs(StatusCode::kUnavailable));
}

TEST_F(DataStoreServiceTest, SlowWatcherGetsResourceExhausted) {
  DataStoreServiceOptions options;
  options.watch_queue_capacity = 4;
  StartWith(options);

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = ds_stub_->WatchChanges(&context, v1::WatchChangesRequest());
  reader->WaitForInitialMetadata();

  // The client reads nothing while one transaction delivers far more changes (about 14 MB)
  // than the queue and the transport's flow-control windows and socket buffers can hold.
  constexpr int kEntries = 1500;
  std::vector<v1::RegistrationEntry> entries;
  for (int i = 0; i < kEntries; ++i) {
    v1::RegistrationEntry e = MakeEntry("spiffe://example.org/big" + std::to_string(i),
                                        "spiffe://example.org/agent", std::to_string(i));
    for (int d = 0; d < 40; ++d) {
      e.add_dns_names("host-" + std::to_string(d) + std::string(200, 'x') + ".example.org");
    }
    entries.push_back(std::move(e));
  }
  ASSERT_OK(ds_->CreateOrReturnRegistrationEntries(entries).status());

  v1::DataStoreChange change;
  int received = 0;
  while (reader->Read(&change)) ++received;
  EXPECT_LT(received, kEntries);
  EXPECT_THAT(FromGrpcStatus(reader->Finish()),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("watch fell behind")));
}

TEST_F(DataStoreServiceTest, MirrorRebuildEndsWatchesWithAborted) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = ds_stub_->WatchChanges(&context, v1::WatchChangesRequest());
  reader->WaitForInitialMetadata();

  // The mirror's watch reports compacted history: it reloads a fresh snapshot.
  store_->BreakWatches(OutOfRangeError("history compacted"));
  v1::DataStoreChange change;
  EXPECT_FALSE(reader->Read(&change));
  EXPECT_THAT(FromGrpcStatus(reader->Finish()),
              StatusIs(StatusCode::kAborted, "replica rebuilt; re-read and watch again"));

  v1::StoreStatus status;
  ASSERT_OK(Op(&OpStub::GetStoreStatus, Empty(), &status));
  EXPECT_GE(status.mirror_rebuilds(), 1);
}

// ---- Authorization

TEST_F(DataStoreServiceTest, AuthorizeRefusalReachesTheClient) {
  v1::CountResponse count;
  EXPECT_THAT(Ds(&DsStub::CountBundles, Empty(), &count, /*deny=*/true),
              StatusIs(StatusCode::kPermissionDenied, "caller is not an admin"));
  v1::JoinToken token;
  token.set_token("t");
  token.set_expiry(1);
  Empty empty;
  EXPECT_THAT(Ds(&DsStub::CreateJoinToken, token, &empty, /*deny=*/true),
              StatusIs(StatusCode::kPermissionDenied));
  v1::JoinTokenRequest request;
  request.set_token("t");
  EXPECT_THAT(Ds(&DsStub::FetchJoinToken, request, &token), StatusIs(StatusCode::kNotFound));

  grpc::ClientContext context;
  context.AddMetadata(kDenyHeader, "1");
  auto reader = ds_stub_->ListRegistrationEntries(&context, v1::ListRegistrationEntriesRequest());
  v1::ListRegistrationEntriesResponse page;
  EXPECT_FALSE(reader->Read(&page));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  v1::StoreStatus status;
  EXPECT_THAT(Op(&OpStub::GetStoreStatus, Empty(), &status, /*deny=*/true),
              StatusIs(StatusCode::kPermissionDenied));
}

// ---- Operator

TEST_F(DataStoreServiceTest, OperatorReportsStoreStatus) {
  CreateEntries(3, "spiffe://example.org/agent", "s");
  v1::AttestedNode node;
  node.set_spiffe_id("spiffe://example.org/spire/agent/x");
  node.set_cert_serial_number("1");
  v1::AttestedNode out;
  ASSERT_OK(Ds(&DsStub::CreateAttestedNode, node, &out));

  v1::StoreStatus status;
  ASSERT_OK(Op(&OpStub::GetStoreStatus, Empty(), &status));
  EXPECT_EQ(status.backend(), "memory");
  EXPECT_EQ(status.url(), url_);
  EXPECT_GT(status.applied_revision(), 0);
  EXPECT_GE(status.backend_revision(), status.applied_revision());
  EXPECT_EQ(status.compacted_revision(), 0);
  EXPECT_TRUE(status.watching());
  EXPECT_TRUE(status.ready());
  EXPECT_EQ(status.object_counts().at("entries"), 3);
  EXPECT_EQ(status.object_counts().at("nodes"), 1);
  EXPECT_EQ(status.object_counts().at("bundles"), 0);
}

TEST_F(DataStoreServiceTest, OperatorCompactsToARevisionOrByRetention) {
  CreateEntries(1, "spiffe://example.org/agent", "c");
  v1::JoinToken token;
  token.set_expiry(1);
  Empty empty;
  for (int i = 0; i < 10; ++i) {
    token.set_token("t" + std::to_string(i));
    ASSERT_OK(Ds(&DsStub::CreateJoinToken, token, &empty));
  }
  ASSERT_OK_AND_ASSIGN(const store::Revision current, store_->CurrentRevision());

  v1::CompactRequest request;
  v1::CompactResponse response;
  EXPECT_THAT(
      Op(&OpStub::CompactStore, request, &response),
      StatusIs(StatusCode::kFailedPrecondition, "no retention configured; pass a revision"));
  request.set_revision(-1);
  EXPECT_THAT(Op(&OpStub::CompactStore, request, &response),
              StatusIs(StatusCode::kInvalidArgument));
  request.set_revision(current - 5);
  ASSERT_OK(Op(&OpStub::CompactStore, request, &response));
  EXPECT_EQ(response.compacted_revision(), current - 5);
  v1::StoreStatus status;
  ASSERT_OK(Op(&OpStub::GetStoreStatus, Empty(), &status));
  EXPECT_EQ(status.compacted_revision(), current - 5);

  // With a retention, revision 0 keeps that many revisions behind the current one.
  OperatorService with_retention(store_.get(), ds_.get(), url_, /*retention=*/2, nullptr);
  TestServer server({&with_retention});
  ASSERT_TRUE(server.ok());
  auto stub = v1::Operator::NewStub(server.channel());
  request.set_revision(0);
  ASSERT_OK(Call(stub.get(), &OpStub::CompactStore, request, &response));
  EXPECT_EQ(response.compacted_revision(), current - 2);

  OperatorService too_long(store_.get(), ds_.get(), url_, /*retention=*/current + 10, nullptr);
  TestServer server2({&too_long});
  auto stub2 = v1::Operator::NewStub(server2.channel());
  EXPECT_THAT(Call(stub2.get(), &OpStub::CompactStore, request, &response),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("within the retention")));
}

TEST_F(DataStoreServiceTest, OperatorVerifiesTheMirror) {
  CreateEntries(5, "spiffe://example.org/agent", "v");
  v1::VerifyResponse response;
  ASSERT_OK(Op(&OpStub::VerifyStore, Empty(), &response));
  EXPECT_TRUE(response.ok()) << response.message();
}

}  // namespace
}  // namespace plinth::server::api
