// Configuration of `plinth serve`: a TOML file whose every key an environment variable can
// override, checked as a whole before the server starts. An invalid configuration is an
// InvalidArgument whose message names the key (or variable) and the reason; `plinth serve`
// prints it and exits with code 2.
//
// ---------------------------------------------------------------------------------------
// The configuration file (TOML). Every key is optional; with no file at all plinth serves an
// embedded SQLite store under ./plinth-data on the admin socket only. Relative paths are
// relative to the working directory. Each key's environment variable (shown on its right)
// wins over the file. Unknown keys are an error, so a typo never goes unnoticed.
//
//   data_dir = "./plinth-data"       # PLINTH_DATA_DIR. Where the defaults below put files.
//   admin_socket = "<data_dir>/admin.sock"
//                                    # PLINTH_ADMIN_SOCKET. The local admin gRPC socket: mode
//                                    # 0600, owned by the server's user; whoever can open it
//                                    # is an admin. "" turns it off. At most 107 bytes.
//   listen = "0.0.0.0:8443"          # PLINTH_LISTEN. gRPC over mutual TLS ("host:port",
//                                    # "[::]:port"; port 0 picks a free port). Default: unset,
//                                    # no TLS listener. Needs trust_domain and the tls files.
//   trust_domain = "example.org"     # PLINTH_TRUST_DOMAIN. The trust domain whose bundle is
//                                    # tls.bundle_file; callers must hold SVIDs of it.
//   admin_ids = ["spiffe://example.org/admin"]
//                                    # PLINTH_ADMIN_IDS (comma-separated). SPIFFE IDs allowed
//                                    # to call the datastore over TLS; all in trust_domain.
//
//   [store]
//   url = "sqlite://<data_dir>/plinth.db"
//                                    # PLINTH_STORE_URL. Any store URL (sqlite://, postgres://,
//                                    # mysql://, etcd://, memory://, plugin://); may hold a
//                                    # password, which logs show as "***".
//   history_retention = 100000       # PLINTH_STORE_HISTORY_RETENTION. Revisions of history
//                                    # kept behind the newest: compaction removes older ones,
//                                    # and a watcher further behind must reload. 0 = keep all.
//   consistent_read_timeout = "5s"   # PLINTH_STORE_CONSISTENT_READ_TIMEOUT. How long a
//                                    # consistent read waits for the mirror to catch up with
//                                    # the backend before failing with UNAVAILABLE.
//
//   [tls]                            # Required when listen is set; PEM files, re-read when
//                                    # they change (replace them by rename, never in place).
//   cert_file = "/run/plinth/svid.pem"      # PLINTH_TLS_CERT_FILE. The server's X.509-SVID,
//                                           # leaf first, then any intermediates.
//   key_file = "/run/plinth/svid_key.pem"   # PLINTH_TLS_KEY_FILE. Its private key.
//   bundle_file = "/run/plinth/bundle.pem"  # PLINTH_TLS_BUNDLE_FILE. trust_domain's CA
//                                           # certificates (one or more).
//   refresh_interval = "5s"          # PLINTH_TLS_REFRESH_INTERVAL. How often the files are
//                                    # checked for changes; whole seconds, at least 1s.
//
//   [metrics]
//   listen = "127.0.0.1:9464"        # PLINTH_METRICS_LISTEN. HTTP for Prometheus (/metrics),
//                                    # liveness (/healthz) and readiness (/readyz). Default:
//                                    # unset, no HTTP listener (so that two servers on one host
//                                    # never fight over a port by default).
//
//   [log]
//   level = "info"                   # PLINTH_LOG_LEVEL: trace, debug, info, warn or error.
//   format = "json"                  # PLINTH_LOG_FORMAT: json (one object per line) or text.
//
// Durations are an integer and a unit: "250ms", "5s", "2m", "1h".
// ---------------------------------------------------------------------------------------
#ifndef PLINTH_SERVER_CONFIG_H_
#define PLINTH_SERVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/logging.h"

namespace plinth::server {

// The files of the server's X.509-SVID and of the trust bundle.
struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string bundle_file;
  std::chrono::seconds refresh_interval{5};
};

// A complete, validated configuration: LoadConfig fills every derived default, so the
// server reads values from here and never re-derives them.
struct ServerConfig {
  std::string data_dir = "./plinth-data";
  std::string store_url;  // "sqlite://<data_dir>/plinth.db" unless set; may hold a password
  int64_t history_retention = 100000;  // revisions; 0 = keep all
  std::chrono::milliseconds consistent_read_timeout{5000};
  std::string admin_socket;            // "<data_dir>/admin.sock" unless set; "" = no admin socket
  std::string listen;                  // "" = no TLS listener
  std::string trust_domain;            // required when listen is set
  std::vector<std::string> admin_ids;  // valid SPIFFE IDs in trust_domain, without duplicates
  TlsConfig tls;                       // all three files set when listen is set
  std::string metrics_listen;          // "" = no metrics HTTP listener
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kJson;
  std::string source_file;  // the file read, or "" when there was none
};

// Environment variables by name (only the PLINTH_* ones matter).
using Environment = std::map<std::string, std::string, std::less<>>;

// The PLINTH_* variables of this process's environment.
Environment ProcessEnvironment();

// Reads the configuration from `path` (none: defaults only), then applies the overrides in
// `env`, then checks the result as a whole. Variables in `env` that are not configuration
// keys are ignored (other PLINTH_* variables exist, e.g. for tests).
// OK: a complete configuration. InvalidArgument, naming the key and the reason, when the file
// cannot be read ("config <file>: cannot read: ..."), is not TOML
// ("config <file>:<line>:<col>: ..."), has unknown keys (all named) or a value of the wrong
// type or out of range ("config <file>:<line>:<col>: admin_ids[1]: \"foo\" is not a SPIFFE ID:
// ..."), when a variable is invalid ("PLINTH_LOG_LEVEL (log.level): ..."), or when keys
// contradict each other ("config: tls.cert_file: required when listen is set").
// Reads the file only; never touches the paths the configuration names.
StatusOr<ServerConfig> LoadConfig(const std::optional<std::string>& path, const Environment& env);

// One line for the startup log: every value, the store URL with its password redacted.
std::string DescribeConfig(const ServerConfig& config);

// A listen address split into its parts. `host` has no brackets ("::" for "[::]:443").
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Parses "host:port", "[ipv6]:port"; the host is an IPv4 address, a bracketed IPv6 address
// or a DNS name; the port 0-65535. InvalidArgument saying why otherwise.
StatusOr<HostPort> ParseListenAddress(std::string_view text);

// Parses "<integer><unit>" with unit ms, s, m or h, e.g. "250ms"; at most 24h.
// InvalidArgument saying why otherwise.
StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);
// The inverse: "250ms", "5s", "2m", "1h" (the largest unit that divides it).
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace plinth::server

#endif  // PLINTH_SERVER_CONFIG_H_
