// Behaviour specific to the sqlite backend: URL options, pragmas, what happens to files that
// are not plinth stores, durability across reopen, and coordination between several Store
// objects and processes on one file. The store contract itself is covered by the
// cross-backend conformance suite (src/store/conformance/).
#include "store/sqlite/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/open.h"
#include "store/sqlite/internal/testing.h"

namespace plinth::store {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Matches an OK StatusOr whose value matches `matcher`.
MATCHER_P(HasValue, matcher, "is OK and has a value that " + ::testing::PrintToString(matcher)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

MATCHER_P2(CountIs, count, revision, "") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  *result_listener << "count " << arg->count << " at revision " << arg->revision;
  return arg->count == count && arg->revision == revision;
}

constexpr auto kWait = std::chrono::seconds(10);

// A fresh directory under /tmp, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/plinth_sqlite_test.XXXXXX";
    PLINTH_CHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs SQL on the file through a plain SQLite connection, outside plinth.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    PLINTH_CHECK(sqlite3_open(path.c_str(), &db_) == SQLITE_OK) << "cannot open " << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }

  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  // The first column of the first row as text, or "<error>".
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) return "<error>";
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out = text == nullptr ? "" : reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string Url(const std::string& path, const std::string& options = "") {
  return "sqlite://" + path + (options.empty() ? "" : "?" + options);
}

// ---- Options -------------------------------------------------------------------------------

TEST(SqliteOptions, RejectsUnknownOptionByNameWithoutCreatingTheFile) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  EXPECT_THAT(OpenStore(Url(path, "synchronous=full&journal=wal")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"journal\"")));
  EXPECT_FALSE(fs::exists(path));
}

TEST(SqliteOptions, RejectsBadValues) {
  TempDir dir;
  const std::string path = dir.File("x.db");
  EXPECT_THAT(OpenStore(Url(path, "synchronous=off")),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("synchronous"), HasSubstr("full, normal"))));
  EXPECT_THAT(OpenStore(Url(path, "readers=0")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("readers")));
  EXPECT_THAT(OpenStore(Url(path, "poll_interval=0ms")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("poll_interval")));
  EXPECT_THAT(OpenStore(Url(path, "busy_timeout=soon")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("busy_timeout")));
  EXPECT_THAT(OpenStore(Url(path, "retention=-1")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("retention")));
  EXPECT_THAT(OpenStore(Url(path, "max_value_bytes=1000000000")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("max_value_bytes")));
  EXPECT_FALSE(fs::exists(path));
}

