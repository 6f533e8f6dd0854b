#include "cli/token_command.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/output.h"

namespace plinth::cli {
namespace {

// Join tokens live this long unless -ttl says otherwise (spire-server's default).
constexpr int64_t kDefaultTokenTtlSeconds = 600;

struct TokenGenerateFlags {
  ServerFlags server;
  std::string spiffe_id;
  int64_t ttl = kDefaultTokenTtlSeconds;
};

int RunGenerate(const TokenGenerateFlags& flags, Console& console) {
  if (flags.ttl <= 0) return ReportUsageError(console, "-ttl must be more than 0 seconds");
  std::string trust_domain;
  if (!flags.spiffe_id.empty()) {
    auto td = TrustDomainOf(flags.spiffe_id);
    if (!td.ok())
      return ReportUsageError(console, "-spiffeID: " + std::string(td.status().message()));
    trust_domain = *td;
  }
  auto token = NewUuid();
  if (!token.ok()) return ReportFailure(console, "generate token", token.status());
  auto client = ConnectOrReport(flags.server.connection, console);
  if (!client) return console.exit_code;

  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  v1::JoinToken join_token;
  join_token.set_token(*token);
  join_token.set_expiry(now + flags.ttl);
  google::protobuf::Empty empty;
  Status s = client->Call(&v1::DataStore::Stub::CreateJoinToken, join_token, &empty);
  if (!s.ok()) return client->Report(console, "create join token", s);

  v1::RegistrationEntry created;
  if (!flags.spiffe_id.empty()) {
    const std::string agent_id = "spiffe://" + trust_domain + "/spire/agent/join_token/" + *token;
    v1::RegistrationEntry entry;
    entry.set_spiffe_id(flags.spiffe_id);
    entry.set_parent_id(agent_id);
    v1::Selector* selector = entry.add_selectors();
    selector->set_type("spiffe_id");
    selector->set_value(agent_id);
    s = client->Call(&v1::DataStore::Stub::CreateRegistrationEntry, entry, &created);
    if (!s.ok()) {
      return client->Report(
          console,
          "token " + *token + " was created, but its entry for " + flags.spiffe_id + " was not", s);
    }
  }

  if (flags.server.output == OutputFormat::kJson) {
    nlohmann::ordered_json j = {{"token", *token}, {"expiry", join_token.expiry()}};
    if (!flags.spiffe_id.empty()) j["entry"] = ProtoToJson(created);
    PrintJson(console.out, j);
  } else {
    console.out << "Token: " << *token << "\n";
  }
  return kExitOk;
}

}  // namespace

StatusOr<std::string> NewUuid() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return InternalError("no random bytes from OpenSSL");
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xF]);
  }
  return out;
}

void RegisterTokenCommands(CLI::App& root, Console& console) {
  CLI::App* group = root.add_subcommand("token", "Generate join tokens for agents on plinth serve");
  RequireCommand(*group, console);
  group->footer(std::string(kExitCodesHelp));
  auto flags = std::make_shared<TokenGenerateFlags>();
  CLI::App* verb = AddServerVerb(
      *group, "generate",
      "Generate a join token; prints \"Token: <token>\". With -spiffeID, also register that "
      "SPIFFE ID for the agent that attests with the token",
      &flags->server);
  verb->add_option("--spiffeID", flags->spiffe_id,
                   "Register this SPIFFE ID for the agent (parent: its join-token agent ID)")
      ->option_text("ID");
  verb->add_option("--ttl", flags->ttl, "Seconds until the token expires")
      ->option_text("SECONDS [600]");
  BindVerb(verb, flags, console, RunGenerate);
}

}  // namespace plinth::cli
