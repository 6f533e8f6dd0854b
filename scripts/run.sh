#!/usr/bin/env bash
# Installs what plinth needs, builds the release preset, and runs `plinth serve` in the
# foreground on its embedded SQLite default: the store ./plinth-data/plinth.db and the admin
# socket ./plinth-data/admin.sock, which the CLI uses by default. Stop it with Ctrl-C (a
# graceful shutdown). Extra arguments go to `plinth serve` (e.g. --config plinth.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j"$(nproc)" --target plinth
cat >&2 <<MSG
plinth: serving on ./plinth-data/admin.sock; in another terminal, from $(pwd):
  export PATH="$(pwd)/build/release/src/cli:\$PATH"
  plinth entry create -spiffeID spiffe://example.org/web -parentID spiffe://example.org/agent -selector unix:uid:1000
  plinth entry show
MSG
exec build/release/src/cli/plinth serve "$@"
