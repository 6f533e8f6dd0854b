// End-to-end tests of `plinth serve`: real server processes (the built `plinth` binary), each
// with its own directory, configuration file and loopback ports, driven over gRPC (generated
// stubs) and through the CLI. Every wait is bounded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "plinth/v1/datastore_service.grpc.pb.h"
#include "server/api/status.h"
#include "server/e2e/plinth_process.h"
#include "server/server.h"
#include "server/testing/grpc_client.h"
#include "server/testing/test_pki.h"
#include "server/tls.h"
#include "store/conformance/child_process.h"
#include "store/conformance/test_servers.h"
#include "store/open.h"

namespace plinth::server::e2e {
namespace {

namespace v1 = ::plinth::v1;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::HealthCheck;
using testing::ServingStatus;
using ::testing::StartsWith;
using testing::TestCa;
using testing::TestCredential;
using testing::WriteFileAtomically;

constexpr char kTrustDomain[] = "example.org";
constexpr char kAdminId[] = "spiffe://example.org/admin";
constexpr char kServerId[] = "spiffe://example.org/plinth";
constexpr char kAgentId[] = "spiffe://example.org/agent";

constexpr std::chrono::seconds kStartTimeout(60);
constexpr std::chrono::seconds kCallTimeout(20);

v1::RegistrationEntry MakeEntry(const std::string& spiffe_id, const std::string& uid) {
  v1::RegistrationEntry entry;
  entry.set_spiffe_id(spiffe_id);
  entry.set_parent_id(kAgentId);
  v1::Selector* selector = entry.add_selectors();
  selector->set_type("unix");
  selector->set_value("uid:" + uid);
  return entry;
}

std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout = kCallTimeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

StatusOr<v1::RegistrationEntry> CreateEntry(const std::shared_ptr<grpc::Channel>& channel,
                                            const v1::RegistrationEntry& entry) {
  auto stub = v1::DataStore::NewStub(channel);
  v1::RegistrationEntry created;
  auto context = Context();
  grpc::Status status = stub->CreateRegistrationEntry(context.get(), entry, &created);
  if (!status.ok()) return api::FromGrpcStatus(status);
  return created;
}

StatusOr<v1::RegistrationEntry> FetchEntry(const std::shared_ptr<grpc::Channel>& channel,
                                           const std::string& entry_id) {
  auto stub = v1::DataStore::NewStub(channel);
  v1::EntryIdRequest request;
  request.set_entry_id(entry_id);
  v1::RegistrationEntry entry;
  auto context = Context();
  grpc::Status status = stub->FetchRegistrationEntry(context.get(), request, &entry);
  if (!status.ok()) return api::FromGrpcStatus(status);
  return entry;
}

// Every entry, through the streaming list.
StatusOr<std::vector<v1::RegistrationEntry>> ListEntries(
    const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::DataStore::NewStub(channel);
  auto context = Context();
  auto reader = stub->ListRegistrationEntries(context.get(), v1::ListRegistrationEntriesRequest());
  std::vector<v1::RegistrationEntry> entries;
  v1::ListRegistrationEntriesResponse page;
  while (reader->Read(&page)) {
    for (const v1::RegistrationEntry& e : page.entries()) entries.push_back(e);
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return api::FromGrpcStatus(status);
  return entries;
}

StatusOr<int64_t> CountEntries(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::DataStore::NewStub(channel);
  auto context = Context();
  v1::CountResponse response;
  grpc::Status status = stub->CountRegistrationEntries(
      context.get(), v1::CountRegistrationEntriesRequest(), &response);
  if (!status.ok()) return api::FromGrpcStatus(status);
  return response.count();
}

bool Contains(const std::vector<v1::RegistrationEntry>& entries, const std::string& entry_id) {
  for (const auto& e : entries) {
    if (e.entry_id() == entry_id) return true;
  }
  return false;
}

// Polls `fn` (returning true when done) every `interval` until `timeout`.
template <typename Fn>
bool Eventually(std::chrono::milliseconds timeout, Fn fn,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const Deadline deadline = After(timeout);
  for (;;) {
    if (fn()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// Server reflection's list of services (ServerReflectionRequest{list_services: ""}, one
// request and one response on the bidi stream), as the raw response bytes.
StatusOr<std::string> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel) {
  testing::GenericCallResult result = testing::GenericUnaryCall(
      channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x00", 2), kCallTimeout);
  if (!result.status.ok()) return api::FromGrpcStatus(result.status);
  return result.response;
}

// The log line of `msg`, or "".
std::string LogLine(const PlinthServe& serve, const std::string& msg) {
  const std::string log = serve.Log();
  const size_t at = log.find("\"msg\":\"" + msg + "\"");
  if (at == std::string::npos) return "";
  const size_t begin = log.rfind('\n', at) + 1;
  return log.substr(begin, log.find('\n', at) - begin);
}

// How long the server's shutdown took, from its "stopped" log line; -1 if not logged.
int StopDurationMs(const PlinthServe& serve) {
  const std::string stopped = LogLine(serve, "stopped");
  std::smatch took;
  if (!std::regex_search(stopped, took, std::regex("\"duration_ms\":([0-9]+)"))) return -1;
  return std::stoi(took[1]);
}

// SIGTERM, then expects a clean exit with code 0.
void StopGracefully(PlinthServe& serve) {
  serve.Signal(SIGTERM);
  StatusOr<int> wait_status = serve.Wait(After(std::chrono::seconds(30)));
  ASSERT_THAT(wait_status, IsOk()) << serve.Log();
  EXPECT_TRUE(WIFEXITED(*wait_status) && WEXITSTATUS(*wait_status) == 0)
      << store::conformance::DescribeWaitStatus(*wait_status) << "\n"
      << serve.Log();
  // Clients that stay connected (idle) do not hold the shutdown until its deadline (10s).
  const int took_ms = StopDurationMs(serve);
  EXPECT_GE(took_ms, 0) << serve.Log();
  EXPECT_LT(took_ms, 8000) << serve.Log();
}

// Writes an SVID and a bundle under `dir` as <name>.pem, <name>_key.pem, <name>_bundle.pem.
SvidFiles WriteSvid(const std::string& dir, const std::string& name,
                    const TestCredential& credential, const std::string& bundle_pem) {
  SvidFiles files{dir + "/" + name + ".pem", dir + "/" + name + "_key.pem",
                  dir + "/" + name + "_bundle.pem"};
  WriteFileAtomically(files.cert_file, credential.cert_pem);
  WriteFileAtomically(files.key_file, credential.key_pem);
  WriteFileAtomically(files.bundle_file, bundle_pem);
  return files;
}

ServeOptions TlsOptions(const SvidFiles& server_files) {
  ServeOptions options;
  options.tls = server_files;
  options.trust_domain = kTrustDomain;
  options.admin_ids = {kAdminId};
  return options;
}

// ---- 1. TLS: who may call what.

TEST(E2eTls, AdminCreatesAndListsEntriesOthersAreRefused) {
  TempDir dir;
  TestCa ca(kTrustDomain);
  TestCa other_ca("other.org");
  SvidFiles server_files = WriteSvid(dir.path(), "server", ca.IssueSvid(kServerId), ca.cert_pem());
  SvidFiles admin_files = WriteSvid(dir.path(), "admin", ca.IssueSvid(kAdminId), ca.cert_pem());
  SvidFiles workload_files = WriteSvid(
      dir.path(), "workload", ca.IssueSvid("spiffe://example.org/workload"), ca.cert_pem());

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<PlinthServe> serve,
      PlinthServe::Start(dir.path(), TlsOptions(server_files), After(kStartTimeout)));
  ASSERT_THAT(serve->WaitUntilServing(After(kStartTimeout)), IsOk());
  ASSERT_NE(serve->tls_port(), 0);

  // The admin creates an entry and lists it, over TLS.
  std::shared_ptr<grpc::Channel> admin = serve->TlsChannel(admin_files);
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry created,
                       CreateEntry(admin, MakeEntry("spiffe://example.org/db", "1000")));
  EXPECT_FALSE(created.entry_id().empty());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RegistrationEntry> listed, ListEntries(admin));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].entry_id(), created.entry_id());
  EXPECT_EQ(listed[0].spiffe_id(), "spiffe://example.org/db");

