// Drives `plinth store ...` exactly as main.cc does (same root app, same parsing) against a
// shared in-process memory store and a temporary SQLite file, checking output and exit codes.
#include "cli/store_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/testing/cli_runner.h"
#include "common/status_matchers.h"
#include "store/open.h"

namespace plinth::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

using testing::ParseJson;
using testing::RunResult;

RunResult RunPlinth(std::vector<std::string> args) {
  return testing::RunCli({RegisterStoreCommands}, std::move(args));
}

std::filesystem::path MakeTempDir() { return testing::MakeTempDir("plinth_cli_test"); }

// One backend under test: a URL every command can open, plus a handle the test keeps open
// (for memory://<name>, that is what keeps the store alive between commands).
class StoreCommandTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (GetParam() == "memory") {
      std::string name = test_name;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      url_ = "memory://cli_" + name;
    } else {
      dir_ = MakeTempDir();
      url_ = "sqlite://" + (dir_ / "plinth.db").string();
    }
    auto store = store::OpenStore(url_);
    ASSERT_THAT(store, IsOk());
    store_ = std::move(store).value();
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs `plinth store <args...> --store <url_>`.
  RunResult Store(std::vector<std::string> args) {
    args.insert(args.begin(), "store");
    args.push_back("--store");
    args.push_back(url_);
    return RunPlinth(std::move(args));
  }

  std::string url_;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_P(StoreCommandTest, PutThenGetPrintsValueAndRevisions) {
  RunResult put = Store({"put", "app/a", "hello world"});
  ASSERT_EQ(put.code, kExitOk) << put.err;
  EXPECT_EQ(put.out, "put \"app/a\" at revision 1\n");

  RunResult get = Store({"get", "app/a"});
  ASSERT_EQ(get.code, kExitOk) << get.err;
  EXPECT_THAT(get.out, AllOf(HasSubstr("value            hello world"),
                             HasSubstr("create_revision  1"), HasSubstr("mod_revision     1")));

  RunResult json = Store({"get", "app/a", "--output", "json"});
  ASSERT_EQ(json.code, kExitOk) << json.err;
  auto j = ParseJson(json.out);
  EXPECT_EQ(j["key"], "app/a");
  EXPECT_EQ(j["value"], "hello world");
  EXPECT_EQ(j["create_revision"], 1);
  EXPECT_EQ(j["mod_revision"], 1);
}

TEST_P(StoreCommandTest, GetOfAMissingKeyExitsWithNotFound) {
  RunResult r = Store({"get", "nope"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("plinth: get \"nope\": NOT_FOUND"));
}

TEST_P(StoreCommandTest, DeleteRemovesTheKeyAndReportsAMissingOne) {
  ASSERT_EQ(Store({"put", "k", "v"}).code, kExitOk);
  RunResult del = Store({"delete", "k", "-o", "json"});
  ASSERT_EQ(del.code, kExitOk) << del.err;
  EXPECT_EQ(ParseJson(del.out)["revision"], 2);
  EXPECT_EQ(Store({"get", "k"}).code, kExitNotFound);
  RunResult again = Store({"delete", "k"});
  EXPECT_EQ(again.code, kExitNotFound);
  EXPECT_THAT(again.err, StartsWith("plinth: delete \"k\": NOT_FOUND"));
}

TEST_P(StoreCommandTest, RangePagesWithLimitAndAfter) {
  for (const char* k : {"p/1", "p/2", "p/3", "q/1"}) ASSERT_EQ(Store({"put", k, "v"}).code, 0);

  RunResult page1 = Store({"range", "p/", "--limit", "2", "--output", "json"});
  ASSERT_EQ(page1.code, kExitOk) << page1.err;
  auto j = ParseJson(page1.out);
  EXPECT_EQ(j["revision"], 4);
  EXPECT_EQ(j["more"], true);
  ASSERT_EQ(j["kvs"].size(), 2u);
  EXPECT_EQ(j["kvs"][0]["key"], "p/1");
  EXPECT_EQ(j["next_after"], "p/2");

  RunResult page2 = Store({"range", "p/", "--after", "p/2"});
  ASSERT_EQ(page2.code, kExitOk) << page2.err;
  EXPECT_THAT(page2.out, HasSubstr("KEY  VALUE  CREATED  MODIFIED\np/3  v      3        3\n"));
  EXPECT_THAT(page2.out, HasSubstr("1 key under \"p/\" at revision 4"));

  RunResult limited = Store({"range", "p/", "--limit", "1"});
  EXPECT_THAT(limited.out, HasSubstr("more keys follow; continue with --after \"p/1\""));

  RunResult all = Store({"range"});
  EXPECT_THAT(all.out, HasSubstr("4 keys under \"\" at revision 4"));
}

TEST_P(StoreCommandTest, CountsKeysUnderAPrefix) {
  for (const char* k : {"p/1", "p/2", "q/1"}) ASSERT_EQ(Store({"put", k, "v"}).code, 0);
  EXPECT_EQ(Store({"count", "p/"}).out, "2 keys under \"p/\" at revision 3\n");
  EXPECT_EQ(Store({"count"}).out, "3 keys under \"\" at revision 3\n");
  auto j = ParseJson(Store({"count", "q/", "-o", "json"}).out);
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["revision"], 3);
}

