// Two replicas in two processes over one store (SQLite file, or a shared database server):
// every write made in one process — DeleteBundle's Delete and Dissociate effects included —
// reaches the other through the revision stream, and the rules that read several objects
// (similar entries, DeleteBundle in Restrict mode) hold while both write at once.
// The other replica is testing/replica_main.cc, spawned with posix_spawn.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "datastore/datastore.h"
#include "datastore/testing/datastore_fixture.h"
#include "store/conformance/child_process.h"

namespace plinth::datastore {
namespace {

using store::conformance::ChildProcess;
using testing::DatastoreTest;

constexpr auto kLineTimeout = std::chrono::seconds(60);

class DatastoreProcessTest : public DatastoreTest {
 protected:
  // Starts the other replica on this test's store.
  std::unique_ptr<ChildProcess> Spawn(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PLINTH_DATASTORE_REPLICA_PATH, url()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto child = ChildProcess::Spawn(argv, temp_dir() + "/replica.stderr");
    EXPECT_OK(child.status());
    if (!child.ok()) return nullptr;
    auto ready = (*child)->ReadLine(Deadline());
    EXPECT_TRUE(ready.ok() && *ready == "ready")
        << "replica did not start: " << ready.status() << "\n"
        << (*child)->Stderr();
    return std::move(*child);
  }

  static ChildProcess::Deadline Deadline() {
    return std::chrono::steady_clock::now() + kLineTimeout;
  }

  // Reads the child's lines until it exits; checks it exited with 0.
  std::vector<std::string> ReadAll(ChildProcess& child) {
    std::vector<std::string> lines;
    for (;;) {
      auto line = child.ReadLine(Deadline());
      if (!line.ok()) {
        EXPECT_EQ(line.status().code(), StatusCode::kOutOfRange) << line.status() << "\n"
                                                                 << child.Stderr();
        break;
      }
      lines.push_back(*line);
    }
    auto status = child.Wait(Deadline());
    EXPECT_TRUE(status.ok() && *status == 0) << child.Stderr();
    return lines;
  }
};

TEST_P(DatastoreProcessTest, WritesOfTheOtherProcessReachThisReplicaThroughTheStream) {
  auto child = Spawn({"changes"});
  ASSERT_NE(child, nullptr);
  auto line = child->ReadLine(Deadline());
  ASSERT_OK(line.status()) << child->Stderr();
  std::istringstream in(*line);
  std::string word;
  store::Revision revision = 0;
  in >> word >> revision;
  ASSERT_EQ(word, "done") << *line;
  ASSERT_OK(ds().mirror().WaitForRevision(revision, std::chrono::seconds(20)));

  // Delete mode took the federating entry along; Dissociate rewrote the other one.
  EXPECT_EQ(ds().FetchRegistrationEntry("doomed").status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(EntryPtr keep, ds().FetchRegistrationEntry("keep"));
  EXPECT_EQ(std::vector<std::string>(keep->federates_with().begin(), keep->federates_with().end()),
            std::vector<std::string>{"spiffe://c.test"});
  EXPECT_OK(ds().FetchRegistrationEntry("plain").status());
  EXPECT_EQ(ds().FetchBundle("spiffe://a.test").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ds().FetchBundle("spiffe://b.test").status().code(), StatusCode::kNotFound);
  EXPECT_OK(ds().FetchBundle("spiffe://c.test").status());
  // And it came through the stream, not a reload.
  EXPECT_EQ(ds().mirror().status().rebuilds, 0);
  ReadAll(*child);
}

TEST_P(DatastoreProcessTest, SimilarEntriesCreatedByBothProcessesAtOnceYieldOneEntry) {
  constexpr int kRounds = 60;
  auto child = Spawn({"similar-race", std::to_string(kRounds), "child"});
  ASSERT_NE(child, nullptr);
  std::map<int, std::string> mine;
  for (int i = 0; i < kRounds; ++i) {
    const std::string n = std::to_string(i);
    v1::RegistrationEntry e = testing::MakeEntry("spiffe://example.org/race/" + n,
                                                 "spiffe://example.org/agent", {"race:" + n});
    e.set_entry_id("parent-" + n);
    ASSERT_OK_AND_ASSIGN(CreateOrReturnResult result, ds().CreateOrReturnRegistrationEntry(e));
    mine[i] = result.entry.entry_id();
  }
  std::map<int, std::string> theirs;
  for (const std::string& line : ReadAll(*child)) {
    std::istringstream in(line);
    std::string word, id;
    int round = -1, existing = 0;
    in >> word >> round >> id >> existing;
    ASSERT_EQ(word, "similar") << line;
    theirs[round] = id;
  }
  ASSERT_EQ(theirs.size(), static_cast<size_t>(kRounds));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(20)));
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(mine[i], theirs[i]) << "round " << i << ": the replicas disagree";
    v1::ListRegistrationEntriesRequest request;
    request.set_by_spiffe_id("spiffe://example.org/race/" + std::to_string(i));
    ASSERT_OK_AND_ASSIGN(auto listed, ds().ListRegistrationEntries(request));
    EXPECT_EQ(listed.entries_size(), 1) << "round " << i;
  }
}

