#include "server/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "common/status_matchers.h"

namespace plinth::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "plinth_config_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `toml` to a file and returns its path.
  std::string Write(std::string_view toml) {
    std::string path = dir_ + "/plinth.toml";
    std::ofstream(path) << toml;
    return path;
  }

  StatusOr<ServerConfig> Load(std::string_view toml, const Environment& env = {}) {
    return LoadConfig(Write(toml), env);
  }

  std::string dir_;
};

constexpr std::string_view kFullConfig = R"(
data_dir = "/var/lib/plinth"
admin_socket = "/run/plinth/admin.sock"
listen = "0.0.0.0:8443"
trust_domain = "example.org"
admin_ids = ["spiffe://example.org/admin", "spiffe://example.org/ops/alice"]

[store]
url = "postgres://plinth:secret@db.example.org/plinth"
history_retention = 5000
consistent_read_timeout = "250ms"

[tls]
cert_file = "/run/plinth/svid.pem"
key_file = "/run/plinth/svid_key.pem"
bundle_file = "/run/plinth/bundle.pem"
refresh_interval = "2s"

[metrics]
listen = "127.0.0.1:9464"

[log]
level = "debug"
format = "text"
)";

TEST_F(ConfigTest, DefaultsServeSqliteUnderPlinthDataOnTheAdminSocket) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, LoadConfig(std::nullopt, {}));
  EXPECT_EQ(config.data_dir, "./plinth-data");
  EXPECT_EQ(config.store_url, "sqlite://./plinth-data/plinth.db");
  EXPECT_EQ(config.admin_socket, "./plinth-data/admin.sock");
  EXPECT_EQ(config.listen, "");
  EXPECT_EQ(config.metrics_listen, "");
  EXPECT_EQ(config.trust_domain, "");
  EXPECT_TRUE(config.admin_ids.empty());
  EXPECT_EQ(config.history_retention, 100000);
  EXPECT_EQ(config.consistent_read_timeout, seconds(5));
  EXPECT_EQ(config.tls.refresh_interval, seconds(5));
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_EQ(config.log_format, LogFormat::kJson);
  EXPECT_EQ(config.source_file, "");
}

TEST_F(ConfigTest, AnEmptyFileGivesTheDefaults) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load(""));
  EXPECT_EQ(config.store_url, "sqlite://./plinth-data/plinth.db");
  EXPECT_EQ(config.source_file, dir_ + "/plinth.toml");
}

TEST_F(ConfigTest, ReadsEveryKey) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load(kFullConfig));
  EXPECT_EQ(config.data_dir, "/var/lib/plinth");
  EXPECT_EQ(config.admin_socket, "/run/plinth/admin.sock");
  EXPECT_EQ(config.listen, "0.0.0.0:8443");
  EXPECT_EQ(config.trust_domain, "example.org");
  EXPECT_THAT(config.admin_ids,
              ElementsAre("spiffe://example.org/admin", "spiffe://example.org/ops/alice"));
  EXPECT_EQ(config.store_url, "postgres://plinth:secret@db.example.org/plinth");
  EXPECT_EQ(config.history_retention, 5000);
  EXPECT_EQ(config.consistent_read_timeout, milliseconds(250));
  EXPECT_EQ(config.tls.cert_file, "/run/plinth/svid.pem");
  EXPECT_EQ(config.tls.key_file, "/run/plinth/svid_key.pem");
  EXPECT_EQ(config.tls.bundle_file, "/run/plinth/bundle.pem");
  EXPECT_EQ(config.tls.refresh_interval, seconds(2));
  EXPECT_EQ(config.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
  EXPECT_EQ(config.log_format, LogFormat::kText);
}

