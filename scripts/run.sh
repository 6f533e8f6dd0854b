#!/usr/bin/env bash
# Installs what plinth needs, builds the release preset, and runs plinth on its embedded SQLite
# default (./plinth-data/plinth.db): `plinth store demo`, a printed walkthrough of a watch, a
# transaction, a put, a delete and the reads. Extra arguments go to the demo
# (e.g. --output json, or --store memory://).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j"$(nproc)"
exec build/release/src/cli/plinth store demo "$@"
