#include "datastore/testing/datastore_fixture.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/check.h"
#include "store/conformance/test_servers.h"
#include "store/open.h"

namespace plinth::datastore::testing {
namespace {

// 2026-01-01T00:00:00Z.
constexpr std::chrono::seconds kFixtureWallTime{1767225600};

// Guards the fixture's entry-ID counter, which the replicas of one test share (so that they
// never generate the same ID) and which concurrent writers call from several threads.
std::mutex id_mu;

// make_url for a server backend: its shared test server's base URL + `separator` + a name
// unique to this store (as the store conformance suite does).
std::function<StatusOr<std::string>(const std::string&)> ServerUrl(std::string kind,
                                                                   std::string separator) {
  return [kind, separator](const std::string&) -> StatusOr<std::string> {
    PLINTH_ASSIGN_OR_RETURN(store::conformance::TestServer server,
                            store::conformance::SharedTestServer(kind));
    return server.url + separator + store::conformance::UniqueStoreName();
  };
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// Test helpers may abort on OpenSSL failures: they are broken test setup, not input.
#define PLINTH_OPENSSL_CHECK(expr) PLINTH_CHECK((expr)) << "OpenSSL call failed: " #expr

PkeyPtr NewP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  PLINTH_OPENSSL_CHECK(key != nullptr);
  return key;
}

void AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  PLINTH_OPENSSL_CHECK(ext != nullptr);
  PLINTH_OPENSSL_CHECK(X509_add_ext(cert, ext.get(), -1) == 1);
}

std::string SelfSignedCaDer(const std::string& trust_domain_id, int64_t not_after_unix) {
  PkeyPtr key = NewP256Key();
  X509Ptr cert(X509_new());
  PLINTH_OPENSSL_CHECK(cert != nullptr);
  PLINTH_OPENSSL_CHECK(X509_set_version(cert.get(), 2) == 1);  // v3

  static std::mutex serial_mu;
  static long serial = 1;
  {
    std::lock_guard<std::mutex> lock(serial_mu);
    PLINTH_OPENSSL_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++) == 1);
  }
  // Valid for a year up to not_after, so a test can set any expiry, past or future.
  PLINTH_OPENSSL_CHECK(ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                                     static_cast<time_t>(not_after_unix - 365 * 86400)) != nullptr);
  PLINTH_OPENSSL_CHECK(ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                                     static_cast<time_t>(not_after_unix)) != nullptr);

  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = "plinth test CA " + trust_domain_id;
  PLINTH_OPENSSL_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                  reinterpret_cast<const unsigned char*>(cn.data()),
                                                  static_cast<int>(cn.size()), -1, 0) == 1);
  PLINTH_OPENSSL_CHECK(X509_set_issuer_name(cert.get(), name) == 1);
  PLINTH_OPENSSL_CHECK(X509_set_pubkey(cert.get(), key.get()) == 1);

  AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), NID_subject_key_identifier, "hash");
  if (trust_domain_id.starts_with("spiffe://")) {
    AddExtension(cert.get(), NID_subject_alt_name, ("URI:" + trust_domain_id).c_str());
  }
  PLINTH_OPENSSL_CHECK(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

  const int size = i2d_X509(cert.get(), nullptr);
  PLINTH_OPENSSL_CHECK(size > 0);
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  PLINTH_OPENSSL_CHECK(i2d_X509(cert.get(), &out) == size);
  return der;
}

std::string PublicKeyDer(EVP_PKEY* key) {
  const int size = i2d_PUBKEY(key, nullptr);
  PLINTH_OPENSSL_CHECK(size > 0);
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  PLINTH_OPENSSL_CHECK(i2d_PUBKEY(key, &out) == size);
  return der;
}

}  // namespace

const std::vector<DatastoreBackend>& DatastoreBackends() {
  static const auto* const backends = new std::vector<DatastoreBackend>{
      {"memory", [](const std::string& dir) -> StatusOr<std::string> { return "memory://" + dir; }},
      {"sqlite",
       [](const std::string& dir) -> StatusOr<std::string> {
         return "sqlite://" + dir + "/store.db";
       }},
      {"postgres", ServerUrl("postgres", "?schema=")},
      {"mysql", ServerUrl("mariadb", "?table_prefix=")},
      {"etcd", ServerUrl("etcd", "/plinth-test/")},
  };
  return *backends;
}