TEST(SqliteOptions, RejectsEmptyAndInMemoryPaths) {
  EXPECT_THAT(OpenStore("sqlite://"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no file path")));
  EXPECT_THAT(OpenStore("sqlite://?synchronous=full"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no file path")));
  EXPECT_THAT(OpenStore("sqlite://:memory:"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(SqliteOptions, LimitsHaveDefaultsAndCanBeLowered) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(dir.File("a.db"))));
  EXPECT_EQ(store->backend(), "sqlite");
  EXPECT_EQ(store->limits().max_key_bytes, 4096u);
  EXPECT_EQ(store->limits().max_value_bytes, 16u << 20);
  EXPECT_EQ(store->limits().max_ops_per_txn, 100'000u);
  EXPECT_EQ(store->limits().max_txn_bytes, 256u << 20);

  ASSERT_OK_AND_ASSIGN(auto small, OpenStore(Url(dir.File("b.db"), "max_key_bytes=8")));
  EXPECT_EQ(small->limits().max_key_bytes, 8u);
  EXPECT_THAT(small->Put("123456789", "v"), StatusIs(StatusCode::kResourceExhausted));
}

TEST(SqliteOptions, RelativePathIsRelativeToTheWorkingDirectory) {
  TempDir dir;
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir.path());
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenStore("sqlite://./rel.db"));
    ASSERT_OK(store->Put("k", "v"));
  }
  fs::current_path(old_cwd);
  EXPECT_TRUE(fs::exists(dir.File("rel.db")));
}

// ---- Pragmas -------------------------------------------------------------------------------

TEST(SqlitePragmas, WalAndSynchronousFullByDefault) {
  TempDir dir;
  const std::string path = dir.File("p.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
  using sqlite::internal::ReaderPragmaForTesting;
  using sqlite::internal::WriterPragmaForTesting;
  EXPECT_THAT(WriterPragmaForTesting(*store, "journal_mode"), HasValue(std::string("wal")));
  EXPECT_EQ(*WriterPragmaForTesting(*store, "synchronous"), "2");  // FULL
  EXPECT_EQ(*WriterPragmaForTesting(*store, "busy_timeout"), "5000");
  EXPECT_EQ(*ReaderPragmaForTesting(*store, "synchronous"), "2");
  EXPECT_EQ(*ReaderPragmaForTesting(*store, "busy_timeout"), "5000");
  EXPECT_EQ(*ReaderPragmaForTesting(*store, "query_only"), "1");
  EXPECT_EQ(*WriterPragmaForTesting(*store, "query_only"), "0");
  // journal_mode=wal is a property of the file, visible to any other connection.
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
}

TEST(SqlitePragmas, SynchronousNormalAndBusyTimeoutFromOptions) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store,
                       OpenStore(Url(dir.File("p.db"), "synchronous=NORMAL&busy_timeout=250ms")));
  using sqlite::internal::ReaderPragmaForTesting;
  using sqlite::internal::WriterPragmaForTesting;
  EXPECT_EQ(*WriterPragmaForTesting(*store, "synchronous"), "1");  // NORMAL
  EXPECT_EQ(*ReaderPragmaForTesting(*store, "synchronous"), "1");
  EXPECT_EQ(*WriterPragmaForTesting(*store, "busy_timeout"), "250");
  EXPECT_EQ(*ReaderPragmaForTesting(*store, "busy_timeout"), "250");
}

// ---- Checkpoints ---------------------------------------------------------------------------

// Checkpoints run on the store's background thread, not in commits, and the write-ahead log
// stays bounded under a steady stream of commits (internal/checkpointer.h).
TEST(SqliteCheckpoint, BackgroundCheckpointsKeepTheLogBounded) {
  TempDir dir;
  const std::string path = dir.File("c.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path, "synchronous=normal")));
  // Each commit logs the value twice (row and change log): about 16 pages of 4 KiB. 1,000
  // commits put some 16,000 pages through the log, four times the most it may hold.
  const std::string value(32 << 10, 'v');
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK(store->Put("k/" + std::to_string(i % 50), value).status());
  }
  using sqlite::internal::CheckpointsForTesting;
  for (int i = 0; i < 500 && *CheckpointsForTesting(*store) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(*CheckpointsForTesting(*store), 1);
  // At most kCatchUpFactor (4) x 1,000 pages plus one commit, at 4 KiB + a 24-byte header
  // each; without checkpoints it would be some 64 MB.
  const uintmax_t wal_bytes = fs::file_size(path + "-wal");
  EXPECT_LE(wal_bytes, uintmax_t{4200} * (4096 + 24)) << "the log grew without bound";
}

// ---- Opening files that are not (our) databases --------------------------------------------

TEST(SqliteOpen, NotADatabaseFailsNamingThePathAndLeavesTheFileUnchanged) {
  TempDir dir;
  const std::string path = dir.File("notes.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "this is a text file, not a database\n";
  WriteBytes(path, text);
  EXPECT_THAT(OpenStore(Url(path)),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path), HasSubstr("not a SQLite database"))));
  EXPECT_EQ(ReadBytes(path), text);
  EXPECT_FALSE(fs::exists(path + "-wal"));
  EXPECT_FALSE(fs::exists(path + "-shm"));
}

