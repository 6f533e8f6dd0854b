#include "store/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace plinth::store {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

StatusOr<std::string> PercentDecode(std::string_view in, std::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return InvalidArgumentError("truncated percent escape in " + std::string(what));
    }
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("bad percent escape in " + std::string(what));
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const size_t authority = sep + 3;
  const size_t authority_end = url.find_first_of("/?", authority);
  const std::string_view auth =
      url.substr(authority, authority_end == std::string_view::npos ? std::string_view::npos
                                                                    : authority_end - authority);
  const size_t at = auth.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const size_t colon = auth.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, authority + colon + 1));
  out += "***";
  out += url.substr(authority + at);
  return out;
}

StatusOr<StoreUrl> ParseStoreUrl(std::string_view text) {
  StoreUrl url;
  url.text = std::string(text);
  url.redacted = RedactUrl(text);
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return InvalidArgumentError("store URL \"" + url.redacted +
                                "\" has no scheme; expected e.g. sqlite:///path/to/plinth.db or "
                                "memory://");
  }
  url.scheme = Lower(text.substr(0, sep));
  for (char c : url.scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return InvalidArgumentError("store URL \"" + url.redacted + "\" has an invalid scheme");
    }
  }
  std::string_view rest = text.substr(sep + 3);
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  PLINTH_ASSIGN_OR_RETURN(url.location, PercentDecode(rest, "store URL location"));
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgumentError("store URL option \"" + std::string(pair) +
                                  "\" is not name=value");
    }
    PLINTH_ASSIGN_OR_RETURN(std::string name, PercentDecode(pair.substr(0, eq), "option name"));
    PLINTH_ASSIGN_OR_RETURN(std::string value,
                            PercentDecode(pair.substr(eq + 1), "option " + name));
    name = Lower(name);
    if (!url.options.emplace(name, std::move(value)).second) {
      return InvalidArgumentError("store URL option \"" + name + "\" is given twice");
    }
  }
  return url;
}

UrlOptions::UrlOptions(const StoreUrl& url) : url_(url), remaining_(url.options) {}

std::string UrlOptions::Context(std::string_view name) const {
  return "option \"" + std::string(name) + "\" of " + url_.scheme + " store URL";
}

std::optional<std::string> UrlOptions::TakeString(std::string_view name) {
  auto it = remaining_.find(std::string(name));
  if (it == remaining_.end()) return std::nullopt;
  std::string value = std::move(it->second);
  remaining_.erase(it);
  return value;
}

StatusOr<std::optional<std::string>> UrlOptions::TakeEnum(std::string_view name,
                                                          const std::vector<std::string>& allowed) {
  std::optional<std::string> raw = TakeString(name);
  if (!raw) return std::optional<std::string>();
  std::string value = Lower(*raw);
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) {
    return std::optional<std::string>(value);
  }
  std::string choices;
  for (const std::string& a : allowed) choices += (choices.empty() ? "" : ", ") + a;
  return InvalidArgumentError(Context(name) + " is \"" + *raw + "\"; expected one of " + choices);
}

StatusOr<std::optional<int64_t>> UrlOptions::TakeInt(std::string_view name, int64_t min,
                                                     int64_t max) {
  std::optional<std::string> raw = TakeString(name);
  if (!raw) return std::optional<int64_t>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), value);
  if (ec != std::errc() || end != raw->data() + raw->size()) {
    return InvalidArgumentError(Context(name) + " is \"" + *raw + "\"; expected an integer");
  }
  if (value < min || value > max) {
    return InvalidArgumentError(Context(name) + " is " + *raw + "; expected " +
                                std::to_string(min) + ".." + std::to_string(max));
  }
  return std::optional<int64_t>(value);
}

StatusOr<std::optional<bool>> UrlOptions::TakeBool(std::string_view name) {
  PLINTH_ASSIGN_OR_RETURN(auto v, TakeEnum(name, {"true", "false", "1", "0", "yes", "no"}));
  if (!v) return std::optional<bool>();
  return std::optional<bool>(*v == "true" || *v == "1" || *v == "yes");
}

StatusOr<std::optional<std::chrono::milliseconds>> UrlOptions::TakeDuration(std::string_view name) {
  std::optional<std::string> raw = TakeString(name);
  if (!raw) return std::optional<std::chrono::milliseconds>();
  int64_t number = 0;
  auto [end, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), number);
  std::string_view unit(end, raw->data() + raw->size() - end);
  int64_t scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  if (ec != std::errc() || scale == 0 || number < 0) {
    return InvalidArgumentError(Context(name) + " is \"" + *raw +
                                "\"; expected a duration like 250ms, 5s, 2m or 1h");
  }
  return std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(number * scale));
}

Status UrlOptions::CheckAllTaken() const {
  if (remaining_.empty()) return Status::Ok();
  return InvalidArgumentError("unknown option \"" + remaining_.begin()->first + "\" in " +
                              url_.scheme + " store URL \"" + url_.redacted + "\"");
}

}  // namespace plinth::store
