#include "cli/internal/bundle_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "common/status_matchers.h"
#include "server/testing/test_pki.h"

namespace plinth::cli::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// PKIX DER of a fresh public key: "EC" (P-256 unless `curve`), "RSA" or "ED25519".
std::string NewPublicKey(const std::string& type, const char* curve = "P-256") {
  EVP_PKEY* key = nullptr;
  if (type == "EC") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
  } else if (type == "RSA") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type.c_str());
  }
  EXPECT_NE(key, nullptr) << type;
  if (key == nullptr) return "";
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  EVP_PKEY_free(key);
  return out;
}

v1::PublicKey Key(const std::string& kid, std::string pkix) {
  v1::PublicKey k;
  k.set_kid(kid);
  k.set_pkix_bytes(std::move(pkix));
  return k;
}

TEST(BundleFormat, PemRoundTripKeepsEveryCertificateInOrder) {
  server::testing::TestCa a("a.example.org");
  server::testing::TestCa b("b.example.org");
  const std::string pem = a.cert_pem() + b.cert_pem();
  ASSERT_OK_AND_ASSIGN(v1::Bundle bundle,
                       ParseBundle("junk before\n" + pem, BundleFormat::kPem, "spiffe://x.org"));
  EXPECT_EQ(bundle.trust_domain_id(), "spiffe://x.org");
  ASSERT_THAT(bundle.root_cas(), SizeIs(2));
  EXPECT_EQ(FormatPem(bundle), pem);
}

TEST(BundleFormat, PemSplitsAStoredDerChainIntoBlocks) {
  server::testing::TestCa a("a.example.org");
  server::testing::TestCa b("b.example.org");
  ASSERT_OK_AND_ASSIGN(v1::Bundle two,
                       ParseBundle(a.cert_pem() + b.cert_pem(), BundleFormat::kPem, "spiffe://x"));
  v1::Bundle chain;
  chain.add_root_cas()->set_der_bytes(two.root_cas(0).der_bytes() + two.root_cas(1).der_bytes());
  EXPECT_EQ(FormatPem(chain), a.cert_pem() + b.cert_pem());
}