TEST_P(StoreCommandTest, WatchPrintsEachBatchFromARevision) {
  ASSERT_EQ(Store({"put", "w/a", "1"}).code, 0);
  ASSERT_EQ(Store({"put", "other", "x"}).code, 0);
  ASSERT_EQ(Store({"delete", "w/a"}).code, 0);

  RunResult r =
      Store({"watch", "w/", "--from", "1", "--count", "2", "--timeout", "10s", "-o", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> batches;
  while (std::getline(lines, line)) batches.push_back(ParseJson(line));
  ASSERT_EQ(batches.size(), 2u) << r.out;
  EXPECT_EQ(batches[0]["revision"], 1);
  EXPECT_EQ(batches[0]["events"][0]["type"], "PUT");
  EXPECT_EQ(batches[0]["events"][0]["value"], "1");
  EXPECT_EQ(batches[1]["revision"], 3);
  EXPECT_EQ(batches[1]["events"][0]["type"], "DELETE");

  RunResult text = Store({"watch", "w/", "--from", "1", "--count", "1"});
  EXPECT_THAT(text.out, AllOf(HasSubstr("revision 1  (1 event)"), HasSubstr("PUT   w/a  1"),
                              HasSubstr("watch ended after 1 batch (count reached)")));
}

TEST_P(StoreCommandTest, WatchIsBoundedByItsTimeout) {
  RunResult r = Store({"watch", "--timeout", "200ms"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("watching \"\" from revision 1"),
                           HasSubstr("watch ended after 0 batches (timeout)")));
}

TEST_P(StoreCommandTest, CompactedHistoryCannotBeWatched) {
  for (const char* k : {"a", "b", "c"}) ASSERT_EQ(Store({"put", k, "v"}).code, 0);
  RunResult compact = Store({"compact", "2"});
  ASSERT_EQ(compact.code, kExitOk) << compact.err;
  EXPECT_EQ(compact.out, "history compacted through revision 2\n");

  RunResult watch = Store({"watch", "--from", "1", "--timeout", "1s"});
  EXPECT_EQ(watch.code, kExitFailed);
  EXPECT_THAT(watch.err, StartsWith("plinth: watch \"\": OUT_OF_RANGE"));

  RunResult beyond = Store({"compact", "99"});
  EXPECT_EQ(beyond.code, kExitFailed);
  EXPECT_THAT(beyond.err, HasSubstr("OUT_OF_RANGE"));
}

TEST_P(StoreCommandTest, StatusNamesTheBackendAndRevisions) {
  ASSERT_EQ(Store({"put", "a", "v"}).code, 0);
  RunResult text = Store({"status"});
  ASSERT_EQ(text.code, kExitOk) << text.err;
  EXPECT_THAT(text.out, AllOf(HasSubstr("backend             " + GetParam()),
                              HasSubstr("revision            1"),
                              HasSubstr("compacted revision  0"), HasSubstr("max key bytes")));
  auto j = ParseJson(Store({"status", "-o", "json"}).out);
  EXPECT_EQ(j["backend"], GetParam());
  EXPECT_EQ(j["revision"], 1);
  EXPECT_GT(j["limits"]["max_value_bytes"].get<int64_t>(), 0);
}

TEST_P(StoreCommandTest, DemoWalksThroughRevisionsAndTheWatch) {
  RunResult text = Store({"demo"});
  ASSERT_EQ(text.code, kExitOk) << text.err;
  EXPECT_THAT(text.out, AllOf(HasSubstr("Commit -> revision 1"), HasSubstr("-> revision 2"),
                              HasSubstr("Delete demo/beta -> revision 3"),
                              HasSubstr("The watch delivered 3 batches"),
                              HasSubstr("Revisions 1, 2, 3 are consecutive")));

  // Run again, as JSON: the store keeps counting from where it was.
  RunResult json = Store({"demo", "--output", "json"});
  ASSERT_EQ(json.code, kExitOk) << json.err;
  auto j = ParseJson(json.out);
  EXPECT_EQ(j["start_revision"], 3);
  EXPECT_EQ(j["transaction"]["revision"], 4);
  EXPECT_EQ(j["put"]["revision"], 5);
  EXPECT_EQ(j["delete"]["revision"], 6);
  EXPECT_EQ(j["count"]["count"], 2);
  EXPECT_EQ(j["watch"]["complete"], true);
  ASSERT_EQ(j["watch"]["batches"].size(), 3u);
  EXPECT_EQ(j["watch"]["batches"][0]["events"].size(), 3u);
}

TEST_P(StoreCommandTest, NonPrintableBytesAreEscapedAndJsonStaysValid) {
  ASSERT_THAT(store_->Put(std::string("bin\x01", 4), std::string("\xff\x00z", 3)), IsOk());
  RunResult text = Store({"range", "bin"});
  ASSERT_EQ(text.code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("bin\\x01  \\xff\\x00z"));

  RunResult json = Store({"range", "bin", "-o", "json"});
  auto j = ParseJson(json.out);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["kvs"][0]["key"], std::string("bin\x01", 4));  // valid UTF-8, JSON-escaped
  EXPECT_EQ(j["kvs"][0]["value_base64"], "/wB6");

  ASSERT_EQ(Store({"put", "caf\xc3\xa9", "na\xc3\xafve"}).code, 0);
  EXPECT_THAT(Store({"get", "caf\xc3\xa9"}).out, HasSubstr("na\xc3\xafve"));
}

TEST_P(StoreCommandTest, StoreUrlComesFromTheEnvironment) {
  ASSERT_EQ(Store({"put", "env", "yes"}).code, 0);
  setenv("PLINTH_STORE", url_.c_str(), 1);
  RunResult r = RunPlinth({"store", "get", "env"});
  unsetenv("PLINTH_STORE");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("yes"));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreCommandTest, ::testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

TEST(StoreCommand, UsageErrorsExitWithTwo) {
  auto expect_usage = [](std::vector<std::string> args, std::string_view message) {
    RunResult r = RunPlinth(args);
    EXPECT_EQ(r.code, kExitUsage) << args.back() << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << args.back();
  };
  expect_usage({}, "plinth needs a command: one of store");
  expect_usage({"store"}, "plinth store needs a command: one of put, get, delete");
  expect_usage({"store", "get"}, "KEY is required");
  expect_usage({"store", "frobnicate"}, "frobnicate");
  expect_usage({"store", "status", "--store", "memory://", "--bogus"}, "--bogus");
  expect_usage({"store", "status", "--store", "memory://", "--output", "yaml"}, "yaml");
  expect_usage({"store", "range", "--store", "memory://", "--limit", "-1"}, "--limit");
  expect_usage({"store", "watch", "--store", "memory://", "--timeout", "10"}, "not a duration");
  expect_usage({"store", "put", "", "v", "--store", "memory://"}, "KEY must not be empty");
  expect_usage({"store", "status", "--store", "bogus://x"}, "unknown store backend \"bogus\"");
  expect_usage({"store", "status", "--store", "memory://?colour=blue"}, "colour");
  expect_usage({"store", "status", "--store", "no-scheme"}, "has no scheme");
}

TEST(StoreCommand, ErrorsNeverPrintTheStorePassword) {
  RunResult r = RunPlinth(
      {"store", "status", "--store", "postgres://alice:hunter2@127.0.0.1:1/db?timeout=1s"});
  EXPECT_EQ(r.code, kExitFailed) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("alice:***@127.0.0.1:1"), Not(HasSubstr("hunter2"))));
  r = RunPlinth({"store", "status", "--store", "bogus://alice:hunter2@h/db"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, Not(HasSubstr("hunter2")));
}

