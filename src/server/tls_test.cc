// Real mutual TLS end to end: certificates made in the test, a gRPC server on 127.0.0.1:0
// with the SPIFFE credentials and access policy, and clients with various certificates.
#include "server/tls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/status_matchers.h"
#include "server/admin_socket.h"
#include "server/rpc_metrics.h"
#include "server/testing/test_pki.h"

namespace plinth::server {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::TestCa;
using testing::TestCredential;
using testing::WriteFileAtomically;

constexpr char kWhoAmI[] = "/plinth.test.WhoAmI/Call";
constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
constexpr char kServerId[] = "spiffe://example.org/plinth/server";
constexpr char kAdminId[] = "spiffe://example.org/admin";
constexpr char kWorkloadId[] = "spiffe://example.org/workload";

std::string MakeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "plinth_tls_test_XXXXXX").string();
  PLINTH_CHECK(mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

// A test service for any method: replies with DescribeCaller(), or "denied: <status>" when
// Authorize() refuses the caller (which the processor should already have done).
class WhoAmIService final : public grpc::CallbackGenericService {
 public:
  explicit WhoAmIService(AccessPolicy policy) : policy_(std::move(policy)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    Status auth = Authorize(*ctx, policy_);
    return new Reactor(auth.ok() ? DescribeCaller(*ctx) : "denied: " + auth.ToString());
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(const std::string& reply) {
      grpc::Slice slice(reply);
      reply_ = grpc::ByteBuffer(&slice, 1);
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no request"));
        return;
      }
      StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    grpc::ByteBuffer request_;
    grpc::ByteBuffer reply_;
  };

  const AccessPolicy policy_;
};

struct CallResult {
  grpc::Status status;
  std::string body;
};

// One unary call with raw bytes, failing fast (no wait for ready) with a 10s deadline.
CallResult Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                const std::string& request = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  CallResult result{done.get_future().get(), ""};
  std::vector<grpc::Slice> slices;
  if (result.status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      result.body.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return result;
}

// Channel arguments that keep every test channel's connections to itself, so that a new
// channel always makes a new handshake.
grpc::ChannelArguments FreshConnectionArgs() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { grpc::EnableDefaultHealthCheckService(true); }

  void SetUp() override {
    dir_ = MakeTempDir();
    server_files_ = WriteSvid("server", ca_, ca_.IssueSvid(kServerId));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(dir_);
  }

  // Writes an SVID and the bundle of `bundle_ca` under `name`; returns the file names.
  SvidFiles WriteSvid(const std::string& name, const TestCa& bundle_ca,
                      const TestCredential& credential) {
    SvidFiles files{dir_ + "/" + name + ".pem", dir_ + "/" + name + "_key.pem",
                    dir_ + "/" + name + "_bundle.pem"};
    WriteFileAtomically(files.cert_file, credential.cert_pem);
    WriteFileAtomically(files.key_file, credential.key_pem);
    WriteFileAtomically(files.bundle_file, bundle_ca.cert_pem());
    return files;
  }

  AccessPolicy Policy() const { return AccessPolicy{"example.org", {kAdminId}, HealthMethods()}; }

  void StartServer() {
    SpiffeServerOptions options;
    options.files = server_files_;
    options.refresh_interval = std::chrono::seconds(1);
    options.policy = Policy();
    options.on_rejected = [this](std::string_view method, const Status& status) {
      metrics_.RecordRejectedRpc(method, status);
    };
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ServerCredentials> credentials,
                         SpiffeServerCredentials(options));
    service_ = std::make_unique<WhoAmIService>(Policy());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterCallbackGenericService(service_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(RpcMetricsInterceptorFactory(&metrics_));
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }

  std::shared_ptr<grpc::Channel> SvidChannel(const SvidFiles& files,
                                             std::optional<std::string> server_id = {}) {
    StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        SvidChannelCredentials(files, server_id);
    PLINTH_CHECK(credentials.ok()) << credentials.status();
    return grpc::CreateCustomChannel(Target(), *credentials, FreshConnectionArgs());
  }

  // A client that trusts `bundle_pem` but presents no certificate.
  std::shared_ptr<grpc::Channel> NoCertChannel(const std::string& bundle_pem) {
    auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(bundle_pem);
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_certificate_provider(provider);
    options.watch_root_certs();
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    return grpc::CreateCustomChannel(Target(), grpc::experimental::TlsCredentials(options),
                                     FreshConnectionArgs());
  }

  // A client that trusts ca_ (without checking the server's ID) and presents `credential`,
  // whatever it is.
  std::shared_ptr<grpc::Channel> RawChannel(const TestCredential& credential) {
    auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
        ca_.cert_pem(), std::vector<grpc::experimental::IdentityKeyCertPair>{
                            {credential.key_pem, credential.cert_pem}});
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_certificate_provider(provider);
    options.watch_root_certs();
    options.watch_identity_key_cert_pairs();
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    return grpc::CreateCustomChannel(Target(), grpc::experimental::TlsCredentials(options),
                                     FreshConnectionArgs());
  }

  std::string dir_;
  TestCa ca_{"example.org"};
  SvidFiles server_files_;
  MetricsRegistry registry_;
  ServerMetrics metrics_{&registry_};
  std::unique_ptr<WhoAmIService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsTest, AdminCallerIsAllowedAndIdentifiedByItsSpiffeId) {
  StartServer();
  SvidFiles admin = WriteSvid("admin", ca_, ca_.IssueSvid(kAdminId));
  CallResult result = Call(SvidChannel(admin), kWhoAmI);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.body, kAdminId);
  EXPECT_EQ(metrics_.rpc_requests.WithLabels({kWhoAmI, "OK"}).value(), 1);
}