TEST_F(ConfigTest, DataDirMovesTheDerivedDefaults) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load("data_dir = \"/srv/p/\"\n"));
  EXPECT_EQ(config.store_url, "sqlite:///srv/p/plinth.db");
  EXPECT_EQ(config.admin_socket, "/srv/p/admin.sock");
  ASSERT_OK_AND_ASSIGN(config, LoadConfig(std::nullopt, {{"PLINTH_DATA_DIR", "/a%b?"}}));
  EXPECT_EQ(config.store_url, "sqlite:///a%25b%3F/plinth.db");
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  Environment env = {
      {"PLINTH_DATA_DIR", "/env/data"},
      {"PLINTH_ADMIN_SOCKET", "/env/admin.sock"},
      {"PLINTH_LISTEN", "[::]:9443"},
      {"PLINTH_TRUST_DOMAIN", "example.com"},
      {"PLINTH_ADMIN_IDS", "spiffe://example.com/a, spiffe://example.com/b"},
      {"PLINTH_STORE_URL", "memory://"},
      {"PLINTH_STORE_HISTORY_RETENTION", "0"},
      {"PLINTH_STORE_CONSISTENT_READ_TIMEOUT", "1m"},
      {"PLINTH_TLS_CERT_FILE", "/env/cert.pem"},
      {"PLINTH_TLS_KEY_FILE", "/env/key.pem"},
      {"PLINTH_TLS_BUNDLE_FILE", "/env/bundle.pem"},
      {"PLINTH_TLS_REFRESH_INTERVAL", "1m"},
      {"PLINTH_METRICS_LISTEN", "localhost:0"},
      {"PLINTH_LOG_LEVEL", "warn"},
      {"PLINTH_LOG_FORMAT", "json"},
      {"PLINTH_TEST_POSTGRES_URL", "not a config key, ignored"},
  };
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load(kFullConfig, env));
  EXPECT_EQ(config.data_dir, "/env/data");
  EXPECT_EQ(config.admin_socket, "/env/admin.sock");
  EXPECT_EQ(config.listen, "[::]:9443");
  EXPECT_EQ(config.trust_domain, "example.com");
  EXPECT_THAT(config.admin_ids, ElementsAre("spiffe://example.com/a", "spiffe://example.com/b"));
  EXPECT_EQ(config.store_url, "memory://");
  EXPECT_EQ(config.history_retention, 0);
  EXPECT_EQ(config.consistent_read_timeout, std::chrono::minutes(1));
  EXPECT_EQ(config.tls.cert_file, "/env/cert.pem");
  EXPECT_EQ(config.tls.key_file, "/env/key.pem");
  EXPECT_EQ(config.tls.bundle_file, "/env/bundle.pem");
  EXPECT_EQ(config.tls.refresh_interval, std::chrono::minutes(1));
  EXPECT_EQ(config.metrics_listen, "localhost:0");
  EXPECT_EQ(config.log_level, LogLevel::kWarn);
  EXPECT_EQ(config.log_format, LogFormat::kJson);
}

TEST_F(ConfigTest, EnvironmentAloneConfiguresEverything) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config,
                       LoadConfig(std::nullopt, {{"PLINTH_STORE_URL", "memory://"},
                                                 {"PLINTH_ADMIN_IDS", ""},
                                                 {"PLINTH_ADMIN_SOCKET", "/tmp/x.sock"}}));
  EXPECT_EQ(config.store_url, "memory://");
  EXPECT_TRUE(config.admin_ids.empty());
  EXPECT_EQ(config.admin_socket, "/tmp/x.sock");
}

TEST_F(ConfigTest, EnvironmentCanTurnOffTheTlsListenerTheFileSet) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load(kFullConfig, {{"PLINTH_LISTEN", ""}}));
  EXPECT_EQ(config.listen, "");
}

TEST_F(ConfigTest, TomlSyntaxErrorHasFileLineAndColumn) {
  std::string path = Write("data_dir = \"/x\"\n[store\nurl = 1\n");
  EXPECT_THAT(LoadConfig(path, {}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("config " + path + ":2:")));
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  EXPECT_THAT(LoadConfig(dir_ + "/nope.toml", {}),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("nope.toml"), HasSubstr("cannot read"))));
}

TEST_F(ConfigTest, UnknownKeysAreAllNamed) {
  EXPECT_THAT(Load("datadir = \"x\"\n[tls]\ncert = \"c\"\n[store]\nurl = \"memory://\"\n"),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unknown keys"), HasSubstr("\"datadir\" (line 1)"),
                             HasSubstr("\"tls.cert\" (line 3)"))));
  EXPECT_THAT(Load("[server]\nlisten = \"x\"\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown key \"server\"")));
}

