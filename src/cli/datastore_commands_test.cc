// Drives `plinth entry|agent|bundle|token|federation|store` exactly as main.cc does (same root
// app, same parsing) against a real gRPC server on a temporary admin socket, serving the real
// DataStore and Operator services over a DataStore on a memory store. Checks output (text and
// JSON), the objects the server ends up with, and exit codes.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/agent_command.h"
#include "cli/bundle_command.h"
#include "cli/client.h"
#include "cli/command.h"
#include "cli/entry_command.h"
#include "cli/federation_command.h"
#include "cli/internal/bundle_format.h"
#include "cli/store_command.h"
#include "cli/testing/cli_runner.h"
#include "cli/token_command.h"
#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "server/admin_socket.h"
#include "server/api/datastore_service.h"
#include "server/api/operator_service.h"
#include "server/testing/test_pki.h"
#include "server/tls.h"
#include "store/open.h"

namespace plinth::cli {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

using testing::ParseJson;
using testing::RunResult;

RunResult RunPlinth(std::vector<std::string> args) {
  return testing::RunCli({RegisterEntryCommands, RegisterAgentCommands, RegisterBundleCommands,
                          RegisterTokenCommands, RegisterFederationCommands, RegisterStoreCommands},
                         std::move(args));
}

std::filesystem::path MakeTempDir() { return testing::MakeTempDir("plinth_ds_cli"); }

std::string UniqueStoreUrl() {
  static std::atomic<int> counter{0};
  return "memory://datastore-commands-test-" + std::to_string(getpid()) + "-" +
         std::to_string(counter++);
}

// The value of the first "<label> : <value>" line of spire-style text output.
std::string Field(const std::string& text, const std::string& label) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex("(^|\n)" + label + " *: ([^\n]*)"))) return m[2];
  return "";
}

v1::Selector Sel(const std::string& type, const std::string& value) {
  v1::Selector s;
  s.set_type(type);
  s.set_value(value);
  return s;
}

class DatastoreCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    socket_ = (dir_ / "admin.sock").string();
    url_ = UniqueStoreUrl();
    ASSERT_OK_AND_ASSIGN(store_, store::OpenStore(url_));
    ASSERT_OK_AND_ASSIGN(ds_, datastore::DataStore::Open(store_.get(), {}));
    service_ = std::make_unique<server::api::DataStoreService>(ds_.get());
    operator_ = std::make_unique<server::api::OperatorService>(
        store_.get(), ds_.get(), url_, /*retention=*/5, [] { return true; });
    grpc::ServerBuilder builder;
    builder.AddListeningPort(server::AdminSocketTarget(socket_),
                             server::AdminSocketServerCredentials());
    // Also mutual TLS, where only kAdminId is an admin.
    server::SpiffeServerOptions tls;
    tls.files = WriteSvid("server", ca_.IssueSvid(kServerId));
    tls.policy.trust_domain = "example.org";
    tls.policy.admin_ids = {kAdminId};
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ServerCredentials> tls_credentials,
                         server::SpiffeServerCredentials(tls));
    builder.AddListeningPort("127.0.0.1:0", tls_credentials, &tls_port_);
    builder.RegisterService(service_.get());
    builder.RegisterService(operator_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::DataStore::NewStub(server::AdminSocketChannel(socket_));
  }

  void TearDown() override {
    if (service_ != nullptr) service_->Shutdown();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
    server_.reset();
    operator_.reset();
    service_.reset();
    ds_.reset();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs `plinth <args...> --socket <socket_>`.
  RunResult Plinth(std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(socket_);
    return RunPlinth(std::move(args));
  }

  // Runs a command that must succeed; returns its stdout.
  std::string Ok(std::vector<std::string> args) {
    RunResult r = Plinth(args);
    EXPECT_EQ(r.code, kExitOk) << r.err;
    EXPECT_THAT(r.err, IsEmpty());
    return r.out;
  }

  // Writes an SVID of ca_ and ca_'s bundle under `name`.
  server::SvidFiles WriteSvid(const std::string& name,
                              const server::testing::TestCredential& svid) {
    server::SvidFiles files{WriteFile(name + ".pem", svid.cert_pem),
                            WriteFile(name + "_key.pem", svid.key_pem),
                            WriteFile(name + "_bundle.pem", ca_.cert_pem())};
    return files;
  }

  // Runs `plinth <args...>` over TLS with the SVID in `files`.
  RunResult PlinthOverTls(std::vector<std::string> args, const server::SvidFiles& files) {
    for (const std::string& arg :
         {std::string("--address"), "127.0.0.1:" + std::to_string(tls_port_), std::string("--cert"),
          files.cert_file, std::string("--key"), files.key_file, std::string("--bundle"),
          files.bundle_file}) {
      args.push_back(arg);
    }
    return RunPlinth(std::move(args));
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // Creates an entry through the CLI; returns its ID.
  std::string CreateEntry(std::vector<std::string> args) {
    args.insert(args.begin(), {"entry", "create"});
    const std::string out = Ok(args);
    const std::string id = Field(out, "Entry ID");
    EXPECT_FALSE(id.empty()) << out;
    return id;
  }

  v1::RegistrationEntry FetchEntry(const std::string& id) {
    grpc::ClientContext context;
    v1::EntryIdRequest request;
    request.set_entry_id(id);
    v1::RegistrationEntry entry;
    EXPECT_TRUE(stub_->FetchRegistrationEntry(&context, request, &entry).ok());
    return entry;
  }

  void CreateNode(const std::string& id, const std::string& type, const std::string& serial,
                  int64_t not_after, bool can_reattest,
                  const std::vector<v1::Selector>& selectors) {
    v1::AttestedNode node;
    node.set_spiffe_id(id);
    node.set_attestation_data_type(type);
    node.set_cert_serial_number(serial);
    node.set_cert_not_after(not_after);
    node.set_new_cert_serial_number(serial.empty() ? "" : serial + "-next");
    node.set_can_reattest(can_reattest);
    v1::AttestedNode created;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->CreateAttestedNode(&context, node, &created).ok());
    v1::NodeSelectors set;
    set.set_spiffe_id(id);
    for (const auto& s : selectors) *set.add_selectors() = s;
    google::protobuf::Empty empty;
    grpc::ClientContext context2;
    ASSERT_TRUE(stub_->SetNodeSelectors(&context2, set, &empty).ok());
  }

  void SetBundle(const v1::Bundle& bundle) {
    grpc::ClientContext context;
    v1::Bundle out;
    ASSERT_TRUE(stub_->SetBundle(&context, bundle, &out).ok());
  }

  static constexpr char kServerId[] = "spiffe://example.org/plinth";
  static constexpr char kAdminId[] = "spiffe://example.org/admin";

  server::testing::TestCa ca_{"example.org"};
  int tls_port_ = 0;
  std::filesystem::path dir_;
  std::string socket_;
  std::string url_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<datastore::DataStore> ds_;
  std::unique_ptr<server::api::DataStoreService> service_;
  std::unique_ptr<server::api::OperatorService> operator_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::DataStore::Stub> stub_;
};

