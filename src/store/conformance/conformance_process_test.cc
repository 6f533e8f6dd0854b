// Conformance for backends that several processes share: revisions stay gap-free and
// distinct across processes, a Watch sees another process's commits exactly once and in
// order, and every commit a killed process acknowledged survives it.
//
// The other processes run store_conformance_writer (writer_main.cc), started with posix_spawn.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status_matchers.h"
#include "store/conformance/backends.h"
#include "store/conformance/child_process.h"
#include "store/conformance/writer_protocol.h"

#ifndef PLINTH_STORE_WRITER_PATH
#error "PLINTH_STORE_WRITER_PATH must name the store_conformance_writer binary"
#endif

namespace plinth::store::conformance {
namespace {

using std::chrono::steady_clock;

// One writer process and what it acknowledged.
struct Writer {
  std::string prefix;
  int ops_per_txn = 1;
  size_t value_size = 0;
  std::unique_ptr<ChildProcess> process;
  std::vector<WriterAck> acks;
};

class WriterProcesses {
 public:
  explicit WriterProcesses(std::string temp_dir) : temp_dir_(std::move(temp_dir)) {}

  // Starts a writer committing `count` transactions of `ops_per_txn` keys under `prefix`.
  StatusOr<Writer*> Start(const std::string& url, const std::string& prefix, int64_t count,
                          int ops_per_txn, size_t value_size) {
    auto writer = std::make_unique<Writer>();
    writer->prefix = prefix;
    writer->ops_per_txn = ops_per_txn;
    writer->value_size = value_size;
    const std::string stderr_path =
        temp_dir_ + "/writer-" + std::to_string(writers_.size()) + ".stderr";
    PLINTH_ASSIGN_OR_RETURN(
        writer->process,
        ChildProcess::Spawn({PLINTH_STORE_WRITER_PATH, "--url", url, "--prefix", prefix, "--count",
                             std::to_string(count), "--ops-per-txn", std::to_string(ops_per_txn),
                             "--value-size", std::to_string(value_size)},
                            stderr_path));
    writers_.push_back(std::move(writer));
    return writers_.back().get();
  }

  // Reads acknowledgements from `writer` until it has `count` of them (or, with count < 0,
  // until its stdout closes), checking that each names the next commit's first key.
  static Status ReadAcks(Writer& writer, int64_t count, steady_clock::time_point deadline) {
    while (count < 0 || static_cast<int64_t>(writer.acks.size()) < count) {
      StatusOr<std::string> line = writer.process->ReadLine(deadline);
      if (!line.ok()) {
        if (count < 0 && line.status().code() == StatusCode::kOutOfRange) return Status::Ok();
        return Status(line.status().code(), "writer " + writer.prefix + " after " +
                                                std::to_string(writer.acks.size()) +
                                                " acks: " + std::string(line.status().message()) +
                                                "; its stderr: " + writer.process->Stderr());
      }
      std::optional<WriterAck> ack = ParseWriterAck(*line);
      const std::string expected_key =
          WriterKey(writer.prefix, static_cast<int64_t>(writer.acks.size()), 0);
      if (!ack || ack->first_key != expected_key) {
        return InternalError("writer " + writer.prefix + " printed \"" + *line +
                             "\"; expected an ack for " + expected_key);
      }
      writer.acks.push_back(*ack);
    }
    return Status::Ok();
  }

  // Reads every remaining acknowledgement and waits for a clean exit.
  static Status Finish(Writer& writer, steady_clock::time_point deadline) {
    PLINTH_RETURN_IF_ERROR(ReadAcks(writer, -1, deadline));
    PLINTH_ASSIGN_OR_RETURN(int status, writer.process->Wait(deadline));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return InternalError("writer " + writer.prefix + " " + DescribeWaitStatus(status) +
                           "; its stderr: " + writer.process->Stderr());
    }
    return Status::Ok();
  }

  // Records every acknowledged commit of `writer` in `log`.
  static void RecordAcks(const Writer& writer, CommitLog& log) {
    for (size_t i = 0; i < writer.acks.size(); ++i) {
      std::vector<std::string> keys;
      for (int op = 0; op < writer.ops_per_txn; ++op) {
        keys.push_back(WriterKey(writer.prefix, static_cast<int64_t>(i), op));
      }
      log.Record(writer.acks[i].revision, keys);
    }
  }

