// Drives `plinth migrate` exactly as main.cc does (same root app, same parsing) between
// temporary SQLite files, checking the report, the progress lines, exit codes and that no
// password is ever printed.
#include "cli/migrate_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/store_command.h"
#include "cli/testing/cli_runner.h"
#include "common/status_matchers.h"
#include "store/open.h"

namespace plinth::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using testing::RunResult;

RunResult RunPlinth(std::vector<std::string> args) {
  return testing::RunCli({RegisterStoreCommands, RegisterMigrateCommand}, std::move(args));
}

class MigrateCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "plinth-migrate-cli-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    from_ = "sqlite://" + dir_ + "/from.db";
    to_ = "sqlite://" + dir_ + "/to.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `kvs` into the store at `url` in one transaction.
  void Fill(const std::string& url, const std::vector<std::pair<std::string, std::string>>& kvs) {
    ASSERT_OK_AND_ASSIGN(auto store, store::OpenStore(url));
    store::TxnRequest txn;
    for (const auto& [k, v] : kvs) txn.ops.push_back(store::Op::Put(k, v));
    ASSERT_THAT(store->Commit(txn), IsOk());
  }

  RunResult Migrate(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"migrate", "--from", from_, "--to", to_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunPlinth(args);
  }

  std::string dir_;
  std::string from_;
  std::string to_;
};

TEST_F(MigrateCommandTest, CopiesOneSqliteFileIntoAnotherWithAJsonReport) {
  Fill(from_, {{"a", "1"},
               {"b", "2"},
               {std::string("\x00\xff", 2), std::string("\xff\x00", 2)},
               {"d", ""},
               {"e", "5"}});
  RunResult r = Migrate({"--page-size", "2", "--output", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["from"], from_);
  EXPECT_EQ(j["to"], to_);
  EXPECT_EQ(j["from_backend"], "sqlite");
  EXPECT_EQ(j["keys"], 5);
  EXPECT_EQ(j["bytes"], 1 + 1 + 1 + 1 + 2 + 2 + 1 + 0 + 1 + 1);
  EXPECT_EQ(j["transactions"], 1);
  EXPECT_EQ(j["source_revision"], 1);
  EXPECT_EQ(j["destination_revision"], 1);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["content_sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(j["elapsed_seconds"].is_number());
  EXPECT_THAT(r.err, AllOf(HasSubstr("validating 5 keys"), HasSubstr("copying 5 keys"),
                           HasSubstr("verifying the destination"),
                           HasSubstr("migrated 5 keys (11 B) in 1 transaction")));

  ASSERT_OK_AND_ASSIGN(auto to, store::OpenStore(to_));
  ASSERT_OK_AND_ASSIGN(store::KeyValue kv, to->Get(std::string("\x00\xff", 2)));
  EXPECT_EQ(kv.value, std::string("\xff\x00", 2));
  EXPECT_EQ(to->Count(store::KeySpan::All())->count, 5);
}

TEST_F(MigrateCommandTest, PrintsATextReport) {
  Fill(from_, {{"a", "1"}});
  RunResult r = Migrate();
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("keys                  1\n"), HasSubstr("source revision       1\n"),
                    HasSubstr("content sha256"), HasSubstr("verified              yes")));
}

TEST_F(MigrateCommandTest, ANonEmptyDestinationFailsWithOneAndIsLeftAlone) {
  Fill(from_, {{"a", "1"}});
  Fill(to_, {{"z", "theirs"}});
  RunResult r = Migrate({"--output", "json"});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, AllOf(HasSubstr("FAILED_PRECONDITION"), HasSubstr("already holds 1 key")));

  RunResult allowed = Migrate({"--allow-non-empty"});
  EXPECT_EQ(allowed.code, kExitOk) << allowed.err;
  ASSERT_OK_AND_ASSIGN(auto to, store::OpenStore(to_));
  EXPECT_EQ(to->Count(store::KeySpan::All())->count, 2);

  // Running again: every key collides.
  RunResult again = Migrate({"--allow-non-empty"});
  EXPECT_EQ(again.code, kExitFailed);
  EXPECT_THAT(again.err, HasSubstr("never overwrites"));
}

