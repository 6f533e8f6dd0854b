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
chmod 755 "$work"  # the postgres script runs the server as the postgres user
kinds=(postgres mariadb etcd)
cleanup() {
  for kind in "${kinds[@]}"; do
    if [[ -d $work/$kind ]]; then scripts/servers/"$kind".sh stop "$work/$kind" || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts every server; each script prints its base store URL as its last line.
declare -A url
for kind in "${kinds[@]}"; do
  mkdir -p "$work/$kind"
  scripts/servers/"$kind".sh start "$work/$kind" >"$work/$kind.out"
  url[$kind]=$(tail -n 1 "$work/$kind.out")
done
plugin=$(find build/release -name 'libplinth_memory_store.so' | head -n 1)

build/release/src/store/bench/store_bench \
  --url "postgres=${url[postgres]}?schema=bench" \
  --url "mysql=${url[mariadb]}?table_prefix=bench_" \
  --url "etcd=${url[etcd]}/plinth-bench/" \
  --url "plugin=plugin://$(realpath "$plugin")?name=bench" \
  "$@"
