// The datastore's store keys (layout documented in state.h).
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/check.h"
#include "datastore/internal/state.h"

namespace plinth::datastore::internal {
namespace {

// Appends `s` preceded by its length as 8 big-endian bytes, so that no two different field
// sequences encode to the same bytes.
void AppendLengthPrefixed(std::string_view s, std::string* out) {
  const uint64_t n = s.size();
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((n >> shift) & 0xFF));
  out->append(s);
}

std::string HexSha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  // SHA-256 of an in-memory buffer cannot fail short of memory exhaustion.
  PLINTH_CHECK(EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) ==
               1)
      << "EVP_Digest(sha256) failed";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

}  // namespace

Keys::Keys(std::string prefix, std::string index_prefix)
    : prefix_(std::move(prefix)), index_prefix_(std::move(index_prefix)) {}

std::string Keys::Entry(std::string_view entry_id) const {
  return prefix_ + "entry/" + std::string(entry_id);
}

std::string Keys::Node(std::string_view spiffe_id) const {
  return prefix_ + "node/" + std::string(spiffe_id);
}

std::string Keys::NodeSelectors(std::string_view spiffe_id) const {
  return prefix_ + "nodesel/" + std::string(spiffe_id);
}

std::string Keys::Bundle(std::string_view trust_domain_id) const {
  return prefix_ + "bundle/" + std::string(trust_domain_id);
}

std::string Keys::Token(std::string_view token) const {
  return prefix_ + "token/" + std::string(token);
}

std::string Keys::Federation(std::string_view trust_domain) const {
  return prefix_ + "fed/" + std::string(trust_domain);
}

std::string Keys::Journal(int64_t id) const {
  // Zero-padded so that the store's byte order is numeric order.
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%020lld", static_cast<long long>(id));
  return prefix_ + "journal/" + digits;
}

std::string Keys::JournalNext() const { return prefix_ + "journal-next"; }

std::string Keys::Similar(const v1::RegistrationEntry& entry) const {
  std::vector<std::pair<std::string_view, std::string_view>> selectors;
  selectors.reserve(entry.selectors_size());
  for (const v1::Selector& s : entry.selectors()) selectors.emplace_back(s.type(), s.value());
  std::sort(selectors.begin(), selectors.end());
  selectors.erase(std::unique(selectors.begin(), selectors.end()), selectors.end());

  std::string encoded;
  AppendLengthPrefixed(entry.spiffe_id(), &encoded);
  AppendLengthPrefixed(entry.parent_id(), &encoded);
  AppendLengthPrefixed(std::to_string(selectors.size()), &encoded);
  for (const auto& [type, value] : selectors) {
    AppendLengthPrefixed(type, &encoded);
    AppendLengthPrefixed(value, &encoded);
  }
  return index_prefix_ + "similar/" + HexSha256(encoded);
}

std::string Keys::FedLink(std::string_view trust_domain_id, std::string_view entry_id) const {
  return FedLinkPrefix(trust_domain_id) + std::string(entry_id);
}

std::string Keys::FedLinkPrefix(std::string_view trust_domain_id) const {
  // Trust domain IDs have no '/' after their scheme and entry IDs none at all, so the closing
  // '/' keeps one trust domain's links apart from another's (e.g. "a.org" and "a.org.uk").
  return index_prefix_ + "fedlink/" + std::string(trust_domain_id) + "/";
}

std::string Keys::JoinChild(std::string_view parent_id, std::string_view entry_id) const {
  return JoinChildPrefix(parent_id) + std::string(entry_id);
}

std::string Keys::JoinChildPrefix(std::string_view parent_id) const {
  // Parent IDs contain '/', so the length keeps "spiffe://td/a" apart from "spiffe://td/a/b".
  return index_prefix_ + "joinchild/" + std::to_string(parent_id.size()) + ":" +
         std::string(parent_id) + "/";
}

}  // namespace plinth::datastore::internal