// ---- entry

TEST_F(DatastoreCommandsTest, EntryCreatePrintsASpireStyleBlock) {
  RunResult r = Plinth({"entry", "create", "-spiffeID", "spiffe://example.org/web", "-parentID",
                        "spiffe://example.org/host", "-selector", "unix:uid:1000", "-selector",
                        "unix:gid:50", "-x509SVIDTTL", "3600", "-dns", "web.example.org", "-hint",
                        "frontend", "-admin", "-entryExpiry", "2030-01-02T03:04:05Z"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("Entry ID         : [-0-9a-f]+\n"
                                  "SPIFFE ID        : spiffe://example.org/web\n"
                                  "Parent ID        : spiffe://example.org/host\n"
                                  "Revision         : 0\n"
                                  "X509-SVID TTL    : 3600\n"
                                  "JWT-SVID TTL     : default\n"
                                  "Expiration time  : 2030-01-02T03:04:05Z\n"
                                  "Selector         : unix:uid:1000\n"
                                  "Selector         : unix:gid:50\n"
                                  "DNS name         : web.example.org\n"
                                  "Admin            : true\n"
                                  "Hint             : frontend\n"
                                  "Created at       : [-0-9T:]+Z\n"));
  const v1::RegistrationEntry stored = FetchEntry(Field(r.out, "Entry ID"));
  EXPECT_EQ(stored.spiffe_id(), "spiffe://example.org/web");
  EXPECT_EQ(stored.x509_svid_ttl(), 3600);
  EXPECT_EQ(stored.entry_expiry(), 1893553445);
  EXPECT_TRUE(stored.admin());
  EXPECT_THAT(stored.dns_names(), ElementsAre("web.example.org"));
}

TEST_F(DatastoreCommandsTest, EntryFlagsWorkWithTwoDashesAndEqualsSigns) {
  const std::string id =
      CreateEntry({"--spiffeID=spiffe://example.org/a", "--parentID", "spiffe://example.org/host",
                   "--selector=unix:uid:1", "-jwtSVIDTTL=60", "--entryID", "my-entry"});
  EXPECT_EQ(id, "my-entry");
  EXPECT_EQ(FetchEntry(id).jwt_svid_ttl(), 60);
}

TEST_F(DatastoreCommandsTest, EntryNodeFlagMakesTheServerTheParent) {
  const std::string id =
      CreateEntry({"-spiffeID", "spiffe://example.org/nodes", "-node", "-selector", "k8s:ns:a"});
  EXPECT_EQ(FetchEntry(id).parent_id(), "spiffe://example.org/spire/server");
}

TEST_F(DatastoreCommandsTest, EntryCreateOutputsJson) {
  RunResult r =
      Plinth({"entry", "create", "-spiffeID", "spiffe://example.org/j", "-parentID",
              "spiffe://example.org/host", "-selector", "unix:uid:7", "--output", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["spiffe_id"], "spiffe://example.org/j");
  EXPECT_EQ(j["selectors"][0]["type"], "unix");
  EXPECT_EQ(j["selectors"][0]["value"], "uid:7");
  EXPECT_EQ(j["admin"], false);
  EXPECT_EQ(j["revision_number"], "0");  // int64 is a string in proto3 JSON
  EXPECT_FALSE(j["entry_id"].get<std::string>().empty());
}

TEST_F(DatastoreCommandsTest, EntryCreateOfASimilarEntryFails) {
  const std::vector<std::string> args = {"entry",     "create",
                                         "-spiffeID", "spiffe://example.org/s",
                                         "-parentID", "spiffe://example.org/host",
                                         "-selector", "unix:uid:1"};
  ASSERT_EQ(Plinth(args).code, kExitOk);
  RunResult again = Plinth(args);
  EXPECT_EQ(again.code, kExitFailed);
  EXPECT_THAT(again.err,
              AllOf(StartsWith("plinth: create entry for spiffe://example.org/s: ALREADY_EXISTS"),
                    HasSubstr("similar entry")));
}

TEST_F(DatastoreCommandsTest, EntryShowByIdAndAsJson) {
  const std::string id = CreateEntry({"-spiffeID", "spiffe://example.org/a", "-parentID",
                                      "spiffe://example.org/host", "-selector", "unix:uid:1"});
  const std::string text = Ok({"entry", "show", "-entryID", id});
  EXPECT_THAT(text, StartsWith("Found 1 entry\n\nEntry ID         : " + id + "\n"));
  auto j = ParseJson(Ok({"entry", "show", "-entryID", id, "-output", "json"}));
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["entry_id"], id);

  RunResult missing = Plinth({"entry", "show", "-entryID", "nope"});
  EXPECT_EQ(missing.code, kExitNotFound);
  EXPECT_THAT(missing.out, IsEmpty());
  EXPECT_THAT(missing.err, StartsWith("plinth: show entry \"nope\": NOT_FOUND"));
}

TEST_F(DatastoreCommandsTest, EntryShowAndCountFilter) {
  v1::Bundle fed;
  fed.set_trust_domain_id("spiffe://fed.org");
  SetBundle(fed);
  CreateEntry({"-spiffeID", "spiffe://example.org/a", "-parentID", "spiffe://example.org/p1",
               "-selector", "unix:uid:1", "-selector", "unix:gid:1", "-hint", "h1"});
  CreateEntry({"-spiffeID", "spiffe://example.org/b", "-parentID", "spiffe://example.org/p1",
               "-selector", "unix:uid:1", "-federatesWith", "fed.org", "-downstream"});
  CreateEntry({"-spiffeID", "spiffe://example.org/c", "-parentID", "spiffe://example.org/p2",
               "-selector", "unix:uid:2"});

  auto ids = [&](std::vector<std::string> filters) {
    filters.insert(filters.begin(), {"entry", "show", "--output", "json"});
    auto j = ParseJson(Ok(filters));
    std::vector<std::string> out;
    for (const auto& e : j["entries"]) out.push_back(e["spiffe_id"].get<std::string>().substr(21));
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_THAT(ids({}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(ids({"-parentID", "spiffe://example.org/p1"}), ElementsAre("a", "b"));
  EXPECT_THAT(ids({"-spiffeID", "spiffe://example.org/c"}), ElementsAre("c"));
  EXPECT_THAT(ids({"-selector", "unix:uid:1"}), ElementsAre("a", "b"));
  EXPECT_THAT(ids({"-selector", "unix:uid:1", "-matchSelectorsOn", "exact"}), ElementsAre("b"));
  EXPECT_THAT(
      ids({"-selector", "unix:uid:1", "-selector", "unix:uid:2", "-matchSelectorsOn", "any"}),
      ElementsAre("a", "b", "c"));
  EXPECT_THAT(ids({"-federatesWith", "spiffe://fed.org"}), ElementsAre("b"));
  EXPECT_THAT(ids({"-hint", "h1"}), ElementsAre("a"));
  EXPECT_THAT(ids({"-downstream"}), ElementsAre("b"));

  EXPECT_THAT(Ok({"entry", "show", "-parentID", "spiffe://example.org/p2"}),
              StartsWith("Found 1 entry\n\nEntry ID"));
  EXPECT_EQ(Ok({"entry", "show", "-parentID", "spiffe://example.org/none"}), "Found 0 entries\n");
  EXPECT_EQ(Ok({"entry", "count"}), "3 registration entries\n");
  EXPECT_EQ(Ok({"entry", "count", "-parentID", "spiffe://example.org/p2"}),
            "1 registration entry\n");
  EXPECT_EQ(ParseJson(Ok({"entry", "count", "-selector", "unix:uid:1", "-o", "json"}))["count"], 2);
}

TEST_F(DatastoreCommandsTest, EntryUpdateChangesOnlyTheFlagsGiven) {
  const std::string id = CreateEntry(
      {"-spiffeID", "spiffe://example.org/a", "-parentID", "spiffe://example.org/p", "-selector",
       "unix:uid:1", "-x509SVIDTTL", "3600", "-admin", "-dns", "a.org", "-hint", "keep"});
  RunResult r =
      Plinth({"entry", "update", "-entryID", id, "-jwtSVIDTTL", "90", "-admin=false", "-dns", ""});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Field(r.out, "Revision"), "1");
  EXPECT_EQ(Field(r.out, "JWT-SVID TTL"), "90");
  const v1::RegistrationEntry e = FetchEntry(id);
  EXPECT_EQ(e.jwt_svid_ttl(), 90);
  EXPECT_FALSE(e.admin());
  EXPECT_THAT(e.dns_names(), IsEmpty());
  // Untouched:
  EXPECT_EQ(e.x509_svid_ttl(), 3600);
  EXPECT_EQ(e.hint(), "keep");
  EXPECT_EQ(e.parent_id(), "spiffe://example.org/p");
  ASSERT_EQ(e.selectors_size(), 1);

  auto j = ParseJson(Ok({"entry", "update", "-entryID", id, "-selector", "unix:uid:2", "-selector",
                         "unix:uid:3", "--output", "json"}));
  EXPECT_EQ(j["selectors"].size(), 2u);
  EXPECT_EQ(j["revision_number"], "2");

  RunResult missing = Plinth({"entry", "update", "-entryID", "nope", "-hint", "x"});
  EXPECT_EQ(missing.code, kExitNotFound);
  EXPECT_THAT(missing.err, StartsWith("plinth: update entry \"nope\": NOT_FOUND"));
}

TEST_F(DatastoreCommandsTest, EntryDeleteThenNotFound) {
  const std::string id = CreateEntry({"-spiffeID", "spiffe://example.org/a", "-parentID",
                                      "spiffe://example.org/p", "-selector", "unix:uid:1"});
  EXPECT_EQ(Ok({"entry", "delete", "-entryID", id}), "Deleted entry with ID: " + id + "\n");
  RunResult again = Plinth({"entry", "delete", "-entryID", id});
  EXPECT_EQ(again.code, kExitNotFound);
  EXPECT_THAT(again.err, StartsWith("plinth: delete entry \"" + id + "\": NOT_FOUND"));
}

TEST_F(DatastoreCommandsTest, EntryUsageErrorsExitTwoWithoutCallingTheServer) {
  auto expect_usage = [&](std::vector<std::string> args, const std::string& message) {
    RunResult r = Plinth(args);
    EXPECT_EQ(r.code, kExitUsage) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(message));
    EXPECT_THAT(r.out, IsEmpty());
  };
  expect_usage({"entry", "create", "-parentID", "spiffe://x/p", "-selector", "a:b"}, "-spiffeID");
  expect_usage({"entry", "create", "-spiffeID", "spiffe://x/a", "-selector", "a:b"}, "-parentID");
  expect_usage({"entry", "create", "-spiffeID", "spiffe://x/a", "-parentID", "spiffe://x/p"},
               "-selector");
  expect_usage({"entry", "create", "-spiffeID", "spiffe://x/a", "-parentID", "spiffe://x/p",
                "-selector", "nocolon"},
               "type:value");
  expect_usage({"entry", "create", "-spiffeID", "not-an-id", "-parentID", "spiffe://x/p",
                "-selector", "a:b"},
               "not a SPIFFE ID");
  expect_usage({"entry", "create", "-spiffeID", "spiffe://x/a", "-parentID", "spiffe://x/p",
                "-selector", "a:b", "-entryExpiry", "tomorrow"},
               "-entryExpiry");
  expect_usage({"entry", "create", "-bogus"}, "-bogus");
  expect_usage({"entry", "update", "-entryID", "x"}, "at least one field");
  expect_usage({"entry", "update", "-hint", "x"}, "-entryID");
  expect_usage({"entry", "show", "-matchSelectorsOn", "most"}, "most");
  expect_usage({"entry", "frobnicate"}, "frobnicate");
  RunResult bare = RunPlinth({"entry"});
  EXPECT_EQ(bare.code, kExitUsage);
  EXPECT_THAT(bare.err, HasSubstr("entry needs a command: one of create, show, update"));
  EXPECT_EQ(Ok({"entry", "count"}), "0 registration entries\n");
}

TEST_F(DatastoreCommandsTest, ServerErrorsAreFailuresNotUsageErrors) {
  // Only the server knows that no bundle exists for the federated trust domain.
  RunResult r = Plinth({"entry", "create", "-spiffeID", "spiffe://example.org/a", "-parentID",
                        "spiffe://example.org/p", "-selector", "unix:uid:1", "-federatesWith",
                        "nobundle.org"});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, AllOf(StartsWith("plinth: create entry for spiffe://example.org/a: "),
                           HasSubstr("spiffe://nobundle.org")));
}

// ---- agent

TEST_F(DatastoreCommandsTest, AgentListShowBanEvictCount) {
  CreateNode("spiffe://example.org/spire/agent/join_token/t1", "join_token", "111", 2000000000,
             false, {Sel("spiffe_id", "x")});
  CreateNode("spiffe://example.org/spire/agent/k8s_psat/c/n", "k8s_psat", "222", 1000, true,
             {Sel("k8s_psat", "cluster:c"), Sel("k8s_psat", "node:n")});

  const std::string list = Ok({"agent", "list"});
  EXPECT_THAT(list, AllOf(StartsWith("Found 2 attested agents\n\n"),
                          HasSubstr("Attestation type : join_token\n"),
                          HasSubstr("Selector         : k8s_psat:cluster:c\n"),
                          HasSubstr("Expiration time  : 2033-05-18T03:33:20Z\n")));
  auto ids = [&](std::vector<std::string> filters) {
    filters.insert(filters.begin(), {"agent", "list", "-output", "json"});
    auto j = ParseJson(Ok(filters));
    std::vector<std::string> out;
    for (const auto& n : j["nodes"]) out.push_back(n["attestation_data_type"]);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_THAT(ids({}), ElementsAre("join_token", "k8s_psat"));
  EXPECT_THAT(ids({"-attestationType", "k8s_psat"}), ElementsAre("k8s_psat"));
  EXPECT_THAT(ids({"-canReattest", "true"}), ElementsAre("k8s_psat"));
  EXPECT_THAT(ids({"-canReattest", "false"}), ElementsAre("join_token"));
  EXPECT_THAT(ids({"-selector", "k8s_psat:node:n"}), ElementsAre("k8s_psat"));
  EXPECT_THAT(ids({"-selector", "k8s_psat:node:n", "-matchSelectorsOn", "exact"}), IsEmpty());
  EXPECT_THAT(ids({"-expiresBefore", "1500"}), ElementsAre("k8s_psat"));
  EXPECT_THAT(ids({"-banned", "false"}), ElementsAre("join_token", "k8s_psat"));
  EXPECT_EQ(Ok({"agent", "count"}), "2 attested agents\n");
  EXPECT_EQ(Ok({"agent", "count", "-attestationType", "join_token"}), "1 attested agent\n");

  const std::string id = "spiffe://example.org/spire/agent/k8s_psat/c/n";
  const std::string show = Ok({"agent", "show", "-spiffeID", id});
  EXPECT_EQ(Field(show, "SPIFFE ID"), id);
  EXPECT_EQ(Field(show, "Serial number"), "222");
  EXPECT_EQ(Field(show, "Can re-attest"), "true");
  EXPECT_THAT(show, HasSubstr("Selector         : k8s_psat:node:n\n"));

  EXPECT_EQ(Ok({"agent", "ban", "-spiffeID", id}), "Agent banned successfully\n");
  auto banned = ParseJson(Ok({"agent", "show", "-spiffeID", id, "--output", "json"}));
  EXPECT_EQ(banned["cert_serial_number"], "");
  EXPECT_EQ(banned["new_cert_serial_number"], "");
  EXPECT_EQ(banned["selectors"].size(), 2u);
  EXPECT_THAT(ids({"-banned", "true"}), ElementsAre("k8s_psat"));

  EXPECT_EQ(Ok({"agent", "evict", "-spiffeID", id}), "Agent evicted successfully\n");
  RunResult gone = Plinth({"agent", "show", "-spiffeID", id});
  EXPECT_EQ(gone.code, kExitNotFound);
  EXPECT_THAT(gone.err, StartsWith("plinth: show agent \"" + id + "\": NOT_FOUND"));
  EXPECT_EQ(Plinth({"agent", "evict", "-spiffeID", id}).code, kExitNotFound);
  EXPECT_EQ(Plinth({"agent", "ban", "-spiffeID", id}).code, kExitNotFound);
  EXPECT_EQ(Plinth({"agent", "show"}).code, kExitUsage);
  EXPECT_EQ(Plinth({"agent", "list", "-banned", "maybe"}).code, kExitUsage);
}

// ---- bundle

TEST_F(DatastoreCommandsTest, BundleSetShowAppendListDeleteWithPem) {
  server::testing::TestCa ca1("one.example.org");
  server::testing::TestCa ca2("two.example.org");
  const std::string pem1 = WriteFile("one.pem", ca1.cert_pem());
  const std::string pem2 = WriteFile("two.pem", ca2.cert_pem());

  EXPECT_EQ(Ok({"bundle", "set", "-id", "spiffe://example.org", "-path", pem1}),
            "bundle set: spiffe://example.org now holds 1 root CA and 0 JWT keys\n");
  EXPECT_EQ(Ok({"bundle", "show", "-id", "spiffe://example.org"}), ca1.cert_pem());
  EXPECT_EQ(Ok({"bundle", "append", "-id", "example.org", "-path", pem2, "-format", "pem"}),
            "bundle appended: spiffe://example.org now holds 2 root CAs and 0 JWT keys\n");
  EXPECT_EQ(Ok({"bundle", "show", "-id", "example.org", "-format", "pem"}),
            ca1.cert_pem() + ca2.cert_pem());

  Ok({"bundle", "set", "-id", "spiffe://other.org", "-path", pem2});
  EXPECT_EQ(Ok({"bundle", "list"}),
            std::string(40, '*') + "\n* spiffe://example.org\n" + std::string(40, '*') + "\n" +
                ca1.cert_pem() + ca2.cert_pem() + "\n" + std::string(40, '*') +
                "\n* spiffe://other.org\n" + std::string(40, '*') + "\n" + ca2.cert_pem());
  EXPECT_EQ(Ok({"bundle", "list", "-id", "spiffe://other.org"}), ca2.cert_pem());
  EXPECT_EQ(Ok({"bundle", "count"}), "2 bundles\n");
  auto j = ParseJson(Ok({"bundle", "list", "--output", "json"}));
  ASSERT_EQ(j["bundles"].size(), 2u);
  EXPECT_EQ(j["bundles"][1]["trust_domain_id"], "spiffe://other.org");
  EXPECT_EQ(j["bundles"][0]["root_cas"].size(), 2u);

  EXPECT_EQ(Ok({"bundle", "delete", "-id", "spiffe://other.org"}),
            "bundle deleted: spiffe://other.org\n");
  RunResult gone = Plinth({"bundle", "show", "-id", "spiffe://other.org"});
  EXPECT_EQ(gone.code, kExitNotFound);
  EXPECT_THAT(gone.err, StartsWith("plinth: show bundle \"spiffe://other.org\": NOT_FOUND"));
  EXPECT_EQ(Plinth({"bundle", "delete", "-id", "spiffe://other.org"}).code, kExitNotFound);
}

TEST_F(DatastoreCommandsTest, BundleSpiffeFormatRoundTripsThroughTheServer) {
  server::testing::TestCa ca("example.org");
  ASSERT_OK_AND_ASSIGN(
      v1::Bundle seed,
      internal::ParseBundle(ca.cert_pem(), internal::BundleFormat::kPem, "spiffe://example.org"));
  // A JWT key as a JWK (RFC 7517, A.1), so the JWKS holds both kinds of key.
  const nlohmann::json jwk = {{"kty", "EC"},
                              {"crv", "P-256"},
                              {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                              {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}};
  ASSERT_OK_AND_ASSIGN(std::string pkix, internal::JwkToPkix(jwk));
  v1::PublicKey* key = seed.add_jwt_signing_keys();
  key->set_kid("kid-1");
  key->set_pkix_bytes(pkix);
  seed.set_refresh_hint(120);
  seed.set_sequence_number(3);
  ASSERT_OK_AND_ASSIGN(std::string jwks, internal::FormatSpiffe(seed));
  const std::string path = WriteFile("bundle.json", jwks);

  EXPECT_EQ(
      Ok({"bundle", "set", "-id", "spiffe://example.org", "-format", "spiffe", "-path", path}),
      "bundle set: spiffe://example.org now holds 1 root CA and 1 JWT key\n");
  const std::string shown =
      Ok({"bundle", "show", "-id", "spiffe://example.org", "-format", "spiffe"});
  EXPECT_EQ(shown, jwks);
  auto doc = ParseJson(shown);
  EXPECT_EQ(doc["keys"][1]["kid"], "kid-1");
  EXPECT_EQ(doc["keys"][1]["x"], jwk["x"]);
  EXPECT_EQ(doc["spiffe_refresh_hint"], 120);
  EXPECT_EQ(doc["spiffe_sequence"], 3);
  // The PEM view of the same bundle is its roots.
  EXPECT_EQ(Ok({"bundle", "show", "-id", "spiffe://example.org"}), ca.cert_pem());
  auto proto = ParseJson(Ok({"bundle", "show", "-id", "spiffe://example.org", "-o", "json"}));
  EXPECT_EQ(proto["jwt_signing_keys"][0]["kid"], "kid-1");
  EXPECT_EQ(proto["refresh_hint"], "120");
}

TEST_F(DatastoreCommandsTest, BundleInputErrorsAreUsageErrors) {
  const std::string key = WriteFile("key.pem",
                                    "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                    "-----END PRIVATE KEY-----\n");
  RunResult r = Plinth({"bundle", "set", "-id", "spiffe://example.org", "-path", key});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("PRIVATE KEY"));
  const std::string bad_json = WriteFile("bad.json", "{\"keys\": [{\"use\": \"jwt-svid\"}]}");
  r = Plinth(
      {"bundle", "set", "-id", "spiffe://example.org", "-format", "spiffe", "-path", bad_json});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("keys[0]: \"kid\" is required"));
  r = Plinth({"bundle", "set", "-id", "spiffe://example.org", "-path", (dir_ / "none").string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("cannot open"));
  EXPECT_EQ(Plinth({"bundle", "set", "-path", key}).code, kExitUsage);
  EXPECT_EQ(Plinth({"bundle", "show", "-id", "x", "-format", "jwks"}).code, kExitUsage);
}

TEST_F(DatastoreCommandsTest, BundleDeleteModesAndPrune) {
  server::testing::TestCa ca("fed.org");
  const std::string pem = WriteFile("fed.pem", ca.cert_pem());
  Ok({"bundle", "set", "-id", "spiffe://fed.org", "-path", pem});
  const std::string id =
      CreateEntry({"-spiffeID", "spiffe://example.org/a", "-parentID", "spiffe://example.org/p",
                   "-selector", "unix:uid:1", "-federatesWith", "spiffe://fed.org"});

  RunResult restrict = Plinth({"bundle", "delete", "-id", "spiffe://fed.org"});
  EXPECT_EQ(restrict.code, kExitFailed);
  EXPECT_THAT(restrict.err, StartsWith("plinth: delete bundle \"spiffe://fed.org\": "
                                       "FAILED_PRECONDITION"));
  EXPECT_EQ(Plinth({"bundle", "delete", "-id", "spiffe://fed.org", "-mode", "sideways"}).code,
            kExitUsage);
  Ok({"bundle", "delete", "-id", "spiffe://fed.org", "-mode", "dissociate"});
  EXPECT_THAT(FetchEntry(id).federates_with(), IsEmpty());

  // Prune: one JWT key expired long ago, one that never expires; the root is valid.
  ASSERT_OK_AND_ASSIGN(
      v1::Bundle bundle,
      internal::ParseBundle(ca.cert_pem(), internal::BundleFormat::kPem, "spiffe://fed.org"));
  v1::PublicKey* old_key = bundle.add_jwt_signing_keys();
  old_key->set_kid("old");
  old_key->set_pkix_bytes("old-key");
  old_key->set_not_after(1000);
  v1::PublicKey* keep = bundle.add_jwt_signing_keys();
  keep->set_kid("keep");
  keep->set_pkix_bytes("keep-key");
  SetBundle(bundle);
  EXPECT_EQ(Ok({"bundle", "prune", "-id", "spiffe://fed.org", "-expiresBefore", "2000"}),
            "bundle pruned: spiffe://fed.org\n");
  EXPECT_EQ(
      Ok({"bundle", "prune", "-id", "spiffe://fed.org", "-expiresBefore", "1970-01-01T00:33:20Z"}),
      "nothing expires before 1970-01-01T00:33:20Z in spiffe://fed.org\n");
  auto j = ParseJson(Ok({"bundle", "show", "-id", "spiffe://fed.org", "-o", "json"}));
  ASSERT_EQ(j["jwt_signing_keys"].size(), 1u);
  EXPECT_EQ(j["jwt_signing_keys"][0]["kid"], "keep");
  // Pruning every root is refused by the server.
  RunResult all = Plinth(
      {"bundle", "prune", "-id", "spiffe://fed.org", "-expiresBefore", "2100-01-01T00:00:00Z"});
  EXPECT_EQ(all.code, kExitFailed);
  EXPECT_THAT(all.err, HasSubstr("would prune all certificates"));
  EXPECT_EQ(Plinth({"bundle", "prune", "-id", "spiffe://fed.org"}).code, kExitUsage);
  // A key that is not a public key cannot be shown as a JWK: a failure naming it.
  RunResult jwks = Plinth({"bundle", "show", "-id", "spiffe://fed.org", "-format", "spiffe"});
  EXPECT_EQ(jwks.code, kExitFailed);
  EXPECT_THAT(jwks.err, HasSubstr("JWT key \"keep\""));
}

// ---- token

TEST_F(DatastoreCommandsTest, TokenGeneratePrintsATokenThatIsStored) {
  const std::string out = Ok({"token", "generate"});
  ASSERT_THAT(out, MatchesRegex("Token: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                "[0-9a-f]{12}\n"));
  const std::string token = out.substr(7, 36);
  grpc::ClientContext context;
  v1::JoinTokenRequest request;
  request.set_token(token);
  v1::JoinToken stored;
  ASSERT_TRUE(stub_->FetchJoinToken(&context, request, &stored).ok());
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(static_cast<double>(stored.expiry()), static_cast<double>(now + 600), 60);
  EXPECT_EQ(Ok({"entry", "count"}), "0 registration entries\n");
}

TEST_F(DatastoreCommandsTest, TokenGenerateWithSpiffeIdRegistersIt) {
  auto j = ParseJson(Ok({"token", "generate", "-spiffeID", "spiffe://example.org/host", "-ttl",
                         "60", "--output", "json"}));
  const std::string token = j["token"];
  const std::string agent = "spiffe://example.org/spire/agent/join_token/" + token;
  EXPECT_EQ(j["entry"]["spiffe_id"], "spiffe://example.org/host");
  EXPECT_EQ(j["entry"]["parent_id"], agent);
  const v1::RegistrationEntry e = FetchEntry(j["entry"]["entry_id"]);
  ASSERT_EQ(e.selectors_size(), 1);
  EXPECT_EQ(e.selectors(0).type(), "spiffe_id");
  EXPECT_EQ(e.selectors(0).value(), agent);
  EXPECT_EQ(e.parent_id(), agent);

  EXPECT_EQ(Plinth({"token", "generate", "-spiffeID", "host"}).code, kExitUsage);
  EXPECT_EQ(Plinth({"token", "generate", "-ttl", "0"}).code, kExitUsage);
}

// ---- federation

TEST_F(DatastoreCommandsTest, FederationCreateListShowUpdateDelete) {
  EXPECT_EQ(Ok({"federation", "create", "-trustDomain", "web.org", "-bundleEndpointURL",
                "https://web.org/bundle", "-bundleEndpointProfile", "https_web"}),
            "Trust domain              : web.org\n"
            "Bundle endpoint URL       : https://web.org/bundle\n"
            "Bundle endpoint profile   : https_web\n");
  server::testing::TestCa ca("spiffe.org");
  const std::string pem = WriteFile("spiffe.pem", ca.cert_pem());
  const std::string created =
      Ok({"federation", "create", "-trustDomain", "spiffe://spiffe.org", "-bundleEndpointURL",
          "https://spiffe.org:8443", "-bundleEndpointProfile", "https_spiffe", "-endpointSpiffeID",
          "spiffe://spiffe.org/spire/server", "-trustDomainBundlePath", pem,
          "-trustDomainBundleFormat", "pem"});
  EXPECT_EQ(Field(created, "Trust domain"), "spiffe.org");
  EXPECT_EQ(Field(created, "Endpoint SPIFFE ID"), "spiffe://spiffe.org/spire/server");
  // The bundle was stored with the relationship.
  EXPECT_EQ(Ok({"bundle", "show", "-id", "spiffe://spiffe.org"}), ca.cert_pem());

  const std::string list = Ok({"federation", "list"});
  EXPECT_THAT(list, AllOf(StartsWith("Found 2 federation relationships\n\n"),
                          HasSubstr("Trust domain bundle       : spiffe://spiffe.org (1 root CA, "
                                    "0 JWT keys)\n")));
  auto j = ParseJson(Ok({"federation", "list", "-o", "json"}));
  EXPECT_EQ(j["relationships"].size(), 2u);

  RunResult dup = Plinth({"federation", "create", "-trustDomain", "web.org", "-bundleEndpointURL",
                          "https://x", "-bundleEndpointProfile", "https_web"});
  EXPECT_EQ(dup.code, kExitFailed);
  EXPECT_THAT(dup.err, HasSubstr("ALREADY_EXISTS"));

  auto updated = ParseJson(Ok({"federation", "update", "-trustDomain", "web.org",
                               "-bundleEndpointURL", "https://web.org/v2", "-o", "json"}));
  EXPECT_EQ(updated["bundle_endpoint_url"], "https://web.org/v2");
  EXPECT_EQ(updated["bundle_endpoint_profile"], "https_web");
  const std::string show = Ok({"federation", "show", "-trustDomain", "web.org"});
  EXPECT_EQ(Field(show, "Bundle endpoint URL"), "https://web.org/v2");

  EXPECT_EQ(Ok({"federation", "delete", "-trustDomain", "web.org"}),
            "federation relationship deleted: web.org\n");
  RunResult gone = Plinth({"federation", "show", "-trustDomain", "web.org"});
  EXPECT_EQ(gone.code, kExitNotFound);
  EXPECT_THAT(gone.err, StartsWith("plinth: show federation relationship \"web.org\": NOT_FOUND"));
  EXPECT_EQ(Plinth({"federation", "delete", "-trustDomain", "web.org"}).code, kExitNotFound);
  EXPECT_EQ(
      Plinth({"federation", "update", "-trustDomain", "web.org", "-bundleEndpointURL", "https://x"})
          .code,
      kExitNotFound);
}

TEST_F(DatastoreCommandsTest, FederationUsageErrors) {
  auto code = [&](std::vector<std::string> args) { return Plinth(args).code; };
  EXPECT_EQ(code({"federation", "create", "-trustDomain", "a.org", "-bundleEndpointURL",
                  "https://a", "-bundleEndpointProfile", "https_spiffe"}),
            kExitUsage);
  EXPECT_EQ(code({"federation", "create", "-trustDomain", "a.org", "-bundleEndpointURL",
                  "https://a", "-bundleEndpointProfile", "ftp"}),
            kExitUsage);
  EXPECT_EQ(code({"federation", "create", "-trustDomain", "a.org", "-bundleEndpointProfile",
                  "https_web"}),
            kExitUsage);
  EXPECT_EQ(code({"federation", "update", "-trustDomain", "a.org"}), kExitUsage);
  EXPECT_EQ(code({"federation", "update", "-trustDomain", "a.org", "-endpointSpiffeID",
                  "spiffe://a.org/s"}),
            kExitUsage);
  EXPECT_EQ(code({"federation", "show"}), kExitUsage);
}

// ---- store (Operator service)

TEST_F(DatastoreCommandsTest, StoreStatsVerifyAndCompactThroughTheServer) {
  for (int i = 0; i < 8; ++i) {
    CreateEntry({"-spiffeID", "spiffe://example.org/w" + std::to_string(i), "-parentID",
                 "spiffe://example.org/p", "-selector", "unix:uid:" + std::to_string(i)});
  }
  const std::string stats = Ok({"store", "stats"});
  EXPECT_THAT(stats, AllOf(HasSubstr("server              unix:" + socket_ + "\n"),
                           HasSubstr("backend             memory\n"), HasSubstr("ready"),
                           HasSubstr("entries             8\n")));
  auto j = ParseJson(Ok({"store", "stats", "--output", "json"}));
  EXPECT_EQ(j["backend"], "memory");
  EXPECT_EQ(j["object_counts"]["entries"], "8");
  const int64_t revision = std::stoll(j["backend_revision"].get<std::string>());
  EXPECT_GE(revision, 8);

  EXPECT_THAT(Ok({"store", "verify"}), StartsWith("verified"));
  EXPECT_EQ(ParseJson(Ok({"store", "verify", "-o", "json"}))["ok"], true);

  EXPECT_EQ(Ok({"store", "compact", "2"}), "history compacted through revision 2\n");
  EXPECT_EQ(
      ParseJson(Ok({"store", "compact", "--revision", "3", "-o", "json"}))["compacted_revision"],
      3);
  // No revision: the server keeps its retention (5 here).
  EXPECT_EQ(Ok({"store", "compact"}),
            "history compacted through revision " + std::to_string(revision - 5) + "\n");
  RunResult beyond = Plinth({"store", "compact", "999999"});
  EXPECT_EQ(beyond.code, kExitFailed);
  EXPECT_THAT(beyond.err, StartsWith("plinth: compact 999999: OUT_OF_RANGE"));
  EXPECT_EQ(Plinth({"store", "compact", "4", "--revision", "4"}).code, kExitUsage);
}

TEST_F(DatastoreCommandsTest, StoreCompactWithStoreUrlStaysDirect) {
  auto store = store::OpenStore("memory://datastore-commands-direct");
  ASSERT_THAT(store, IsOk());
  ASSERT_THAT((*store)->Put("a", "1"), IsOk());
  ASSERT_THAT((*store)->Put("a", "2"), IsOk());
  RunResult r = RunPlinth({"store", "compact", "1", "--store", "memory://datastore-commands-direct",
                           "--socket", (dir_ / "nobody.sock").string()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "history compacted through revision 1\n");
  r = RunPlinth({"store", "compact", "--url", "memory://datastore-commands-direct"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("needs the revision"));
}

// ---- connection and parsing

TEST_F(DatastoreCommandsTest, ServerNotRunningIsAPlainFailure) {
  const std::string nobody = (dir_ / "nobody.sock").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"entry", "show"}, {"agent", "list"}, {"bundle", "count"}, {"store", "stats"}}) {
    std::vector<std::string> full = args;
    full.push_back("--socket");
    full.push_back(nobody);
    RunResult r = RunPlinth(full);
    EXPECT_EQ(r.code, kExitFailed) << args[0];
    EXPECT_THAT(r.err,
                AllOf(StartsWith("plinth: cannot reach plinth serve at unix:" + nobody + ": "),
                      HasSubstr("; is it running?\n")))
        << args[0];
    EXPECT_THAT(r.out, IsEmpty());
  }
}

TEST_F(DatastoreCommandsTest, SocketComesFromTheEnvironmentByDefault) {
  ASSERT_EQ(setenv("PLINTH_ADMIN_SOCKET", socket_.c_str(), 1), 0);
  RunResult r = RunPlinth({"entry", "count"});
  unsetenv("PLINTH_ADMIN_SOCKET");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "0 registration entries\n");
}

TEST_F(DatastoreCommandsTest, TlsWithAnAdminSvid) {
  ASSERT_NE(tls_port_, 0);
  const server::SvidFiles admin = WriteSvid("admin", ca_.IssueSvid(kAdminId));
  RunResult r = PlinthOverTls({"entry", "count"}, admin);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "0 registration entries\n");
  r = PlinthOverTls({"entry", "count", "--server-id", kServerId}, admin);
  EXPECT_EQ(r.code, kExitOk) << r.err;

  // The server is not who we asked for: the handshake fails.
  r = PlinthOverTls({"entry", "count", "--server-id", "spiffe://example.org/impostor"}, admin);
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, AllOf(StartsWith("plinth: cannot reach plinth serve at 127.0.0.1:"),
                           HasSubstr("does it accept this SVID?")));

  // A valid SVID that is not an admin.
  r = PlinthOverTls({"entry", "count"},
                    WriteSvid("workload", ca_.IssueSvid("spiffe://example.org/w")));
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, StartsWith("plinth: count entries: PERMISSION_DENIED"));
}