  // A trusted SVID that is not an admin: PERMISSION_DENIED naming it; health is open to it.
  std::shared_ptr<grpc::Channel> workload = serve->TlsChannel(workload_files);
  EXPECT_THAT(ListEntries(workload),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("spiffe://example.org/workload")));
  EXPECT_THAT(CreateEntry(workload, MakeEntry("spiffe://example.org/x", "1")),
              StatusIs(StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(ServingStatus workload_health, HealthCheck(workload));
  EXPECT_EQ(workload_health, ServingStatus::kServing);
  // So is server reflection.
  ASSERT_OK_AND_ASSIGN(std::string services, ListServicesByReflection(workload));
  EXPECT_THAT(services, AllOf(HasSubstr("plinth.v1.DataStore"), HasSubstr("plinth.v1.Operator"),
                              HasSubstr("grpc.health.v1.Health")));

  // An SVID of another trust domain (that trusts our server): UNAUTHENTICATED.
  TestCredential foreign = other_ca.IssueSvid("spiffe://other.org/admin");
  EXPECT_THAT(ListEntries(RawTlsChannel(serve->TlsTarget(), ca.cert_pem(), foreign.cert_pem,
                                        foreign.key_pem)),
              StatusIs(StatusCode::kUnauthenticated,
                       HasSubstr("does not verify against the trust bundle")));
  // Another CA claiming our trust domain's admin ID: UNAUTHENTICATED; the chain decides.
  TestCa impostor_ca(kTrustDomain);
  TestCredential impostor = impostor_ca.IssueSvid(kAdminId);
  EXPECT_THAT(ListEntries(RawTlsChannel(serve->TlsTarget(), ca.cert_pem(), impostor.cert_pem,
                                        impostor.key_pem)),
              StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(CreateEntry(RawTlsChannel(serve->TlsTarget(), ca.cert_pem(), impostor.cert_pem,
                                        impostor.key_pem),
                          MakeEntry("spiffe://example.org/impostor", "1")),
              StatusIs(StatusCode::kUnauthenticated));
  // No client certificate at all: UNAUTHENTICATED.
  EXPECT_THAT(ListEntries(RawTlsChannel(serve->TlsTarget(), ca.cert_pem())),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("no client certificate")));
  // Refusals left the admin's data alone.
  ASSERT_OK_AND_ASSIGN(listed, ListEntries(admin));
  EXPECT_EQ(listed.size(), 1u);

  StopGracefully(*serve);
}

// ---- 2. Replicas over one backend.

// Starts two servers on `store_url`; an entry created through either is listed through the
// other within a bounded wait.
void ExpectReplicasAgree(const std::string& store_url, const std::string& dir) {
  std::filesystem::create_directories(dir + "/a");
  std::filesystem::create_directories(dir + "/b");
  ServeOptions options;
  options.store_url = store_url;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PlinthServe> a,
                       PlinthServe::Start(dir + "/a", options, After(kStartTimeout)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PlinthServe> b,
                       PlinthServe::Start(dir + "/b", options, After(kStartTimeout)));
  ASSERT_THAT(a->WaitUntilServing(After(kStartTimeout)), IsOk());
  ASSERT_THAT(b->WaitUntilServing(After(kStartTimeout)), IsOk());

  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry via_a,
                       CreateEntry(a->AdminChannel(), MakeEntry("spiffe://example.org/a", "1")));
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    StatusOr<std::vector<v1::RegistrationEntry>> listed = ListEntries(b->AdminChannel());
    return listed.ok() && Contains(*listed, via_a.entry_id());
  })) << "an entry created through A never appeared through B";

  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry via_b,
                       CreateEntry(b->AdminChannel(), MakeEntry("spiffe://example.org/b", "2")));
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return FetchEntry(a->AdminChannel(), via_b.entry_id()).ok();
  })) << "an entry created through B never appeared through A";

  // The similar-entry rule holds across replicas: the same entry through B returns A's.
  ASSERT_OK_AND_ASSIGN(v1::RegistrationEntry again,
                       CreateEntry(b->AdminChannel(), MakeEntry("spiffe://example.org/a", "1")));
  EXPECT_EQ(again.entry_id(), via_a.entry_id());

  StopGracefully(*a);
  StopGracefully(*b);
}