 private:
  const std::string temp_dir_;
  std::vector<std::unique_ptr<Writer>> writers_;  // destroyed (killed, reaped) with this
};

TEST_P(StoreProcessTest, WritersInSeveralProcessesGetDistinctGapFreeRevisions) {
  constexpr int kProcesses = 2;
  constexpr int kCommitsPerProcess = 100;
  constexpr int kThreads = 2;
  constexpr int kCommitsPerThread = 50;
  constexpr int kOpsPerTxn = 2;
  ASSERT_OK(store().Put("seed", "0"));
  ASSERT_OK_AND_ASSIGN(Revision start, store().CurrentRevision());
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("mp/"), start + 1));
  WatchReader reader(std::move(watch));
  const auto deadline = steady_clock::now() + kEventually * 3;

  WriterProcesses processes(temp_dir());
  std::vector<Writer*> writers;
  for (int p = 0; p < kProcesses; ++p) {
    ASSERT_OK_AND_ASSIGN(Writer * w, processes.Start(url(), "mp/p" + std::to_string(p) + "/",
                                                     kCommitsPerProcess, kOpsPerTxn, 16));
    writers.push_back(w);
  }
  CommitLog log;
  std::vector<Status> failures(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string prefix = "mp/t" + std::to_string(t) + "/";
        for (int i = 0; i < kCommitsPerThread; ++i) {
          std::vector<std::string> keys;
          std::vector<Op> ops;
          for (int op = 0; op < kOpsPerTxn; ++op) {
            keys.push_back(WriterKey(prefix, i, op));
            ops.push_back(Op::Put(keys.back(), WriterValue(keys.back(), 16)));
          }
          StatusOr<Revision> rev = CommitOps(store(), std::move(ops));
          if (!rev.ok()) {
            failures[t] = rev.status();
            return;
          }
          log.Record(*rev, keys);
        }
      });
    }
  }
  for (const Status& s : failures) EXPECT_OK(s);
  for (Writer* w : writers) {
    ASSERT_OK(WriterProcesses::Finish(*w, deadline));
    EXPECT_EQ(w->acks.size(), static_cast<size_t>(kCommitsPerProcess));
    WriterProcesses::RecordAcks(*w, log);
  }

  constexpr Revision kTotal = kProcesses * kCommitsPerProcess + kThreads * kCommitsPerThread;
  const auto by_revision = log.by_revision();
  EXPECT_EQ(log.duplicates(), 0) << "two commits got the same revision";
  ASSERT_EQ(static_cast<Revision>(by_revision.size()), kTotal);
  EXPECT_EQ(by_revision.begin()->first, start + 1);
  EXPECT_EQ(by_revision.rbegin()->first, start + kTotal) << "revisions have a gap";
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  EXPECT_EQ(current, start + kTotal);
  const std::vector<WatchBatch> got = reader.Finish(start + kTotal);
  ASSERT_OK(reader.status());
  ExpectBatchesMatchLog(got, by_revision);
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::Prefix("mp/")));
  EXPECT_EQ(count.count, kTotal * kOpsPerTxn);
}

TEST_P(StoreProcessTest, WatchSeesEveryChangeFromAnotherProcessOnceInOrder) {
  constexpr int kCommits = 150;
  constexpr int kOpsPerTxn = 3;
  constexpr size_t kValueSize = 100;
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("seed", "0"));
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("xp/"), start + 1));
  ASSERT_OK_AND_ASSIGN(auto tail, store().Watch(KeySpan::Prefix("xp/"), 0));
  const auto deadline = steady_clock::now() + kEventually * 3;
  WriterProcesses processes(temp_dir());
  ASSERT_OK_AND_ASSIGN(Writer * writer,
                       processes.Start(url(), "xp/", kCommits, kOpsPerTxn, kValueSize));

  // Follow the other process live.
  std::vector<WatchBatch> got;
  while (got.size() < static_cast<size_t>(kCommits)) {
    StatusOr<WatchBatch> batch = watch->Next(kEventually);
    ASSERT_OK(batch) << "after " << got.size()
                     << " batches; writer stderr: " << writer->process->Stderr();
    got.push_back(std::move(batch).value());
  }
  ASSERT_OK(WriterProcesses::Finish(*writer, deadline));
  ASSERT_EQ(writer->acks.size(), static_cast<size_t>(kCommits));
  ASSERT_TRUE(CheckBatchShape(got));
  for (size_t i = 0; i < got.size(); ++i) {
    const Revision rev = writer->acks[i].revision;
    EXPECT_EQ(got[i].revision, rev) << "batch " << i;
    std::vector<Event> want;
    for (int op = 0; op < kOpsPerTxn; ++op) {
      const std::string key = WriterKey("xp/", static_cast<int64_t>(i), op);
      want.push_back(PutEvent(key, WriterValue(key, kValueSize), rev, rev));
    }
    EXPECT_THAT(got[i].events, ::testing::ElementsAreArray(want)) << "batch " << i;
  }
  EXPECT_EQ(got.front().revision, start + 1);
  EXPECT_EQ(got.back().revision, start + kCommits);
  // A watch opened before the writer started at "now" sees the same stream, and nothing more.
  ASSERT_OK_AND_ASSIGN(auto tailed, ReadBatchesThrough(*tail, start + kCommits));
  ASSERT_EQ(tailed.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(tailed[i].revision, got[i].revision);
  EXPECT_THAT(watch->Next(kQuiet), StatusIs(StatusCode::kDeadlineExceeded));
  // Reads in this process see the other process's writes.
  ASSERT_OK_AND_ASSIGN(CountResult count, store().Count(KeySpan::Prefix("xp/")));
  EXPECT_EQ(count.count, kCommits * kOpsPerTxn);
  EXPECT_EQ(count.revision, start + kCommits);
}

