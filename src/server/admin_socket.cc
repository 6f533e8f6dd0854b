#include "server/admin_socket.h"

#include <grpcpp/create_channel.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace plinth::server {
namespace {

Status SystemError(std::string_view call, const std::string& path, int err) {
  return InternalError(std::string(call) + "(" + path + "): " + std::strerror(err));
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p with mode 0700 for the directories it creates.
Status MakeDirectories(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return FailedPreconditionError(dir + " is not a directory");
    return Status::Ok();
  }
  if (errno != ENOENT) return SystemError("stat", dir, errno);
  std::string parent = ParentOf(dir);
  if (parent != dir) PLINTH_RETURN_IF_ERROR(MakeDirectories(parent));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return SystemError("mkdir", dir, errno);
  return Status::Ok();
}

// Whether a server accepts connections on the socket at `path`: OK(true) if one does,
// OK(false) if the socket is stale.
StatusOr<bool> SomeoneListens(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SystemError("socket", path, errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc == 0) return true;
  if (err == ECONNREFUSED) return false;
  return SystemError("connect", path, err);
}

}  // namespace

std::string AdminSocketTarget(const std::string& path) { return "unix:" + path; }

Status PrepareAdminSocket(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgumentError("admin socket path \"" + path + "\" is empty or longer than " +
                                std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  std::string parent = ParentOf(path);
  PLINTH_RETURN_IF_ERROR(MakeDirectories(parent));
  struct stat st;
  if (stat(parent.c_str(), &st) != 0) return SystemError("stat", parent, errno);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return FailedPreconditionError("the admin socket's directory " + parent +
                                   " is writable by other users, who could replace the socket;"
                                   " make it 0700 or 0755");
  }
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return SystemError("lstat", path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPreconditionError(path + " exists and is not a socket; not removing it");
  }
  PLINTH_ASSIGN_OR_RETURN(bool listening, SomeoneListens(path));
  if (listening) {
    return FailedPreconditionError("another server is listening on the admin socket " + path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SystemError("unlink", path, errno);
  return Status::Ok();
}

Status SecureAdminSocket(const std::string& path) {
  if (chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0) return SystemError("chmod", path, errno);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return SystemError("lstat", path, errno);
  if (!S_ISSOCK(st.st_mode)) return FailedPreconditionError(path + " is not a socket");
  if (st.st_uid != geteuid()) {
    return FailedPreconditionError(path + " is owned by uid " + std::to_string(st.st_uid) +
                                   ", not by this process's uid " + std::to_string(geteuid()));
  }
  if ((st.st_mode & 07777) != (S_IRUSR | S_IWUSR)) {
    return FailedPreconditionError(path + " did not take mode 0600");
  }
  return Status::Ok();
}

std::shared_ptr<grpc::ServerCredentials> AdminSocketServerCredentials() {
  return grpc::experimental::LocalServerCredentials(UDS);
}

std::shared_ptr<grpc::Channel> AdminSocketChannel(const std::string& path,
                                                  const grpc::ChannelArguments& args) {
  return grpc::CreateCustomChannel(AdminSocketTarget(path),
                                   grpc::experimental::LocalCredentials(UDS), args);
}

}  // namespace plinth::server