TEST(E2eReplicas, TwoServersOverOneSqliteFileSeeEachOthersWrites) {
  TempDir dir;
  ExpectReplicasAgree("sqlite://" + dir.path() + "/shared.db", dir.path());
}

TEST(E2eReplicas, TwoServersOverOnePostgresDatabaseSeeEachOthersWrites) {
  StatusOr<store::conformance::TestServer> postgres =
      store::conformance::SharedTestServer("postgres");
  ASSERT_THAT(postgres, IsOk()) << "the PostgreSQL test server must start; this test never skips";
  TempDir dir;
  ExpectReplicasAgree(postgres->url + "?schema=" + store::conformance::UniqueStoreName(),
                      dir.path());
}

// ---- 3. Graceful shutdown keeps every acknowledged write.

TEST(E2eShutdown, SigtermDuringAWriteBurstLosesNoAcknowledgedWrite) {
  TempDir dir;
  ServeOptions options;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PlinthServe> serve,
                       PlinthServe::Start(dir.path(), options, After(kStartTimeout)));
  ASSERT_THAT(serve->WaitUntilServing(After(kStartTimeout)), IsOk());

  // A client following the change feed: shutdown must end its stream, not wait for it.
  auto watch_stub = v1::DataStore::NewStub(serve->AdminChannel());
  std::unique_ptr<grpc::ClientContext> watch_context = Context(std::chrono::seconds(120));
  std::unique_ptr<grpc::ClientReader<v1::DataStoreChange>> watch =
      watch_stub->WatchChanges(watch_context.get(), v1::WatchChangesRequest());
  watch->WaitForInitialMetadata();
  int watched_changes = 0;
  grpc::Status watch_status;
  std::thread watcher([&] {
    v1::DataStoreChange change;
    while (watch->Read(&change)) ++watched_changes;
    watch_status = watch->Finish();
  });

  constexpr int kWriters = 8;
  std::atomic<bool> signalled{false};
  std::atomic<int> acknowledged_count{0};
  std::mutex mu;
  std::vector<std::string> acknowledged;  // entry IDs whose create returned OK
  std::map<std::string, int> failures;    // status -> count, after SIGTERM
  const Deadline writers_deadline = After(std::chrono::seconds(120));
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::shared_ptr<grpc::Channel> channel = serve->AdminChannel();
      for (int n = 0; std::chrono::steady_clock::now() < writers_deadline; ++n) {
        StatusOr<v1::RegistrationEntry> created = CreateEntry(
            channel,
            MakeEntry("spiffe://example.org/burst/w" + std::to_string(w) + "/n" + std::to_string(n),
                      std::to_string(n)));
        std::lock_guard<std::mutex> lock(mu);
        if (created.ok()) {
          acknowledged.push_back(created->entry_id());
          ++acknowledged_count;
        } else if (signalled) {
          ++failures[created.status().ToString()];
          // The server is going away: its listener is closed once it refuses calls.
          if (created.status().code() == StatusCode::kUnavailable) return;
        } else {
          ADD_FAILURE() << "a create failed before SIGTERM: " << created.status();
          return;
        }
      }
    });
  }
  // Let the burst get going, then stop the server in the middle of it.
  EXPECT_TRUE(Eventually(std::chrono::seconds(60), [&] { return acknowledged_count >= 200; }));
  signalled = true;
  serve->Signal(SIGTERM);
  for (std::thread& t : writers) t.join();
  StatusOr<int> wait_status = serve->Wait(After(std::chrono::seconds(30)));
  ASSERT_THAT(wait_status, IsOk()) << serve->Log();
  EXPECT_TRUE(WIFEXITED(*wait_status) && WEXITSTATUS(*wait_status) == 0)
      << store::conformance::DescribeWaitStatus(*wait_status) << "\n"
      << serve->Log();
  watcher.join();
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << watch_status.error_message();
  EXPECT_GT(watched_changes, 0);
  // The open watch did not hold the server until the grace period (10s) ran out.
  EXPECT_LT(StopDurationMs(*serve), 8000) << serve->Log();
  for (const auto& [code, n] : failures) {
    std::cout << "after SIGTERM: " << n << " creates failed with " << code << "\n";
  }
  std::cout << acknowledged.size() << " creates were acknowledged\n";

  // A new server on the same data has every acknowledged entry.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PlinthServe> restarted,
                       PlinthServe::Start(dir.path(), options, After(kStartTimeout)));
  ASSERT_THAT(restarted->WaitUntilServing(After(kStartTimeout)), IsOk());
  std::shared_ptr<grpc::Channel> channel = restarted->AdminChannel();
  auto stub = v1::DataStore::NewStub(channel);
  std::set<std::string> missing(acknowledged.begin(), acknowledged.end());
  ASSERT_EQ(missing.size(), acknowledged.size()) << "an entry ID was acknowledged twice";
  for (size_t i = 0; i < acknowledged.size(); i += 500) {
    v1::FetchRegistrationEntriesRequest request;
    for (size_t j = i; j < std::min(acknowledged.size(), i + 500); ++j) {
      request.add_entry_ids(acknowledged[j]);
    }
    v1::FetchRegistrationEntriesResponse response;
    auto context = Context();
    ASSERT_TRUE(stub->FetchRegistrationEntries(context.get(), request, &response).ok());
    for (const auto& [id, entry] : response.entries()) missing.erase(id);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged entries are missing, e.g. "
                               << *missing.begin();
  ASSERT_OK_AND_ASSIGN(int64_t count, CountEntries(channel));
  EXPECT_GE(count, static_cast<int64_t>(acknowledged.size()));
  StopGracefully(*restarted);
}

