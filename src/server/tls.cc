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
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

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

// The URI SANs of `cert`, in order.
std::vector<std::string> UrisOf(X509* cert) {
  std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> uris;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  return uris;
}

// The SPIFFE ID of a certificate whose URI SANs are `uris`: an X.509-SVID has exactly one, and
// it is a SPIFFE ID. `whose` starts the messages ("the caller's"); errors have `code`.
template <typename Uri>
StatusOr<SpiffeId> SpiffeIdFromUris(const std::vector<Uri>& uris, std::string_view whose,
                                    StatusCode code) {
  if (uris.size() != 1) {
    return Status(code, std::string(whose) + " certificate has " + std::to_string(uris.size()) +
                            " URI SANs; an X.509-SVID has exactly one URI SAN");
  }
  StatusOr<SpiffeId> id = SpiffeId::Parse(std::string_view(uris[0].data(), uris[0].size()));
  if (!id.ok()) {
    return Status(code, std::string(whose) + " certificate's URI SAN is not a SPIFFE ID: " +
                            std::string(id.status().message()));
  }
  return id;
}

// The leaf's SPIFFE ID under the X.509-SVID rules: not a CA, exactly one URI SAN, a SPIFFE ID.
StatusOr<SpiffeId> SpiffeIdOfLeaf(X509* leaf, std::string_view whose = "this",
                                  StatusCode code = StatusCode::kInvalidArgument) {
  if (X509_check_ca(leaf) != 0) {
    return Status(code, std::string(whose) + " certificate is a CA certificate, not an X.509-SVID");
  }
  return SpiffeIdFromUris(UrisOf(leaf), whose, code);
}

// Verifies `leaf` (with `intermediates`, which may be null) against the trust anchors in
// `anchors` at the current time. Like SPIFFE's Go library, every certificate of the bundle is
// an anchor, self-signed or not (X509_V_FLAG_PARTIAL_CHAIN).
// OK: the time left until the first certificate of the verified chain expires.
// A description of the failure (from OpenSSL) otherwise.
StatusOr<std::chrono::seconds> VerifyChain(X509_STORE* anchors, X509* leaf,
                                           STACK_OF(X509) * intermediates) {
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), anchors, leaf, intermediates) != 1) {
    return InternalError("cannot set up certificate verification: " + OpenSslError());
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_verify_cert(ctx.get()) != 1) {
    std::string reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return InvalidArgumentError(reason);
  }
  int64_t left = INT64_MAX;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    int days = 0, seconds = 0;
    if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(sk_X509_value(chain, i)))) {
      left = std::min<int64_t>(left, int64_t{days} * 86400 + seconds);
    } else {
      left = 0;  // cannot tell: do not remember the result
    }
  }
  return std::chrono::seconds(std::max<int64_t>(left, 0));
}

// An X509_STORE holding every certificate of a PEM bundle.
StatusOr<std::shared_ptr<X509_STORE>> MakeAnchorStore(std::string_view bundle_pem) {
  PLINTH_ASSIGN_OR_RETURN(std::vector<X509Ptr> roots, ParseCertificates(bundle_pem));
  std::shared_ptr<X509_STORE> store(X509_STORE_new(), StoreDeleter());
  if (store == nullptr) return InternalError("X509_STORE_new: " + OpenSslError());
  for (const X509Ptr& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      // A certificate listed twice is harmless; anything else is not.
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return InvalidArgumentError("cannot use a bundle certificate: " + OpenSslError());
      }
      ERR_clear_error();
    }
  }
  return store;
}

Status FileError(std::string_view role, const std::string& path, std::string_view problem) {
  return InvalidArgumentError(std::string(role) + " " + path + ": " + std::string(problem));
}

bool IsTls(const grpc::AuthContext& auth_context) {
  for (const grpc::string_ref& type :
       auth_context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
    std::string_view t(type.data(), type.size());
    if (t == GRPC_SSL_TRANSPORT_SECURITY_TYPE || t == GRPC_TLS_TRANSPORT_SECURITY_TYPE) return true;
  }
  return false;
}

// The first value of `property` in `auth_context` ("" when there is none).
std::string_view FirstProperty(const grpc::AuthContext& auth_context, const char* property) {
  std::vector<grpc::string_ref> values = auth_context.FindPropertyValues(property);
  if (values.empty()) return {};
  return std::string_view(values[0].data(), values[0].size());
}

// The trust bundle file as a store of trust anchors, re-read when the file changes. The file is
// looked at (stat) at most once per refresh interval; a file that cannot be used leaves the
// previous bundle in force (replace it atomically: write, then rename). Thread-safe.
class WatchedBundle {
 public:
  struct Anchors {
    std::shared_ptr<X509_STORE> store;
    uint64_t generation = 0;  // changes whenever the store does
  };

  // Reads the file now. InvalidArgument naming it when it is not a usable bundle.
  static StatusOr<std::unique_ptr<WatchedBundle>> Open(std::string path,
                                                       std::chrono::seconds refresh) {
    auto bundle = std::unique_ptr<WatchedBundle>(new WatchedBundle(std::move(path), refresh));
    PLINTH_ASSIGN_OR_RETURN(bool changed, bundle->Reload());
    (void)changed;
    return bundle;
  }