TEST(SqliteOpen, CorruptDatabaseIsDataLossAndLeftUnchanged) {
  TempDir dir;
  const std::string path = dir.File("c.db");
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
    ASSERT_OK(store->Put("k", "v"));
  }
  // Keep the 100-byte file header (so it still looks like SQLite) and scramble the rest of
  // page 1, which holds the schema.
  std::string bytes = ReadBytes(path);
  ASSERT_GT(bytes.size(), 4096u);
  for (size_t i = 100; i < 4096; ++i) bytes[i] = static_cast<char>(0xA5 ^ (i * 7));
  WriteBytes(path, bytes);
  StatusOr<std::unique_ptr<Store>> store = OpenStore(Url(path));
  EXPECT_THAT(store, StatusIs(StatusCode::kDataLoss, AllOf(HasSubstr(path), HasSubstr("corrupt"))));
  EXPECT_EQ(ReadBytes(path), bytes);
}

TEST(SqliteOpen, MissingDirectoryIsNotFoundNamingIt) {
  TempDir dir;
  const std::string missing = dir.File("no/such/dir");
  EXPECT_THAT(OpenStore(Url(missing + "/x.db")),
              StatusIs(StatusCode::kNotFound,
                       AllOf(HasSubstr(missing + "/x.db"),
                             HasSubstr("directory \"" + missing + "\" does not exist"))));
  EXPECT_FALSE(fs::exists(dir.File("no")));
}

TEST(SqliteOpen, DirectoryInPlaceOfTheFileIsRefused) {
  TempDir dir;
  EXPECT_THAT(OpenStore(Url(dir.path())),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("is a directory")));
}

TEST(SqliteOpen, UnreadableFileIsPermissionDenied) {
  TempDir dir;
  const std::string path = dir.File("locked.db");
  { ASSERT_OK(OpenStore(Url(path)).status()); }
  fs::permissions(path, fs::perms::none);
  if (geteuid() != 0) {
    EXPECT_THAT(OpenStore(Url(path)), StatusIs(StatusCode::kPermissionDenied, HasSubstr(path)));
    return;
  }
  // Root reads any file (CI runs as root), so check from a child that drops to "nobody".
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_exec);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    StatusOr<std::unique_ptr<Store>> store = OpenStore(Url(path));
    const bool as_expected = !store.ok() &&
                             store.status().code() == StatusCode::kPermissionDenied &&
                             store.status().message().find(path) != std::string_view::npos;
    if (!as_expected) std::fprintf(stderr, "child got: %s\n", store.status().ToString().c_str());
    _exit(as_expected ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "1 = wrong status (see stderr), 3 = could not drop root";
}

TEST(SqliteOpen, ForeignSqliteDatabaseIsRefusedAndUntouched) {
  TempDir dir;
  const std::string path = dir.File("other.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.Exec("CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('x')"),
              SQLITE_OK);
  }
  const std::string before = ReadBytes(path);
  EXPECT_THAT(OpenStore(Url(path)), StatusIs(StatusCode::kFailedPrecondition,
                                             AllOf(HasSubstr(path), HasSubstr("not a plinth"))));
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_schema WHERE name = 'kv'"), "0");
  EXPECT_EQ(raw.Query("SELECT name FROM customers"), "x");
}

TEST(SqliteOpen, EmptyFileBecomesAStore) {
  TempDir dir;
  const std::string path = dir.File("empty.db");
  WriteBytes(path, "");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
  EXPECT_THAT(store->Put("k", "v"), HasValue(1));
}

TEST(SqliteOpen, NewerSchemaVersionIsFailedPreconditionNamingBothVersions) {
  TempDir dir;
  const std::string path = dir.File("future.db");
  { ASSERT_OK(OpenStore(Url(path)).status()); }
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("SELECT version FROM schema_version"), "1");
    ASSERT_EQ(raw.Exec("UPDATE schema_version SET version = 7"), SQLITE_OK);
  }
  EXPECT_THAT(OpenStore(Url(path)), StatusIs(StatusCode::kFailedPrecondition,
                                             AllOf(HasSubstr(path), HasSubstr("schema version 7"),
                                                   HasSubstr("version 1"))));
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT version FROM schema_version"), "7");
}

// ---- Durability ----------------------------------------------------------------------------

