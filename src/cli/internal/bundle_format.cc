#include "cli/internal/bundle_format.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>
#include <utility>

#include "cli/output.h"

namespace plinth::cli::internal {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kUseX509 = "x509-svid";
constexpr std::string_view kUseJwt = "jwt-svid";
constexpr std::string_view kUseWit = "wit-svid";

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};

using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// The last OpenSSL error as text (and the queue cleared), for messages.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Decodes base64 in `alphabet` (64 characters); '=' padding is optional but only at the end.
StatusOr<std::string> DecodeBase64(std::string_view text, std::string_view alphabet,
                                   std::string_view what) {
  auto bad = [&] { return InvalidArgumentError("invalid " + std::string(what)); };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return bad();
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const size_t v = alphabet.find(c);
    if (v == std::string_view::npos) return bad();
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

constexpr std::string_view kStdAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The certificates of a DER blob holding one certificate or a chain, in order.
StatusOr<std::vector<X509Ptr>> ParseDerChain(std::string_view der) {
  std::vector<X509Ptr> certs;
  const unsigned char* p = Bytes(der);
  const unsigned char* const end = p + der.size();
  while (p < end) {
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (cert == nullptr) return InvalidArgumentError("not DER X.509: " + OpenSslError());
    certs.emplace_back(cert);
  }
  if (certs.empty()) return InvalidArgumentError("empty certificate");
  return certs;
}

std::string CertDer(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  std::unique_ptr<unsigned char, OpenSslFree> owner(der);
  return std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len));
}

StatusOr<std::vector<v1::X509Certificate>> ParsePemCertificates(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return InternalError("out of memory");
  std::vector<v1::X509Certificate> roots;
  for (int index = 0;; ++index) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) == 0) {
      const unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;  // no more blocks
      return InvalidArgumentError("PEM block " + std::to_string(index + 1) + " is malformed");
    }
    std::unique_ptr<char, OpenSslFree> name_owner(name), header_owner(header);
    std::unique_ptr<unsigned char, OpenSslFree> data_owner(data);
    if (std::strcmp(name, "CERTIFICATE") != 0) {
      return InvalidArgumentError("PEM block " + std::to_string(index + 1) + " is \"" +
                                  std::string(name) + "\", not \"CERTIFICATE\"");
    }
    const std::string der(reinterpret_cast<char*>(data), static_cast<size_t>(len));
    auto chain = ParseDerChain(der);
    if (!chain.ok() || chain->size() != 1) {
      return InvalidArgumentError("PEM block " + std::to_string(index + 1) +
                                  " is not one X.509 certificate");
    }
    v1::X509Certificate root;
    root.set_der_bytes(der);
    roots.push_back(std::move(root));
  }
  if (roots.empty()) return InvalidArgumentError("no PEM CERTIFICATE block found");
  return roots;
}

StatusOr<std::string> DecodeMember(const Json& jwk, const char* member) {
  auto it = jwk.find(member);
  if (it == jwk.end() || !it->is_string()) {
    return InvalidArgumentError(std::string("\"") + member + "\" is required");
  }
  auto decoded = Base64UrlDecode(it->get<std::string>());
  if (!decoded.ok() || decoded->empty()) {
    return InvalidArgumentError(std::string("\"") + member + "\" is not base64url");
  }
  return decoded;
}

std::string PkeyToPkix(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return "";
  std::unique_ptr<unsigned char, OpenSslFree> owner(der);
  return std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len));
}

StatusOr<std::string> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0) {
    return InternalError("OpenSSL: " + OpenSslError());
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return InvalidArgumentError(std::string("not a valid ") + type +
                                " public key: " + OpenSslError());
  }
  PkeyPtr pkey(raw);
  std::string der = PkeyToPkix(pkey.get());
  if (der.empty()) return InvalidArgumentError("cannot encode the key: " + OpenSslError());
  return der;
}

struct Curve {
  const char* jwk_name;
  const char* openssl_name;
  size_t field_bytes;
};
constexpr Curve kCurves[] = {
    {"P-256", "prime256v1", 32}, {"P-384", "secp384r1", 48}, {"P-521", "secp521r1", 66}};