// Each invalid value is reported with the key's name (and where it is in the file).
TEST_F(ConfigTest, EachInvalidValueNamesItsKey) {
  struct Case {
    std::string toml;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"data_dir = \"\"", ":1:12: data_dir: must not be empty"},
           {"data_dir = 3", "data_dir: expected a string, got an integer"},
           {"admin_socket = \"/" + std::string(120, 'a') + "\"",
            "admin_socket: the path is 121 bytes"},
           {"listen = \"8443\"", "listen: \"8443\" is not a listen address"},
           {"listen = \"::1:8443\"", "listen: \"::1:8443\" is not a listen address"},
           {"listen = \"host:99999\"", "listen: \"host:99999\" is not a listen address"},
           {"trust_domain = \"spiffe://example.org\"", "trust_domain: \"spiffe://example.org\""},
           {"trust_domain = \"Example.org\"",
            "trust_domain: \"Example.org\" is not a trust domain"},
           {"admin_ids = \"spiffe://example.org/a\"", "admin_ids: expected an array of strings"},
           {"admin_ids = [\"spiffe://example.org/a\", \"foo\"]",
            ":1:40: admin_ids[1]: \"foo\" is not a SPIFFE ID"},
           {"admin_ids = [\"spiffe://example.org/a\", 7]", "admin_ids[1]: expected a string"},
           {"admin_ids = [\"spiffe://example.org/a\", \"spiffe://example.org/a\"]",
            "admin_ids[1]: \"spiffe://example.org/a\" is listed twice"},
           {"[store]\nurl = \"no-scheme\"", ":2:7: store.url:"},
           {"[store]\nhistory_retention = -1", "store.history_retention: -1 is negative"},
           {"[store]\nhistory_retention = \"5\"", "store.history_retention: expected an integer"},
           {"[store]\nconsistent_read_timeout = \"5\"", "store.consistent_read_timeout: \"5\""},
           {"[store]\nconsistent_read_timeout = 5", "store.consistent_read_timeout: expected a"},
           {"[store]\nconsistent_read_timeout = \"0s\"",
            "store.consistent_read_timeout: must be more than 0"},
           {"[store]\nconsistent_read_timeout = \"25h\"", "more than 24h"},
           {"[store]\nconsistent_read_timeout = \"5d\"", "unknown unit \"d\""},
           {"[tls]\ncert_file = \"\"", "tls.cert_file: must not be empty"},
           {"[tls]\nrefresh_interval = \"500ms\"",
            "tls.refresh_interval: \"500ms\" is not a whole"},
           {"[metrics]\nlisten = \"localhost\"", "metrics.listen: \"localhost\" is not a listen"},
           {"[log]\nlevel = \"verbose\"", "log.level: \"verbose\" is not a log level"},
           {"[log]\nformat = \"xml\"", "log.format: \"xml\" is not a log format"},
           {"log = \"debug\"", "log: expected a table ([log]), got a string"},
       }) {
    EXPECT_THAT(Load(c.toml), StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST_F(ConfigTest, KeysThatContradictEachOtherAreNamed) {
  std::string tls = "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nbundle_file = \"b\"\n";
  EXPECT_THAT(Load("listen = \"0.0.0.0:1\"\n" + tls),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("trust_domain: required when listen is set"),
                             HasSubstr(":1:10: listen"))));
  EXPECT_THAT(Load("listen = \"0.0.0.0:1\"\ntrust_domain = \"example.org\"\n"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("tls.cert_file: required when listen is set")));
  EXPECT_THAT(Load("listen = \"0.0.0.0:1\"\ntrust_domain = \"example.org\"\n[tls]\n"
                   "cert_file = \"c\"\nbundle_file = \"b\"\n"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("tls.key_file: required when listen is set")));
  EXPECT_THAT(
      Load("trust_domain = \"example.org\"\nadmin_ids = [\"spiffe://other.org/admin\"]\n"),
      StatusIs(StatusCode::kInvalidArgument,
               HasSubstr("admin_ids[0]: \"spiffe://other.org/admin\" is not in trust_domain "
                         "\"example.org\"")));
  EXPECT_THAT(Load("admin_socket = \"\"\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nothing to serve")));
  // With a TLS listener the admin socket may be off.
  EXPECT_OK(
      Load("admin_socket = \"\"\nlisten = \"0.0.0.0:1\"\ntrust_domain = \"example.org\"\n" + tls));
}

