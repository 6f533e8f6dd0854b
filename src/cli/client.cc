#include "cli/client.h"

#include <google/protobuf/util/json_util.h>
#include <stdlib.h>
#include <time.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <utility>

#include "cli/output.h"
#include "server/admin_socket.h"
#include "server/api/status.h"
#include "server/tls.h"

namespace plinth::cli {
namespace {

constexpr std::string_view kSpiffeScheme = "spiffe://";

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::move(fallback);
}

// Parses exactly `digits` decimal digits at text[*pos], advancing *pos.
bool ReadDigits(std::string_view text, size_t* pos, size_t digits, int* out) {
  if (*pos + digits > text.size()) return false;
  int value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *pos += digits;
  *out = value;
  return true;
}

bool Expect(std::string_view text, size_t* pos, std::string_view chars) {
  if (*pos >= text.size() || chars.find(text[*pos]) == std::string_view::npos) return false;
  ++*pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

StatusOr<int64_t> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is neither unix seconds nor an RFC 3339 time such as "
                                "2024-01-02T03:04:05Z");
  };
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, "-") ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, "-") ||
      !ReadDigits(text, &pos, 2, &day) || !Expect(text, &pos, "Tt ") ||
      !ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ":") ||
      !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ":") ||
      !ReadDigits(text, &pos, 2, &second)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return bad();
  }
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return bad();
  }
  int64_t offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int off_h = 0, off_m = 0;
    if (!ReadDigits(text, &pos, 2, &off_h) || !Expect(text, &pos, ":") ||
        !ReadDigits(text, &pos, 2, &off_m) || off_h > 23 || off_m > 59) {
      return bad();
    }
    offset_seconds = sign * (off_h * 3600 + off_m * 60);
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
}

}  // namespace

void AddConnectionFlags(CLI::App& command, ConnectionFlags* flags) {
  // A group of their own, so that help lists them apart from the verb's flags.
  CLI::App& group = *command.add_option_group(
      "Connection", "How to reach plinth serve (default: its admin socket)");
  group
      .add_option("--socket", flags->socket,
                  "Admin socket of plinth serve; default $PLINTH_ADMIN_SOCKET, else "
                  "$PLINTH_DATA_DIR/admin.sock, else " +
                      std::string(kDefaultAdminSocket))
      ->option_text("PATH");
  group
      .add_option("--address", flags->address,
                  "host:port of plinth serve's TLS listener (instead of the admin socket); "
                  "needs --cert, --key and --bundle")
      ->envname("PLINTH_ADDRESS")
      ->option_text("HOST:PORT");
  group.add_option("--cert", flags->cert_file, "This client's X.509-SVID (PEM), for --address")
      ->envname("PLINTH_CERT_FILE")
      ->option_text("FILE");
  group.add_option("--key", flags->key_file, "Its private key (PEM), for --address")
      ->envname("PLINTH_KEY_FILE")
      ->option_text("FILE");
  group
      .add_option("--bundle", flags->bundle_file,
                  "CA certificates that verify the server's SVID (PEM), for --address")
      ->envname("PLINTH_BUNDLE_FILE")
      ->option_text("FILE");
  group
      .add_option("--server-id", flags->server_id,
                  "The server's SPIFFE ID (default: any ID in this SVID's trust domain)")
      ->envname("PLINTH_SERVER_ID")
      ->option_text("SPIFFE_ID");
  group
      .add_option("--timeout", flags->timeout, "Deadline of each call to the server, e.g. 10s, 2m")
      ->option_text("DURATION [30s]");
}

CLI::App* AddServerVerb(CLI::App& group, const std::string& name, const std::string& description,
                        ServerFlags* flags) {
  CLI::App* verb = group.add_subcommand(name, description);
  verb->footer("Reaches plinth serve on its admin socket, or over mutual TLS with --address.\n" +
               std::string(kExitCodesHelp));
  AddConnectionFlags(*verb, &flags->connection);
  AddOutputFlag(*verb, &flags->output);
  return verb;
}

StatusOr<std::unique_ptr<ServerClient>> ServerClient::Connect(const ConnectionFlags& flags) {
  auto timeout = ParseDuration(flags.timeout);
  if (!timeout.ok()) {
    return InvalidArgumentError("--timeout: " + std::string(timeout.status().message()));
  }
  if (timeout->count() == 0) return InvalidArgumentError("--timeout must be more than 0");
  if (!flags.socket.empty() || flags.address.empty()) {
    std::string path = flags.socket;
    if (path.empty()) {
      const std::string data_dir = EnvOr("PLINTH_DATA_DIR", "");
      path = EnvOr("PLINTH_ADMIN_SOCKET",
                   data_dir.empty() ? std::string(kDefaultAdminSocket) : data_dir + "/admin.sock");
    }
    std::string target = server::AdminSocketTarget(path);
    auto channel = server::AdminSocketChannel(path);
    return std::unique_ptr<ServerClient>(
        new ServerClient(std::move(target), /*over_tls=*/false, std::move(channel), *timeout));
  }
  std::string missing;
  if (flags.cert_file.empty()) missing += " --cert";
  if (flags.key_file.empty()) missing += " --key";
  if (flags.bundle_file.empty()) missing += " --bundle";
  if (!missing.empty()) {
    return InvalidArgumentError("--address " + flags.address + " needs an X.509-SVID: missing" +
                                missing);
  }
  server::SvidFiles files{flags.cert_file, flags.key_file, flags.bundle_file};
  std::optional<std::string> server_id;
  if (!flags.server_id.empty()) server_id = flags.server_id;
  PLINTH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          server::SvidChannelCredentials(files, server_id));
  auto channel = grpc::CreateChannel(flags.address, credentials);
  return std::unique_ptr<ServerClient>(
      new ServerClient(flags.address, /*over_tls=*/true, std::move(channel), *timeout));
}

