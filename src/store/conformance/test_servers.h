// Throwaway database servers for tests: started by the repository's own scripts
// (scripts/servers/<kind>.sh) on loopback ports in temporary directories, once per test
// process, and stopped when the process exits. A server that cannot be started makes the
// tests that need it fail with the script's message; nothing is ever skipped.
//
// Script protocol, shared by every scripts/servers/<kind>.sh:
//   <kind>.sh start <dir>     start a server keeping all its files under <dir>, on free
//                             loopback port(s); wait (bounded) until it serves; print the base
//                             store URL as the last line of stdout; exit non-zero with a
//                             message on stderr on any failure (e.g. the server binary is
//                             missing). The server stops by itself if the starting process
//                             (the script's parent) dies.
//   <kind>.sh stop <dir>      stop it (bounded); succeeds if it is not running.
//   <kind>.sh restart <dir>   stop and start again on the same port(s), keeping the data.
//   Backends may add verbs (e.g. etcd: kill-member <dir> <n>, start-member <dir> <n>).
// Setting PLINTH_TEST_<KIND>_URL (e.g. PLINTH_TEST_POSTGRES_URL) uses that server instead.
#ifndef PLINTH_STORE_CONFORMANCE_TEST_SERVERS_H_
#define PLINTH_STORE_CONFORMANCE_TEST_SERVERS_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace plinth::store::conformance {

struct TestServer {
  std::string kind;  // "postgres", "mariadb", "etcd"
  std::string dir;   // its files; empty for a server given by environment variable
  std::string url;   // base store URL printed by the script
};

// Starts the server of `kind` on first use and returns it; later calls return the same one.
// Thread-safe. The error names the script and carries its stderr.
StatusOr<TestServer> SharedTestServer(std::string_view kind);

// Runs scripts/servers/<kind>.sh <verb> <server.dir> <args...> and returns its stdout.
// FailedPrecondition for a server given by environment variable (the test cannot control it).
StatusOr<std::string> ControlTestServer(const TestServer& server, std::string_view verb,
                                        const std::vector<std::string>& args = {});

// A name unique within this machine for the lifetime of the test run ("t<pid>_<n>"), made of
// [a-z0-9_]: for a per-test database schema, table prefix or key prefix.
std::string UniqueStoreName();

}  // namespace plinth::store::conformance

#endif  // PLINTH_STORE_CONFORMANCE_TEST_SERVERS_H_