TEST_F(ConfigTest, InvalidEnvironmentValuesNameTheVariable) {
  struct Case {
    std::string name;
    std::string value;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"PLINTH_LOG_LEVEL", "loud",
            "PLINTH_LOG_LEVEL (log.level): \"loud\" is not a log level"},
           {"PLINTH_LOG_FORMAT", "xml", "PLINTH_LOG_FORMAT (log.format):"},
           {"PLINTH_ADMIN_IDS", "spiffe://example.org/a,foo",
            "PLINTH_ADMIN_IDS (admin_ids[1]): \"foo\" is not a SPIFFE ID"},
           {"PLINTH_ADMIN_IDS", "spiffe://example.org/a,", "PLINTH_ADMIN_IDS (admin_ids[1]): \"\""},
           {"PLINTH_STORE_HISTORY_RETENTION", "many",
            "PLINTH_STORE_HISTORY_RETENTION (store.history_retention): \"many\" is not an integer"},
           {"PLINTH_STORE_CONSISTENT_READ_TIMEOUT", "soon",
            "PLINTH_STORE_CONSISTENT_READ_TIMEOUT (store.consistent_read_timeout)"},
           {"PLINTH_STORE_URL", "nope", "PLINTH_STORE_URL (store.url)"},
           {"PLINTH_LISTEN", "nope", "PLINTH_LISTEN (listen)"},
           {"PLINTH_METRICS_LISTEN", "nope", "PLINTH_METRICS_LISTEN (metrics.listen)"},
           {"PLINTH_TRUST_DOMAIN", "A", "PLINTH_TRUST_DOMAIN (trust_domain)"},
           {"PLINTH_DATA_DIR", "", "PLINTH_DATA_DIR (data_dir): must not be empty"},
           {"PLINTH_TLS_REFRESH_INTERVAL", "0s", "PLINTH_TLS_REFRESH_INTERVAL"},
       }) {
    EXPECT_THAT(LoadConfig(std::nullopt, {{c.name, c.value}}),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name << "=" << c.value;
  }
  // A contradiction caused by a variable names it.
  EXPECT_THAT(LoadConfig(std::nullopt, {{"PLINTH_LISTEN", "0.0.0.0:1"}}),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("trust_domain: required when listen is set (PLINTH_LISTEN")));
}

TEST_F(ConfigTest, DescribeConfigShowsEveryValueButNoPassword) {
  ASSERT_OK_AND_ASSIGN(ServerConfig config, Load(kFullConfig));
  std::string text = DescribeConfig(config);
  EXPECT_THAT(text, AllOf(HasSubstr("store.url=postgres://plinth:***@db.example.org/plinth"),
                          Not(HasSubstr("secret")), HasSubstr("listen=0.0.0.0:8443"),
                          HasSubstr("admin_ids=[spiffe://example.org/admin,"
                                    "spiffe://example.org/ops/alice]"),
                          HasSubstr("store.consistent_read_timeout=250ms"),
                          HasSubstr("tls.refresh_interval=2s"), HasSubstr("log.level=debug"),
                          HasSubstr("metrics.listen=127.0.0.1:9464")));
  ASSERT_OK_AND_ASSIGN(config, LoadConfig(std::nullopt, {}));
  EXPECT_THAT(DescribeConfig(config),
              AllOf(HasSubstr("config=none"), HasSubstr("listen=off"),
                    HasSubstr("metrics.listen=off"), HasSubstr("log.format=json")));
}

TEST(ParseListenAddressTest, SplitsHostAndPort) {
  ASSERT_OK_AND_ASSIGN(HostPort a, ParseListenAddress("127.0.0.1:9464"));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 9464);
  ASSERT_OK_AND_ASSIGN(a, ParseListenAddress("[::1]:0"));
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 0);
  ASSERT_OK_AND_ASSIGN(a, ParseListenAddress("plinth-0.plinth.svc:65535"));
  EXPECT_EQ(a.host, "plinth-0.plinth.svc");
  for (std::string_view bad : {"", ":80", "host", "host:", "host:x", "host:-1", "[::1]", "[::1]80",
                               "[]:80", "[zz]:80", "h/st:80", "host:65536"}) {
    EXPECT_THAT(ParseListenAddress(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(ParseDurationTest, ParsesUnitsAndFormatsBack) {
  EXPECT_THAT(ParseDuration("250ms"), IsOk());
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("5s"), seconds(5));
  EXPECT_EQ(*ParseDuration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(*ParseDuration("24h"), std::chrono::hours(24));
  for (std::string_view bad :
       {"", "s", "5", "5 s", "-5s", "1.5s", "5S", "25h", "99999999999999h"}) {
    EXPECT_THAT(ParseDuration(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(seconds(5)), "5s");
  EXPECT_EQ(FormatDuration(seconds(120)), "2m");
  EXPECT_EQ(FormatDuration(std::chrono::hours(3)), "3h");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0ms");
}

}  // namespace
}  // namespace plinth::server