TEST(SqliteDurability, DataRevisionsAndHistorySurviveReopen) {
  TempDir dir;
  const std::string path = dir.File("d.db");
  const std::string binary_key("k\x00\xff", 3);
  const std::string binary_value("\x00\x01\xfe\xff", 4);
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
    ASSERT_OK(store->Put("a", "1"));                  // 1
    ASSERT_OK(store->Put("b", "2"));                  // 2
    ASSERT_OK(store->Put(binary_key, binary_value));  // 3
    ASSERT_OK(store->Put("e", ""));                   // 4
    ASSERT_OK(store->Delete("b"));                    // 5
    ASSERT_OK(store->Put("a", "1b"));                 // 6
    ASSERT_OK(store->Compact(2));
  }
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
  EXPECT_THAT(store->CurrentRevision(), HasValue(6));
  EXPECT_THAT(store->CompactedRevision(), HasValue(2));
  ASSERT_OK_AND_ASSIGN(KeyValue a, store->Get("a"));
  EXPECT_EQ(a, (KeyValue{"a", "1b", 1, 6}));
  EXPECT_THAT(store->Get("b"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(KeyValue bin, store->Get(binary_key));
  EXPECT_EQ(bin.value, binary_value);
  ASSERT_OK_AND_ASSIGN(KeyValue e, store->Get("e"));
  EXPECT_EQ(e.value, "");
  // BLOB keys sort as unsigned bytes: "k\0\xff" after "e" and before "k\x01".
  ASSERT_OK(store->Put(std::string("k\x01", 2), "x"));
  ASSERT_OK_AND_ASSIGN(RangeResult all, store->Range(KeySpan::All(), {}));
  std::vector<std::string> keys;
  for (const KeyValue& kv : all.kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "e", binary_key, std::string("k\x01", 2)}));

  EXPECT_THAT(store->Watch(KeySpan::All(), 2), StatusIs(StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 3));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
  EXPECT_EQ(batch.revision, 3);
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].kv, (KeyValue{binary_key, binary_value, 3, 3}));
}

// ---- Several Store objects and processes on one file ---------------------------------------

TEST(SqliteSharing, WatchOnOneStoreSeesCommitsThroughAnother) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  ASSERT_OK_AND_ASSIGN(auto writer, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto reader, OpenStore(Url(path, "poll_interval=5ms")));
  ASSERT_OK_AND_ASSIGN(auto watch, reader->Watch(KeySpan::Prefix("p/"), 0));
  // Nothing yet.
  EXPECT_THAT(watch->Next(std::chrono::milliseconds(20)), StatusIs(StatusCode::kDeadlineExceeded));
  // The commit goes through the other Store's connections: only PRAGMA data_version polling
  // can tell the reader's watch about it.
  ASSERT_OK_AND_ASSIGN(Revision rev, writer->Put("p/1", "one"));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
  EXPECT_EQ(batch.revision, rev);
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].kv, (KeyValue{"p/1", "one", rev, rev}));
  EXPECT_THAT(reader->Get("p/1"), HasValue(KeyValue{"p/1", "one", rev, rev}));
}

TEST(SqliteSharing, ConcurrentCommitsThroughTwoStoresAreGapFree) {
  TempDir dir;
  const std::string path = dir.File("g.db");
  constexpr int kPerWriter = 150;
  ASSERT_OK_AND_ASSIGN(auto a, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto b, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto watcher, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto watch, watcher->Watch(KeySpan::All(), 1));

  std::vector<Revision> revs_a, revs_b;
  auto run = [](Store* store, std::string name, std::vector<Revision>* revs) {
    for (int i = 0; i < kPerWriter; ++i) {
      StatusOr<Revision> rev = store->Put(name + "/" + std::to_string(i), "v");
      if (!rev.ok()) {
        ADD_FAILURE() << rev.status();
        return;
      }
      revs->push_back(*rev);
    }
  };
  std::thread ta(run, a.get(), "a", &revs_a);
  std::thread tb(run, b.get(), "b", &revs_b);
  ta.join();
  tb.join();

  // Each writer's revisions increase; together they are exactly 1..2N.
  EXPECT_TRUE(std::is_sorted(revs_a.begin(), revs_a.end()));
  EXPECT_TRUE(std::is_sorted(revs_b.begin(), revs_b.end()));
  std::vector<Revision> all = revs_a;
  all.insert(all.end(), revs_b.begin(), revs_b.end());
  std::sort(all.begin(), all.end());
  std::vector<Revision> expected(2 * kPerWriter);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<Revision>(i + 1);
  EXPECT_EQ(all, expected);

  // A third Store's watch replays every revision once, in order.
  for (Revision want = 1; want <= 2 * kPerWriter; ++want) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
    ASSERT_EQ(batch.revision, want);
    ASSERT_EQ(batch.events.size(), 1u);
  }
}