TEST_P(DatastoreProcessTest, RestrictDeleteAndAFederatingCreateNeverBothSucceed) {
  constexpr int kRounds = 80;
  for (int i = 0; i < kRounds; ++i) {
    const std::string td = "spiffe://r" + std::to_string(i) + ".test";
    ASSERT_OK(ds().CreateBundle(testing::MakeBundle(td)).status());
  }
  // The other process creates fed-<i> federating with r<i> while this one deletes r<i> in
  // Restrict mode, both going through the rounds in order at the pace of durable writes.
  auto child = Spawn({"restrict-race", std::to_string(kRounds)});
  ASSERT_NE(child, nullptr);
  auto seen = child->ReadLine(Deadline());
  ASSERT_TRUE(seen.ok() && *seen == "seen") << seen.status() << child->Stderr();
  std::map<int, bool> deleted;
  for (int i = 0; i < kRounds; ++i) {
    const std::string td = "spiffe://r" + std::to_string(i) + ".test";
    Status s = ds().DeleteBundle(td, v1::DELETE_BUNDLE_RESTRICT);
    ASSERT_TRUE(s.ok() || s.code() == StatusCode::kFailedPrecondition) << s;
    deleted[i] = s.ok();
  }
  std::map<int, bool> created;
  for (const std::string& line : ReadAll(*child)) {
    std::istringstream in(line);
    std::string word, outcome;
    int round = -1;
    in >> word >> round >> outcome;
    ASSERT_EQ(word, "restrict") << line;
    created[round] = outcome == "ok";
  }
  ASSERT_EQ(created.size(), static_cast<size_t>(kRounds));
  ASSERT_OK(ds().mirror().Sync(std::chrono::seconds(20)));
  int creates_won = 0;
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_FALSE(deleted[i] && created[i]) << "round " << i << ": both succeeded";
    EXPECT_TRUE(deleted[i] || created[i]) << "round " << i << ": neither succeeded";
    const std::string td = "spiffe://r" + std::to_string(i) + ".test";
    if (ds().FetchRegistrationEntry("fed-" + std::to_string(i)).ok()) {
      EXPECT_OK(ds().FetchBundle(td).status())
          << "round " << i << ": an entry federates with a deleted bundle";
    }
    creates_won += created[i] ? 1 : 0;
  }
  RecordProperty("rounds_where_the_create_won", creates_won);
}

INSTANTIATE_TEST_SUITE_P(Backends, DatastoreProcessTest, ::testing::ValuesIn([] {
                           std::vector<testing::DatastoreBackend> shared;
                           for (const auto& b : testing::DatastoreBackends()) {
                             if (b.name != "memory") shared.push_back(b);
                           }
                           return shared;
                         }()),
                         testing::BackendName);

}  // namespace
}  // namespace plinth::datastore
