// Certificates for tests, made with OpenSSL at run time: a CA per trust domain and the
// X.509-SVIDs (or deliberately broken leaves) it issues, as PEM. Never for production use.
#ifndef PLINTH_SERVER_TESTING_TEST_PKI_H_
#define PLINTH_SERVER_TESTING_TEST_PKI_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::server::testing {

// A certificate (chain) and its private key, PEM.
struct TestCredential {
  std::string cert_pem;
  std::string key_pem;
};

// What a leaf certificate holds.
struct LeafOptions {
  std::vector<std::string> uris;  // URI SANs; an SVID has exactly one
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool is_ca = false;
  // Validity, in seconds relative to now.
  long valid_from = -3600;
  long valid_until = 24 * 3600;
};

// A self-signed EC P-256 CA, valid from an hour ago for a day. Failures abort the test
// (PLINTH_CHECK). Not thread-safe.
class TestCa {
 public:
  // `trust_domain` names the CA (and is its URI SAN "spiffe://<trust_domain>").
  explicit TestCa(std::string_view trust_domain);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return cert_pem_; }

  // A leaf signed by this CA.
  TestCredential Issue(const LeafOptions& options) const;
  // An X.509-SVID for `spiffe_id`, also valid for the host names localhost and 127.0.0.1.
  TestCredential IssueSvid(std::string_view spiffe_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string cert_pem_;
};

// Writes `content` to `path` atomically (a temporary file, then rename), as a rotating SVID
// helper would. Aborts the test on failure.
void WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace plinth::server::testing

#endif  // PLINTH_SERVER_TESTING_TEST_PKI_H_
