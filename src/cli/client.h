// What every command that talks to `plinth serve` shares: the connection flags (--socket, or
// --address with an X.509-SVID), a client holding the channel and the DataStore and Operator
// stubs, the mapping of RPC failures to messages and exit codes, and helpers to print protos
// as JSON, parse selectors and times. Command groups: entry, agent, bundle, token, federation
// and the server verbs of `store`.
#ifndef PLINTH_CLI_CLIENT_H_
#define PLINTH_CLI_CLIENT_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/command.h"
#include "common/status.h"
#include "plinth/v1/datastore_service.grpc.pb.h"

namespace plinth::cli {

namespace v1 = ::plinth::v1;

// The admin socket used when neither --socket, --address, $PLINTH_ADMIN_SOCKET nor
// $PLINTH_DATA_DIR says otherwise: the default of `plinth serve` (server/config.h).
inline constexpr std::string_view kDefaultAdminSocket = "./plinth-data/admin.sock";

// How to reach the server. Filled by CLI11 (AddConnectionFlags); read by ServerClient.
struct ConnectionFlags {
  std::string socket;           // --socket; "" = not given
  std::string address;          // --address or $PLINTH_ADDRESS; "" = use the admin socket
  std::string cert_file;        // --cert or $PLINTH_CERT_FILE
  std::string key_file;         // --key or $PLINTH_KEY_FILE
  std::string bundle_file;      // --bundle or $PLINTH_BUNDLE_FILE
  std::string server_id;        // --server-id or $PLINTH_SERVER_ID; "" = any ID of the trust domain
  std::string timeout = "30s";  // --timeout: the deadline of each RPC
};

// Flags of every verb that talks to the server: the connection and --output.
struct ServerFlags {
  ConnectionFlags connection;
  OutputFormat output = OutputFormat::kText;
};

// Adds --socket, --address, --cert, --key, --bundle, --server-id and --timeout to `command`,
// stored in `*flags`, which must outlive `command`.
void AddConnectionFlags(CLI::App& command, ConnectionFlags* flags);

// Adds a verb `name` to `group` with the connection flags, --output and the exit-code footer.
// `flags` must outlive the returned app (which `group` owns).
CLI::App* AddServerVerb(CLI::App& group, const std::string& name, const std::string& description,
                        ServerFlags* flags);

// A connection to `plinth serve` for one command. Not thread-safe; one per invocation.
//
// Each call carries the --timeout deadline and fails fast (no waiting for the server to come
// up). A call that fails with UNAVAILABLE while the channel is not connected is remembered as
// "the server could not be reached"; Report() then says so in plain words.
class ServerClient {
 public:
  // Resolves `flags`: an explicit --socket wins; else --address (or $PLINTH_ADDRESS) means
  // TLS with the SVID files, all three required; else the admin socket at
  // $PLINTH_ADMIN_SOCKET, else $PLINTH_DATA_DIR/admin.sock, else kDefaultAdminSocket.
  // Does not connect yet. InvalidArgument (a usage error) for contradictory or missing flags,
  // a bad --timeout, or SVID files that cannot be used (naming the file).
  static StatusOr<std::unique_ptr<ServerClient>> Connect(const ConnectionFlags& flags);

  // Where the server is: "unix:<path>" or "<host>:<port>".
  const std::string& target() const { return target_; }

  v1::DataStore::Stub& datastore() { return *datastore_; }
  v1::Operator::Stub& op() { return *operator_; }

  // Calls a unary RPC of either service; the result through FromGrpcStatus.
  template <typename Request, typename Response>
  Status Call(grpc::Status (v1::DataStore::Stub::*method)(grpc::ClientContext*, const Request&,
                                                          Response*),
              const Request& request, Response* response) {
    auto context = NewContext();
    return Finish((datastore_.get()->*method)(context.get(), request, response));
  }
  template <typename Request, typename Response>
  Status Call(grpc::Status (v1::Operator::Stub::*method)(grpc::ClientContext*, const Request&,
                                                         Response*),
              const Request& request, Response* response) {
    auto context = NewContext();
    return Finish((operator_.get()->*method)(context.get(), request, response));
  }

