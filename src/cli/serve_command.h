// `plinth serve [--config FILE]`: runs the plinth server (src/server/server.h) in the
// foreground until SIGTERM or SIGINT, then shuts it down gracefully and exits 0.
// The configuration file comes from --config or $PLINTH_CONFIG; without one, plinth serves an
// embedded SQLite store under ./plinth-data on the admin socket ./plinth-data/admin.sock.
// An invalid configuration prints "plinth: invalid configuration: <message naming the key>"
// and exits 2; a server that cannot start prints why and exits 1 (2 when the cause is a
// value of the configuration, e.g. an unusable store URL or certificate file).
#ifndef PLINTH_CLI_SERVE_COMMAND_H_
#define PLINTH_CLI_SERVE_COMMAND_H_

#include <chrono>

#include "cli/command.h"

namespace plinth::cli {

// How long in-flight RPCs may run after SIGTERM before they are cancelled.
inline constexpr std::chrono::seconds kServeShutdownGrace{10};

// Registers `serve` on `root`. `console` must outlive `root`.
// The command blocks SIGTERM and SIGINT in the calling thread before any server thread starts
// (so that every thread inherits the mask) and waits for them with sigwait: no work happens in
// a signal handler. Call it from the main thread, before other threads exist.
void RegisterServeCommand(CLI::App& root, Console& console);

}  // namespace plinth::cli

#endif  // PLINTH_CLI_SERVE_COMMAND_H_
