#include "server/config.h"

#include <sys/un.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <utility>
#include <variant>

#include "server/spiffe_id.h"
#include "store/url.h"

extern char** environ;

namespace plinth::server {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMaxDuration = std::chrono::hours(24);
// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxSocketPathLength = sizeof(sockaddr_un::sun_path) - 1;

// How a key's value is written and checked.
enum class Kind {
  kString,    // any string, "" allowed
  kPath,      // a non-empty string
  kDuration,  // "5s"
  kCount,     // an integer >= 0
  kIdList,    // an array of SPIFFE IDs; in the environment, comma-separated
  kLogLevel,
  kLogFormat,
};

struct KeySpec {
  std::string_view key;  // as written in the file, dotted: "store.url"
  std::string_view env;  // PLINTH_STORE_URL
  Kind kind;
};

// Every key of the file format (documented in config.h), in file order.
constexpr KeySpec kKeys[] = {
    {"data_dir", "PLINTH_DATA_DIR", Kind::kPath},
    {"admin_socket", "PLINTH_ADMIN_SOCKET", Kind::kString},
    {"listen", "PLINTH_LISTEN", Kind::kString},
    {"trust_domain", "PLINTH_TRUST_DOMAIN", Kind::kString},
    {"admin_ids", "PLINTH_ADMIN_IDS", Kind::kIdList},
    {"store.url", "PLINTH_STORE_URL", Kind::kPath},
    {"store.history_retention", "PLINTH_STORE_HISTORY_RETENTION", Kind::kCount},
    {"store.consistent_read_timeout", "PLINTH_STORE_CONSISTENT_READ_TIMEOUT", Kind::kDuration},
    {"tls.cert_file", "PLINTH_TLS_CERT_FILE", Kind::kPath},
    {"tls.key_file", "PLINTH_TLS_KEY_FILE", Kind::kPath},
    {"tls.bundle_file", "PLINTH_TLS_BUNDLE_FILE", Kind::kPath},
    {"tls.refresh_interval", "PLINTH_TLS_REFRESH_INTERVAL", Kind::kDuration},
    {"metrics.listen", "PLINTH_METRICS_LISTEN", Kind::kString},
    {"log.level", "PLINTH_LOG_LEVEL", Kind::kLogLevel},
    {"log.format", "PLINTH_LOG_FORMAT", Kind::kLogFormat},
};
constexpr std::string_view kSections[] = {"store", "tls", "metrics", "log"};

// A value as read, before it is checked: a string, an integer or a list of strings. Each
// list item keeps its own origin so that a message can point at it.
struct ListItem {
  std::string value;
  std::string origin;
};
using RawValue = std::variant<std::string, int64_t, std::vector<ListItem>>;

// Where a value came from, for messages: "config f.toml:3:1: listen",
// "PLINTH_LISTEN (listen)" or "config: listen" for a default.
std::string FileOrigin(const std::string& file, const toml::source_region& where,
                       std::string_view key) {
  std::ostringstream out;
  out << "config " << file << ":" << where.begin.line << ":" << where.begin.column << ": " << key;
  return out.str();
}

std::string EnvOrigin(std::string_view env, std::string_view key) {
  return std::string(env) + " (" + std::string(key) + ")";
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    default:
      return "nothing";
  }
}

std::string_view ExpectedName(Kind kind) {
  switch (kind) {
    case Kind::kCount:
      return "an integer";
    case Kind::kIdList:
      return "an array of strings";
    case Kind::kDuration:
      return "a duration string like \"5s\"";
    default:
      return "a string";
  }
}

