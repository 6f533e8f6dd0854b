// An injectable clock, so that tests can fake time (envoy TimeSource, leveldb Env::NowMicros).
#ifndef PLINTH_COMMON_CLOCK_H_
#define PLINTH_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace plinth {

// Thread-safe. Monotonic time measures intervals; wall time stamps records.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  virtual std::chrono::system_clock::time_point WallNow() const = 0;
  // Blocks the calling thread for `d` of this clock's time.
  virtual void SleepFor(std::chrono::nanoseconds d) const = 0;
};

// The process's real clock; never destroyed.
Clock* RealClock();

// A clock that only moves when told to. SleepFor advances it instead of blocking.
class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override;
  std::chrono::system_clock::time_point WallNow() const override;
  void SleepFor(std::chrono::nanoseconds d) const override;
  void Advance(std::chrono::nanoseconds d);

 private:
  mutable std::atomic<int64_t> offset_ns_{0};
};

}  // namespace plinth

#endif  // PLINTH_COMMON_CLOCK_H_
