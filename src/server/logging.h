// Logs of `plinth serve`: spdlog writing one JSON object per line (time, level, msg and
// key/value fields) or the same as human-readable text, at the level the configuration sets.
// gRPC's own log lines are routed into the same logger.
#ifndef PLINTH_SERVER_LOGGING_H_
#define PLINTH_SERVER_LOGGING_H_

#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/sink.h>

#include <concepts>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace plinth::server {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kJson, kText };

// "trace", "debug", "info", "warn" or "error"; anything else is InvalidArgument listing them.
StatusOr<LogLevel> ParseLogLevel(std::string_view text);
// "json" or "text"; anything else is InvalidArgument listing them.
StatusOr<LogFormat> ParseLogFormat(std::string_view text);
std::string_view LogLevelName(LogLevel level);
std::string_view LogFormatName(LogFormat format);
spdlog::level::level_enum ToSpdlogLevel(LogLevel level);

// One key/value field of a log line. Strings become JSON strings; numbers and booleans stay
// bare. The keys "time", "level" and "msg" are reserved: a field with one of them is written
// as "field.<key>".
class LogField {
 public:
  LogField(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  LogField(std::string_view key, const char* value) : key_(key), value_(value) {}
  LogField(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  LogField(std::string_view key, bool value)
      : key_(key), value_(value ? "true" : "false"), bare_(true) {}
  template <typename T>
  requires(std::integral<T> && !std::same_as<T, bool>) LogField(std::string_view key, T value)
      : key_(key), value_(std::to_string(value)), bare_(true) {}
  LogField(std::string_view key, double value);

  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  bool bare() const { return bare_; }

 private:
  std::string_view key_;
  std::string value_;
  bool bare_ = false;
};

// A formatter that writes `format` lines. Time is UTC with milliseconds (RFC 3339).
// JSON: {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"...","key":"value",...}
// text: 2024-05-01T12:00:00.123Z info  ... key=value key2="a value with spaces"
// Lines logged through plain spdlog calls (no fields) are formatted the same way.
std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format);

// A logger named "plinth" writing to `sink` with MakeLogFormatter(format) at `level`.
// Does not install it anywhere.
std::shared_ptr<spdlog::logger> MakeLogger(LogFormat format, LogLevel level, spdlog::sink_ptr sink);

// Process set-up for `plinth serve`: makes a logger writing to `sink` (standard error if
// null), installs it as spdlog's default logger (so spdlog::info(...) anywhere uses it) and
// routes gRPC's log lines (whose verbosity GRPC_VERBOSITY still governs) into it with the
// field component=grpc. Call early, before other threads log; calling again replaces the
// logger.
void SetUpLogging(LogFormat format, LogLevel level, spdlog::sink_ptr sink = nullptr);

// Logs `msg` with `fields` on `logger` (or spdlog's default logger). Thread-safe as spdlog
// loggers are.
void Log(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields = {});
void Log(spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields = {});

}  // namespace plinth::server

#endif  // PLINTH_SERVER_LOGGING_H_