// ---- 4. Configuration errors.

TEST(E2eConfig, ABadConfigFileGivesAClearMessageAndExitCode2) {
  TempDir dir;
  struct Case {
    std::string name;
    std::string toml;
    std::vector<std::string> message_parts;
  };
  for (const Case& c : std::vector<Case>{
           {"unknown_key",
            "data_dir = \"" + dir.path() + "/data\"\nlisten_address = \"127.0.0.1:1\"\n",
            {"unknown key \"listen_address\" (line 2)"}},
           {"bad_admin_id",
            "trust_domain = \"example.org\"\nadmin_ids = [\"spiffe://example.org/a\", \"admin\"]\n",
            {":2:", "admin_ids[1]: \"admin\" is not a SPIFFE ID"}},
           {"toml_syntax", "data_dir = \"/x\"\n\n[store\nurl = \"memory://\"\n", {":3:"}},
       }) {
    SCOPED_TRACE(c.name);
    const std::string file = dir.path() + "/" + c.name + ".toml";
    WriteFile(file, c.toml);
    ASSERT_OK_AND_ASSIGN(CliResult result,
                         RunPlinth({"serve", "--config", file}, dir.path(), After(kStartTimeout)));
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_THAT(result.err, StartsWith("plinth: invalid configuration: config " + file + ":"));
    for (const std::string& part : c.message_parts) EXPECT_THAT(result.err, HasSubstr(part));
    EXPECT_EQ(result.out, "");
  }
  // The same through $PLINTH_CONFIG is covered by CLI11's envname; a missing file is named.
  ASSERT_OK_AND_ASSIGN(CliResult missing,
                       RunPlinth({"serve", "--config", dir.path() + "/nope.toml"}, dir.path(),
                                 After(kStartTimeout)));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, AllOf(HasSubstr("plinth: invalid configuration: config "),
                                 HasSubstr("nope.toml: cannot read")));
}