  Anchors Current() PLINTH_EXCLUDES(mu_) {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      if (now < next_check_) return anchors_;
      next_check_ = now + refresh_;  // one caller looks; the others go on with what is there
    }
    (void)Reload();
    std::lock_guard lock(mu_);
    return anchors_;
  }

 private:
  struct Stamp {
    struct timespec mtime {};
    off_t size = -1;
    ino_t inode = 0;
    bool operator==(const Stamp& o) const {
      return mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && size == o.size &&
             inode == o.inode;
    }
  };

  WatchedBundle(std::string path, std::chrono::seconds refresh)
      : path_(std::move(path)), refresh_(refresh) {}

  // Reads the file again when its stamp changed. OK(true) when the anchors were replaced.
  StatusOr<bool> Reload() PLINTH_EXCLUDES(mu_) {
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0) {
      int err = errno;
      return InvalidArgumentError("bundle file " + path_ + ": " + std::strerror(err));
    }
    Stamp stamp{st.st_mtim, st.st_size, st.st_ino};
    {
      std::lock_guard lock(mu_);
      if (anchors_.store != nullptr && stamp == stamp_) return false;
    }
    PLINTH_ASSIGN_OR_RETURN(std::string pem, ReadFile(path_));
    StatusOr<std::shared_ptr<X509_STORE>> store = MakeAnchorStore(pem);
    if (!store.ok()) return FileError("bundle file", path_, store.status().message());
    std::lock_guard lock(mu_);
    anchors_ = Anchors{*std::move(store), anchors_.generation + 1};
    stamp_ = stamp;
    return true;
  }

  const std::string path_;
  const std::chrono::seconds refresh_;
  std::mutex mu_;
  Anchors anchors_ PLINTH_GUARDED_BY(mu_);
  Stamp stamp_ PLINTH_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ PLINTH_GUARDED_BY(mu_);
};

// Verifies callers' certificates against the watched bundle. The handshake only asks for the
// client certificate (and proves the client holds its key); this decides whether to trust it,
// so that a refusal can be a call status. Successful verifications are remembered per
// certificate chain, for the bundle generation and until the first certificate of the chain
// expires, so a connection's calls after the first cost a hash lookup. Thread-safe.
class CallerVerifier {
 public:
  explicit CallerVerifier(std::unique_ptr<WatchedBundle> bundle) : bundle_(std::move(bundle)) {}

  // The caller's SPIFFE ID. UNAUTHENTICATED, naming the problem, when the call did not come
  // over TLS, no certificate was presented, the chain does not verify against the bundle, or
  // the leaf is not an X.509-SVID.
  StatusOr<SpiffeId> Verify(const grpc::AuthContext& auth_context) PLINTH_EXCLUDES(mu_) {
    if (!IsTls(auth_context)) {
      return UnauthenticatedError("the call did not come over TLS, so it carries no X.509-SVID");
    }
    std::string_view leaf_pem = FirstProperty(auth_context, GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (leaf_pem.empty()) {
      return UnauthenticatedError("the caller presented no client certificate");
    }
    std::string_view chain_pem =
        FirstProperty(auth_context, GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
    std::string key;
    key.reserve(leaf_pem.size() + 1 + chain_pem.size());
    key.append(leaf_pem).append(1, '\0').append(chain_pem);

    WatchedBundle::Anchors anchors = bundle_->Current();
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      if (auto it = verified_.find(key); it != verified_.end()) {
        if (it->second.generation == anchors.generation && now < it->second.expires) {
          return it->second.id;
        }
        verified_.erase(it);
      }
    }
    StatusOr<std::vector<X509Ptr>> leaf = ParseCertificates(leaf_pem);
    if (!leaf.ok()) {
      return UnauthenticatedError("the caller's certificate: " +
                                  std::string(leaf.status().message()));
    }
    // On the server gRPC's chain usually leaves the leaf out; skip it if it is there.
    std::unique_ptr<STACK_OF(X509), StackDeleter> intermediates(sk_X509_new_null());
    std::vector<X509Ptr> chain;
    if (!chain_pem.empty()) {
      StatusOr<std::vector<X509Ptr>> parsed = ParseCertificates(chain_pem);
      if (!parsed.ok()) {
        return UnauthenticatedError("the caller's certificate chain: " +
                                    std::string(parsed.status().message()));
      }
      chain = *std::move(parsed);
    }
    for (const X509Ptr& cert : chain) {
      if (X509_cmp(cert.get(), leaf->front().get()) != 0) {
        sk_X509_push(intermediates.get(), cert.get());
      }
    }
    StatusOr<std::chrono::seconds> left =
        VerifyChain(anchors.store.get(), leaf->front().get(), intermediates.get());
    if (!left.ok()) {
      if (left.status().code() != StatusCode::kInvalidArgument) return left.status();
      return UnauthenticatedError(
          "the caller's certificate does not verify against the trust "
          "bundle: " +
          std::string(left.status().message()));
    }
    PLINTH_ASSIGN_OR_RETURN(SpiffeId id, SpiffeIdOfLeaf(leaf->front().get(), "the caller's",
                                                        StatusCode::kUnauthenticated));
    std::lock_guard lock(mu_);
    if (verified_.size() >= kMaxRemembered) verified_.clear();
    verified_.insert_or_assign(std::move(key), Verified{id, anchors.generation, now + *left});
    return id;
  }

 private:
  static constexpr size_t kMaxRemembered = 4096;

  struct Verified {
    SpiffeId id;
    uint64_t generation;
    std::chrono::steady_clock::time_point expires;
  };

  const std::unique_ptr<WatchedBundle> bundle_;
  std::mutex mu_;
  std::unordered_map<std::string, Verified> verified_ PLINTH_GUARDED_BY(mu_);
};

// The decision for a verified caller `id` (see AuthorizeTlsCaller).
Status AuthorizeId(const SpiffeId& id, std::string_view method, const AccessPolicy& policy) {
  if (id.trust_domain() != policy.trust_domain) {
    return UnauthenticatedError("the caller " + id.str() + " is not in trust domain " +
                                policy.trust_domain);
  }
  if (policy.admin_ids.contains(id.str())) return Status::Ok();
  if (!method.empty() && policy.open_methods.contains(method)) return Status::Ok();
  return PermissionDeniedError("the caller " + id.str() + " is not an admin");
}

// Verifies the caller and applies the AccessPolicy to every call on a TLS port, before the
// call is dispatched. gRPC passes the connection's auth context, shared by its calls, so this
// only reads it.
class SpiffeAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  SpiffeAuthProcessor(std::unique_ptr<WatchedBundle> bundle, AccessPolicy policy,
                      std::function<void(std::string_view, const Status&)> on_rejected)
      : verifier_(std::move(bundle)),
        policy_(std::move(policy)),
        on_rejected_(std::move(on_rejected)) {}