// Several processes commit to one file while this process watches: revisions stay gap-free
// and the watch (woken only through PRAGMA data_version) sees all of them.
TEST(SqliteSharing, CommitsFromSeveralProcessesAreGapFreeAndWatched) {
  TempDir dir;
  const std::string path = dir.File("mp.db");
  constexpr int kChildren = 3;
  constexpr int kPerChild = 60;
  { ASSERT_OK(OpenStore(Url(path)).status()); }  // create the schema once

  // Fork before this process starts any thread (a store's notifier), and hold the children
  // on a pipe until the watch is in place.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      char byte;
      if (read(go[0], &byte, 1) != 1) _exit(2);
      StatusOr<std::unique_ptr<Store>> opened = OpenStore(Url(path));
      if (!opened.ok()) _exit(3);
      std::unique_ptr<Store> child_store = std::move(opened).value();
      for (int i = 0; i < kPerChild; ++i) {
        if (!child_store->Put("c" + std::to_string(c) + "/" + std::to_string(i), "v").ok()) {
          _exit(4);
        }
      }
      child_store.reset();
      _exit(0);
    }
    children.push_back(pid);
  }
  close(go[0]);
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 1));
  ASSERT_EQ(write(go[1], "gogo", kChildren), kChildren);
  close(go[1]);

  std::vector<int> seen_per_child(kChildren, 0);
  for (Revision want = 1; want <= kChildren * kPerChild; ++want) {
    ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
    ASSERT_EQ(batch.revision, want);
    ASSERT_EQ(batch.events.size(), 1u);
    const std::string& key = batch.events[0].kv.key;
    const int child = key[1] - '0';
    // Each child's own puts arrive in its commit order.
    EXPECT_EQ(key, "c" + std::to_string(child) + "/" + std::to_string(seen_per_child[child]));
    ++seen_per_child[child];
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child exit " << status;
  }
  EXPECT_THAT(store->CurrentRevision(), HasValue(kChildren * kPerChild));
}

// ---- Locking -------------------------------------------------------------------------------

TEST(SqliteLocking, WriterBlockedPastBusyTimeoutIsUnavailableAndAppliesNothing) {
  TempDir dir;
  const std::string path = dir.File("l.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path, "busy_timeout=50ms")));
  ASSERT_OK(store->Put("k", "before"));
  {
    RawDb other(path);
    ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), SQLITE_OK);  // another writer holds the lock
    EXPECT_THAT(store->Put("k", "after"),
                StatusIs(StatusCode::kUnavailable, AllOf(HasSubstr(path), HasSubstr("busy"))));
    // Reads are not blocked by a writer in WAL mode.
    EXPECT_THAT(store->Get("k"), HasValue(KeyValue{"k", "before", 1, 1}));
    ASSERT_EQ(other.Exec("ROLLBACK"), SQLITE_OK);
  }
  EXPECT_THAT(store->CurrentRevision(), HasValue(1));
  EXPECT_THAT(store->Put("k", "after"), HasValue(2));
}

// ---- Retention and compaction --------------------------------------------------------------