// ---- 5. Readiness, health and metrics.

// Adds entries number `from` to `to` - 1 to the default SQLite store of data directory
// `data_dir`, through the datastore library (much faster than RPCs).
void Populate(const std::string& data_dir, int from, int to) {
  std::filesystem::create_directories(data_dir);
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<store::Store> store,
                       store::OpenStore("sqlite://" + data_dir + "/plinth.db"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<datastore::DataStore> ds,
                       datastore::DataStore::Open(store.get(), {}));
  constexpr int kBatch = 2000;
  for (int i = from; i < to; i += kBatch) {
    std::vector<v1::RegistrationEntry> batch;
    for (int j = i; j < std::min(to, i + kBatch); ++j) {
      batch.push_back(
          MakeEntry("spiffe://example.org/bulk/" + std::to_string(j), std::to_string(j)));
    }
    ASSERT_THAT(ds->CreateOrReturnRegistrationEntries(batch), IsOk());
  }
}

// What a client saw of a server from its start until it was ready.
struct StartupObservation {
  bool became_ready = false;
  int first_readyz = 0;                       // HTTP status of the first /readyz
  std::optional<ServingStatus> first_health;  // first health answer
  std::set<int> readyz_codes;
  std::set<ServingStatus> health_states;
  bool saw_hydrating_rpc = false;  // an RPC failed with UNAVAILABLE kHydratingMessage

  // Whether the not-ready phase was seen by every probe.
  bool SawHydration() const {
    return first_readyz == 503 && first_health == ServingStatus::kNotServing && saw_hydrating_rpc;
  }
};