  // Verification is CPU work only (plus a stat of the bundle file every refresh interval),
  // so gRPC may run it inline.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    std::string_view method;
    if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
      method = std::string_view(it->second.data(), it->second.size());
    }
    StatusOr<SpiffeId> id = verifier_.Verify(*context);
    Status status = id.ok() ? AuthorizeId(*id, method, policy_) : id.status();
    if (status.ok()) return grpc::Status::OK;
    if (on_rejected_) on_rejected_(method, status);
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }

 private:
  CallerVerifier verifier_;
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
    PLINTH_ASSIGN_OR_RETURN(SpiffeId id,
                            SpiffeIdFromUris(uris, "the server's", StatusCode::kUnauthenticated));
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
  StatusOr<std::shared_ptr<X509_STORE>> anchors = MakeAnchorStore(*bundle_pem);
  if (!anchors.ok()) return FileError(kBundle, files.bundle_file, anchors.status().message());
  std::unique_ptr<STACK_OF(X509), StackDeleter> intermediates(sk_X509_new_null());
  if (intermediates == nullptr) return InternalError("sk_X509_new_null: " + OpenSslError());
  for (size_t i = 1; i < chain->size(); ++i) sk_X509_push(intermediates.get(), (*chain)[i].get());
  StatusOr<std::chrono::seconds> verified = VerifyChain(anchors->get(), leaf, intermediates.get());
  if (!verified.ok()) {
    if (verified.status().code() != StatusCode::kInvalidArgument) return verified.status();
    return FileError(kCert, files.cert_file,
                     "does not verify against the bundle " + files.bundle_file + ": " +
                         std::string(verified.status().message()));
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
  if (FirstProperty(auth_context, GRPC_X509_PEM_CERT_PROPERTY_NAME).empty()) {
    return UnauthenticatedError("the caller presented no client certificate");
  }
  return SpiffeIdFromUris(auth_context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME),
                          "the caller's", StatusCode::kUnauthenticated);
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
  return AuthorizeId(id, method, policy);
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
  PLINTH_ASSIGN_OR_RETURN(std::unique_ptr<WatchedBundle> bundle,
                          WatchedBundle::Open(options.files.bundle_file, options.refresh_interval));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.files.key_file, options.files.cert_file,
      static_cast<unsigned int>(options.refresh_interval.count()));
  grpc::experimental::TlsServerCredentialsOptions tls_options(provider);
  tls_options.watch_identity_key_cert_pairs();
  // The handshake asks for a client certificate (and the client proves it holds the key), but
  // accepts any; the processor verifies the chain against the bundle for every call, so that
  // an untrusted or missing certificate is answered UNAUTHENTICATED rather than by a broken
  // connection the client can only report as UNAVAILABLE.
  tls_options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  tls_options.set_certificate_verifier(
      std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(tls_options);
  if (credentials == nullptr) return InternalError("gRPC refused the TLS server options");
  credentials->SetAuthMetadataProcessor(std::make_shared<SpiffeAuthProcessor>(
      std::move(bundle), options.policy, options.on_rejected));
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
