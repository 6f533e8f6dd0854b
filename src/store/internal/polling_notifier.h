// The wake-up side of a watch on a store whose other writers can only be detected by polling
// (sqlite: PRAGMA data_version; mysql: the meta row). A sequence number moves on every
// possible change: Notify() after a commit through this process, and the poll thread when the
// poll's token differs from the last one or the poll fails (the watchers' own reads then
// report the error). The poll thread only polls while watchers exist. Thread-safe.
#ifndef PLINTH_STORE_INTERNAL_POLLING_NOTIFIER_H_
#define PLINTH_STORE_INTERNAL_POLLING_NOTIFIER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace plinth::store::internal {

class PollingChangeNotifier {
 public:
  // Returns a token that differs whenever the store changed since the last call (a data
  // version, a revision pair, ...). Called only on the poll thread.
  using Poll = std::function<StatusOr<std::string>()>;

  PollingChangeNotifier(std::chrono::milliseconds interval, Poll poll)
      : poll_(std::move(poll)), interval_(interval) {}
  ~PollingChangeNotifier() { Stop(); }
  PollingChangeNotifier(const PollingChangeNotifier&) = delete;
  PollingChangeNotifier& operator=(const PollingChangeNotifier&) = delete;

  void Start() {
    thread_ = std::thread([this] { PollLoop(); });
  }

  // Stops and joins the poll thread (within one poll); watchers
  // blocked in WaitForChange return. Idempotent.
  void Stop() PLINTH_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      stop_ = true;
      poll_wake_.SignalAll();
      changed_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

  bool stopped() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return stop_;
  }

  void Notify() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++sequence_;
    changed_.SignalAll();
  }

  uint64_t sequence() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return sequence_;
  }

  // Waits until the sequence differs from `seen`, `cancelled` is set (followed by Wake()), the
  // notifier stops, or `deadline` passes. Returns false only on timeout.
  bool WaitForChange(uint64_t seen, std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>& cancelled) PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    while (sequence_ == seen && !cancelled.load() && !stop_) {
      if (!WaitChangedUntil(deadline)) {
        return sequence_ != seen || cancelled.load() || stop_;
      }
    }
    return true;
  }

  // Wakes every WaitForChange so it re-checks its cancellation flag.
  void Wake() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    changed_.SignalAll();
  }

  void AddWatcher() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (watchers_++ == 0) poll_wake_.SignalAll();
  }
  void RemoveWatcher() PLINTH_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    --watchers_;
  }

 private:
  // CondVar's waits are unannotated; these wrappers state that mu_ must be held, so that
  // their callers are checked.
  bool WaitChangedUntil(std::chrono::steady_clock::time_point deadline) PLINTH_REQUIRES(mu_) {
    return changed_.WaitUntil(deadline);
  }
  void WaitPollWake(std::optional<std::chrono::milliseconds> timeout) PLINTH_REQUIRES(mu_) {
    if (timeout) {
      poll_wake_.WaitFor(*timeout);
    } else {
      poll_wake_.Wait();
    }
  }

  void PollLoop() PLINTH_EXCLUDES(mu_) {
    std::optional<std::string> last;  // nullopt: no successful poll yet, or the last failed
    mu_.Lock();
    while (!stop_) {
      if (watchers_ == 0) {
        WaitPollWake(std::nullopt);
        continue;
      }
      mu_.Unlock();
      StatusOr<std::string> token = poll_();
      mu_.Lock();
      // On an error, wake the watchers anyway: their own reads will report it.
      if (!token.ok() || !last || *token != *last) {
        last = token.ok() ? std::optional<std::string>(*token) : std::nullopt;
        ++sequence_;
        changed_.SignalAll();
      }
      if (!stop_) WaitPollWake(interval_);
    }
    mu_.Unlock();
  }

  const Poll poll_;  // called only by the poll thread
  const std::chrono::milliseconds interval_;
  Mutex mu_;
  CondVar changed_{&mu_};    // signalled when sequence_ moves, and on Wake/Stop
  CondVar poll_wake_{&mu_};  // wakes the poll thread early: first watcher, Stop
  uint64_t sequence_ PLINTH_GUARDED_BY(mu_) = 0;
  int watchers_ PLINTH_GUARDED_BY(mu_) = 0;
  bool stop_ PLINTH_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace plinth::store::internal

#endif  // PLINTH_STORE_INTERNAL_POLLING_NOTIFIER_H_
