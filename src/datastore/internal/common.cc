// Error constructors, value encoding and page tokens shared by every datastore operation.
#include <string>
#include <string_view>

#include "datastore/internal/impl.h"

namespace plinth::datastore::internal {
namespace {

// Page tokens are base64url (no padding) of a version byte followed by the last key of the
// page: opaque to callers, and the version byte lets the format change later.
constexpr char kTokenVersion = '\x01';
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
    out.push_back(kBase64Url[v & 63]);
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// False if `in` is not canonical unpadded base64url.
bool Base64UrlDecode(std::string_view in, std::string* out) {
  if (in.size() % 4 == 1) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = Base64UrlValue(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so that each byte string has exactly one token.
  return (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace

Status ValidationError(std::string_view message) {
  return InvalidArgumentError("datastore-validation: " + std::string(message));
}

Status NotFoundError(std::string_view what) {
  return ::plinth::NotFoundError("datastore: " + std::string(what) + " not found");
}

StatusOr<std::string> Encode(const google::protobuf::MessageLite& message) {
  std::string out;
  if (!message.SerializeToString(&out)) {
    return InternalError("could not serialize " + message.GetTypeName() +
                         " (missing required fields or over 2 GiB)");
  }
  return out;
}

std::string EncodePageToken(std::string_view last_key) {
  std::string raw;
  raw.reserve(last_key.size() + 1);
  raw.push_back(kTokenVersion);
  raw.append(last_key);
  return Base64UrlEncode(raw);
}

StatusOr<std::string> DecodePageToken(std::string_view token) {
  if (token.empty()) return std::string();
  std::string raw;
  if (!Base64UrlDecode(token, &raw) || raw.size() < 2 || raw[0] != kTokenVersion) {
    return InvalidArgumentError("could not parse token '" + std::string(token) + "'");
  }
  return raw.substr(1);
}

StatusOr<PageRequest> ParsePageRequest(const v1::Pagination* pagination) {
  PageRequest page;
  if (pagination == nullptr) return page;
  if (pagination->page_size() <= 0) {
    return ValidationError("cannot paginate with pagination.page_size = " +
                           std::to_string(pagination->page_size()) + "; it must be greater than 0");
  }
  page.pagination = pagination;
  page.limit = static_cast<size_t>(pagination->page_size());
  PLINTH_ASSIGN_OR_RETURN(page.after, DecodePageToken(pagination->token()));
  return page;
}

std::string Quoted(std::string_view s) {
  // Built with append: GCC 12 at -O2 reports a false -Wrestrict for "\"" + std::string(s).
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '"').append(s).append(1, '"');
  return out;
}

}  // namespace plinth::datastore::internal
