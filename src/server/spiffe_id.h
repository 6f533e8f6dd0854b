// SPIFFE IDs ("spiffe://<trust-domain>/<path>") as the SPIFFE-ID specification defines them:
// the identity a caller proves with its X.509-SVID, and the form admin IDs take in the
// configuration.
#ifndef PLINTH_SERVER_SPIFFE_ID_H_
#define PLINTH_SERVER_SPIFFE_ID_H_

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace plinth::server {

// The longest SPIFFE ID we accept, in bytes (the specification's limit for URI SANs).
inline constexpr size_t kMaxSpiffeIdLength = 2048;
// The longest trust domain name we accept, in bytes.
inline constexpr size_t kMaxTrustDomainLength = 255;

// A validated SPIFFE ID. Immutable and cheap to copy; compares by its text, which is
// canonical (lower-case scheme and trust domain, no trailing slash).
class SpiffeId {
 public:
  // Parses `text`. OK means: scheme "spiffe://" (lower case), a trust domain of lower-case
  // letters, digits, '.', '-' and '_' (at most kMaxTrustDomainLength bytes), then an optional
  // path of '/'-separated non-empty segments of letters, digits, '.', '-' and '_' that are
  // not "." or "..", and nothing else (no user info, port, query, fragment or
  // percent-encoding), at most kMaxSpiffeIdLength bytes in all. Otherwise InvalidArgument
  // with a message saying what is wrong (the message does not repeat `text`).
  static StatusOr<SpiffeId> Parse(std::string_view text);

  // The whole ID, e.g. "spiffe://example.org/plinth/server".
  const std::string& str() const { return text_; }
  // "example.org".
  std::string_view trust_domain() const;
  // "/plinth/server", or "" for the ID of the trust domain itself.
  std::string_view path() const;

  friend bool operator==(const SpiffeId& a, const SpiffeId& b) { return a.text_ == b.text_; }
  friend auto operator<=>(const SpiffeId& a, const SpiffeId& b) { return a.text_ <=> b.text_; }

 private:
  SpiffeId(std::string text, size_t path_start) : text_(std::move(text)), path_start_(path_start) {}
  std::string text_;
  size_t path_start_;  // index of the path's first '/', or text_.size()
};

// OK when `name` is a valid trust domain name (see SpiffeId::Parse); otherwise
// InvalidArgument saying why.
Status ValidateTrustDomain(std::string_view name);

}  // namespace plinth::server

#endif  // PLINTH_SERVER_SPIFFE_ID_H_