TEST(StoreCommand, HelpExitsWithZeroAndDocumentsExitCodes) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--help"}, {"store", "--help"}, {"store", "watch", "--help"}}) {
    RunResult r = RunPlinth(args);
    EXPECT_EQ(r.code, kExitOk);
    EXPECT_THAT(r.out, HasSubstr("Exit codes: 0 success")) << r.out;
  }
  EXPECT_THAT(RunPlinth({"store", "watch", "--help"}).out,
              AllOf(HasSubstr("--timeout"), HasSubstr("--from"), HasSubstr("PLINTH_STORE")));
}

TEST(StoreCommand, DurationsNeedAUnit) {
  EXPECT_EQ(*ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*ParseDuration("10s"), std::chrono::seconds(10));
  EXPECT_EQ(*ParseDuration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(*ParseDuration("1h"), std::chrono::hours(1));
  EXPECT_EQ(*ParseDuration("0"), std::chrono::milliseconds(0));
  for (const char* bad : {"", "10", "-1s", "5 s", "1d", "s"}) {
    EXPECT_THAT(ParseDuration(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(StoreCommand, DefaultSqliteLocationCreatesItsDataDirectory) {
  const std::filesystem::path dir = MakeTempDir();
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  auto store = OpenStoreForCommand(kDefaultStoreUrl);
  const bool created = std::filesystem::is_directory(dir / "plinth-data");
  store = UnavailableError("closed");  // release the file before removing the directory
  std::filesystem::current_path(cwd);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(created);
}

}  // namespace
}  // namespace plinth::cli