StatusOr<std::string> EcJwkToPkix(const Json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string()) return InvalidArgumentError("\"crv\" is required");
  const Curve* curve = nullptr;
  for (const Curve& c : kCurves) {
    if (crv->get<std::string>() == c.jwk_name) curve = &c;
  }
  if (curve == nullptr) {
    return InvalidArgumentError("unsupported curve \"" + crv->get<std::string>() +
                                "\" (P-256, P-384 or P-521)");
  }
  PLINTH_ASSIGN_OR_RETURN(std::string x, DecodeMember(jwk, "x"));
  PLINTH_ASSIGN_OR_RETURN(std::string y, DecodeMember(jwk, "y"));
  if (x.size() > curve->field_bytes || y.size() > curve->field_bytes) {
    return InvalidArgumentError("\"x\" or \"y\" is too long for " + std::string(curve->jwk_name));
  }
  std::string point(1, '\x04');
  point.append(curve->field_bytes - x.size(), '\0').append(x);
  point.append(curve->field_bytes - y.size(), '\0').append(y);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->openssl_name,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return InternalError("OpenSSL: " + OpenSslError());
  }
  return FromData("EC", bld.get());
}

StatusOr<std::string> RsaJwkToPkix(const Json& jwk) {
  PLINTH_ASSIGN_OR_RETURN(std::string n, DecodeMember(jwk, "n"));
  PLINTH_ASSIGN_OR_RETURN(std::string e, DecodeMember(jwk, "e"));
  BnPtr bn_n(BN_bin2bn(Bytes(n), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(Bytes(e), static_cast<int>(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return InternalError("OpenSSL: " + OpenSslError());
  }
  return FromData("RSA", bld.get());
}

StatusOr<std::string> OkpJwkToPkix(const Json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string() || crv->get<std::string>() != "Ed25519") {
    return InvalidArgumentError("unsupported OKP curve (Ed25519 only)");
  }
  PLINTH_ASSIGN_OR_RETURN(std::string x, DecodeMember(jwk, "x"));
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(x), x.size()));
  if (!pkey) return InvalidArgumentError("not a valid Ed25519 public key: " + OpenSslError());
  std::string der = PkeyToPkix(pkey.get());
  if (der.empty()) return InvalidArgumentError("cannot encode the key: " + OpenSslError());
  return der;
}

// Big-endian bytes of `bn`, left-padded to `width` when width > 0.
std::string BnBytes(const BIGNUM* bn, size_t width = 0) {
  const size_t size = width > 0 ? width : static_cast<size_t>(BN_num_bytes(bn));
  std::string out(size, '\0');
  if (size > 0)
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size));
  return out;
}

StatusOr<BnPtr> GetBn(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
    return InvalidArgumentError(std::string("cannot read ") + name + ": " + OpenSslError());
  }
  return BnPtr(bn);
}

StatusOr<OrderedJson> PkeyToJwk(EVP_PKEY* pkey) {
  OrderedJson jwk = OrderedJson::object();
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t group_len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &group_len) != 1) {
        return InvalidArgumentError("EC key without a named curve");
      }
      const Curve* curve = nullptr;
      for (const Curve& c : kCurves) {
        if (std::string_view(group, group_len) == c.openssl_name) curve = &c;
      }
      if (curve == nullptr) {
        return InvalidArgumentError("unsupported curve " + std::string(group, group_len));
      }
      PLINTH_ASSIGN_OR_RETURN(BnPtr x, GetBn(pkey, OSSL_PKEY_PARAM_EC_PUB_X));
      PLINTH_ASSIGN_OR_RETURN(BnPtr y, GetBn(pkey, OSSL_PKEY_PARAM_EC_PUB_Y));
      jwk["kty"] = "EC";
      jwk["crv"] = curve->jwk_name;
      jwk["x"] = Base64UrlEncode(BnBytes(x.get(), curve->field_bytes));
      jwk["y"] = Base64UrlEncode(BnBytes(y.get(), curve->field_bytes));
      return jwk;
    }
    case EVP_PKEY_RSA: {
      PLINTH_ASSIGN_OR_RETURN(BnPtr n, GetBn(pkey, OSSL_PKEY_PARAM_RSA_N));
      PLINTH_ASSIGN_OR_RETURN(BnPtr e, GetBn(pkey, OSSL_PKEY_PARAM_RSA_E));
      jwk["kty"] = "RSA";
      jwk["n"] = Base64UrlEncode(BnBytes(n.get()));
      jwk["e"] = Base64UrlEncode(BnBytes(e.get()));
      return jwk;
    }
    case EVP_PKEY_ED25519: {
      unsigned char raw[64];
      size_t len = sizeof(raw);
      if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1) {
        return InvalidArgumentError("cannot read the Ed25519 key: " + OpenSslError());
      }
      jwk["kty"] = "OKP";
      jwk["crv"] = "Ed25519";
      jwk["x"] = Base64UrlEncode(std::string_view(reinterpret_cast<char*>(raw), len));
      return jwk;
    }
    default:
      return InvalidArgumentError("unsupported key type (EC, RSA or Ed25519 only)");
  }
}

