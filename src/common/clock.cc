#include "common/clock.h"

#include <thread>

namespace plinth {
namespace {

class RealClockImpl final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
  void SleepFor(std::chrono::nanoseconds d) const override { std::this_thread::sleep_for(d); }
};

}  // namespace

Clock* RealClock() {
  static Clock* const clock = new RealClockImpl();
  return clock;
}

std::chrono::steady_clock::time_point FakeClock::Now() const {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(offset_ns_.load()));
}

std::chrono::system_clock::time_point FakeClock::WallNow() const {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(offset_ns_.load())));
}

void FakeClock::SleepFor(std::chrono::nanoseconds d) const { offset_ns_ += d.count(); }

void FakeClock::Advance(std::chrono::nanoseconds d) { offset_ns_ += d.count(); }

}  // namespace plinth
