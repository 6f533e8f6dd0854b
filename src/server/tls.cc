#include "server/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace plinth::server {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// The first error on OpenSSL's queue as text (and the queue emptied), for messages.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return InvalidArgumentError("cannot read: " + std::string(std::strerror(err)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return InvalidArgumentError("cannot read");
  return content.str();
}

// Every certificate in `pem`, in order. InvalidArgument when there is none or one is broken.
StatusOr<std::vector<X509Ptr>> ParseCertificates(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return InternalError("BIO_new_mem_buf: " + OpenSslError());
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // Reading stops with "no start line" at the end of the input; anything else is an error.
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if (err != 0 && !clean_end) {
    return InvalidArgumentError("bad PEM certificate #" + std::to_string(certs.size() + 1) + ": " +
                                OpenSslError());
  }
  ERR_clear_error();
  if (certs.empty()) return InvalidArgumentError("no PEM certificate found");
  return certs;
}

// The leaf's SPIFFE ID under the X.509-SVID rules: not a CA, exactly one URI SAN, a SPIFFE ID.
StatusOr<SpiffeId> SpiffeIdOfLeaf(X509* leaf) {
  if (X509_check_ca(leaf) != 0) {
    return InvalidArgumentError("the leaf certificate is a CA certificate, not an X.509-SVID");
  }
  std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> uris;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  if (uris.size() != 1) {
    return InvalidArgumentError("an X.509-SVID has exactly one URI SAN; this certificate has " +
                                std::to_string(uris.size()));
  }
  StatusOr<SpiffeId> id = SpiffeId::Parse(uris[0]);
  if (!id.ok()) {
    return InvalidArgumentError("its URI SAN is not a SPIFFE ID: " +
                                std::string(id.status().message()));
  }
  return id;
}

Status FileError(std::string_view role, const std::string& path, std::string_view problem) {
  return InvalidArgumentError(std::string(role) + " " + path + ": " + std::string(problem));
}

// The SPIFFE ID from the URIs the handshake extracted from a verified leaf.
StatusOr<SpiffeId> SpiffeIdFromUris(const std::vector<grpc::string_ref>& uris,
                                    std::string_view whose) {
  if (uris.size() != 1) {
    return UnauthenticatedError(std::string(whose) + " certificate has " +
                                std::to_string(uris.size()) +
                                " URI SANs; an X.509-SVID has exactly one");
  }
  std::string_view uri(uris[0].data(), uris[0].size());
  StatusOr<SpiffeId> id = SpiffeId::Parse(uri);
  if (!id.ok()) {
    return UnauthenticatedError(std::string(whose) + " certificate's URI SAN is not a SPIFFE ID: " +
                                std::string(id.status().message()));
  }
  return id;
}

bool IsTls(const grpc::AuthContext& auth_context) {
  for (const grpc::string_ref& type :
       auth_context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
    std::string_view t(type.data(), type.size());
    if (t == GRPC_SSL_TRANSPORT_SECURITY_TYPE || t == GRPC_TLS_TRANSPORT_SECURITY_TYPE) return true;
  }
  return false;
}

// Applies the AccessPolicy to every call on a TLS port, before the call is dispatched.
class SpiffeAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  SpiffeAuthProcessor(AccessPolicy policy,
                      std::function<void(std::string_view, const Status&)> on_rejected)
      : policy_(std::move(policy)), on_rejected_(std::move(on_rejected)) {}

  // The decision is quick and never blocks, so gRPC may run it inline.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    std::string_view method;
    if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
      method = std::string_view(it->second.data(), it->second.size());
    }
    Status status = AuthorizeTlsCaller(*context, method, policy_);
    if (status.ok()) return grpc::Status::OK;
    if (on_rejected_) on_rejected_(method, status);
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }

 private:
  const AccessPolicy policy_;
  const std::function<void(std::string_view, const Status&)> on_rejected_;
};

// Client side: the server must present an SVID with the expected SPIFFE ID (the chain was
// already verified against the bundle by the handshake).
class SpiffeServerVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  SpiffeServerVerifier(std::string trust_domain, std::optional<std::string> server_id)
      : trust_domain_(std::move(trust_domain)), server_id_(std::move(server_id)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    Status status = Check(request->uri_names());
    *sync_status = status.ok() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                              std::string(status.message()));
    return true;  // synchronous
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  Status Check(const std::vector<grpc::string_ref>& uris) const {
    PLINTH_ASSIGN_OR_RETURN(SpiffeId id, SpiffeIdFromUris(uris, "the server's"));
    if (server_id_.has_value() && id.str() != *server_id_) {
      return UnauthenticatedError("the server is " + id.str() + ", expected " + *server_id_);
    }
    if (id.trust_domain() != trust_domain_) {
      return UnauthenticatedError("the server " + id.str() + " is not in trust domain " +
                                  trust_domain_);
    }
    return Status::Ok();
  }

  const std::string trust_domain_;
  const std::optional<std::string> server_id_;
};

