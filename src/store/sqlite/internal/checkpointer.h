// WAL checkpoints for one sqlite Store, run on a background thread instead of inside commits.
//
// By default SQLite checkpoints from the committing connection: the commit that leaves the
// write-ahead log past 1000 pages copies the log into the database file (and, with
// synchronous=full, syncs it) before it returns. That puts the whole checkpoint on one write's
// latency, and on a stream of large transactions roughly one commit in every few pays it.
// Here the writer's WAL hook (which replaces SQLite's automatic checkpoint) only notes the
// log's size and wakes a thread that checkpoints through its own connection, in PASSIVE mode
// like SQLite's automatic checkpoint: it copies what it can without waiting for readers or
// writers, so commits go on while it runs. Durability is unchanged: a commit is durable once
// its WAL frames are synced, which the commit itself still does.
//
// The log only restarts from its beginning once a checkpoint has copied all of it, so under a
// steady stream of commits a background checkpoint could keep finishing just behind the end
// while the log grows. A commit that finds the log past kCatchUpFactor times the threshold
// therefore checkpoints itself, as SQLite would have done, after waiting for a background
// checkpoint in progress to end: writers slow down rather than the log growing without bound.
// With no long readers the log so never holds much more than kCatchUpFactor x threshold pages.
// If readers keep old WAL frames in use (long snapshots), no checkpoint can finish and the log
// grows, exactly as with SQLite's automatic checkpoint; it shrinks back once they end.
// Thread-safe.
#ifndef PLINTH_STORE_SQLITE_INTERNAL_CHECKPOINTER_H_
#define PLINTH_STORE_SQLITE_INTERNAL_CHECKPOINTER_H_

#include <cstdint>
#include <memory>
#include <thread>

#include "common/thread_annotations.h"
#include "store/sqlite/internal/sqlite_db.h"

namespace plinth::store::sqlite::internal {

class Checkpointer {
 public:
  // SQLite's own automatic checkpoint threshold, in pages.
  static constexpr int kDefaultThresholdPages = 1000;
  // Past this many times the threshold, commits checkpoint themselves.
  static constexpr int kCatchUpFactor = 4;

  // Checkpoints through `db` (a read-write connection to the store file, used by no one else)
  // whenever a commit leaves the WAL at `threshold_pages` or more. Starts the thread.
  Checkpointer(std::unique_ptr<Connection> db, int threshold_pages = kDefaultThresholdPages);
  // Stops and joins the thread (after a checkpoint in progress). Every connection attached
  // with Attach must be closed first, since their hooks point here.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Installs the WAL hook on `writer`, which turns off its automatic checkpoints; from then
  // on its commits wake this checkpointer. `writer` must be closed before this is destroyed.
  void Attach(Connection& writer);

  // Background checkpoints run so far, how many of them failed (e.g. another checkpoint was
  // running), and checkpoints that commits ran themselves; for tests and diagnostics.
  int64_t runs() const PLINTH_EXCLUDES(mu_);
  int64_t failures() const PLINTH_EXCLUDES(mu_);
  int64_t inline_runs() const PLINTH_EXCLUDES(mu_);

 private:
  // sqlite3_wal_hook's callback: runs in the committing thread, after each commit.
  static int OnCommit(void* self, sqlite3* db, const char* schema, int wal_pages);
  // Checkpoints `db` PASSIVE once no other checkpoint of ours is running. True on success.
  bool CheckpointExclusively(sqlite3* db) PLINTH_EXCLUDES(mu_);
  void Run() PLINTH_EXCLUDES(mu_);

  const std::unique_ptr<Connection> db_;  // used only by the thread
  const int threshold_pages_;
  mutable Mutex mu_;
  CondVar wake_{&mu_};  // signalled for pending_, stop_ and the end of a checkpoint
  bool pending_ PLINTH_GUARDED_BY(mu_) = false;
  bool running_ PLINTH_GUARDED_BY(mu_) = false;  // a checkpoint (either kind) is in progress
  bool stop_ PLINTH_GUARDED_BY(mu_) = false;
  int64_t runs_ PLINTH_GUARDED_BY(mu_) = 0;
  int64_t failures_ PLINTH_GUARDED_BY(mu_) = 0;
  int64_t inline_runs_ PLINTH_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace plinth::store::sqlite::internal

#endif  // PLINTH_STORE_SQLITE_INTERNAL_CHECKPOINTER_H_