TEST(BundleFormat, PemRejectsOtherBlocksAndEmptyInput) {
  server::testing::TestCa a("a.example.org");
  const std::string key_block = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  EXPECT_THAT(ParseBundle(a.cert_pem() + key_block, BundleFormat::kPem, "spiffe://x"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"PRIVATE KEY\"")));
  EXPECT_THAT(ParseBundle("", BundleFormat::kPem, "spiffe://x"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no PEM CERTIFICATE block")));
  EXPECT_THAT(ParseBundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                          BundleFormat::kPem, "spiffe://x"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not one X.509 certificate")));
}

TEST(BundleFormat, SpiffeRoundTripKeepsRootsKeysHintAndSequence) {
  server::testing::TestCa a("a.example.org");
  ASSERT_OK_AND_ASSIGN(v1::Bundle bundle,
                       ParseBundle(a.cert_pem(), BundleFormat::kPem, "spiffe://x.org"));
  *bundle.add_jwt_signing_keys() = Key("ec256", NewPublicKey("EC"));
  *bundle.add_jwt_signing_keys() = Key("ec384", NewPublicKey("EC", "P-384"));
  *bundle.add_jwt_signing_keys() = Key("ec521", NewPublicKey("EC", "P-521"));
  *bundle.add_jwt_signing_keys() = Key("rsa", NewPublicKey("RSA"));
  *bundle.add_jwt_signing_keys() = Key("ed", NewPublicKey("ED25519"));
  *bundle.add_wit_signing_keys() = Key("wit", NewPublicKey("EC"));
  bundle.set_refresh_hint(300);
  bundle.set_sequence_number(7);

  ASSERT_OK_AND_ASSIGN(std::string jwks, FormatSpiffe(bundle));
  const nlohmann::json doc = nlohmann::json::parse(jwks);
  EXPECT_EQ(doc["spiffe_refresh_hint"], 300);
  EXPECT_EQ(doc["spiffe_sequence"], 7);
  ASSERT_EQ(doc["keys"].size(), 7u);
  EXPECT_EQ(doc["keys"][0]["use"], "x509-svid");
  EXPECT_EQ(doc["keys"][0]["kty"], "EC");
  EXPECT_EQ(doc["keys"][0]["x5c"].size(), 1u);
  EXPECT_EQ(doc["keys"][1]["use"], "jwt-svid");
  EXPECT_EQ(doc["keys"][1]["kid"], "ec256");
  EXPECT_EQ(doc["keys"][1]["crv"], "P-256");
  EXPECT_EQ(doc["keys"][4]["kty"], "RSA");
  EXPECT_EQ(doc["keys"][5]["kty"], "OKP");
  EXPECT_EQ(doc["keys"][6]["use"], "wit-svid");

  ASSERT_OK_AND_ASSIGN(v1::Bundle parsed,
                       ParseBundle(jwks, BundleFormat::kSpiffe, "spiffe://x.org"));
  EXPECT_EQ(parsed.SerializeAsString(), bundle.SerializeAsString())
      << parsed.DebugString() << "\nvs\n"
      << bundle.DebugString();
}

TEST(BundleFormat, JwkToPkixMatchesTheRfc7517Example) {
  // RFC 7517, appendix A.1: an EC P-256 public key.
  const nlohmann::json jwk = {{"kty", "EC"},
                              {"crv", "P-256"},
                              {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                              {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}};
  ASSERT_OK_AND_ASSIGN(std::string pkix, JwkToPkix(jwk));
  ASSERT_OK_AND_ASSIGN(nlohmann::ordered_json back, PkixToJwk(pkix));
  EXPECT_EQ(back["kty"], "EC");
  EXPECT_EQ(back["crv"], "P-256");
  EXPECT_EQ(back["x"], jwk["x"]);
  EXPECT_EQ(back["y"], jwk["y"]);
}

TEST(BundleFormat, JwkToPkixRejectsBadKeys) {
  nlohmann::json off_curve = {{"kty", "EC"},
                              {"crv", "P-256"},
                              {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                              {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyA"}};
  EXPECT_THAT(JwkToPkix(off_curve), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(JwkToPkix({{"kty", "EC"}, {"crv", "P-192"}, {"x", "AA"}, {"y", "AA"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported curve")));
  EXPECT_THAT(JwkToPkix({{"kty", "oct"}, {"k", "AA"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported key type")));
  EXPECT_THAT(JwkToPkix({{"kty", "RSA"}, {"e", "AQAB"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"n\" is required")));
  EXPECT_THAT(PkixToJwk("not der"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(BundleFormat, SpiffeParseNamesTheBadKey) {
  auto parse = [](const std::string& json) {
    return ParseBundle(json, BundleFormat::kSpiffe, "spiffe://x.org");
  };
  EXPECT_THAT(parse("{"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(parse("{}"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"keys\"")));
  EXPECT_THAT(parse(R"({"keys":[{"kty":"EC"}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("keys[0]: \"use\" is required")));
  EXPECT_THAT(parse(R"({"keys":[{"use":"x509-svid","kty":"EC"}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("keys[0]: \"x5c\"")));
  EXPECT_THAT(parse(R"({"keys":[{"use":"x509-svid","x5c":["!!"]}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("keys[0]: invalid base64")));
  EXPECT_THAT(parse(R"({"keys":[{"use":"bogus"},{"use":"jwt-svid","kty":"EC"}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("keys[1]: \"kid\" is required")));
  EXPECT_THAT(parse(R"({"keys":[],"spiffe_refresh_hint":"soon"})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("spiffe_refresh_hint")));
  ASSERT_OK_AND_ASSIGN(v1::Bundle empty, parse(R"({"keys":[{"use":"something-new"}]})"));
  EXPECT_EQ(empty.root_cas_size() + empty.jwt_signing_keys_size(), 0);
}

TEST(BundleFormat, SpiffeFormatNamesAKeyItCannotExpress) {
  v1::Bundle bundle;
  bundle.set_trust_domain_id("spiffe://x.org");
  *bundle.add_jwt_signing_keys() = Key("k1", "not a key");
  EXPECT_THAT(FormatSpiffe(bundle),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("JWT key \"k1\"")));
}

TEST(BundleFormat, Base64UrlRoundTrips) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd"}) {
    const std::string encoded = Base64UrlEncode(s);
    EXPECT_EQ(encoded.find('='), std::string::npos);
    ASSERT_OK_AND_ASSIGN(std::string decoded, Base64UrlDecode(encoded));
    EXPECT_EQ(decoded, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  ASSERT_OK_AND_ASSIGN(std::string padded, Base64Decode("Zm9vYg=="));
  EXPECT_EQ(padded, "foob");
  EXPECT_THAT(Base64Decode("Zm9v!"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Base64Decode("Z"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace plinth::cli::internal