// Converts a TOML node for `spec` into a RawValue, checking only its type.
StatusOr<RawValue> FromToml(const KeySpec& spec, const toml::node& node, const std::string& file) {
  std::string origin = FileOrigin(file, node.source(), spec.key);
  auto wrong_type = [&]() {
    return InvalidArgumentError(origin + ": expected " + std::string(ExpectedName(spec.kind)) +
                                ", got " + std::string(TypeName(node)));
  };
  switch (spec.kind) {
    case Kind::kCount:
      if (!node.is_integer()) return wrong_type();
      return RawValue(node.as_integer()->get());
    case Kind::kIdList: {
      const toml::array* array = node.as_array();
      if (array == nullptr) return wrong_type();
      std::vector<ListItem> items;
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& item = *array->get(i);
        std::string item_origin =
            FileOrigin(file, item.source(), std::string(spec.key) + "[" + std::to_string(i) + "]");
        if (!item.is_string()) {
          return InvalidArgumentError(item_origin + ": expected a string, got " +
                                      std::string(TypeName(item)));
        }
        items.push_back({item.as_string()->get(), std::move(item_origin)});
      }
      return RawValue(std::move(items));
    }
    default:
      if (!node.is_string()) return wrong_type();
      return RawValue(node.as_string()->get());
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Converts an environment variable's text for `spec` into a RawValue.
StatusOr<RawValue> FromEnv(const KeySpec& spec, std::string_view text) {
  std::string origin = EnvOrigin(spec.env, spec.key);
  switch (spec.kind) {
    case Kind::kCount: {
      int64_t value = 0;
      std::string_view t = Trim(text);
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
        return InvalidArgumentError(origin + ": " + Quote(text) + " is not an integer");
      }
      return RawValue(value);
    }
    case Kind::kIdList: {
      // "" is the empty list; otherwise comma-separated items, spaces around them ignored.
      std::vector<ListItem> items;
      if (Trim(text).empty()) return RawValue(std::move(items));
      size_t start = 0;
      for (size_t i = 0;; ++i) {
        size_t comma = text.find(',', start);
        std::string_view item = Trim(text.substr(start, comma - start));
        items.push_back({std::string(item), std::string(spec.env) + " (" + std::string(spec.key) +
                                                "[" + std::to_string(i) + "])"});
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      return RawValue(std::move(items));
    }
    default:
      return RawValue(std::string(text));
  }
}

// Collects the values of one configuration and checks them.
class ConfigBuilder {
 public:
  explicit ConfigBuilder(std::string source_file) { config_.source_file = std::move(source_file); }

  // Checks `value` for `spec` and stores it; `origin` names it in messages.
  Status Set(const KeySpec& spec, const RawValue& value, const std::string& origin) {
    origins_[std::string(spec.key)] = origin;
    auto fail = [&](std::string_view why) {
      return InvalidArgumentError(origin + ": " + std::string(why));
    };
    const std::string* text = std::get_if<std::string>(&value);
    std::string_view key = spec.key;
    switch (spec.kind) {
      case Kind::kPath:
        if (text->empty()) return fail("must not be empty");
        break;
      case Kind::kDuration: {
        StatusOr<milliseconds> d = ParseDuration(*text);
        if (!d.ok()) return fail(d.status().message());
        if (key == "tls.refresh_interval") {
          if (*d < std::chrono::seconds(1) || d->count() % 1000 != 0) {
            return fail(Quote(*text) + " is not a whole number of seconds of at least 1s");
          }
          config_.tls.refresh_interval = std::chrono::duration_cast<std::chrono::seconds>(*d);
        } else {
          if (d->count() == 0) return fail("must be more than 0");
          config_.consistent_read_timeout = *d;
        }
        return Status::Ok();
      }
      case Kind::kCount: {
        int64_t n = std::get<int64_t>(value);
        if (n < 0) return fail(std::to_string(n) + " is negative");
        config_.history_retention = n;
        return Status::Ok();
      }
      case Kind::kIdList: {
        config_.admin_ids.clear();
        admin_id_origins_.clear();
        std::set<std::string> seen;
        for (const ListItem& item : std::get<std::vector<ListItem>>(value)) {
          StatusOr<SpiffeId> id = SpiffeId::Parse(item.value);
          if (!id.ok()) {
            return InvalidArgumentError(
                item.origin + ": " + Quote(item.value) +
                " is not a SPIFFE ID: " + std::string(id.status().message()));
          }
          if (!seen.insert(item.value).second) {
            return InvalidArgumentError(item.origin + ": " + Quote(item.value) +
                                        " is listed twice");
          }
          config_.admin_ids.push_back(item.value);
          admin_id_origins_.push_back(item.origin);
        }
        return Status::Ok();
      }
      case Kind::kLogLevel: {
        StatusOr<LogLevel> level = ParseLogLevel(*text);
        if (!level.ok()) return fail(level.status().message());
        config_.log_level = *level;
        return Status::Ok();
      }
      case Kind::kLogFormat: {
        StatusOr<LogFormat> format = ParseLogFormat(*text);
        if (!format.ok()) return fail(format.status().message());
        config_.log_format = *format;
        return Status::Ok();
      }
      case Kind::kString:
        break;
    }
    // Strings and paths: checks that need only the value itself.
    if (key == "listen" || key == "metrics.listen") {
      if (!text->empty()) {
        StatusOr<HostPort> address = ParseListenAddress(*text);
        if (!address.ok()) return fail(address.status().message());
      }
    } else if (key == "trust_domain") {
      if (!text->empty()) {
        Status s = ValidateTrustDomain(*text);
        if (!s.ok())
          return fail(Quote(*text) + " is not a trust domain: " + std::string(s.message()));
      }
    } else if (key == "store.url") {
      StatusOr<store::StoreUrl> url = store::ParseStoreUrl(*text);
      if (!url.ok()) return fail(url.status().message());
    }
    *StringField(key) = *text;
    explicitly_set_.insert(std::string(key));
    return Status::Ok();
  }

  // Fills derived defaults and checks the keys against each other.
  StatusOr<ServerConfig> Finish() && {
    if (!explicitly_set_.contains("store.url")) {
      config_.store_url = "sqlite://" + EscapeForUrl(JoinPath(config_.data_dir, "plinth.db"));
      origins_["store.url"] = Origin("data_dir") + " (the default store.url derives from it)";
      StatusOr<store::StoreUrl> url = store::ParseStoreUrl(config_.store_url);
      if (!url.ok()) {
        return InvalidArgumentError(origins_["store.url"] + ": " +
                                    std::string(url.status().message()));
      }
    }
    if (!explicitly_set_.contains("admin_socket")) {
      config_.admin_socket = JoinPath(config_.data_dir, "admin.sock");
      origins_["admin_socket"] = Origin("data_dir") + " (the default admin_socket derives from it)";
    }
    if (config_.admin_socket.size() > kMaxSocketPathLength) {
      return InvalidArgumentError(
          Origin("admin_socket") + ": the path is " + std::to_string(config_.admin_socket.size()) +
          " bytes; a Unix socket path may have at most " + std::to_string(kMaxSocketPathLength));
    }
    if (config_.listen.empty() && config_.admin_socket.empty()) {
      return InvalidArgumentError(
          Origin("admin_socket") +
          ": nothing to serve: the admin socket is off (\"\") and listen is not set");
    }
    if (!config_.listen.empty()) {
      std::string because = " when listen is set (" + Origin("listen") + ")";
      if (config_.trust_domain.empty()) {
        return InvalidArgumentError(Origin("trust_domain") + ": required" + because);
      }
      for (auto [key, value] : {std::pair{"tls.cert_file", &config_.tls.cert_file},
                                std::pair{"tls.key_file", &config_.tls.key_file},
                                std::pair{"tls.bundle_file", &config_.tls.bundle_file}}) {
        if (value->empty()) return InvalidArgumentError(Origin(key) + ": required" + because);
      }
    }
    if (!config_.trust_domain.empty()) {
      for (size_t i = 0; i < config_.admin_ids.size(); ++i) {
        StatusOr<SpiffeId> id = SpiffeId::Parse(config_.admin_ids[i]);
        if (id.ok() && id->trust_domain() != config_.trust_domain) {
          return InvalidArgumentError(admin_id_origins_[i] + ": " + Quote(config_.admin_ids[i]) +
                                      " is not in trust_domain " + Quote(config_.trust_domain));
        }
      }
    }
    return std::move(config_);
  }

 private:
  std::string* StringField(std::string_view key) {
    if (key == "data_dir") return &config_.data_dir;
    if (key == "admin_socket") return &config_.admin_socket;
    if (key == "listen") return &config_.listen;
    if (key == "trust_domain") return &config_.trust_domain;
    if (key == "store.url") return &config_.store_url;
    if (key == "tls.cert_file") return &config_.tls.cert_file;
    if (key == "tls.key_file") return &config_.tls.key_file;
    if (key == "tls.bundle_file") return &config_.tls.bundle_file;
    PLINTH_CHECK(key == "metrics.listen") << key;
    return &config_.metrics_listen;
  }

  std::string Origin(const std::string& key) const {
    auto it = origins_.find(key);
    if (it != origins_.end()) return it->second;
    std::string where = config_.source_file.empty() ? "config" : "config " + config_.source_file;
    return where + ": " + key;
  }

  static std::string JoinPath(const std::string& dir, std::string_view name) {
    if (!dir.empty() && dir.back() == '/') return dir + std::string(name);
    return dir + "/" + std::string(name);
  }

  // A store URL's location is percent-decoded and ends at '?': escape what would be misread.
  static std::string EscapeForUrl(std::string_view path) {
    std::string out;
    for (char c : path) {
      if (c == '%') {
        out += "%25";
      } else if (c == '?') {
        out += "%3F";
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  ServerConfig config_;
  std::map<std::string, std::string> origins_;
  std::vector<std::string> admin_id_origins_;
  std::set<std::string> explicitly_set_;
};

// Reads and parses the file; InvalidArgument with file:line:col for a syntax error.
StatusOr<toml::table> ParseFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return InvalidArgumentError("config " + path + ": cannot read: " + std::strerror(err));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return InvalidArgumentError("config " + path + ": cannot read");
  std::string text = content.str();
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << "config " << path << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": " << e.description();
    return InvalidArgumentError(out.str());
  } catch (const std::exception& e) {
    return InvalidArgumentError("config " + path + ": " + e.what());
  }
#else
  toml::parse_result result = toml::parse(text, path);
  if (!result) {
    std::ostringstream out;
    out << "config " << path << ":" << result.error().source().begin.line << ":"
        << result.error().source().begin.column << ": " << result.error().description();
    return InvalidArgumentError(out.str());
  }
  return std::move(result).table();
#endif
}

const KeySpec* FindKey(std::string_view key) {
  for (const KeySpec& spec : kKeys) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

// Applies every key of `root` to `builder`; InvalidArgument naming every unknown key.
Status ApplyFile(const toml::table& root, const std::string& path, ConfigBuilder& builder) {
  std::vector<std::string> unknown;
  auto note_unknown = [&](const std::string& key, const toml::node& node) {
    unknown.push_back(Quote(key) + " (line " + std::to_string(node.source().begin.line) + ")");
  };
  // First find every unknown key, so that one run reports them all.
  for (const auto& [key, node] : root) {
    std::string name(key.str());
    bool is_section =
        std::find(std::begin(kSections), std::end(kSections), name) != std::end(kSections);
    if (is_section && node.is_table()) {
      for (const auto& [sub_key, sub_node] : *node.as_table()) {
        std::string dotted = name + "." + std::string(sub_key.str());
        if (FindKey(dotted) == nullptr) note_unknown(dotted, sub_node);
      }
    } else if (is_section) {
      return InvalidArgumentError(FileOrigin(path, node.source(), name) + ": expected a table ([" +
                                  name + "]), got " + std::string(TypeName(node)));
    } else if (FindKey(name) == nullptr) {
      note_unknown(name, node);
    }
  }
  if (!unknown.empty()) {
    std::string message =
        "config " + path + ": unknown key" + (unknown.size() > 1 ? "s" : "") + " ";
    for (size_t i = 0; i < unknown.size(); ++i) message += (i ? ", " : "") + unknown[i];
    return InvalidArgumentError(message);
  }
  for (const KeySpec& spec : kKeys) {
    const toml::node* node = root.at_path(spec.key).node();
    if (node == nullptr) continue;
    PLINTH_ASSIGN_OR_RETURN(RawValue value, FromToml(spec, *node, path));
    PLINTH_RETURN_IF_ERROR(builder.Set(spec, value, FileOrigin(path, node->source(), spec.key)));
  }
  return Status::Ok();
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (!entry.starts_with("PLINTH_")) continue;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

StatusOr<ServerConfig> LoadConfig(const std::optional<std::string>& path, const Environment& env) {
  ConfigBuilder builder(path.value_or(""));
  if (path.has_value()) {
    PLINTH_ASSIGN_OR_RETURN(toml::table root, ParseFile(*path));
    PLINTH_RETURN_IF_ERROR(ApplyFile(root, *path, builder));
  }
  for (const KeySpec& spec : kKeys) {
    auto it = env.find(spec.env);
    if (it == env.end()) continue;
    PLINTH_ASSIGN_OR_RETURN(RawValue value, FromEnv(spec, it->second));
    PLINTH_RETURN_IF_ERROR(builder.Set(spec, value, EnvOrigin(spec.env, spec.key)));
  }
  return std::move(builder).Finish();
}

std::string DescribeConfig(const ServerConfig& c) {
  auto or_off = [](const std::string& s) { return s.empty() ? std::string("off") : s; };
  auto or_unset = [](const std::string& s) { return s.empty() ? std::string("unset") : s; };
  std::string ids;
  for (const std::string& id : c.admin_ids) ids += (ids.empty() ? "" : ",") + id;
  std::ostringstream out;
  out << "config=" << (c.source_file.empty() ? std::string("none (defaults)") : c.source_file)
      << " data_dir=" << c.data_dir << " store.url=" << store::RedactUrl(c.store_url)
      << " store.history_retention=" << c.history_retention
      << " store.consistent_read_timeout=" << FormatDuration(c.consistent_read_timeout)
      << " admin_socket=" << or_off(c.admin_socket) << " listen=" << or_off(c.listen)
      << " trust_domain=" << or_unset(c.trust_domain) << " admin_ids=[" << ids << "]"
      << " tls.cert_file=" << or_unset(c.tls.cert_file)
      << " tls.key_file=" << or_unset(c.tls.key_file)
      << " tls.bundle_file=" << or_unset(c.tls.bundle_file)
      << " tls.refresh_interval=" << FormatDuration(c.tls.refresh_interval)
      << " metrics.listen=" << or_off(c.metrics_listen)
      << " log.level=" << LogLevelName(c.log_level)
      << " log.format=" << LogFormatName(c.log_format);
  return out.str();
}

StatusOr<HostPort> ParseListenAddress(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError(Quote(text) +
                                " is not a listen address (host:port): " + std::string(why));
  };
  HostPort result;
  std::string_view port_text;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("no ']' after the IPv6 address");
    result.host = std::string(text.substr(1, close - 1));
    if (result.host.empty()) return fail("empty IPv6 address");
    for (char c : result.host) {
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                c == ':' || c == '.';
      if (!ok) return fail("invalid IPv6 address");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("no ':port' after ']'");
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("no ':port'");
    result.host = std::string(text.substr(0, colon));
    if (result.host.empty()) return fail("no host (use 0.0.0.0 or [::] for every address)");
    for (char c : result.host) {
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '.' || c == '-' || c == '_';
      if (c == ':') return fail("an IPv6 address must be in brackets: [::1]:443");
      if (!ok) return fail("invalid host name");
    }
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return fail("the port is not a number from 0 to 65535");
  }
  result.port = static_cast<uint16_t>(port);
  return result;
}

StatusOr<milliseconds> ParseDuration(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError(Quote(text) +
                                " is not a duration (like \"250ms\", \"5s\", \"2m\"," +
                                " \"1h\"): " + std::string(why));
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return fail("it must start with a whole number");
  std::string_view unit = text.substr(digits);
  int64_t per_unit;
  if (unit == "ms") {
    per_unit = 1;
  } else if (unit == "s") {
    per_unit = 1000;
  } else if (unit == "m") {
    per_unit = 60 * 1000;
  } else if (unit == "h") {
    per_unit = 3600 * 1000;
  } else {
    return fail(unit.empty() ? "no unit" : "unknown unit " + Quote(unit));
  }
  int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, count);
  if (ec != std::errc() || count > kMaxDuration.count() / per_unit) return fail("more than 24h");
  return milliseconds(count * per_unit);
}

std::string FormatDuration(milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms != 0 && ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace plinth::server
