#include "server/logging.h"

#include <grpc/support/log.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <string>

namespace plinth::server {
namespace {

// Fields travel inside spdlog's message payload, after the message text:
//   msg ( kFieldStart kind key kKeyEnd value )*
// where kind is 's' (a string) or 'b' (bare: a number or boolean). Log() removes these two
// control characters from the text it is given, so they only ever appear as separators.
constexpr char kFieldStart = '\x1f';
constexpr char kKeyEnd = '\x1e';

void AppendSanitized(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(c == kFieldStart || c == kKeyEnd ? ' ' : c);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

void Append(spdlog::memory_buf_t& out, std::string_view text) {
  out.append(text.data(), text.data() + text.size());
}

// Appends `text` as the inside of a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD so that every line is valid JSON.
void AppendJsonEscaped(spdlog::memory_buf_t& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        Append(out, "\\ufffd");
        ++i;
      } else {
        out.append(text.data() + i, text.data() + i + n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        Append(out, "\\\"");
        break;
      case '\\':
        Append(out, "\\\\");
        break;
      case '\n':
        Append(out, "\\n");
        break;
      case '\r':
        Append(out, "\\r");
        break;
      case '\t':
        Append(out, "\\t");
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char esc[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xf]};
          out.append(esc, esc + 6);
        } else {
          out.push_back(c);
        }
    }
    ++i;
  }
}

void AppendTime(spdlog::memory_buf_t& out, std::chrono::system_clock::time_point t) {
  auto since_epoch = t.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  time_t tt = static_cast<time_t>(seconds.count());
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  n += static_cast<size_t>(
      snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(millis.count())));
  out.append(buf, buf + n);
}

std::string_view LevelText(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

struct Field {
  std::string_view key;
  std::string_view value;
  bool bare;
};

// Splits a payload into the message and calls `on_field` for each field.
template <typename OnField>
std::string_view SplitPayload(std::string_view payload, OnField on_field) {
  size_t start = payload.find(kFieldStart);
  std::string_view msg = payload.substr(0, start);
  while (start != std::string_view::npos) {
    size_t next = payload.find(kFieldStart, start + 1);
    std::string_view item = payload.substr(
        start + 1, next == std::string_view::npos ? std::string_view::npos : next - start - 1);
    size_t key_end = item.find(kKeyEnd);
    if (!item.empty() && key_end != std::string_view::npos) {
      std::string_view key = item.substr(1, key_end - 1);
      on_field(Field{key, item.substr(key_end + 1), item[0] == 'b'});
    }
    start = next;
  }
  return msg;
}

bool IsReservedKey(std::string_view key) { return key == "time" || key == "level" || key == "msg"; }

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    Append(dest, "{\"time\":\"");
    AppendTime(dest, msg.time);
    Append(dest, "\",\"level\":\"");
    Append(dest, LevelText(msg.level));
    Append(dest, "\",\"msg\":\"");
    std::string_view text = SplitPayload(payload, [](const Field&) {});
    AppendJsonEscaped(dest, text);
    dest.push_back('"');
    SplitPayload(payload, [&](const Field& f) {
      Append(dest, ",\"");
      if (IsReservedKey(f.key)) Append(dest, "field.");
      AppendJsonEscaped(dest, f.key);
      Append(dest, "\":");
      if (f.bare) {
        Append(dest, f.value);
      } else {
        dest.push_back('"');
        AppendJsonEscaped(dest, f.value);
        dest.push_back('"');
      }
    });
    Append(dest, "}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    AppendTime(dest, msg.time);
    dest.push_back(' ');
    std::string_view level = LevelText(msg.level);
    Append(dest, level);
    for (size_t i = level.size(); i < 5; ++i) dest.push_back(' ');
    dest.push_back(' ');
    std::string_view text = SplitPayload(payload, [](const Field&) {});
    Append(dest, text);
    SplitPayload(payload, [&](const Field& f) {
      dest.push_back(' ');
      Append(dest, f.key);
      dest.push_back('=');
      if (!f.bare && NeedsQuotes(f.value)) {
        dest.push_back('"');
        AppendJsonEscaped(dest, f.value);
        dest.push_back('"');
      } else {
        Append(dest, f.value);
      }
    });
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

void GrpcLogToSpdlog(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::info;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  std::shared_ptr<spdlog::logger> logger = spdlog::default_logger();
  Log(*logger, level, args->message != nullptr ? args->message : "",
      {{"component", "grpc"},
       {"file", args->file != nullptr ? args->file : ""},
       {"line", args->line}});
}

}  // namespace

StatusOr<LogLevel> ParseLogLevel(std::string_view text) {
  if (text == "trace") return LogLevel::kTrace;
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warn") return LogLevel::kWarn;
  if (text == "error") return LogLevel::kError;
  return InvalidArgumentError("\"" + std::string(text) +
                              "\" is not a log level (trace, debug, info, warn or error)");
}

StatusOr<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "json") return LogFormat::kJson;
  if (text == "text") return LogFormat::kText;
  return InvalidArgumentError("\"" + std::string(text) + "\" is not a log format (json or text)");
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string_view LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

spdlog::level::level_enum ToSpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

LogField::LogField(std::string_view key, double value) : key_(key), bare_(true) {
  if (!std::isfinite(value)) {
    // JSON has no NaN or infinity: write them as strings.
    value_ = std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf");
    bare_ = false;
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  value_.assign(buf, ec == std::errc() ? end : buf);
}

std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

std::shared_ptr<spdlog::logger> MakeLogger(LogFormat format, LogLevel level,
                                           spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("plinth", std::move(sink));
  logger->set_formatter(MakeLogFormatter(format));
  logger->set_level(ToSpdlogLevel(level));
  // Warnings and errors reach the file at once, even if the process then dies.
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void SetUpLogging(LogFormat format, LogLevel level, spdlog::sink_ptr sink) {
  if (sink == nullptr) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::set_default_logger(MakeLogger(format, level, std::move(sink)));
  gpr_set_log_function(&GrpcLogToSpdlog);
}

void Log(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields) {
  if (!logger.should_log(level)) return;
  std::string payload;
  payload.reserve(msg.size() + fields.size() * 24);
  AppendSanitized(payload, msg);
  for (const LogField& field : fields) {
    payload.push_back(kFieldStart);
    payload.push_back(field.bare() ? 'b' : 's');
    AppendSanitized(payload, field.key());
    payload.push_back(kKeyEnd);
    AppendSanitized(payload, field.value());
  }
  logger.log(level, spdlog::string_view_t(payload));
}

void Log(spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields) {
  Log(*spdlog::default_logger(), level, msg, fields);
}

}  // namespace plinth::server