TEST_P(StoreProcessTest, CommitsOfAnotherProcessAreReadableOnceAcknowledged) {
  constexpr int kCommits = 100;
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("seed", "0"));
  const auto deadline = steady_clock::now() + kEventually * 3;
  WriterProcesses processes(temp_dir());
  ASSERT_OK_AND_ASSIGN(Writer * writer, processes.Start(url(), "ack/", kCommits, 1, 8));
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_OK(WriterProcesses::ReadAcks(*writer, i + 1, deadline));
    const WriterAck& ack = writer->acks.back();
    // Acknowledged in the other process means visible to every later read in this one.
    ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
    EXPECT_GE(current, ack.revision) << "commit " << i;
    ASSERT_OK_AND_ASSIGN(KeyValue kv, store().Get(ack.first_key));
    EXPECT_EQ(kv.mod_revision, ack.revision);
    EXPECT_OK(CommitOps(store(), {}, {Condition::ModRevisionIs(ack.first_key, ack.revision)}));
  }
  ASSERT_OK(WriterProcesses::Finish(*writer, deadline));
  EXPECT_EQ(writer->acks.back().revision, start + kCommits);
}

TEST_P(StoreProcessTest, AcknowledgedCommitsSurviveAWriterKilledMidStream) {
  constexpr int kAcksBeforeKill = 300;
  constexpr int kOpsPerTxn = 2;
  constexpr size_t kValueSize = 64;
  ASSERT_OK_AND_ASSIGN(Revision start, store().Put("seed", "0"));
  const auto deadline = steady_clock::now() + kEventually * 3;
  WriterProcesses processes(temp_dir());
  ASSERT_OK_AND_ASSIGN(Writer * writer,
                       processes.Start(url(), "kill/", 1'000'000, kOpsPerTxn, kValueSize));
  ASSERT_OK(WriterProcesses::ReadAcks(*writer, kAcksBeforeKill, deadline));
  writer->process->Kill(SIGKILL);
  ASSERT_OK_AND_ASSIGN(int status, writer->process->Wait(deadline));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << DescribeWaitStatus(status);
  // Lines already written before the kill are acknowledged commits too.
  ASSERT_OK(WriterProcesses::ReadAcks(*writer, -1, deadline));
  ASSERT_GE(writer->acks.size(), static_cast<size_t>(kAcksBeforeKill));

  // Reopen, as a restarted replica would.
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenAgain());
  for (size_t i = 0; i < writer->acks.size(); ++i) {
    for (int op = 0; op < kOpsPerTxn; ++op) {
      const std::string key = WriterKey("kill/", static_cast<int64_t>(i), op);
      StatusOr<KeyValue> kv = store().Get(key);
      ASSERT_OK(kv) << "acknowledged commit " << i << " (revision " << writer->acks[i].revision
                    << ") lost key " << key;
      EXPECT_EQ(kv->value, WriterValue(key, kValueSize));
      EXPECT_EQ(kv->mod_revision, writer->acks[i].revision);
    }
  }
  // At most the one commit in flight at the kill may also have landed, whole or not at all.
  ASSERT_OK_AND_ASSIGN(Revision current, store().CurrentRevision());
  const Revision last_ack = writer->acks.back().revision;
  EXPECT_GE(current, last_ack);
  EXPECT_LE(current, last_ack + 1);
  ASSERT_OK_AND_ASSIGN(auto watch, store().Watch(KeySpan::Prefix("kill/"), start + 1));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBatchesThrough(*watch, current));
  EXPECT_TRUE(CheckBatchShape(got));
  ASSERT_EQ(static_cast<Revision>(got.size()), current - start);
  for (const WatchBatch& batch : got) EXPECT_EQ(batch.events.size(), size_t{kOpsPerTxn});
  // The store takes new writes at the next revision.
  ASSERT_OK_AND_ASSIGN(Revision next, store().Put("after/kill", "x"));
  EXPECT_EQ(next, current + 1);
}

}  // namespace
}  // namespace plinth::store::conformance