std::string BackendName(const ::testing::TestParamInfo<DatastoreBackend>& info) {
  return info.param.name;
}

void DatastoreTest::SetUp() {
  clock_.Advance(kFixtureWallTime - std::chrono::duration_cast<std::chrono::seconds>(
                                        clock_.WallNow().time_since_epoch()));
  std::string pattern = (std::filesystem::temp_directory_path() / "plinth-datastore-XXXXXX");
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp(" << pattern << ") failed";
  temp_dir_ = pattern;
  // A server that cannot start fails the test here: datastore tests never skip a backend.
  StatusOr<std::string> url = GetParam().make_url(temp_dir_);
  ASSERT_TRUE(url.ok()) << "making a " << GetParam().name << " store URL: " << url.status();
  url_ = *url;
  auto opened = store::OpenStore(url_);
  ASSERT_TRUE(opened.ok()) << "opening " << url_ << ": " << opened.status();
  store_ = std::move(opened).value();
  auto ds = DataStore::Open(store_.get(), Options());
  ASSERT_TRUE(ds.ok()) << "opening the datastore on " << url_ << ": " << ds.status();
  ds_ = std::move(ds).value();
}

void DatastoreTest::TearDown() {
  ds_.reset();
  store_.reset();
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

StatusOr<DatastoreTest::Replica> DatastoreTest::OpenReplica() {
  Replica replica;
  PLINTH_ASSIGN_OR_RETURN(replica.store, store::OpenStore(url_));
  PLINTH_ASSIGN_OR_RETURN(replica.ds, DataStore::Open(replica.store.get(), Options()));
  return replica;
}

DataStoreOptions DatastoreTest::Options() {
  DataStoreOptions options;
  options.clock = &clock_;
  options.new_entry_id = [this] {
    int n;
    {
      std::lock_guard<std::mutex> lock(id_mu);
      n = ++next_id_;
    }
    char id[32];
    std::snprintf(id, sizeof(id), "entry-%06d", n);
    return std::string(id);
  };
  return options;
}

v1::Selector Sel(const std::string& type, const std::string& value) {
  v1::Selector s;
  s.set_type(type);
  s.set_value(value);
  return s;
}

v1::RegistrationEntry MakeEntry(const std::string& spiffe_id, const std::string& parent_id,
                                const std::vector<std::string>& selectors) {
  v1::RegistrationEntry e;
  e.set_spiffe_id(spiffe_id);
  e.set_parent_id(parent_id);
  for (const std::string& s : selectors) {
    const size_t colon = s.find(':');
    *e.add_selectors() =
        colon == std::string::npos ? Sel(s, "") : Sel(s.substr(0, colon), s.substr(colon + 1));
  }
  return e;
}

v1::AttestedNode MakeNode(const std::string& spiffe_id, int64_t cert_not_after,
                          const std::string& serial) {
  v1::AttestedNode n;
  n.set_spiffe_id(spiffe_id);
  n.set_attestation_data_type("test");
  n.set_cert_serial_number(serial);
  n.set_cert_not_after(cert_not_after);
  return n;
}

v1::Bundle MakeBundle(const std::string& trust_domain_id, int64_t not_after_unix,
                      const std::string& jwt_kid) {
  v1::Bundle b;
  b.set_trust_domain_id(trust_domain_id);
  b.add_root_cas()->set_der_bytes(SelfSignedCaDer(trust_domain_id, not_after_unix));
  if (!jwt_kid.empty()) {
    PkeyPtr key = NewP256Key();
    v1::PublicKey* k = b.add_jwt_signing_keys();
    k->set_pkix_bytes(PublicKeyDer(key.get()));
    k->set_kid(jwt_kid);
    k->set_not_after(not_after_unix);
  }
  return b;
}

}  // namespace plinth::datastore::testing