// Polls an RPC, the health service and /readyz, as fast as it can, until all say ready.
StartupObservation ObserveStartup(PlinthServe& serve) {
  StartupObservation seen;
  std::shared_ptr<grpc::Channel> channel = serve.AdminChannel();
  seen.became_ready = Eventually(kStartTimeout, [&] {
    StatusOr<int64_t> count = CountEntries(channel);
    StatusOr<ServingStatus> health = HealthCheck(channel, "", std::chrono::seconds(5));
    const int code = HttpGet(serve.metrics_port(), "/readyz").first;
    if (!count.ok() && count.status().code() == StatusCode::kUnavailable &&
        count.status().message() == kHydratingMessage) {
      seen.saw_hydrating_rpc = true;
    }
    if (health.ok()) {
      if (!seen.first_health.has_value()) seen.first_health = *health;
      seen.health_states.insert(*health);
    }
    if (seen.first_readyz == 0) seen.first_readyz = code;
    seen.readyz_codes.insert(code);
    return code == 200 && health.ok() && *health == ServingStatus::kServing && count.ok();
  });
  return seen;
}

TEST(E2eReadiness, ReadinessAndHealthFlipAfterHydrationAndMetricsCountRpcs) {
  TempDir dir;
  ServeOptions options;
  options.metrics = true;
  // Enough entries that hydration lasts long enough to be seen; a fast build that hydrates
  // them before the first probe gets more (a bounded number of times).
  int entries = 0;
  int target = 30000;
  std::unique_ptr<PlinthServe> serve;
  StartupObservation seen;
  for (int round = 0; round < 3; ++round, target *= 3) {
    ASSERT_NO_FATAL_FAILURE(Populate(dir.path() + "/data", entries, target));
    entries = target;
    ASSERT_OK_AND_ASSIGN(serve, PlinthServe::Start(dir.path(), options, After(kStartTimeout)));
    seen = ObserveStartup(*serve);
    ASSERT_TRUE(seen.became_ready) << serve->Log();
    std::cout << entries << " entries: " << LogLine(*serve, "datastore hydrated") << "\n";
    if (seen.SawHydration()) break;
    StopGracefully(*serve);
  }
  // Until hydrated: /readyz 503, health NOT_SERVING, RPCs UNAVAILABLE "hydrating"; then
  // 200, SERVING and answers.
  EXPECT_EQ(seen.first_readyz, 503) << "hydration was never observable";
  EXPECT_EQ(seen.first_health, ServingStatus::kNotServing);
  EXPECT_TRUE(seen.saw_hydrating_rpc);
  EXPECT_TRUE(seen.readyz_codes.count(503) && seen.readyz_codes.count(200));
  EXPECT_TRUE(seen.health_states.count(ServingStatus::kNotServing));
  EXPECT_NE(LogLine(*serve, "datastore hydrated"), "") << serve->Log();
  EXPECT_EQ(HttpGet(serve->metrics_port(), "/readyz"), std::make_pair(200, std::string("ready\n")));
  std::shared_ptr<grpc::Channel> channel = serve->AdminChannel();
  ASSERT_OK_AND_ASSIGN(int64_t count, CountEntries(channel));
  EXPECT_EQ(count, entries);

  // Some calls with known outcomes, then the metrics.
  ASSERT_THAT(CreateEntry(channel, MakeEntry("spiffe://example.org/metrics", "7")), IsOk());
  EXPECT_THAT(FetchEntry(channel, "no-such-entry"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(FetchEntry(channel, "no-such-entry-either"), StatusIs(StatusCode::kNotFound));
  auto op = v1::Operator::NewStub(channel);
  v1::StoreStatus status;
  auto context = Context();
  ASSERT_TRUE(op->GetStoreStatus(context.get(), {}, &status).ok());
  EXPECT_TRUE(status.ready());

  auto [code, metrics] = HttpGet(serve->metrics_port(), "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_THAT(metrics, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/"
                                 "CreateRegistrationEntry\",code=\"OK\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/"
                                 "FetchRegistrationEntry\",code=\"NOT_FOUND\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_rpc_requests_total{method=\"/plinth.v1.DataStore/"
                                 "CountRegistrationEntries\",code=\"UNAVAILABLE\"}"));
  EXPECT_THAT(metrics, HasSubstr("plinth_rpc_duration_seconds_count{method=\"/plinth.v1."
                                 "DataStore/CreateRegistrationEntry\",code=\"OK\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_mirror_applied_revision " +
                                 std::to_string(status.applied_revision()) + "\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_mirror_lag_revisions 0\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_mirror_rebuilds_total 0\n"));
  EXPECT_THAT(metrics, HasSubstr("plinth_store_operation_duration_seconds_count{operation="
                                 "\"txn\"}"));
  EXPECT_THAT(metrics, HasSubstr("plinth_store_operation_duration_seconds_count{operation="
                                 "\"snapshot_range\"}"));
  StopGracefully(*serve);
}

// ---- 6. Certificate rotation without restart.

TEST(E2eTls, RotatedServerSvidIsServedWithoutRestart) {
  TempDir dir;
  TestCa old_ca(kTrustDomain);
  TestCa new_ca(kTrustDomain);
  SvidFiles server_files =
      WriteSvid(dir.path(), "server", old_ca.IssueSvid(kServerId), old_ca.cert_pem());
  SvidFiles old_admin =
      WriteSvid(dir.path(), "old_admin", old_ca.IssueSvid(kAdminId), old_ca.cert_pem());
  SvidFiles new_admin =
      WriteSvid(dir.path(), "new_admin", new_ca.IssueSvid(kAdminId), new_ca.cert_pem());

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<PlinthServe> serve,
      PlinthServe::Start(dir.path(), TlsOptions(server_files), After(kStartTimeout)));
  ASSERT_THAT(serve->WaitUntilServing(After(kStartTimeout)), IsOk());
  ASSERT_THAT(ListEntries(serve->TlsChannel(old_admin)), IsOk());
  // A client of the new CA cannot connect yet: it does not trust the server's SVID.
  EXPECT_THAT(ListEntries(serve->TlsChannel(new_admin)), StatusIs(StatusCode::kUnavailable));

  // Rotate: the bundle gains the new CA, then the server's SVID (from the new CA) is renamed
  // into place, key first.
  WriteFileAtomically(server_files.bundle_file, old_ca.cert_pem() + new_ca.cert_pem());
  TestCredential rotated = new_ca.IssueSvid(kServerId);
  WriteFileAtomically(server_files.key_file, rotated.key_pem);
  WriteFileAtomically(server_files.cert_file, rotated.cert_pem);

  StatusOr<std::vector<v1::RegistrationEntry>> listed = UnavailableError("not tried");
  EXPECT_TRUE(Eventually(std::chrono::seconds(30),
                         [&] {
                           listed = ListEntries(serve->TlsChannel(new_admin));
                           return listed.ok();
                         }))
      << "a client of the new CA never connected: " << listed.status() << "\n"
      << serve->Log();
  StopGracefully(*serve);
}

