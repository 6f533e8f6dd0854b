#include "store/key_span.h"

#include <algorithm>
#include <cstring>

namespace plinth::store {

KeySpan KeySpan::Key(std::string_view key) {
  KeySpan s{std::string(key), std::string(key)};
  s.end.push_back('\0');
  return s;
}

KeySpan KeySpan::Prefix(std::string_view prefix) {
  return KeySpan{std::string(prefix), PrefixEnd(prefix)};
}

KeySpan KeySpan::Between(std::string_view start, std::string_view end) {
  return KeySpan{std::string(start), std::string(end)};
}

bool KeySpan::Contains(std::string_view key) const {
  return CompareKeys(key, start) >= 0 && (end.empty() || CompareKeys(key, end) < 0);
}

bool KeySpan::empty() const { return !end.empty() && CompareKeys(end, start) <= 0; }

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xFF) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;  // no finite successor: unbounded
}

int CompareKeys(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
  if (c != 0) return c;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

std::string PrintableKey(std::string_view key) {
  constexpr size_t kMaxShown = 64;
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < key.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  if (key.size() > kMaxShown) out += "...";
  out += "\"";
  return out;
}

}  // namespace plinth::store
