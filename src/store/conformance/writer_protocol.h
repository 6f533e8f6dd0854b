// What store_conformance_writer commits and prints, shared by the writer and by the tests
// that check its work: keys and values are derived from the commit number, so a test can
// verify any acknowledged commit from its one-line acknowledgement.
#ifndef PLINTH_STORE_CONFORMANCE_WRITER_PROTOCOL_H_
#define PLINTH_STORE_CONFORMANCE_WRITER_PROTOCOL_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"

namespace plinth::store::conformance {

// Key of operation `op` of commit `commit`: "<prefix><commit as 6 digits>/<op>".
inline std::string WriterKey(std::string_view prefix, int64_t commit, int op) {
  char suffix[48];
  std::snprintf(suffix, sizeof(suffix), "%06lld/%d", static_cast<long long>(commit), op);
  return std::string(prefix) + suffix;
}

// The value written under `key`: "value of <key>", padded with '.' to at least `size` bytes.
inline std::string WriterValue(std::string_view key, size_t size) {
  std::string value = "value of " + std::string(key);
  if (value.size() < size) value.resize(size, '.');
  return value;
}

// One acknowledgement, printed (and flushed) after Commit returned OK:
// "rev <revision> <first key of the commit>\n".
struct WriterAck {
  Revision revision = 0;
  std::string first_key;
};

inline std::string FormatWriterAck(Revision revision, std::string_view first_key) {
  return "rev " + std::to_string(revision) + " " + std::string(first_key) + "\n";
}

// Parses a line (without its newline); nullopt if it is not an acknowledgement.
inline std::optional<WriterAck> ParseWriterAck(std::string_view line) {
  constexpr std::string_view kTag = "rev ";
  if (line.substr(0, kTag.size()) != kTag) return std::nullopt;
  line.remove_prefix(kTag.size());
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 == line.size()) {
    return std::nullopt;
  }
  WriterAck ack;
  for (char c : line.substr(0, space)) {
    if (c < '0' || c > '9') return std::nullopt;
    ack.revision = ack.revision * 10 + (c - '0');
  }
  ack.first_key = std::string(line.substr(space + 1));
  return ack;
}

}  // namespace plinth::store::conformance

#endif  // PLINTH_STORE_CONFORMANCE_WRITER_PROTOCOL_H_
