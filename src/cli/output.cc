#include "cli/output.h"

#include <algorithm>

namespace plinth::cli {
namespace {

// Length of the well-formed UTF-8 sequence starting at bytes[i], or 0 if it is not one.
size_t Utf8SequenceLength(std::string_view bytes, size_t i) {
  auto at = [&](size_t j) { return static_cast<unsigned char>(bytes[j]); };
  const unsigned char c = at(i);
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > bytes.size()) return 0;
  for (size_t j = 1; j < len; ++j) {
    if ((at(i + j) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (at(i + j) & 0x3F);
  }
  // Reject overlong forms, surrogates and code points beyond U+10FFFF.
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

// Display width of a cell: code points, a fair approximation for terminal columns.
size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (unsigned char c : s) width += (c & 0xC0) != 0x80 ? 1 : 0;
  return width;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    size_t len = Utf8SequenceLength(bytes, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string DisplayBytes(std::string_view bytes, size_t max_bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t shown = max_bytes > 0 ? std::min(max_bytes, bytes.size()) : bytes.size();
  for (size_t i = 0; i < shown;) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    const size_t len = Utf8SequenceLength(bytes, i);
    const bool printable = len > 1 ? i + len <= shown : (len == 1 && c >= 0x20 && c != 0x7F);
    if (printable && c != '\\') {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
      ++i;
    }
  }
  if (shown < bytes.size()) out += "...";
  return out;
}

std::string Base64(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t j) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[j])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 0x3F]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = at(i) << 16;
    if (rest == 2) v |= at(i + 1) << 8;
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

void SetBytesField(nlohmann::ordered_json& object, const std::string& field,
                   std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    object[field] = std::string(bytes);
  } else {
    object[field + "_base64"] = Base64(bytes);
  }
}

nlohmann::ordered_json KeyValueToJson(const store::KeyValue& kv) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  SetBytesField(j, "key", kv.key);
  SetBytesField(j, "value", kv.value);
  j["create_revision"] = kv.create_revision;
  j["mod_revision"] = kv.mod_revision;
  return j;
}

std::string_view EventTypeName(store::Event::Type type) {
  return type == store::Event::Type::kPut ? "PUT" : "DELETE";
}

nlohmann::ordered_json EventToJson(const store::Event& event) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["type"] = std::string(EventTypeName(event.type));
  SetBytesField(j, "key", event.kv.key);
  if (event.type == store::Event::Type::kPut) {
    SetBytesField(j, "value", event.kv.value);
    j["create_revision"] = event.kv.create_revision;
  }
  j["mod_revision"] = event.kv.mod_revision;
  return j;
}

nlohmann::ordered_json WatchBatchToJson(const store::WatchBatch& batch) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const store::Event& e : batch.events) events.push_back(EventToJson(e));
  return {{"revision", batch.revision}, {"events", std::move(events)}};
}

void PrintJson(std::ostream& out, const nlohmann::ordered_json& value, bool one_line) {
  // The replace handler keeps dump() from throwing even if a raw string slipped through.
  out << value.dump(one_line ? -1 : 2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
      << "\n";
}

TextTable::TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void TextTable::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

void TextTable::Print(std::ostream& out, std::string_view indent) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  for (const auto& row : rows_) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    out << line << "\n";
  }
}

}  // namespace plinth::cli