// Parses one "jwt-svid" or "wit-svid" key.
StatusOr<v1::PublicKey> ParseSigningKey(const Json& jwk) {
  auto kid = jwk.find("kid");
  if (kid == jwk.end() || !kid->is_string() || kid->get<std::string>().empty()) {
    return InvalidArgumentError("\"kid\" is required");
  }
  PLINTH_ASSIGN_OR_RETURN(std::string pkix, JwkToPkix(jwk));
  v1::PublicKey key;
  key.set_kid(kid->get<std::string>());
  key.set_pkix_bytes(std::move(pkix));
  return key;
}

StatusOr<v1::X509Certificate> ParseX509Key(const Json& jwk) {
  auto x5c = jwk.find("x5c");
  if (x5c == jwk.end() || !x5c->is_array() || x5c->size() != 1 || !(*x5c)[0].is_string()) {
    return InvalidArgumentError("\"x5c\" must hold exactly one certificate");
  }
  PLINTH_ASSIGN_OR_RETURN(std::string der, Base64Decode((*x5c)[0].get<std::string>()));
  auto chain = ParseDerChain(der);
  if (!chain.ok() || chain->size() != 1) {
    return InvalidArgumentError("\"x5c\" is not one DER X.509 certificate");
  }
  v1::X509Certificate root;
  root.set_der_bytes(std::move(der));
  return root;
}

StatusOr<int64_t> IntegerMember(const Json& doc, const char* member) {
  auto it = doc.find(member);
  if (it == doc.end()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return InvalidArgumentError(std::string("\"") + member + "\" must be a non-negative integer");
  }
  return it->get<int64_t>();
}

StatusOr<v1::Bundle> ParseSpiffeBundle(std::string_view input, const std::string& trust_domain_id) {
  const Json doc = Json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("not a SPIFFE bundle: not a JSON object");
  }
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    return InvalidArgumentError("not a SPIFFE bundle: \"keys\" (an array) is required");
  }
  v1::Bundle bundle;
  bundle.set_trust_domain_id(trust_domain_id);
  PLINTH_ASSIGN_OR_RETURN(int64_t refresh_hint, IntegerMember(doc, "spiffe_refresh_hint"));
  PLINTH_ASSIGN_OR_RETURN(int64_t sequence, IntegerMember(doc, "spiffe_sequence"));
  bundle.set_refresh_hint(refresh_hint);
  bundle.set_sequence_number(static_cast<uint64_t>(sequence));
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& jwk = (*keys)[i];
    const std::string where = "keys[" + std::to_string(i) + "]";
    auto prefix = [&](const Status& s) {
      return InvalidArgumentError(where + ": " + std::string(s.message()));
    };
    if (!jwk.is_object()) return InvalidArgumentError(where + ": not a JSON object");
    auto use = jwk.find("use");
    if (use == jwk.end() || !use->is_string()) {
      return InvalidArgumentError(where + ": \"use\" is required");
    }
    const std::string use_value = use->get<std::string>();
    if (use_value == kUseX509) {
      auto root = ParseX509Key(jwk);
      if (!root.ok()) return prefix(root.status());
      *bundle.add_root_cas() = std::move(root).value();
    } else if (use_value == kUseJwt || use_value == kUseWit) {
      auto key = ParseSigningKey(jwk);
      if (!key.ok()) return prefix(key.status());
      *(use_value == kUseJwt ? bundle.add_jwt_signing_keys() : bundle.add_wit_signing_keys()) =
          std::move(key).value();
    }
  }
  return bundle;
}

StatusOr<OrderedJson> SigningKeyJwk(const v1::PublicKey& key, std::string_view use) {
  PLINTH_ASSIGN_OR_RETURN(OrderedJson params, PkixToJwk(key.pkix_bytes()));
  OrderedJson jwk = {{"use", std::string(use)}};
  jwk["kty"] = params["kty"];
  jwk["kid"] = key.kid();
  for (auto& [name, value] : params.items()) {
    if (name != "kty") jwk[name] = value;
  }
  return jwk;
}

}  // namespace