TEST_F(TlsTest, ClientChecksTheServersSpiffeId) {
  StartServer();
  SvidFiles admin = WriteSvid("admin", ca_, ca_.IssueSvid(kAdminId));
  EXPECT_TRUE(Call(SvidChannel(admin, kServerId), kWhoAmI).status.ok());
  CallResult wrong = Call(SvidChannel(admin, "spiffe://example.org/impostor"), kWhoAmI);
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << wrong.status.error_message();
}

TEST_F(TlsTest, TrustedNonAdminIsPermissionDeniedWithItsIdInTheMessage) {
  StartServer();
  SvidFiles workload = WriteSvid("workload", ca_, ca_.IssueSvid(kWorkloadId));
  CallResult result = Call(SvidChannel(workload), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(result.status.error_message(), HasSubstr(kWorkloadId));
  EXPECT_EQ(metrics_.rpc_requests.WithLabels({kWhoAmI, "PERMISSION_DENIED"}).value(), 1);
}

TEST_F(TlsTest, TrustedNonAdminMayCallOpenMethods) {
  StartServer();
  SvidFiles workload = WriteSvid("workload", ca_, ca_.IssueSvid(kWorkloadId));
  CallResult result = Call(SvidChannel(workload), kHealthCheck);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.body, std::string("\x08\x01", 2));  // status: SERVING
}

// The handshake accepts any client certificate (or none); the call is then refused with a
// status the client can read.
TEST_F(TlsTest, NoClientCertificateIsUnauthenticated) {
  StartServer();
  for (const char* method : {kWhoAmI, kHealthCheck}) {
    SCOPED_TRACE(method);
    CallResult result = Call(NoCertChannel(ca_.cert_pem()), method);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << result.status.error_message();
    EXPECT_THAT(result.status.error_message(), HasSubstr("presented no client certificate"));
  }
  EXPECT_EQ(metrics_.rpc_requests.WithLabels({kWhoAmI, "UNAUTHENTICATED"}).value(), 1);
}