// ---- 7. The CLI against the admin socket.

TEST(E2eCli, EntryCreateThenShowThroughTheAdminSocket) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PlinthServe> serve,
                       PlinthServe::Start(dir.path(), ServeOptions(), After(kStartTimeout)));
  ASSERT_THAT(serve->WaitUntilServing(After(kStartTimeout)), IsOk());

  ASSERT_OK_AND_ASSIGN(
      CliResult create,
      RunPlinth({"entry", "create", "-spiffeID", "spiffe://example.org/cli/workload", "-parentID",
                 kAgentId, "-selector", "unix:uid:1000", "--socket", serve->admin_socket()},
                dir.path(), After(kStartTimeout)));
  EXPECT_EQ(create.exit_code, 0) << create.err;
  EXPECT_THAT(create.out, HasSubstr("spiffe://example.org/cli/workload"));

  ASSERT_OK_AND_ASSIGN(CliResult show,
                       RunPlinth({"entry", "show", "--socket", serve->admin_socket()}, dir.path(),
                                 After(kStartTimeout)));
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, AllOf(HasSubstr("spiffe://example.org/cli/workload"), HasSubstr(kAgentId),
                              HasSubstr("unix:uid:1000")));

  // The entry is the one the server holds.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RegistrationEntry> listed,
                       ListEntries(serve->AdminChannel()));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_THAT(show.out, HasSubstr(listed[0].entry_id()));
  StopGracefully(*serve);
}

}  // namespace
}  // namespace plinth::server::e2e