  // Calls a server-streaming DataStore RPC and hands every message to `on_message`, in order.
  // The deadline covers the whole stream.
  template <typename Request, typename Response>
  Status ReadAll(std::unique_ptr<grpc::ClientReader<Response>> (v1::DataStore::Stub::*method)(
                     grpc::ClientContext*, const Request&),
                 const Request& request, const std::function<void(Response&)>& on_message) {
    auto context = NewContext();
    auto reader = (datastore_.get()->*method)(context.get(), request);
    Response message;
    while (reader->Read(&message)) {
      on_message(message);
      message.Clear();
    }
    return Finish(reader->Finish());
  }

  // Reports a failed call on console.err and returns the exit code: when the server could
  // not be reached, "plinth: cannot reach plinth serve at <target>: <message>; is it
  // running?" and kExitFailed; otherwise "plinth: <what>: <status>" and kExitNotFound for
  // NOT_FOUND, kExitFailed for anything else (including INVALID_ARGUMENT from the server).
  int Report(Console& console, std::string_view what, const Status& status) const;

 private:
  ServerClient(std::string target, bool over_tls, std::shared_ptr<grpc::Channel> channel,
               std::chrono::milliseconds timeout);

  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // Converts, and records whether an UNAVAILABLE came from a channel that never connected.
  Status Finish(const grpc::Status& status);

  const std::string target_;
  const bool over_tls_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<v1::DataStore::Stub> datastore_;
  std::unique_ptr<v1::Operator::Stub> operator_;
  bool unreachable_ = false;
};

// ServerClient::Connect, reporting a failure (exit code kExitUsage) on console.err and in
// console.exit_code; nullptr then.
std::unique_ptr<ServerClient> ConnectOrReport(const ConnectionFlags& flags, Console& console);

// `message` as JSON with the proto field names (snake_case), every scalar and repeated field
// printed even when it has its default value, int64 as strings and bytes as base64 (the proto3
// JSON mapping). Never throws; a message that cannot be printed becomes {"error": "..."}.
nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message);

// PrintJson(out, ProtoToJson(message)).
void PrintProtoJson(std::ostream& out, const google::protobuf::Message& message);

// Parses "type:value" (split at the first colon; neither part empty). InvalidArgument else.
StatusOr<v1::Selector> ParseSelector(std::string_view text);

// "type:value".
std::string FormatSelector(const v1::Selector& selector);

// The names accepted by -matchSelectorsOn / -matchFederatesWithOn (exact, subset, superset,
// any), for CLI::CheckedTransformer.
const std::map<std::string, v1::MatchBehavior>& MatchBehaviorNames();

// Parses unix seconds ("1700000000") or an RFC 3339 time ("2024-01-02T03:04:05Z",
// "2024-01-02T03:04:05.5+01:00"; fractions are dropped). InvalidArgument else.
StatusOr<int64_t> ParseUnixTime(std::string_view text);

// Unix seconds as RFC 3339 in UTC, e.g. "2024-01-02T03:04:05Z".
std::string FormatUnixTime(int64_t unix_seconds);

// "spiffe://example.org" for "example.org" or "spiffe://example.org" (a trust domain ID, the
// key of bundles and of federates_with).
std::string TrustDomainId(std::string_view trust_domain);

// "example.org" for "spiffe://example.org" or "example.org" (a trust domain name, the key of
// federation relationships).
std::string TrustDomainName(std::string_view trust_domain);

// "label            : value\n": the label padded to `width` columns, as spire-server prints
// objects.
void PrintLabeled(std::ostream& out, std::string_view label, std::string_view value,
                  size_t width = 17);

// The trust domain name of a SPIFFE ID ("example.org" for "spiffe://example.org/a").
// InvalidArgument when `spiffe_id` does not start with "spiffe://<name>".
StatusOr<std::string> TrustDomainOf(std::string_view spiffe_id);

// Makes `verb` run `run(*flags, console)` and store its exit code; the callback keeps
// `flags` alive.
template <typename Flags, typename Run>
void BindVerb(CLI::App* verb, std::shared_ptr<Flags> flags, Console& console, Run run) {
  verb->callback([flags, &console, run] { console.exit_code = run(*flags, console); });
}

// Reads the whole file at `path`, or standard input when `path` is "" or "-".
// InvalidArgument naming the file when it cannot be read.
StatusOr<std::string> ReadInput(const std::string& path);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_CLIENT_H_