// The checked contents of SVID files (see CheckSvidFiles).
struct LoadedSvid {
  SpiffeId id;
  std::string cert_pem;
  std::string key_pem;
  std::string bundle_pem;
};

StatusOr<LoadedSvid> LoadSvidFiles(const SvidFiles& files, std::string_view trust_domain) {
  constexpr std::string_view kCert = "certificate file", kKey = "key file", kBundle = "bundle file";
  StatusOr<std::string> cert_pem = ReadFile(files.cert_file);
  if (!cert_pem.ok()) return FileError(kCert, files.cert_file, cert_pem.status().message());
  StatusOr<std::vector<X509Ptr>> chain = ParseCertificates(*cert_pem);
  if (!chain.ok()) return FileError(kCert, files.cert_file, chain.status().message());
  X509* leaf = chain->front().get();
  StatusOr<SpiffeId> id = SpiffeIdOfLeaf(leaf);
  if (!id.ok()) return FileError(kCert, files.cert_file, id.status().message());
  if (!trust_domain.empty() && id->trust_domain() != trust_domain) {
    return FileError(
        kCert, files.cert_file,
        "its SPIFFE ID " + id->str() + " is not in trust domain " + std::string(trust_domain));
  }

  StatusOr<std::string> key_pem = ReadFile(files.key_file);
  if (!key_pem.ok()) return FileError(kKey, files.key_file, key_pem.status().message());
  std::unique_ptr<BIO, BioDeleter> key_bio(
      BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return FileError(kKey, files.key_file, "no PEM private key: " + OpenSslError());
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return FileError(kKey, files.key_file,
                     "the key does not belong to the certificate in " + files.cert_file);
  }

  StatusOr<std::string> bundle_pem = ReadFile(files.bundle_file);
  if (!bundle_pem.ok()) return FileError(kBundle, files.bundle_file, bundle_pem.status().message());
  StatusOr<std::vector<X509Ptr>> roots = ParseCertificates(*bundle_pem);
  if (!roots.ok()) return FileError(kBundle, files.bundle_file, roots.status().message());

  std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
  for (const X509Ptr& root : *roots) X509_STORE_add_cert(store.get(), root.get());
  std::unique_ptr<STACK_OF(X509), StackDeleter> intermediates(sk_X509_new_null());
  for (size_t i = 1; i < chain->size(); ++i) sk_X509_push(intermediates.get(), (*chain)[i].get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  if (store == nullptr || intermediates == nullptr || ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, intermediates.get()) != 1) {
    return InternalError("cannot set up certificate verification: " + OpenSslError());
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    std::string reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return FileError(kCert, files.cert_file,
                     "does not verify against the bundle " + files.bundle_file + ": " + reason);
  }
  return LoadedSvid{*std::move(id), *std::move(cert_pem), *std::move(key_pem),
                    *std::move(bundle_pem)};
}

}  // namespace

std::set<std::string, std::less<>> HealthMethods() {
  return {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"};
}

StatusOr<SpiffeId> SpiffeIdFromSvidPem(std::string_view pem) {
  PLINTH_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertificates(pem));
  return SpiffeIdOfLeaf(certs.front().get());
}

StatusOr<SpiffeId> CheckSvidFiles(const SvidFiles& files, std::string_view trust_domain) {
  PLINTH_ASSIGN_OR_RETURN(LoadedSvid svid, LoadSvidFiles(files, trust_domain));
  return svid.id;
}

StatusOr<SpiffeId> PeerSpiffeId(const grpc::AuthContext& auth_context) {
  if (!IsTls(auth_context)) {
    return UnauthenticatedError("the call did not come over TLS, so it carries no X.509-SVID");
  }
  std::vector<grpc::string_ref> uris = auth_context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME);
  if (uris.empty()) {
    // No URI properties: either the peer presented no certificate or it has no URI SAN.
    std::vector<grpc::string_ref> pem =
        auth_context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (pem.empty()) return UnauthenticatedError("the caller presented no client certificate");
  }
  return SpiffeIdFromUris(uris, "the caller's");
}

