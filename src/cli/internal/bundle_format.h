// The two trust bundle formats of `spire-server bundle`, for `plinth bundle` and
// `plinth federation`: "pem" (concatenated CERTIFICATE blocks: the X.509 roots only) and
// "spiffe" (the SPIFFE bundle format: a JWKS whose keys carry "use": "x509-svid" with an x5c
// certificate, or "use": "jwt-svid" with a kid and a public key, plus "spiffe_refresh_hint"
// and "spiffe_sequence"). Public keys convert between JWK (EC P-256/P-384/P-521, RSA,
// Ed25519) and PKIX DER, the form plinth stores, with OpenSSL.
//
// Neither format carries a key's expiry or taint: a bundle read from one has not_after = 0
// and tainted_key = false everywhere.
#ifndef PLINTH_CLI_INTERNAL_BUNDLE_FORMAT_H_
#define PLINTH_CLI_INTERNAL_BUNDLE_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "plinth/v1/types.pb.h"

namespace plinth::cli::internal {

namespace v1 = ::plinth::v1;

enum class BundleFormat { kPem, kSpiffe };

// Parses `input` in `format` into a bundle of `trust_domain_id` ("spiffe://example.org").
// pem: every CERTIFICATE block becomes one root CA (its DER); other PEM block types, a block
// that is not exactly one X.509 certificate, or no block at all: InvalidArgument.
// spiffe: see the file comment; keys with another "use" are ignored (as the SPIFFE bundle
// format asks); "wit-svid" keys become wit_signing_keys. InvalidArgument naming the key
// (keys[i]) and the problem for malformed JSON, a missing or bad member, or an unsupported
// public key. Never throws.
StatusOr<v1::Bundle> ParseBundle(std::string_view input, BundleFormat format,
                                 const std::string& trust_domain_id);

// The root CAs of `bundle` as PEM CERTIFICATE blocks, one per certificate (a root CA holding
// a DER chain gives one block per certificate of the chain). "" when there are none.
std::string FormatPem(const v1::Bundle& bundle);

// `bundle` in the SPIFFE bundle format, pretty-printed with a final newline.
// InvalidArgument naming the certificate or key when one cannot be expressed as a JWK.
StatusOr<std::string> FormatSpiffe(const v1::Bundle& bundle);

// A JWK public key (kty EC with crv/x/y, RSA with n/e, OKP Ed25519 with x) as PKIX
// (SubjectPublicKeyInfo) DER. InvalidArgument for anything else or a key that does not
// decode (e.g. an EC point not on its curve).
StatusOr<std::string> JwkToPkix(const nlohmann::json& jwk);

// The inverse: the public key members of a JWK (kty, and crv/x/y, n/e or crv/x).
StatusOr<nlohmann::ordered_json> PkixToJwk(std::string_view pkix_der);

// base64url without padding (RFC 7515 §2), and its decoder (padding tolerated).
std::string Base64UrlEncode(std::string_view bytes);
StatusOr<std::string> Base64UrlDecode(std::string_view text);

// Standard base64 (RFC 4648 §4) decoding; padding required when the length is not a multiple
// of four, whitespace not allowed.
StatusOr<std::string> Base64Decode(std::string_view text);

}  // namespace plinth::cli::internal

#endif  // PLINTH_CLI_INTERNAL_BUNDLE_FORMAT_H_
