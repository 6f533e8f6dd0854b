// Rendering store data for people and for scripts: byte strings shown safely in a terminal,
// aligned text tables, and JSON that stays valid whatever bytes a key or value holds.
#ifndef PLINTH_CLI_OUTPUT_H_
#define PLINTH_CLI_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace plinth::cli {

// True if `bytes` is well-formed UTF-8.
bool IsValidUtf8(std::string_view bytes);

// `bytes` for a terminal: printable UTF-8 as is; control characters, invalid UTF-8 and the
// backslash as \xNN (so the text is unambiguous). Never truncates unless `max_bytes` > 0, in
// which case at most that many input bytes are shown, followed by "...".
std::string DisplayBytes(std::string_view bytes, size_t max_bytes = 0);

// Standard base64 with padding.
std::string Base64(std::string_view bytes);

// Sets `object[field]` to `bytes` when it is valid UTF-8, else `object[field + "_base64"]`
// to its base64, so JSON output is always valid and lossless.
void SetBytesField(nlohmann::ordered_json& object, const std::string& field,
                   std::string_view bytes);

nlohmann::ordered_json KeyValueToJson(const store::KeyValue& kv);
nlohmann::ordered_json EventToJson(const store::Event& event);
nlohmann::ordered_json WatchBatchToJson(const store::WatchBatch& batch);

// Pretty-printed JSON plus a newline. Never throws (fields are built with SetBytesField).
void PrintJson(std::ostream& out, const nlohmann::ordered_json& value, bool one_line = false);

// Columns aligned on their widest cell, separated by two spaces; the header row first.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  void AddRow(std::vector<std::string> cells);
  // Writes every row, each line prefixed with `indent`.
  void Print(std::ostream& out, std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "PUT" or "DELETE".
std::string_view EventTypeName(store::Event::Type type);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_OUTPUT_H_