TEST_F(DatastoreCommandsTest, TlsFlagsAreCheckedBeforeConnecting) {
  RunResult r = RunPlinth({"entry", "count", "--address", "127.0.0.1:1", "--cert", "c.pem"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("missing --key --bundle"));
  r = RunPlinth({"entry", "count", "--address", "127.0.0.1:1", "--cert",
                 (dir_ / "none.pem").string(), "--key", "k", "--bundle", "b"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("none.pem"));
  EXPECT_EQ(Plinth({"entry", "count", "--timeout", "soon"}).code, kExitUsage);
}

TEST_F(DatastoreCommandsTest, HelpWorksEverywhere) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"entry", "--help"},
                                                                {"entry", "create", "--help"},
                                                                {"agent", "list", "-h"},
                                                                {"bundle", "set", "--help"},
                                                                {"token", "generate", "--help"},
                                                                {"federation", "update", "--help"},
                                                                {"store", "stats", "--help"}}) {
    RunResult r = RunPlinth(args);
    EXPECT_EQ(r.code, kExitOk) << args[0];
    EXPECT_THAT(r.out, HasSubstr("Exit codes")) << args[0] << " " << args[1];
  }
  EXPECT_THAT(RunPlinth({"entry", "create", "--help"}).out,
              AllOf(HasSubstr("--spiffeID"), HasSubstr("--socket"), HasSubstr("--address")));
}