StatusOr<SpiffeId> PeerSpiffeId(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth_context = context.auth_context();
  if (auth_context == nullptr) return UnauthenticatedError("the call has no security context");
  return PeerSpiffeId(*auth_context);
}

bool IsAdminSocketCall(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth_context = context.auth_context();
  if (auth_context != nullptr && IsTls(*auth_context)) return false;
  return context.peer().starts_with("unix:");
}

Status AuthorizeTlsCaller(const grpc::AuthContext& auth_context, std::string_view method,
                          const AccessPolicy& policy) {
  PLINTH_ASSIGN_OR_RETURN(SpiffeId id, PeerSpiffeId(auth_context));
  if (id.trust_domain() != policy.trust_domain) {
    return UnauthenticatedError("the caller " + id.str() + " is not in trust domain " +
                                policy.trust_domain);
  }
  if (policy.admin_ids.contains(id.str())) return Status::Ok();
  if (!method.empty() && policy.open_methods.contains(method)) return Status::Ok();
  return PermissionDeniedError("the caller " + id.str() + " is not an admin");
}

Status Authorize(const grpc::ServerContextBase& context, const AccessPolicy& policy) {
  if (IsAdminSocketCall(context)) return Status::Ok();
  std::shared_ptr<const grpc::AuthContext> auth_context = context.auth_context();
  if (auth_context == nullptr) return UnauthenticatedError("the call has no security context");
  return AuthorizeTlsCaller(*auth_context, "", policy);
}

std::string DescribeCaller(const grpc::ServerContextBase& context) {
  if (IsAdminSocketCall(context)) return "admin-socket";
  StatusOr<SpiffeId> id = PeerSpiffeId(context);
  if (id.ok()) return id->str();
  return "unauthenticated " + context.peer();
}

StatusOr<std::shared_ptr<grpc::ServerCredentials>> SpiffeServerCredentials(
    const SpiffeServerOptions& options) {
  PLINTH_RETURN_IF_ERROR(CheckSvidFiles(options.files, options.policy.trust_domain));
  if (options.refresh_interval < std::chrono::seconds(1)) {
    return InvalidArgumentError("the TLS refresh interval must be at least 1s");
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.files.key_file, options.files.cert_file, options.files.bundle_file,
      static_cast<unsigned int>(options.refresh_interval.count()));
  grpc::experimental::TlsServerCredentialsOptions tls_options(provider);
  tls_options.watch_root_certs();
  tls_options.watch_identity_key_cert_pairs();
  // The handshake verifies the client's chain against the bundle; the SPIFFE ID is checked
  // per call by the processor, which can say what is wrong.
  tls_options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls_options.set_certificate_verifier(
      std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(tls_options);
  if (credentials == nullptr) return InternalError("gRPC refused the TLS server options");
  credentials->SetAuthMetadataProcessor(
      std::make_shared<SpiffeAuthProcessor>(options.policy, options.on_rejected));
  return credentials;
}

StatusOr<std::shared_ptr<grpc::ChannelCredentials>> SvidChannelCredentials(
    const SvidFiles& files, const std::optional<std::string>& server_id) {
  PLINTH_ASSIGN_OR_RETURN(LoadedSvid svid, LoadSvidFiles(files, ""));
  std::string trust_domain(svid.id.trust_domain());
  if (server_id.has_value()) {
    StatusOr<SpiffeId> expected = SpiffeId::Parse(*server_id);
    if (!expected.ok()) {
      return InvalidArgumentError("server ID \"" + *server_id + "\" is not a SPIFFE ID: " +
                                  std::string(expected.status().message()));
    }
    trust_domain = std::string(expected->trust_domain());
  }
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      svid.bundle_pem,
      std::vector<grpc::experimental::IdentityKeyCertPair>{{svid.key_pem, svid.cert_pem}});
  grpc::experimental::TlsChannelCredentialsOptions tls_options;
  tls_options.set_certificate_provider(provider);
  tls_options.watch_root_certs();
  tls_options.watch_identity_key_cert_pairs();
  tls_options.set_verify_server_certs(true);
  // SPIFFE authenticates the server by its SPIFFE ID, not by a host name.
  tls_options.set_check_call_host(false);
  tls_options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<SpiffeServerVerifier>(trust_domain,
                                                                                    server_id));
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::experimental::TlsCredentials(tls_options);
  if (credentials == nullptr) return InternalError("gRPC refused the TLS channel options");
  return credentials;
}

}  // namespace plinth::server
