#include "store/sqlite/internal/checkpointer.h"

#include <sqlite3.h>

#include <utility>

namespace plinth::store::sqlite::internal {

Checkpointer::Checkpointer(std::unique_ptr<Connection> db, int threshold_pages)
    : db_(std::move(db)), threshold_pages_(threshold_pages) {
  thread_ = std::thread([this] { Run(); });
}

Checkpointer::~Checkpointer() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
  }
  thread_.join();
}

void Checkpointer::Attach(Connection& writer) {
  sqlite3_wal_hook(writer.get(), &Checkpointer::OnCommit, this);
}

int64_t Checkpointer::runs() const {
  MutexLock lock(&mu_);
  return runs_;
}

int64_t Checkpointer::failures() const {
  MutexLock lock(&mu_);
  return failures_;
}

int64_t Checkpointer::inline_runs() const {
  MutexLock lock(&mu_);
  return inline_runs_;
}

int Checkpointer::OnCommit(void* self, sqlite3* db, const char* /*schema*/, int wal_pages) {
  auto* checkpointer = static_cast<Checkpointer*>(self);
  if (wal_pages < checkpointer->threshold_pages_) return SQLITE_OK;
  if (wal_pages >= kCatchUpFactor * checkpointer->threshold_pages_) {
    // The background checkpoints are not keeping up: do one here, as SQLite's own hook would.
    checkpointer->CheckpointExclusively(db);
    MutexLock lock(&checkpointer->mu_);
    ++checkpointer->inline_runs_;
    return SQLITE_OK;
  }
  MutexLock lock(&checkpointer->mu_);
  checkpointer->pending_ = true;
  checkpointer->wake_.SignalAll();
  return SQLITE_OK;
}

bool Checkpointer::CheckpointExclusively(sqlite3* db) {
  {
    MutexLock lock(&mu_);
    while (running_) wake_.Wait();
    running_ = true;
  }
  const int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  MutexLock lock(&mu_);
  running_ = false;
  wake_.SignalAll();
  return rc == SQLITE_OK;
}

void Checkpointer::Run() {
  while (true) {
    {
      MutexLock lock(&mu_);
      while (!pending_ && !stop_) wake_.Wait();
      if (stop_) return;
      pending_ = false;
    }
    const bool ok = CheckpointExclusively(db_->get());
    MutexLock lock(&mu_);
    ++runs_;
    if (!ok) ++failures_;
  }
}

}  // namespace plinth::store::sqlite::internal