ServerClient::ServerClient(std::string target, bool over_tls,
                           std::shared_ptr<grpc::Channel> channel,
                           std::chrono::milliseconds timeout)
    : target_(std::move(target)),
      over_tls_(over_tls),
      channel_(std::move(channel)),
      timeout_(timeout),
      datastore_(v1::DataStore::NewStub(channel_)),
      operator_(v1::Operator::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> ServerClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  return context;
}

Status ServerClient::Finish(const grpc::Status& status) {
  // The server's own UNAVAILABLE (its backend is down) arrives on a connected channel; an
  // UNAVAILABLE without a connection means nobody answered.
  unreachable_ = status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                 channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY;
  return server::api::FromGrpcStatus(status);
}

int ServerClient::Report(Console& console, std::string_view what, const Status& status) const {
  if (unreachable_) {
    console.err << "plinth: cannot reach plinth serve at " << target_ << ": " << status.message()
                << (over_tls_ ? "; is it running, and does it accept this SVID?"
                              : "; is it running?")
                << "\n";
    return kExitFailed;
  }
  return ReportFailure(console, what, status,
                       status.code() == StatusCode::kNotFound ? kExitNotFound : kExitFailed);
}

std::unique_ptr<ServerClient> ConnectOrReport(const ConnectionFlags& flags, Console& console) {
  auto client = ServerClient::Connect(flags);
  if (!client.ok()) {
    console.exit_code = ReportUsageError(console, client.status().message());
    return nullptr;
  }
  return std::move(client).value();
}

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) {
    return {{"error", "cannot print " + message.GetTypeName() +
                          " as JSON: " + std::string(status.message())}};
  }
  auto json = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return {{"error", "cannot print " + message.GetTypeName() + " as JSON"}};
  }
  return json;
}

void PrintProtoJson(std::ostream& out, const google::protobuf::Message& message) {
  PrintJson(out, ProtoToJson(message));
}

StatusOr<v1::Selector> ParseSelector(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgumentError("selector \"" + std::string(text) +
                                "\" is not of the form type:value (e.g. unix:uid:1000)");
  }
  v1::Selector selector;
  selector.set_type(std::string(text.substr(0, colon)));
  selector.set_value(std::string(text.substr(colon + 1)));
  return selector;
}

std::string FormatSelector(const v1::Selector& selector) {
  return selector.type() + ":" + selector.value();
}

const std::map<std::string, v1::MatchBehavior>& MatchBehaviorNames() {
  static const auto* const kNames =
      new std::map<std::string, v1::MatchBehavior>{{"exact", v1::MATCH_EXACT},
                                                   {"subset", v1::MATCH_SUBSET},
                                                   {"superset", v1::MATCH_SUPERSET},
                                                   {"any", v1::MATCH_ANY}};
  return *kNames;
}

StatusOr<int64_t> ParseUnixTime(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      return InvalidArgumentError("\"" + std::string(text) + "\" is out of range");
    }
    return value;
  }
  return ParseRfc3339(text);
}

std::string FormatUnixTime(int64_t unix_seconds) {
  const auto t = static_cast<time_t>(unix_seconds);
  struct tm utc = {};
  if (gmtime_r(&t, &utc) == nullptr) return std::to_string(unix_seconds);
  char buffer[64];
  const size_t n = strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return n > 0 ? std::string(buffer, n) : std::to_string(unix_seconds);
}

std::string TrustDomainId(std::string_view trust_domain) {
  if (trust_domain.substr(0, kSpiffeScheme.size()) == kSpiffeScheme) {
    return std::string(trust_domain);
  }
  return std::string(kSpiffeScheme) + std::string(trust_domain);
}

std::string TrustDomainName(std::string_view trust_domain) {
  if (trust_domain.substr(0, kSpiffeScheme.size()) == kSpiffeScheme) {
    trust_domain.remove_prefix(kSpiffeScheme.size());
  }
  return std::string(trust_domain);
}

void PrintLabeled(std::ostream& out, std::string_view label, std::string_view value, size_t width) {
  std::string line(label);
  if (line.size() < width) line.append(width - line.size(), ' ');
  out << line << ": " << value << "\n";
}

StatusOr<std::string> TrustDomainOf(std::string_view spiffe_id) {
  if (spiffe_id.substr(0, kSpiffeScheme.size()) != kSpiffeScheme) {
    return InvalidArgumentError("\"" + std::string(spiffe_id) +
                                "\" is not a SPIFFE ID (spiffe://<trust domain>/<path>)");
  }
  std::string_view rest = spiffe_id.substr(kSpiffeScheme.size());
  const std::string_view name = rest.substr(0, rest.find('/'));
  if (name.empty()) {
    return InvalidArgumentError("\"" + std::string(spiffe_id) + "\" has no trust domain");
  }
  return std::string(name);
}

StatusOr<std::string> ReadInput(const std::string& path) {
  if (path.empty() || path == "-") {
    std::ostringstream content;
    content << std::cin.rdbuf();
    if (std::cin.bad()) return InvalidArgumentError("cannot read standard input");
    return content.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot open " + path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return InvalidArgumentError("cannot read " + path);
  return content;
}

}  // namespace plinth::cli
