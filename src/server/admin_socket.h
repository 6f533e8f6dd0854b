// The local admin socket of `plinth serve`: gRPC on a Unix-domain socket that only the
// server's own user can open. Whoever can connect is an admin. There is no handshake
// secret: the operating system's file permissions are the whole guard (connecting needs write
// permission on the socket file, and search permission on every directory above it), so the
// socket is mode 0600 and owned by the server's user, in a directory created 0700.
//
// Serving: PrepareAdminSocket(path), then
//   builder.AddListeningPort(AdminSocketTarget(path), AdminSocketServerCredentials());
// then BuildAndStart(), then SecureAdminSocket(path). Between bind and chmod the socket has the
// process umask's mode; the 0700 parent directory created by PrepareAdminSocket keeps other
// users out during that moment (an existing parent must not be writable by others).
#ifndef PLINTH_SERVER_ADMIN_SOCKET_H_
#define PLINTH_SERVER_ADMIN_SOCKET_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace plinth::server {

// "unix:<path>", the gRPC address of the socket at `path`.
std::string AdminSocketTarget(const std::string& path);

// Makes `path` ready for a server to bind: creates missing parent directories with mode 0700;
// refuses a parent directory that others may write to (unless sticky, like /tmp); removes a
// stale socket left by a server that died. OK: nothing is at `path` now.
// FailedPrecondition when another server is listening there, or something other than a socket
// is at `path` (which is never removed); InvalidArgument for a path a Unix socket cannot have;
// Internal for other system errors (naming the call and errno).
Status PrepareAdminSocket(const std::string& path);

// After the server bound `path`: sets mode 0600 and checks that it is a socket owned by this
// process's effective user. FailedPrecondition (naming the problem) otherwise; the server must
// then not start.
Status SecureAdminSocket(const std::string& path);

// Credentials for the admin socket's listening port: gRPC's local (UDS) credentials, which
// accept only Unix-socket connections. Calls on this port carry no SPIFFE ID;
// IsAdminSocketCall() is true for them and Authorize() allows them.
std::shared_ptr<grpc::ServerCredentials> AdminSocketServerCredentials();

// A channel to the admin socket at `path` (for the CLI and tests). Lazy: connecting
// failures surface as UNAVAILABLE on the first call.
std::shared_ptr<grpc::Channel> AdminSocketChannel(
    const std::string& path, const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace plinth::server

#endif  // PLINTH_SERVER_ADMIN_SOCKET_H_
