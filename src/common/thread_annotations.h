// Clang thread-safety annotations (checked with -Wthread-safety under clang; no-ops elsewhere)
// and an annotated mutex, as in leveldb's port/thread_annotations.h.
#ifndef PLINTH_COMMON_THREAD_ANNOTATIONS_H_
#define PLINTH_COMMON_THREAD_ANNOTATIONS_H_

#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define PLINTH_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define PLINTH_THREAD_ANNOTATION_(x)
#endif

#define PLINTH_GUARDED_BY(x) PLINTH_THREAD_ANNOTATION_(guarded_by(x))
#define PLINTH_PT_GUARDED_BY(x) PLINTH_THREAD_ANNOTATION_(pt_guarded_by(x))
#define PLINTH_REQUIRES(...) PLINTH_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define PLINTH_EXCLUDES(...) PLINTH_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define PLINTH_ACQUIRE(...) PLINTH_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define PLINTH_RELEASE(...) PLINTH_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define PLINTH_ACQUIRE_SHARED(...) PLINTH_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define PLINTH_RELEASE_SHARED(...) PLINTH_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define PLINTH_REQUIRES_SHARED(...) \
  PLINTH_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define PLINTH_CAPABILITY(x) PLINTH_THREAD_ANNOTATION_(capability(x))
#define PLINTH_SCOPED_CAPABILITY PLINTH_THREAD_ANNOTATION_(scoped_lockable)
#define PLINTH_NO_THREAD_SAFETY_ANALYSIS PLINTH_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace plinth {

class PLINTH_CAPABILITY("mutex") Mutex {
 public:
  void Lock() PLINTH_ACQUIRE() { mu_.lock(); }
  void Unlock() PLINTH_RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class PLINTH_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) PLINTH_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() PLINTH_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A reader-writer mutex: many readers or one writer.
class PLINTH_CAPABILITY("mutex") SharedMutex {
 public:
  void Lock() PLINTH_ACQUIRE() { mu_.lock(); }
  void Unlock() PLINTH_RELEASE() { mu_.unlock(); }
  void LockShared() PLINTH_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() PLINTH_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class PLINTH_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) PLINTH_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() PLINTH_RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

class PLINTH_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) PLINTH_ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() PLINTH_RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable bound to a plinth::Mutex. Wait* must be called with the mutex held.
// The waits are not annotated (as in leveldb's port::CondVar): the analysis cannot tie the
// CondVar's copy of the mutex pointer to the caller's PLINTH_GUARDED_BY expressions.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // Returns false on timeout.
  template <typename Rep, typename Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    bool signalled = cv_.wait_for(lock, d) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  template <typename Clock, typename Duration>
  bool WaitUntil(std::chrono::time_point<Clock, Duration> t) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    bool signalled = cv_.wait_until(lock, t) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable cv_;
};

}  // namespace plinth

#endif  // PLINTH_COMMON_THREAD_ANNOTATIONS_H_
