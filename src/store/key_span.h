// KeySpan: a half-open range of byte-string keys, [start, end), as etcd's key/range_end.
#ifndef PLINTH_STORE_KEY_SPAN_H_
#define PLINTH_STORE_KEY_SPAN_H_

#include <string>
#include <string_view>

namespace plinth::store {

// Keys compare as unsigned bytes (memcmp order). An empty `end` means "no upper bound".
struct KeySpan {
  std::string start;
  std::string end;

  // Exactly one key: [key, key + "\0").
  static KeySpan Key(std::string_view key);
  // Every key that begins with `prefix`. The empty prefix, or one of only 0xFF bytes, has no
  // finite successor, so its span is unbounded above.
  static KeySpan Prefix(std::string_view prefix);
  // [start, end); an empty end is unbounded.
  static KeySpan Between(std::string_view start, std::string_view end);
  // Every key.
  static KeySpan All() { return KeySpan{}; }

  bool Contains(std::string_view key) const;
  bool unbounded() const { return end.empty(); }
  // True for a span that can hold no key (end <= start with a bound).
  bool empty() const;

  friend bool operator==(const KeySpan&, const KeySpan&) = default;
};

// The smallest key greater than every key that begins with `prefix`, or "" if none exists.
std::string PrefixEnd(std::string_view prefix);

// Byte-wise unsigned comparison, as memcmp: <0, 0, >0.
int CompareKeys(std::string_view a, std::string_view b);

// A printable form of a key for messages: printable ASCII as is, other bytes as \xNN,
// truncated to a readable length.
std::string PrintableKey(std::string_view key);

}  // namespace plinth::store

#endif  // PLINTH_STORE_KEY_SPAN_H_
