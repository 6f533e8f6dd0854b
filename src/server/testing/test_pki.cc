#include "server/testing/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#include <fstream>

#include "common/check.h"

namespace plinth::server::testing {
namespace {

std::string Join(const std::vector<std::string>& items, std::string_view prefix) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ",";
    out += std::string(prefix) + item;
  }
  return out;
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  PLINTH_CHECK(key != nullptr) << "EVP_EC_gen failed";
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  PLINTH_CHECK(ext != nullptr) << "bad extension " << value;
  PLINTH_CHECK(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, with a random serial; not yet signed and
// without validity dates.
X509* NewCertificate(EVP_PKEY* key, std::string_view common_name) {
  X509* cert = X509_new();
  PLINTH_CHECK(cert != nullptr);
  X509_set_version(cert, 2);
  unsigned char serial[8];
  PLINTH_CHECK(RAND_bytes(serial, sizeof(serial)) == 1);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  std::string cn(common_name);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PLINTH_CHECK(PEM_write_bio_X509(bio, cert) == 1);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PLINTH_CHECK(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

}  // namespace

struct TestCa::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

TestCa::TestCa(std::string_view trust_domain) : impl_(std::make_unique<Impl>()) {
  impl_->key = NewKey();
  impl_->cert = NewCertificate(impl_->key, std::string(trust_domain) + " test CA");
  X509_gmtime_adj(X509_getm_notBefore(impl_->cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(impl_->cert), 24 * 3600);
  X509_set_issuer_name(impl_->cert, X509_get_subject_name(impl_->cert));
  AddExtension(impl_->cert, impl_->cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(impl_->cert, impl_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(impl_->cert, impl_->cert, NID_subject_key_identifier, "hash");
  AddExtension(impl_->cert, impl_->cert, NID_subject_alt_name,
               "URI:spiffe://" + std::string(trust_domain));
  PLINTH_CHECK(X509_sign(impl_->cert, impl_->key, EVP_sha256()) > 0);
  cert_pem_ = CertPem(impl_->cert);
}

TestCa::~TestCa() = default;

TestCredential TestCa::Issue(const LeafOptions& options) const {
  EVP_PKEY* key = NewKey();
  X509* cert = NewCertificate(key, options.uris.empty() ? "leaf" : options.uris.front());
  X509_gmtime_adj(X509_getm_notBefore(cert), options.valid_from);
  X509_gmtime_adj(X509_getm_notAfter(cert), options.valid_until);
  X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert));
  AddExtension(cert, impl_->cert, NID_basic_constraints,
               options.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(cert, impl_->cert, NID_key_usage,
               options.is_ca ? "critical,digitalSignature,keyCertSign"
                             : "critical,digitalSignature,keyEncipherment");
  AddExtension(cert, impl_->cert, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(cert, impl_->cert, NID_authority_key_identifier, "keyid:always");
  std::string sans = Join(options.uris, "URI:");
  for (const auto& [items, prefix] :
       {std::pair{&options.dns_names, "DNS:"}, std::pair{&options.ip_addresses, "IP:"}}) {
    std::string more = Join(*items, prefix);
    if (!more.empty()) sans += (sans.empty() ? "" : ",") + more;
  }
  if (!sans.empty()) AddExtension(cert, impl_->cert, NID_subject_alt_name, sans);
  PLINTH_CHECK(X509_sign(cert, impl_->key, EVP_sha256()) > 0);
  TestCredential credential{CertPem(cert), KeyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return credential;
}

TestCredential TestCa::IssueSvid(std::string_view spiffe_id) const {
  return Issue({.uris = {std::string(spiffe_id)},
                .dns_names = {"localhost"},
                .ip_addresses = {"127.0.0.1"}});
}

void WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    PLINTH_CHECK(out.good()) << "cannot write " << temp;
  }
  PLINTH_CHECK(rename(temp.c_str(), path.c_str()) == 0) << "cannot rename " << temp;
}

}  // namespace plinth::server::testing