TEST_F(TlsTest, OtherTrustDomainIsUnauthenticated) {
  StartServer();
  TestCa other_ca("other.org");
  // The client trusts our CA (so it accepts the server) but presents another domain's SVID.
  TestCredential other = other_ca.IssueSvid("spiffe://other.org/admin");
  SvidFiles files{dir_ + "/other.pem", dir_ + "/other_key.pem", dir_ + "/other_bundle.pem"};
  WriteFileAtomically(files.cert_file, other.cert_pem);
  WriteFileAtomically(files.key_file, other.key_pem);
  WriteFileAtomically(files.bundle_file, other_ca.cert_pem() + ca_.cert_pem());
  CallResult result = Call(SvidChannel(files, kServerId), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << result.status.error_message();
  EXPECT_THAT(result.status.error_message(), HasSubstr("does not verify against the trust bundle"));
}

// A certificate issued by another CA that claims our trust domain's admin ID is refused:
// the chain, not the name, decides.
TEST_F(TlsTest, ImpostorCaClaimingAnAdminIdIsUnauthenticated) {
  StartServer();
  TestCa impostor_ca("example.org");
  TestCredential impostor = impostor_ca.IssueSvid(kAdminId);
  SvidFiles files{dir_ + "/impostor.pem", dir_ + "/impostor_key.pem",
                  dir_ + "/impostor_bundle.pem"};
  WriteFileAtomically(files.cert_file, impostor.cert_pem);
  WriteFileAtomically(files.key_file, impostor.key_pem);
  WriteFileAtomically(files.bundle_file, impostor_ca.cert_pem() + ca_.cert_pem());
  CallResult result = Call(SvidChannel(files, kServerId), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << result.status.error_message();
  // The same ID from our CA is still an admin: a refusal is not remembered as an answer.
  SvidFiles admin = WriteSvid("admin", ca_, ca_.IssueSvid(kAdminId));
  EXPECT_TRUE(Call(SvidChannel(admin), kWhoAmI).status.ok());
}

// A client certificate that expired is refused, and so is one that expires while its
// connection stays open: a remembered verification ends with the certificate.
TEST_F(TlsTest, ExpiredCertificateIsUnauthenticatedEvenOnAnOpenConnection) {
  StartServer();
  TestCredential expired = ca_.Issue({.uris = {kAdminId}, .valid_from = -7200, .valid_until = -60});
  // SvidChannelCredentials refuses an expired SVID, so build the channel by hand.
  CallResult refused = Call(RawChannel(expired), kWhoAmI);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("expired"));

  TestCredential short_lived = ca_.Issue({.uris = {kAdminId}, .valid_until = 2});
  std::shared_ptr<grpc::Channel> channel = RawChannel(short_lived);
  ASSERT_TRUE(Call(channel, kWhoAmI).status.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  CallResult later = Call(channel, kWhoAmI);
  EXPECT_EQ(later.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << later.status.error_message();
  EXPECT_THAT(later.status.error_message(), HasSubstr("expired"));
}

// Many calls over one connection: the first verifies, the rest reuse the result.
TEST_F(TlsTest, ManyCallsOnOneConnectionAreAllAuthorized) {
  StartServer();
  SvidFiles admin = WriteSvid("admin", ca_, ca_.IssueSvid(kAdminId));
  std::shared_ptr<grpc::Channel> channel = SvidChannel(admin);
  for (int i = 0; i < 50; ++i) {
    CallResult result = Call(channel, kWhoAmI);
    ASSERT_TRUE(result.status.ok()) << i << ": " << result.status.error_message();
    EXPECT_EQ(result.body, kAdminId);
  }
}

// Our CA may sign whatever it likes; the server still insists on exactly one SPIFFE ID of its
// trust domain and says what is wrong.
TEST_F(TlsTest, TrustedCertificateThatIsNotAnSvidOfTheDomainIsUnauthenticated) {
  StartServer();
  struct Case {
    std::string name;
    std::vector<std::string> uris;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"no_uri", {}, "has 0 URI SANs"},
           {"two_uris", {kAdminId, "spiffe://example.org/other"}, "has 2 URI SANs"},
           {"not_spiffe", {"https://example.org/admin"}, "not a SPIFFE ID"},
           {"foreign_id", {"spiffe://other.org/admin"}, "not in trust domain example.org"},
       }) {
    SCOPED_TRACE(c.name);
    TestCredential credential = ca_.Issue({.uris = c.uris, .dns_names = {"localhost"}});
    // SvidChannelCredentials refuses such files, so build the channel by hand.
    CallResult result = Call(RawChannel(credential), kWhoAmI);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(result.status.error_message(), HasSubstr(c.message));
  }
}

TEST_F(TlsTest, RotatedCertificateKeyAndBundleArePickedUpWithoutRestart) {
  StartServer();
  SvidFiles old_admin = WriteSvid("admin", ca_, ca_.IssueSvid(kAdminId));
  ASSERT_TRUE(Call(SvidChannel(old_admin), kWhoAmI).status.ok());

  TestCa new_ca("example.org");
  SvidFiles new_admin = WriteSvid("new_admin", new_ca, new_ca.IssueSvid(kAdminId));
  // Before the rotation the new CA's clients do not trust the server (the client ends the
  // handshake: UNAVAILABLE), and the server does not trust them.
  EXPECT_EQ(Call(SvidChannel(new_admin), kWhoAmI).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  SvidFiles new_admin_trusting_both = new_admin;
  new_admin_trusting_both.bundle_file = dir_ + "/both_bundle.pem";
  WriteFileAtomically(new_admin_trusting_both.bundle_file, ca_.cert_pem() + new_ca.cert_pem());
  EXPECT_EQ(Call(SvidChannel(new_admin_trusting_both), kWhoAmI).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  TestCredential new_server = new_ca.IssueSvid(kServerId);
  WriteFileAtomically(server_files_.key_file, new_server.key_pem);
  WriteFileAtomically(server_files_.cert_file, new_server.cert_pem);
  WriteFileAtomically(server_files_.bundle_file, new_ca.cert_pem());

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  CallResult result;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    result = Call(SvidChannel(new_admin), kWhoAmI);
  } while (!result.status.ok() && std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.body, kAdminId);
  // The old CA is no longer trusted: its clients no longer accept the server, and a client
  // that accepts both is refused by the server.
  EXPECT_EQ(Call(SvidChannel(old_admin), kWhoAmI).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  SvidFiles old_admin_trusting_both = old_admin;
  old_admin_trusting_both.bundle_file = new_admin_trusting_both.bundle_file;
  CallResult stale = Call(SvidChannel(old_admin_trusting_both), kWhoAmI);
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << stale.status.error_message();
  EXPECT_THAT(stale.status.error_message(), HasSubstr("does not verify against the trust bundle"));
}

TEST_F(TlsTest, ServerCredentialsRefuseUnusableFiles) {
  SpiffeServerOptions options;
  options.files = server_files_;
  options.policy = Policy();
  options.files.cert_file = dir_ + "/missing.pem";
  EXPECT_THAT(SpiffeServerCredentials(options),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("missing.pem")));
  options.files = server_files_;
  options.policy.trust_domain = "other.org";
  EXPECT_THAT(SpiffeServerCredentials(options),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not in trust domain other.org")));
}

class CheckSvidFilesTest : public TlsTest {};

TEST_F(CheckSvidFilesTest, AcceptsAValidSvidAndReturnsItsId) {
  ASSERT_OK_AND_ASSIGN(SpiffeId id, CheckSvidFiles(server_files_, "example.org"));
  EXPECT_EQ(id.str(), kServerId);
  ASSERT_OK_AND_ASSIGN(id, CheckSvidFiles(server_files_, ""));
  EXPECT_EQ(id.str(), kServerId);
}

TEST_F(CheckSvidFilesTest, NamesTheFileAndTheProblem) {
  SvidFiles files = server_files_;
  files.key_file = dir_ + "/nope.pem";
  EXPECT_THAT(CheckSvidFiles(files, ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("key file " + files.key_file)));

  // A key of another certificate.
  TestCredential other = ca_.IssueSvid(kAdminId);
  WriteFileAtomically(dir_ + "/other_key.pem", other.key_pem);
  files = server_files_;
  files.key_file = dir_ + "/other_key.pem";
  EXPECT_THAT(CheckSvidFiles(files, ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not belong")));

  // A bundle that does not verify the SVID.
  TestCa other_ca("example.org");
  WriteFileAtomically(dir_ + "/other_bundle.pem", other_ca.cert_pem());
  files = server_files_;
  files.bundle_file = dir_ + "/other_bundle.pem";
  EXPECT_THAT(CheckSvidFiles(files, ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not verify")));

  // Not PEM at all.
  WriteFileAtomically(dir_ + "/garbage.pem", "hello");
  files = server_files_;
  files.cert_file = dir_ + "/garbage.pem";
  EXPECT_THAT(CheckSvidFiles(files, ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));

  // A bundle with several CAs verifies an SVID of any of them.
  WriteFileAtomically(dir_ + "/two_cas.pem", other_ca.cert_pem() + ca_.cert_pem());
  files = server_files_;
  files.bundle_file = dir_ + "/two_cas.pem";
  EXPECT_OK(CheckSvidFiles(files, "example.org"));
}

TEST(SpiffeIdFromSvidPemTest, RequiresExactlyOneSpiffeUriAndALeaf) {
  TestCa ca("example.org");
  ASSERT_OK_AND_ASSIGN(SpiffeId id, SpiffeIdFromSvidPem(ca.IssueSvid(kAdminId).cert_pem));
  EXPECT_EQ(id.str(), kAdminId);
  EXPECT_THAT(SpiffeIdFromSvidPem(ca.Issue({.uris = {kAdminId, kWorkloadId}}).cert_pem),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("exactly one URI SAN")));
  EXPECT_THAT(SpiffeIdFromSvidPem(ca.Issue({.dns_names = {"localhost"}}).cert_pem),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("has 0")));
  EXPECT_THAT(SpiffeIdFromSvidPem(ca.Issue({.uris = {kAdminId}, .is_ca = true}).cert_pem),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("CA certificate")));
  EXPECT_THAT(SpiffeIdFromSvidPem(""), StatusIs(StatusCode::kInvalidArgument));
}

// ---- The admin socket ----

class AdminSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    path_ = dir_ + "/run/admin.sock";
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(dir_);
  }

  void StartServer() {
    ASSERT_OK(PrepareAdminSocket(path_));
    service_ = std::make_unique<WhoAmIService>(AccessPolicy{"example.org", {kAdminId}, {}});
    grpc::ServerBuilder builder;
    builder.AddListeningPort(AdminSocketTarget(path_), AdminSocketServerCredentials());
    builder.RegisterCallbackGenericService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_OK(SecureAdminSocket(path_));
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<WhoAmIService> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(AdminSocketTest, SocketIsPrivateAndItsCallersAreAdmins) {
  StartServer();
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  CallResult result = Call(AdminSocketChannel(path_, FreshConnectionArgs()), kWhoAmI);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.body, "admin-socket");
}

// Local credentials add nothing on the wire, so plaintext clients (grpcurl -plaintext -unix)
// work too; the file permissions are the guard.
TEST_F(AdminSocketTest, PlaintextClientsAreAdminsToo) {
  StartServer();
  CallResult result =
      Call(grpc::CreateCustomChannel(AdminSocketTarget(path_), grpc::InsecureChannelCredentials(),
                                     FreshConnectionArgs()),
           kWhoAmI);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.body, "admin-socket");
}

TEST_F(AdminSocketTest, RefusesToTakeOverARunningServersSocket) {
  StartServer();
  EXPECT_THAT(PrepareAdminSocket(path_),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("another server")));
}

TEST_F(AdminSocketTest, RemovesAStaleSocketButNeverAnotherFile) {
  ASSERT_OK(PrepareAdminSocket(path_));
  // A socket bound and abandoned, as by a server that crashed.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  ASSERT_TRUE(std::filesystem::exists(path_));
  EXPECT_OK(PrepareAdminSocket(path_));
  EXPECT_FALSE(std::filesystem::exists(path_));

  std::ofstream(path_) << "precious";
  EXPECT_THAT(PrepareAdminSocket(path_),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("not a socket")));
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(AdminSocketTest, RefusesADirectoryOthersMayWrite) {
  std::string open_dir = dir_ + "/open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  EXPECT_THAT(PrepareAdminSocket(open_dir + "/admin.sock"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("writable by other users")));
}

}  // namespace
}  // namespace plinth::server