TEST(NormalizeSingleDashFlags, RewritesOnlyKnownLongNames) {
  CLI::App app;
  std::string a, b;
  bool v = false;
  app.add_option("-s,--spiffeID", a);
  app.add_option("--id", b);
  app.add_flag("-v", v);
  CLI::App* sub = app.add_subcommand("sub");
  sub->add_option("--parentID", b);
  EXPECT_THAT(NormalizeSingleDashFlags(app, {"-spiffeID", "x", "-id=y", "-parentID", "-v", "-s",
                                             "-unknown", "--spiffeID", "-", "--", "-id"}),
              ElementsAre("--spiffeID", "x", "--id=y", "--parentID", "-v", "-s", "-unknown",
                          "--spiffeID", "-", "--", "-id"));
}

TEST(ParseUnixTime, TakesSecondsAndRfc3339) {
  auto parsed = [](std::string_view text) -> int64_t {
    auto t = ParseUnixTime(text);
    return t.ok() ? *t : std::numeric_limits<int64_t>::min();
  };
  EXPECT_EQ(parsed("0"), 0);
  EXPECT_EQ(parsed("1700000000"), 1700000000);
  EXPECT_EQ(parsed("2024-01-02T03:04:05Z"), 1704164645);
  EXPECT_EQ(parsed("2024-01-02T04:04:05.123+01:00"), 1704164645);
  EXPECT_EQ(parsed("1969-12-31T23:59:59Z"), -1);
  EXPECT_THAT(ParseUnixTime("2024-02-30T00:00:00Z"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUnixTime("2024-01-02 03:04:05"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUnixTime("-5"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUnixTime(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(FormatUnixTime(1704164645), "2024-01-02T03:04:05Z");
}

}  // namespace
}  // namespace plinth::cli
