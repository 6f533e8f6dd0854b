#include "server/spiffe_id.h"

#include <string>

namespace plinth::server {
namespace {

constexpr std::string_view kScheme = "spiffe://";

bool IsTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool IsPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Names the character for a message: printable ASCII as itself, anything else as a hex byte.
std::string DescribeChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xf];
}

Status CheckTrustDomainChars(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("trust domain is empty");
  if (name.size() > kMaxTrustDomainLength) {
    return InvalidArgumentError("trust domain is longer than " +
                                std::to_string(kMaxTrustDomainLength) + " bytes");
  }
  for (char c : name) {
    if (IsTrustDomainChar(c)) continue;
    if (c >= 'A' && c <= 'Z') return InvalidArgumentError("trust domain must be lower case");
    if (c == ':') return InvalidArgumentError("a port is not allowed");
    if (c == '@') return InvalidArgumentError("user info is not allowed");
    if (c == '%') return InvalidArgumentError("percent-encoding is not allowed");
    return InvalidArgumentError("trust domain has an invalid character " + DescribeChar(c));
  }
  return Status::Ok();
}

}  // namespace

Status ValidateTrustDomain(std::string_view name) {
  if (name.starts_with(kScheme)) {
    return InvalidArgumentError("a trust domain is a name like \"example.org\", not a SPIFFE ID");
  }
  return CheckTrustDomainChars(name);
}

StatusOr<SpiffeId> SpiffeId::Parse(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("SPIFFE ID is empty");
  if (text.size() > kMaxSpiffeIdLength) {
    return InvalidArgumentError("SPIFFE ID is longer than " + std::to_string(kMaxSpiffeIdLength) +
                                " bytes");
  }
  if (!text.starts_with(kScheme)) {
    if (text.size() >= kScheme.size()) {
      std::string prefix(text.substr(0, kScheme.size()));
      for (char& c : prefix) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (prefix == kScheme) return InvalidArgumentError("scheme must be lower-case \"spiffe\"");
    }
    return InvalidArgumentError("scheme is not \"spiffe://\"");
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view trust_domain = rest.substr(0, slash);
  // Query and fragment markers may appear before any path.
  for (char c : trust_domain) {
    if (c == '?') return InvalidArgumentError("a query is not allowed");
    if (c == '#') return InvalidArgumentError("a fragment is not allowed");
  }
  PLINTH_RETURN_IF_ERROR(CheckTrustDomainChars(trust_domain));

  size_t path_start = kScheme.size() + trust_domain.size();
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    if (path == "/") return InvalidArgumentError("path must not end with '/'");
    // Each segment follows a '/'.
    size_t i = 0;
    while (i < path.size()) {
      size_t end = path.find('/', i + 1);
      if (end == std::string_view::npos) end = path.size();
      std::string_view segment = path.substr(i + 1, end - i - 1);
      if (segment.empty()) {
        return InvalidArgumentError(end == path.size() ? "path must not end with '/'"
                                                       : "path has an empty segment");
      }
      if (segment == "." || segment == "..") {
        return InvalidArgumentError("path has a \".\" or \"..\" segment");
      }
      for (char c : segment) {
        if (IsPathChar(c)) continue;
        if (c == '?') return InvalidArgumentError("a query is not allowed");
        if (c == '#') return InvalidArgumentError("a fragment is not allowed");
        if (c == '%') return InvalidArgumentError("percent-encoding is not allowed");
        return InvalidArgumentError("path has an invalid character " + DescribeChar(c));
      }
      i = end;
    }
  }
  return SpiffeId(std::string(text), path_start);
}

std::string_view SpiffeId::trust_domain() const {
  return std::string_view(text_).substr(kScheme.size(), path_start_ - kScheme.size());
}

std::string_view SpiffeId::path() const { return std::string_view(text_).substr(path_start_); }

}  // namespace plinth::server
