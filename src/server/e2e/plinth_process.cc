#include "server/e2e/plinth_process.h"

#include <httplib.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "common/check.h"
#include "server/admin_socket.h"
#include "server/testing/grpc_client.h"

namespace plinth::server::e2e {
namespace {

using store::conformance::ChildProcess;
using store::conformance::DescribeWaitStatus;

std::atomic<int> g_file_counter{0};

std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// The bound port of the listener of `transport` in the JSON log `log` (0 for one without a
// port), or nullopt if it was not logged yet.
std::optional<int> ListeningPort(const std::string& log, const std::string& transport) {
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("msg", "") != "listening") continue;
    if (j.value("transport", "") != transport) continue;
    return j.value("port", 0);
  }
  return std::nullopt;
}

bool Exited(ChildProcess& process) { return process.Wait(std::chrono::steady_clock::now()).ok(); }

}  // namespace

Deadline After(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

std::string PlinthBinary() { return PLINTH_BINARY_PATH; }

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "plinth_e2e_XXXXXX").string();
  PLINTH_CHECK(mkdtemp(tmpl.data()) != nullptr) << "mkdtemp " << tmpl;
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  PLINTH_CHECK(out.good()) << "cannot write " << path;
}

std::string ServeConfigToml(const std::string& dir, const ServeOptions& options) {
  std::ostringstream toml;
  toml << "data_dir = " << TomlString(dir + "/data") << "\n";
  toml << "admin_socket = " << TomlString(dir + "/data/admin.sock") << "\n";
  if (options.tls.has_value()) {
    toml << "listen = \"127.0.0.1:0\"\n";
    toml << "trust_domain = " << TomlString(options.trust_domain) << "\n";
    toml << "admin_ids = [";
    for (size_t i = 0; i < options.admin_ids.size(); ++i) {
      toml << (i == 0 ? "" : ", ") << TomlString(options.admin_ids[i]);
    }
    toml << "]\n";
  }
  if (!options.store_url.empty()) {
    toml << "[store]\nurl = " << TomlString(options.store_url) << "\n";
  }
  if (options.tls.has_value()) {
    toml << "[tls]\n"
         << "cert_file = " << TomlString(options.tls->cert_file) << "\n"
         << "key_file = " << TomlString(options.tls->key_file) << "\n"
         << "bundle_file = " << TomlString(options.tls->bundle_file) << "\n"
         << "refresh_interval = " << TomlString(options.tls_refresh_interval) << "\n";
  }
  if (options.metrics) toml << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  toml << "[log]\nlevel = \"info\"\nformat = \"json\"\n";
  toml << options.extra_toml;
  return toml.str();
}

StatusOr<std::unique_ptr<PlinthServe>> PlinthServe::Start(const std::string& dir,
                                                          const ServeOptions& options,
                                                          Deadline deadline) {
  std::unique_ptr<PlinthServe> serve(new PlinthServe());
  serve->config_file_ = dir + "/plinth.toml";
  serve->admin_socket_ = dir + "/data/admin.sock";
  WriteFile(serve->config_file_, ServeConfigToml(dir, options));
  const std::string log_file = dir + "/serve-" + std::to_string(++g_file_counter) + ".log";
  PLINTH_ASSIGN_OR_RETURN(
      serve->process_,
      ChildProcess::Spawn({PlinthBinary(), "serve", "--config", serve->config_file_}, log_file));

  for (;;) {
    const std::string log = serve->Log();
    const bool admin_ok = ListeningPort(log, "admin-socket").has_value();
    serve->tls_port_ = options.tls.has_value() ? ListeningPort(log, "tls").value_or(0) : 0;
    serve->metrics_port_ = options.metrics ? ListeningPort(log, "http-metrics").value_or(0) : 0;
    if (admin_ok && (!options.tls.has_value() || serve->tls_port_ != 0) &&
        (!options.metrics || serve->metrics_port_ != 0)) {
      return serve;
    }
    if (Exited(*serve->process_)) {
      return FailedPreconditionError("plinth serve exited during start-up; its log:\n" +
                                     serve->Log());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("plinth serve did not log its listeners in time; its log:\n" +
                                   serve->Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status PlinthServe::WaitUntilServing(Deadline deadline) {
  std::shared_ptr<grpc::Channel> channel = AdminChannel();
  for (;;) {
    StatusOr<testing::ServingStatus> health =
        testing::HealthCheck(channel, "", std::chrono::seconds(2));
    if (health.ok() && *health == testing::ServingStatus::kServing) return Status::Ok();
    if (Exited(*process_)) {
      return FailedPreconditionError("plinth serve exited before serving; its log:\n" + Log());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("plinth serve is not SERVING in time; its log:\n" + Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::shared_ptr<grpc::Channel> PlinthServe::AdminChannel() const {
  return AdminSocketChannel(admin_socket_, FreshConnectionArgs());
}

std::shared_ptr<grpc::Channel> PlinthServe::TlsChannel(const SvidFiles& client) const {
  StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = SvidChannelCredentials(client);
  PLINTH_CHECK(credentials.ok()) << credentials.status();
  return grpc::CreateCustomChannel(TlsTarget(), *credentials, FreshConnectionArgs());
}

bool PlinthServe::Logged(const std::string& msg) const {
  std::istringstream lines(Log());
  std::string line;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("msg", "") == msg) return true;
  }
  return false;
}

StatusOr<CliResult> RunPlinth(const std::vector<std::string>& args, const std::string& dir,
                              Deadline deadline) {
  std::vector<std::string> argv{PlinthBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string err_file = dir + "/cli-" + std::to_string(++g_file_counter) + ".err";
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> process,
                          ChildProcess::Spawn(argv, err_file));
  CliResult result;
  for (;;) {
    StatusOr<std::string> line = process->ReadLine(deadline);
    if (line.ok()) {
      result.out += *line + "\n";
      continue;
    }
    if (line.status().code() == StatusCode::kOutOfRange) break;
    return line.status().WithContext("plinth " + (args.empty() ? "" : args[0]));
  }
  PLINTH_ASSIGN_OR_RETURN(result.wait_status, process->Wait(deadline));
  result.exit_code = WIFEXITED(result.wait_status) ? WEXITSTATUS(result.wait_status) : -1;
  result.err = process->Stderr();
  return result;
}

grpc::ChannelArguments FreshConnectionArgs() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

std::shared_ptr<grpc::Channel> RawTlsChannel(const std::string& target, const std::string& root_pem,
                                             const std::string& cert_pem,
                                             const std::string& key_pem) {
  std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> provider;
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (cert_pem.empty()) {
    provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(root_pem);
  } else {
    provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
        root_pem, std::vector<grpc::experimental::IdentityKeyCertPair>{{key_pem, cert_pem}});
    options.watch_identity_key_cert_pairs();
  }
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.set_check_call_host(false);
  options.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  return grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(options),
                                   FreshConnectionArgs());
}

std::pair<int, std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
  httplib::Result result = client.Get(path);
  if (!result) return {-1, ""};
  return {result->status, result->body};
}

}  // namespace plinth::server::e2e
