#include "server/logging.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

#include "common/status_matchers.h"

namespace plinth::server {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class LoggingTest : public ::testing::Test {
 protected:
  std::shared_ptr<spdlog::logger> Logger(LogFormat format, LogLevel level = LogLevel::kTrace) {
    return MakeLogger(format, level, std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
  }
  std::ostringstream out_;
};

TEST_F(LoggingTest, JsonLinesCarryTimeLevelMessageAndFields) {
  auto logger = Logger(LogFormat::kJson);
  Log(*logger, spdlog::level::info, "store opened",
      {{"url", "sqlite://./x.db"}, {"revision", int64_t{42}}, {"ready", true}, {"lag", 0.25}});
  EXPECT_THAT(out_.str(),
              MatchesRegex("\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                           "\\.[0-9]{3}Z\",\"level\":\"info\",\"msg\":\"store opened\","
                           "\"url\":\"sqlite://\\./x\\.db\",\"revision\":42,\"ready\":true,"
                           "\"lag\":0\\.25\\}\n"));
}

TEST_F(LoggingTest, JsonEscapesEverythingThatNeedsIt) {
  auto logger = Logger(LogFormat::kJson);
  Log(*logger, spdlog::level::warn, "a \"quote\" \\ and\nnewline\x01 \xff",
      {{"k\"", "v\t"}, {"msg", "reserved"}});
  std::string line = out_.str();
  EXPECT_THAT(line, HasSubstr("\"level\":\"warn\""));
  EXPECT_THAT(line, HasSubstr("\"msg\":\"a \\\"quote\\\" \\\\ and\\nnewline\\u0001 \\ufffd\""));
  EXPECT_THAT(line, HasSubstr("\"k\\\"\":\"v\\t\""));
  EXPECT_THAT(line, HasSubstr("\"field.msg\":\"reserved\""));
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST_F(LoggingTest, PlainSpdlogCallsAreJsonToo) {
  auto logger = Logger(LogFormat::kJson);
  logger->error("failed: {}", 7);
  EXPECT_THAT(out_.str(), HasSubstr("\"level\":\"error\",\"msg\":\"failed: 7\"}\n"));
}

TEST_F(LoggingTest, TextLinesAreReadable) {
  auto logger = Logger(LogFormat::kText);
  Log(*logger, spdlog::level::info, "listening",
      {{"address", "127.0.0.1:8443"}, {"who", "a b"}, {"n", 3}});
  EXPECT_THAT(out_.str(), MatchesRegex("[0-9T:.-]+Z info  listening address=127\\.0\\.0\\.1:8443 "
                                       "who=\"a b\" n=3\n"));
}

TEST_F(LoggingTest, LevelFiltersLines) {
  auto logger = Logger(LogFormat::kJson, LogLevel::kWarn);
  Log(*logger, spdlog::level::info, "hidden");
  Log(*logger, spdlog::level::err, "shown");
  EXPECT_THAT(out_.str(), Not(HasSubstr("hidden")));
  EXPECT_THAT(out_.str(), HasSubstr("shown"));
}

TEST_F(LoggingTest, SetUpLoggingRoutesSpdlogAndGrpcLines) {
  SetUpLogging(LogFormat::kJson, LogLevel::kInfo,
               std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
  spdlog::info("from spdlog");
  Log(spdlog::level::warn, "from plinth", {{"k", "v"}});
  grpc_init();  // sets gRPC's log verbosity; until then it logs nothing
  gpr_log(GPR_ERROR, "from grpc %d", 7);
  grpc_shutdown();
  std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("\"level\":\"info\",\"msg\":\"from spdlog\"}\n"));
  EXPECT_THAT(text, HasSubstr("\"msg\":\"from plinth\",\"k\":\"v\"}\n"));
  EXPECT_THAT(text,
              HasSubstr("\"level\":\"error\",\"msg\":\"from grpc 7\",\"component\":\"grpc\""));
  // gRPC's lines keep going to spdlog's default logger: point that back at stderr, as the
  // stream above dies with the test.
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

TEST(LogLevelTest, ParsesNamesAndRejectsOthers) {
  for (LogLevel level :
       {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    ASSERT_OK_AND_ASSIGN(LogLevel parsed, ParseLogLevel(LogLevelName(level)));
    EXPECT_EQ(parsed, level);
  }
  EXPECT_THAT(ParseLogLevel("INFO"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("trace")));
  ASSERT_OK_AND_ASSIGN(LogFormat format, ParseLogFormat("text"));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_THAT(ParseLogFormat("yaml"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace plinth::server
