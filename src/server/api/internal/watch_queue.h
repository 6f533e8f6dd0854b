// The bounded hand-off between the datastore's change feed (the mirror's follower thread) and
// one WatchChanges stream (a gRPC handler thread). The feed never blocks on a slow client:
// past the capacity the queue drops everything and remembers that it overflowed, so memory
// per watcher stays bounded and the stream ends instead of silently skipping changes.
// Private to src/server/api/.
#ifndef PLINTH_SERVER_API_INTERNAL_WATCH_QUEUE_H_
#define PLINTH_SERVER_API_INTERNAL_WATCH_QUEUE_H_

#include <chrono>
#include <cstddef>
#include <deque>

#include "common/thread_annotations.h"
#include "plinth/v1/datastore.pb.h"

namespace plinth::server::api::internal {

// Thread-safe: any number of producers, one consumer.
class WatchQueue {
 public:
  // What Pop found. kChange carries a change; the others are terminal (every later Pop
  // returns the same), except kTimeout.
  enum class Event {
    kChange,    // the next change, in feed order
    kTimeout,   // nothing arrived within the timeout
    kOverflow,  // more than `capacity` changes were waiting: changes were dropped
    kReset,     // the feed was rebuilt from a fresh snapshot: changes may have been missed
    kClosed,    // Close() was called
  };

  // `capacity` >= 1: the most changes held at once.
  explicit WatchQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  WatchQueue(const WatchQueue&) = delete;
  WatchQueue& operator=(const WatchQueue&) = delete;

  // Appends `change`; never blocks. Past the capacity, discards every held change and makes
  // the queue terminal with kOverflow. Ignored once terminal.
  void Push(const v1::DataStoreChange& change) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (terminal_ != Event::kChange) return;
    if (changes_.size() >= capacity_) {
      changes_.clear();
      terminal_ = Event::kOverflow;
    } else {
      changes_.push_back(change);
    }
    cv_.Signal();
  }

  // Makes the queue terminal with kReset (unless already terminal), discarding held changes.
  void PushReset() PLINTH_EXCLUDES(mu_) { Terminate(Event::kReset); }

  // Makes the queue terminal with kClosed (unless already terminal), waking the consumer.
  void Close() PLINTH_EXCLUDES(mu_) { Terminate(Event::kClosed); }

  // Waits up to `timeout` for the next change (stored in `*change`) or a terminal event.
  // A terminal event is reported as soon as it happens, ahead of any held change.
  Event Pop(std::chrono::milliseconds timeout, v1::DataStoreChange* change) PLINTH_EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mu_);
    while (terminal_ == Event::kChange && changes_.empty()) {
      if (!cv_.WaitUntil(deadline) && changes_.empty() && terminal_ == Event::kChange) {
        return Event::kTimeout;
      }
    }
    if (terminal_ != Event::kChange) return terminal_;
    *change = std::move(changes_.front());
    changes_.pop_front();
    return Event::kChange;
  }

 private:
  void Terminate(Event event) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (terminal_ != Event::kChange) return;
    changes_.clear();
    terminal_ = event;
    cv_.SignalAll();
  }

  const size_t capacity_;
  Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<v1::DataStoreChange> changes_ PLINTH_GUARDED_BY(mu_);
  // kChange while open; otherwise the terminal event.
  Event terminal_ PLINTH_GUARDED_BY(mu_) = Event::kChange;
};

}  // namespace plinth::server::api::internal

#endif  // PLINTH_SERVER_API_INTERNAL_WATCH_QUEUE_H_
