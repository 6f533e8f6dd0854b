// A child process for the multi-process conformance tests: started with posix_spawn (never a
// bare fork), its stdout read line by line with deadlines, its stderr kept in a file, and
// always reaped.
#ifndef PLINTH_STORE_CONFORMANCE_CHILD_PROCESS_H_
#define PLINTH_STORE_CONFORMANCE_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace plinth::store::conformance {

class ChildProcess {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  // Runs the program `argv[0]` (a path) with arguments `argv`, stdout connected to a pipe
  // read by ReadLine and stderr written to the file `stderr_path`.
  static StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                       const std::string& stderr_path);

  // Kills the child with SIGKILL if it has not been reaped yet, and reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of stdout, without its newline. OutOfRange once stdout is closed and every
  // complete line was read (a last unterminated line is dropped: it was not acknowledged);
  // DeadlineExceeded if no line arrives by `deadline`.
  StatusOr<std::string> ReadLine(Deadline deadline);

  // Sends `signal` to the child (nothing once it was reaped).
  void Kill(int signal);

  // Waits for the child to exit and returns its wait status (see waitpid). DeadlineExceeded
  // if it is still running at `deadline`.
  StatusOr<int> Wait(Deadline deadline);

  // What the child wrote to stderr so far.
  std::string Stderr() const;

  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, int stdout_fd, std::string stderr_path)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_path_(std::move(stderr_path)) {}

  const pid_t pid_;
  int stdout_fd_;
  const std::string stderr_path_;
  std::string buffered_;
  bool reaped_ = false;
  int wait_status_ = 0;
};

// "exited with 0", "killed by signal 9", ...
std::string DescribeWaitStatus(int wait_status);

}  // namespace plinth::store::conformance

#endif  // PLINTH_STORE_CONFORMANCE_CHILD_PROCESS_H_