TEST(SqliteRetention, CommitsCompactOnceHistoryDoublesPastRetention) {
  TempDir dir;
  const std::string path = dir.File("r.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path, "retention=10")));
  for (int i = 1; i <= 20; ++i) ASSERT_OK(store->Put("k" + std::to_string(i), "v"));
  EXPECT_THAT(store->CompactedRevision(), HasValue(0));  // 20 - 0 is not > 2 * 10
  ASSERT_OK(store->Put("k21", "v"));
  EXPECT_THAT(store->CompactedRevision(), HasValue(11));  // back to 10 revisions
  for (int i = 22; i <= 25; ++i) ASSERT_OK(store->Put("k" + std::to_string(i), "v"));
  EXPECT_THAT(store->CompactedRevision(), HasValue(11));  // amortised, not per commit
  EXPECT_THAT(store->Watch(KeySpan::All(), 11), StatusIs(StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 12));
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
  EXPECT_EQ(batch.revision, 12);
  // Live keys are untouched; the log holds only the retained revisions.
  EXPECT_THAT(store->Count(KeySpan::All()), CountIs(25, 25));
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM changes"), "14");
  EXPECT_EQ(raw.Query("SELECT min(rev) FROM changes"), "12");
}

TEST(SqliteRetention, ZeroKeepsEverythingUntilExplicitCompact) {
  TempDir dir;
  const std::string path = dir.File("r0.db");
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(path, "retention=0")));
  for (int i = 1; i <= 30; ++i) ASSERT_OK(store->Put("k", std::to_string(i)));
  EXPECT_THAT(store->CompactedRevision(), HasValue(0));
  ASSERT_OK(store->Compact(25));
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM changes"), "5");
  EXPECT_EQ(raw.Query("SELECT compacted FROM meta"), "25");
}

// ---- Snapshots and the reader pool ---------------------------------------------------------

TEST(SqliteSnapshot, MoreSnapshotsThanPooledReadersDoNotBlock) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(dir.File("p.db"), "readers=1")));
  ASSERT_OK(store->Put("k", "1"));
  std::vector<std::unique_ptr<Snapshot>> snapshots;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto snapshot, store->OpenSnapshot());
    snapshots.push_back(std::move(snapshot));
    ASSERT_OK(store->Put("k", std::to_string(i + 2)));
  }
  EXPECT_THAT(store->Get("k"), HasValue(KeyValue{"k", "4", 1, 4}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(snapshots[i]->revision(), i + 1);
    ASSERT_OK_AND_ASSIGN(KeyValue kv, snapshots[i]->Get("k"));
    EXPECT_EQ(kv.value, std::to_string(i + 1));
  }
}

TEST(SqliteSnapshot, KeepsItsViewAcrossWritesFromAnotherStoreAndCompaction) {
  TempDir dir;
  const std::string path = dir.File("v.db");
  ASSERT_OK_AND_ASSIGN(auto a, OpenStore(Url(path)));
  ASSERT_OK_AND_ASSIGN(auto b, OpenStore(Url(path)));
  ASSERT_OK(a->Put("x/1", "a"));
  ASSERT_OK(a->Put("x/2", "b"));
  ASSERT_OK_AND_ASSIGN(auto snapshot, a->OpenSnapshot());
  ASSERT_OK(b->Delete("x/1"));
  ASSERT_OK(b->Put("x/3", "c"));
  ASSERT_OK(b->Compact(4));
  // WAL snapshot isolation: the snapshot still reads revision 2, compaction notwithstanding.
  EXPECT_EQ(snapshot->revision(), 2);
  EXPECT_THAT(snapshot->Count(KeySpan::Prefix("x/")), CountIs(2, 2));
  ASSERT_OK_AND_ASSIGN(RangeResult range, snapshot->Range(KeySpan::Prefix("x/"), {}));
  ASSERT_EQ(range.kvs.size(), 2u);
  EXPECT_EQ(range.kvs[0].key, "x/1");
  EXPECT_EQ(range.revision, 2);
  EXPECT_THAT(a->Count(KeySpan::Prefix("x/")), CountIs(2, 4));
}

// ---- Shutdown ------------------------------------------------------------------------------

