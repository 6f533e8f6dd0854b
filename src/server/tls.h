// SPIFFE mutual TLS for plinth's gRPC server and its clients. Callers present X.509-SVIDs.
// The handshake asks for the client's certificate and makes the client prove it holds the key,
// but accepts any certificate; an AuthMetadataProcessor then, for every call and before its
// handler runs, verifies the chain against the trust bundle, takes the caller's SPIFFE ID from
// the leaf's URI SAN and authorizes the call: admin IDs may call everything, other callers of
// the trust domain only the policy's open methods. Deciding after the handshake is what lets a
// refusal be a gRPC status the client can read.
//
// What a client sees:
//  - no client certificate, one that does not verify against the bundle (e.g. another trust
//    domain's, or expired), one that is not an X.509-SVID (not exactly one URI SAN, not a
//    SPIFFE ID, a CA certificate), or a SPIFFE ID in another trust domain: UNAUTHENTICATED,
//    naming the problem.
//  - a valid SVID of the trust domain that is not an admin: PERMISSION_DENIED naming the ID.
//  - a client that does not trust the server's certificate ends the handshake itself; gRPC
//    reports that as UNAVAILABLE on the client.
// Verifications are remembered per certificate chain (until the bundle changes or a
// certificate of the chain expires), so a connection's later calls cost a hash lookup.
// Certificate, key and bundle files are re-read every refresh interval (gRPC's
// FileWatcherCertificateProvider for the server's own SVID, a stat of the bundle file for the
// trust anchors), so rotated SVIDs and bundles take effect without a restart. Replace the
// files atomically (write, then rename).
#ifndef PLINTH_SERVER_TLS_H_
#define PLINTH_SERVER_TLS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "server/spiffe_id.h"

namespace plinth::server {

// The PEM files of an X.509-SVID and of the trust bundle that verifies peers.
struct SvidFiles {
  std::string cert_file;    // the SVID: leaf first, then any intermediates
  std::string key_file;     // its private key
  std::string bundle_file;  // the trust domain's CA certificates (one or more)
};

// Who may call what over TLS. (Callers on the admin socket are always admins.)
struct AccessPolicy {
  // Callers' SPIFFE IDs must be in this trust domain.
  std::string trust_domain;
  // SPIFFE IDs that may call every method.
  std::set<std::string, std::less<>> admin_ids;
  // Full method names ("/grpc.health.v1.Health/Check") that every caller with a valid SVID of
  // trust_domain may call.
  std::set<std::string, std::less<>> open_methods;
};

// The methods of the standard gRPC health service (Check and Watch), for open_methods.
std::set<std::string, std::less<>> HealthMethods();

// The SPIFFE ID of the X.509-SVID whose leaf is the first certificate in `pem`.
// InvalidArgument when there is no certificate, it does not parse, it is a CA certificate, or
// it has not exactly one URI SAN or that URI is not a SPIFFE ID.
StatusOr<SpiffeId> SpiffeIdFromSvidPem(std::string_view pem);

// Checks SVID files before they are used, so that a bad file stops start-up with a message
// naming it: each file is readable PEM, the key matches the leaf, the chain verifies against
// the bundle now, and the leaf is an SVID of `trust_domain` ("" = any trust domain).
// OK: the SVID's SPIFFE ID. InvalidArgument naming the file and the problem otherwise.
StatusOr<SpiffeId> CheckSvidFiles(const SvidFiles& files, std::string_view trust_domain);

// The caller's SPIFFE ID, from the URI SAN of its client certificate. This does not verify
// the certificate: on a port built with SpiffeServerCredentials the processor has verified it
// before any handler runs, and these are for code running after that. UNAUTHENTICATED when
// the call did not come over TLS, no certificate was presented, the certificate does not
// have exactly one URI SAN, or it is not a SPIFFE ID.
StatusOr<SpiffeId> PeerSpiffeId(const grpc::ServerContextBase& context);
StatusOr<SpiffeId> PeerSpiffeId(const grpc::AuthContext& auth_context);

// True when the call came over the admin Unix socket (not over TLS).
bool IsAdminSocketCall(const grpc::ServerContextBase& context);

// The authorization decision for a TLS call of `method` ("" = not an open method), whose
// certificate was verified (see PeerSpiffeId): OK for admin IDs, and for open methods to any
// SVID of the trust domain; UNAUTHENTICATED without an SVID of the trust domain;
// PERMISSION_DENIED naming the ID for a caller that is not an admin.
Status AuthorizeTlsCaller(const grpc::AuthContext& auth_context, std::string_view method,
                          const AccessPolicy& policy);

// The same decision from inside a handler: OK for any admin-socket call, otherwise
// AuthorizeTlsCaller(auth context, "", policy). Servers built with SpiffeServerCredentials
// have already verified the caller and applied it (with the method) before the handler runs;
// this is a second check of the authorization only.
Status Authorize(const grpc::ServerContextBase& context, const AccessPolicy& policy);

// A short description of the caller for logs: its SPIFFE ID, "admin-socket", or
// "unauthenticated <peer>".
std::string DescribeCaller(const grpc::ServerContextBase& context);

// Options of SpiffeServerCredentials.
struct SpiffeServerOptions {
  SvidFiles files;
  std::chrono::seconds refresh_interval{5};  // how often the files are checked; at least 1s
  AccessPolicy policy;
  // Called (on a gRPC thread; must be thread-safe and quick) for every call the policy
  // rejects, with the full method name and the status returned to the caller. May be empty.
  std::function<void(std::string_view method, const Status& status)> on_rejected;
};

// Server credentials for a TLS listening port: the server presents the SVID in
// `options.files`; for every call, before any interceptor or handler runs, an
// AuthMetadataProcessor verifies the client's certificate against the bundle file and applies
// `options.policy` (see the top of this file); rejected calls fail with that status. The files
// are re-read every refresh_interval.
// InvalidArgument (from CheckSvidFiles) when the files are unusable now.
StatusOr<std::shared_ptr<grpc::ServerCredentials>> SpiffeServerCredentials(
    const SpiffeServerOptions& options);

// Channel credentials for a client (e.g. the CLI) presenting the SVID in `files`. The server
// must present an SVID that chains to the bundle and whose SPIFFE ID is `server_id` if given,
// else any ID in the client's own trust domain; host names are not checked. The files are read
// once, now. InvalidArgument (from CheckSvidFiles) when they are unusable.
StatusOr<std::shared_ptr<grpc::ChannelCredentials>> SvidChannelCredentials(
    const SvidFiles& files, const std::optional<std::string>& server_id = std::nullopt);

}  // namespace plinth::server

#endif  // PLINTH_SERVER_TLS_H_