TEST_F(MigrateCommandTest, ADestinationLimitTooSmallFailsWithOne) {
  Fill(from_, {{"a", std::string(100, 'x')}});
  RunResult r = RunPlinth({"migrate", "--from", from_, "--to", to_ + "?max_value_bytes=10"});
  EXPECT_EQ(r.code, kExitFailed) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("RESOURCE_EXHAUSTED"), HasSubstr("max_value_bytes is 10")));
}

TEST_F(MigrateCommandTest, BadUrlsAndFlagsExitWithTwo) {
  Fill(from_, {{"a", "1"}});
  auto expect_usage = [](std::vector<std::string> args, std::string_view message) {
    RunResult r = RunPlinth(args);
    EXPECT_EQ(r.code, kExitUsage) << ::testing::PrintToString(args) << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << ::testing::PrintToString(args);
    EXPECT_THAT(r.out, IsEmpty());
  };
  expect_usage({"migrate", "--to", to_}, "--from is required");
  expect_usage({"migrate", "--from", from_}, "--to is required");
  expect_usage({"migrate", "--from", from_, "--to", "no-scheme"}, "has no scheme");
  expect_usage({"migrate", "--from", "bogus://x", "--to", to_}, "unknown store backend");
  expect_usage({"migrate", "--from", from_, "--to", to_ + "?colour=blue"}, "colour");
  expect_usage({"migrate", "--from", from_, "--to", from_}, "the same store");
  expect_usage({"migrate", "--from", from_, "--to", to_, "--page-size", "0"}, "--page-size");
  expect_usage({"migrate", "--from", from_, "--to", to_, "--output", "yaml"}, "yaml");
  const std::string missing = dir_ + "/missing.db";
  expect_usage({"migrate", "--from", "sqlite://" + missing, "--to", to_}, "does not exist");
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(MigrateCommandTest, NeverPrintsAPassword) {
  Fill(from_, {{"a", "1"}});
  // Unreachable: nothing listens on port 1.
  RunResult r = RunPlinth(
      {"migrate", "--from", from_, "--to", "postgres://alice:hunter2@127.0.0.1:1/db?timeout=1s"});
  EXPECT_EQ(r.code, kExitFailed) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("alice:***@127.0.0.1:1"), Not(HasSubstr("hunter2"))));

  r = RunPlinth(
      {"migrate", "--from", "mysql://bob:s%33cret@127.0.0.1:1/db?timeout=1s", "--to", to_});
  EXPECT_EQ(r.code, kExitFailed) << r.err;
  EXPECT_THAT(r.err,
              AllOf(HasSubstr("bob:***@"), Not(HasSubstr("s3cret")), Not(HasSubstr("s%33cret"))));

  // etcd takes its password as an option.
  r = RunPlinth({"migrate", "--from", from_, "--to", "etcd://127.0.0.1:1/p?password=hunter2"});
  EXPECT_EQ(r.code, kExitUsage) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("password=***"), Not(HasSubstr("hunter2"))));
}

TEST(RedactStoreUrl, HidesUserInfoAndPasswordOptions) {
  EXPECT_EQ(RedactStoreUrl("postgres://u:p@h:5432/db?schema=s"),
            "postgres://u:***@h:5432/db?schema=s");
  EXPECT_EQ(RedactStoreUrl("etcd://h:1/p?username=u&password=x&timeout=1s"),
            "etcd://h:1/p?username=u&password=***&timeout=1s");
  EXPECT_EQ(RedactStoreUrl("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
  EXPECT_EQ(RedactStoreUrl("mysql://u@h/db"), "mysql://u@h/db");
}

TEST(MigrateCommand, HelpDocumentsTheSnapshotAndExitCodes) {
  RunResult r = RunPlinth({"migrate", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, AllOf(HasSubstr("--from"), HasSubstr("--allow-non-empty"),
                           HasSubstr("Revisions are not preserved"), HasSubstr("Exit codes")));
}

}  // namespace
}  // namespace plinth::cli
