#!/usr/bin/env bash
# Benchmarks every store backend side by side in one store_bench table: memory, SQLite (FULL
# and NORMAL), the memory plugin, and PostgreSQL, MariaDB and a 3-member etcd cluster started
# on loopback ports by scripts/servers/*.sh (the same throwaway servers the tests use), each
# stopped afterwards. Extra arguments go to store_bench (e.g. --ops 500).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh --test
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target store_bench plinth_memory_plugin

work=$(mktemp -d /tmp/plinth-bench.XXXXXX)
started=()
cleanup() {
  for kind in "${started[@]}"; do scripts/servers/"$kind".sh stop "$work/$kind" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts scripts/servers/$1.sh and prints its base store URL (the script's last line).
start_server() {
  mkdir -p "$work/$1"
  started+=("$1")
  scripts/servers/"$1".sh start "$work/$1" | tail -n 1
}

pg=$(start_server postgres)
my=$(start_server mariadb)
etcd=$(start_server etcd)
plugin=$(find build/release -name 'libplinth_memory_store.so' | head -n 1)

build/release/src/store/bench/store_bench \
  --url "postgres=$pg?schema=bench" \
  --url "mysql=$my?table_prefix=bench_" \
  --url "etcd=$etcd/plinth-bench/" \
  --url "plugin=plugin://$(realpath "$plugin")?name=bench" \
  "$@"
