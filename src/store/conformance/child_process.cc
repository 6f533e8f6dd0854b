#include "store/conformance/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace plinth::store::conformance {

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                            const std::string& stderr_path) {
  if (argv.empty()) return InvalidArgumentError("no program to run");
  int fds[2];
  // Close-on-exec, so that no other child inherits this pipe and keeps it open.
  if (pipe2(fds, O_CLOEXEC) != 0) return InternalError(Errno("pipe2"));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (error != 0) {
    close(fds[0]);
    return InternalError("posix_spawn " + argv[0] + ": " + std::strerror(error));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, fds[0], stderr_path));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

StatusOr<std::string> ChildProcess::ReadLine(Deadline deadline) {
  while (true) {
    const size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    if (stdout_fd_ < 0) return OutOfRangeError("the child's stdout is closed");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceededError("no line from the child in time");
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) return InternalError(Errno("poll"));
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return InternalError(Errno("read"));
    }
    if (n == 0) {
      close(stdout_fd_);
      stdout_fd_ = -1;
      continue;
    }
    buffered_.append(chunk, static_cast<size_t>(n));
  }
}

void ChildProcess::Kill(int signal) {
  if (!reaped_) kill(pid_, signal);
}

StatusOr<int> ChildProcess::Wait(Deadline deadline) {
  while (!reaped_) {
    const pid_t r = waitpid(pid_, &wait_status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (r < 0 && errno != EINTR) return InternalError(Errno("waitpid"));
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("child " + std::to_string(pid_) + " is still running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return wait_status_;
}

std::string ChildProcess::Stderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

}  // namespace plinth::store::conformance