TEST(SqliteShutdown, ClosingWithALongPollIntervalIsPrompt) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(dir.File("c.db"), "poll_interval=1h")));
  {
    // A watcher makes the notifier thread start polling (and then sleep for an hour).
    ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 0));
    EXPECT_THAT(watch->Next(std::chrono::milliseconds(10)),
                StatusIs(StatusCode::kDeadlineExceeded));
  }
  const auto start = std::chrono::steady_clock::now();
  store.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(SqliteShutdown, LocalCommitWakesWatchWithoutPolling) {
  TempDir dir;
  // With an hour between polls, only the Store's own signal can deliver this promptly.
  ASSERT_OK_AND_ASSIGN(auto store, OpenStore(Url(dir.File("w.db"), "poll_interval=1h")));
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::All(), 0));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_OK(store->Put("k", "v"));
  });
  ASSERT_OK_AND_ASSIGN(WatchBatch batch, watch->Next(kWait));
  writer.join();
  EXPECT_EQ(batch.revision, 1);
  EXPECT_THAT(watch->Next(std::chrono::milliseconds(0)), StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_THAT(batch.events, ::testing::SizeIs(1));
}

// ---- Differential check against the reference backend --------------------------------------

std::string Describe(const Status& s) { return s.ToString(); }

// Random transactions (binary keys, conditions of every kind, DeleteRange, compaction) applied
// to the memory backend and to sqlite side by side must give identical results: statuses and
// messages, revisions, reads, and watch streams (including progress notices).
TEST(SqliteDifferential, MatchesTheMemoryBackendOnRandomTransactions) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto memory, OpenStore("memory://?retention=0"));
  ASSERT_OK_AND_ASSIGN(auto sqlite, OpenStore(Url(dir.File("diff.db"), "retention=0")));
  std::mt19937 rng(20240611);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> alphabet = {"a", "b", std::string(1, '\0'), "\xff", "/"};
  auto random_key = [&] {
    std::string key;
    const int len = 1 + pick(3);
    for (int i = 0; i < len; ++i) key += alphabet[pick(static_cast<int>(alphabet.size()))];
    return key;
  };
  auto random_span = [&] {
    switch (pick(4)) {
      case 0:
        return KeySpan::Prefix(random_key().substr(0, 1));
      case 1:
        return KeySpan::Key(random_key());
      case 2:
        return KeySpan::All();
      default: {
        std::string a = random_key(), b = random_key();
        if (CompareKeys(b, a) < 0) std::swap(a, b);
        return KeySpan::Between(a, pick(3) == 0 ? std::string() : b);
      }
    }
  };

  struct Follower {
    std::unique_ptr<WatchStream> memory, sqlite;
  };
  std::vector<Follower> followers;
  auto compare_watches = [&](int step) {
    for (size_t w = 0; w < followers.size(); ++w) {
      for (int n = 0; n < 1000; ++n) {
        StatusOr<WatchBatch> m = followers[w].memory->Next(std::chrono::milliseconds(0));
        StatusOr<WatchBatch> q = followers[w].sqlite->Next(std::chrono::milliseconds(0));
        ASSERT_EQ(Describe(m.status()), Describe(q.status())) << "step " << step << " watch " << w;
        if (!m.ok()) break;
        ASSERT_EQ(m->revision, q->revision) << "step " << step << " watch " << w;
        ASSERT_EQ(m->events, q->events) << "step " << step << " watch " << w;
      }
    }
  };

  for (int step = 0; step < 600; ++step) {
    if (pick(15) == 0) {
      WatchOptions options;
      options.progress_notify = pick(2) == 0;
      const KeySpan span = random_span();
      ASSERT_OK_AND_ASSIGN(Revision current, memory->CurrentRevision());
      const Revision from = pick(3) == 0 ? 0 : std::max<Revision>(0, current - pick(6));
      StatusOr<std::unique_ptr<WatchStream>> m = memory->Watch(span, from, options);
      StatusOr<std::unique_ptr<WatchStream>> q = sqlite->Watch(span, from, options);
      ASSERT_EQ(Describe(m.status()), Describe(q.status())) << "step " << step;
      if (m.ok()) followers.push_back({std::move(m).value(), std::move(q).value()});
    }
    if (pick(40) == 0) {
      ASSERT_OK_AND_ASSIGN(Revision current, memory->CurrentRevision());
      const Revision to = current - pick(8) + 2;
      ASSERT_EQ(Describe(memory->Compact(to)), Describe(sqlite->Compact(to))) << "step " << step;
    }

    TxnRequest txn;
    ASSERT_OK_AND_ASSIGN(Revision current, memory->CurrentRevision());
    const int conditions = pick(3) == 0 ? 1 + pick(2) : 0;
    for (int i = 0; i < conditions; ++i) {
      switch (pick(3)) {
        case 0:
          txn.conditions.push_back(Condition::Absent(random_key()));
          break;
        case 1: {
          std::string key = random_key();
          StatusOr<KeyValue> kv = memory->Get(key);
          Revision rev = kv.ok() && pick(4) != 0 ? kv->mod_revision : pick(5);
          txn.conditions.push_back(Condition::ModRevisionIs(key, rev));
          break;
        }
        default:
          txn.conditions.push_back(
              Condition::UnchangedSince(random_span(), std::max<Revision>(0, current - pick(6))));
      }
    }
    const int ops = pick(5);
    for (int i = 0; i < ops; ++i) {
      switch (pick(6)) {
        case 0:
          txn.ops.push_back(Op::Delete(random_key()));
          break;
        case 1:
          txn.ops.push_back(Op::DeleteRange(random_span()));
          break;
        default:
          txn.ops.push_back(Op::Put(random_key(), pick(5) == 0 ? std::string() : random_key()));
      }
    }
    StatusOr<Revision> m = memory->Commit(txn);
    StatusOr<Revision> q = sqlite->Commit(txn);
    ASSERT_EQ(Describe(m.status()), Describe(q.status())) << "step " << step;
    if (m.ok()) {
      ASSERT_EQ(*m, *q) << "step " << step;
    }

    if (step % 5 == 0) {
      const KeySpan span = random_span();
      RangeOptions options;
      options.limit = static_cast<size_t>(pick(4));
      options.keys_only = pick(2) == 0;
      if (pick(2) == 0) options.after = random_key();
      StatusOr<RangeResult> mr = memory->Range(span, options);
      StatusOr<RangeResult> qr = sqlite->Range(span, options);
      ASSERT_EQ(Describe(mr.status()), Describe(qr.status())) << "step " << step;
      ASSERT_EQ(mr->kvs, qr->kvs) << "step " << step;
      ASSERT_EQ(mr->more, qr->more) << "step " << step;
      ASSERT_EQ(mr->revision, qr->revision) << "step " << step;
      StatusOr<CountResult> mc = memory->Count(span);
      StatusOr<CountResult> qc = sqlite->Count(span);
      ASSERT_EQ(mc->count, qc->count) << "step " << step;
      ASSERT_EQ(mc->revision, qc->revision) << "step " << step;
      const std::string key = random_key();
      StatusOr<KeyValue> mg = memory->Get(key);
      StatusOr<KeyValue> qg = sqlite->Get(key);
      ASSERT_EQ(Describe(mg.status()), Describe(qg.status())) << "step " << step;
      if (mg.ok()) {
        ASSERT_EQ(*mg, *qg) << "step " << step;
      }
    }
    if (step % 3 == 0) compare_watches(step);
    ASSERT_EQ(*memory->CompactedRevision(), *sqlite->CompactedRevision()) << "step " << step;
  }
  compare_watches(-1);
  ASSERT_OK_AND_ASSIGN(RangeResult all_memory, memory->Range(KeySpan::All(), {}));
  ASSERT_OK_AND_ASSIGN(RangeResult all_sqlite, sqlite->Range(KeySpan::All(), {}));
  EXPECT_EQ(all_memory.kvs, all_sqlite.kvs);
  EXPECT_EQ(all_memory.revision, all_sqlite.revision);
  EXPECT_GT(all_memory.revision, 100);
}

}  // namespace
}  // namespace plinth::store