StatusOr<v1::Bundle> ParseBundle(std::string_view input, BundleFormat format,
                                 const std::string& trust_domain_id) {
  if (format == BundleFormat::kSpiffe) return ParseSpiffeBundle(input, trust_domain_id);
  PLINTH_ASSIGN_OR_RETURN(std::vector<v1::X509Certificate> roots, ParsePemCertificates(input));
  v1::Bundle bundle;
  bundle.set_trust_domain_id(trust_domain_id);
  for (auto& root : roots) *bundle.add_root_cas() = std::move(root);
  return bundle;
}

std::string FormatPem(const v1::Bundle& bundle) {
  std::string out;
  auto block = [&out](std::string_view der) {
    const std::string b64 = Base64(der);
    out += "-----BEGIN CERTIFICATE-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    out += "-----END CERTIFICATE-----\n";
  };
  for (const v1::X509Certificate& root : bundle.root_cas()) {
    auto chain = ParseDerChain(root.der_bytes());
    if (!chain.ok()) {
      ERR_clear_error();
      block(root.der_bytes());  // not X.509: shown as stored rather than dropped
      continue;
    }
    for (const X509Ptr& cert : *chain) block(CertDer(cert.get()));
  }
  return out;
}

StatusOr<std::string> FormatSpiffe(const v1::Bundle& bundle) {
  OrderedJson keys = OrderedJson::array();
  for (int i = 0; i < bundle.root_cas_size(); ++i) {
    auto chain = ParseDerChain(bundle.root_cas(i).der_bytes());
    if (!chain.ok()) {
      return InvalidArgumentError("root CA " + std::to_string(i + 1) + ": " +
                                  std::string(chain.status().message()));
    }
    for (const X509Ptr& cert : *chain) {
      PLINTH_ASSIGN_OR_RETURN(OrderedJson params,
                              PkixToJwk(PkeyToPkix(X509_get0_pubkey(cert.get()))));
      OrderedJson jwk = {{"use", std::string(kUseX509)}};
      for (auto& [name, value] : params.items()) jwk[name] = value;
      jwk["x5c"] = OrderedJson::array({Base64(CertDer(cert.get()))});
      keys.push_back(std::move(jwk));
    }
  }
  for (const v1::PublicKey& key : bundle.jwt_signing_keys()) {
    auto jwk = SigningKeyJwk(key, kUseJwt);
    if (!jwk.ok()) {
      return InvalidArgumentError("JWT key \"" + key.kid() +
                                  "\": " + std::string(jwk.status().message()));
    }
    keys.push_back(std::move(jwk).value());
  }
  for (const v1::PublicKey& key : bundle.wit_signing_keys()) {
    auto jwk = SigningKeyJwk(key, kUseWit);
    if (!jwk.ok()) {
      return InvalidArgumentError("WIT key \"" + key.kid() +
                                  "\": " + std::string(jwk.status().message()));
    }
    keys.push_back(std::move(jwk).value());
  }
  OrderedJson doc = OrderedJson::object();
  doc["keys"] = std::move(keys);
  if (bundle.refresh_hint() != 0) doc["spiffe_refresh_hint"] = bundle.refresh_hint();
  if (bundle.sequence_number() != 0) doc["spiffe_sequence"] = bundle.sequence_number();
  return doc.dump(4, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

StatusOr<std::string> JwkToPkix(const Json& jwk) {
  if (!jwk.is_object()) return InvalidArgumentError("a JWK must be a JSON object");
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string()) return InvalidArgumentError("\"kty\" is required");
  const std::string type = kty->get<std::string>();
  StatusOr<std::string> der =
      InvalidArgumentError("unsupported key type \"" + type + "\" (EC, RSA or OKP)");
  if (type == "EC") der = EcJwkToPkix(jwk);
  if (type == "RSA") der = RsaJwkToPkix(jwk);
  if (type == "OKP") der = OkpJwkToPkix(jwk);
  ERR_clear_error();
  return der;
}

StatusOr<OrderedJson> PkixToJwk(std::string_view pkix_der) {
  const unsigned char* p = Bytes(pkix_der);
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(pkix_der.size())));
  if (!pkey || p != Bytes(pkix_der) + pkix_der.size()) {
    ERR_clear_error();
    return InvalidArgumentError("not a PKIX (SubjectPublicKeyInfo) DER public key");
  }
  auto jwk = PkeyToJwk(pkey.get());
  ERR_clear_error();
  return jwk;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out = Base64(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  return DecodeBase64(text, kUrlAlphabet, "base64url");
}

StatusOr<std::string> Base64Decode(std::string_view text) {
  return DecodeBase64(text, kStdAlphabet, "base64");
}

}  // namespace plinth::cli::internal
