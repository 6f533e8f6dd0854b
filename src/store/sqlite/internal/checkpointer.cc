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

int Checkpointer::OnCommit(void* self, sqlite3* db, const char* schema, int wal_pages) {
  auto* checkpointer = static_cast<Checkpointer*>(self);
  if (wal_pages < checkpointer->threshold_pages_) return SQLITE_OK;
  if (wal_pages >= kCatchUpFactor * checkpointer->threshold_pages_) {
    // The background checkpoints are not keeping up: do one here, as SQLite's own hook would.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    MutexLock lock(&checkpointer->mu_);
    ++checkpointer->inline_runs_;
    return SQLITE_OK;
  }
  MutexLock lock(&checkpointer->mu_);
  checkpointer->pending_ = true;
  checkpointer->wake_.Signal();
  return SQLITE_OK;
}

void Checkpointer::Run() {
  while (true) {
    {
      MutexLock lock(&mu_);
      while (!pending_ && !stop_) wake_.Wait();
      if (stop_) return;
      pending_ = false;
    }
    int wal_pages = 0;
    int copied_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_->get(), "main", SQLITE_CHECKPOINT_PASSIVE,
                                             &wal_pages, &copied_pages);
    MutexLock lock(&mu_);
    ++runs_;
    if (rc != SQLITE_OK) ++failures_;
  }
}

}  // namespace plinth::store::sqlite::internal
