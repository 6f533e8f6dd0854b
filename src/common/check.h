// PLINTH_CHECK: aborts the process when an internal invariant is broken. Never use it on
// outside input (envoy STYLE.md): bad input gets a Status.
#ifndef PLINTH_COMMON_CHECK_H_
#define PLINTH_COMMON_CHECK_H_

#include <sstream>

namespace plinth::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `PLINTH_CHECK(c) << x` compile to a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace plinth::internal

#define PLINTH_CHECK(condition)                 \
  (condition) ? (void)0                         \
              : ::plinth::internal::Voidify() & \
                    ::plinth::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#endif  // PLINTH_COMMON_CHECK_H_
