#!/usr/bin/env bash
# Installs what plinth needs, builds a preset (default debug) and runs every test in it,
# including the store conformance suite, printing the output of any test that fails. Exits
# non-zero if the build or any test fails.
#
# usage: scripts/test.sh [--preset debug|release|asan|tsan] [-- CTEST_ARGS...]
#   e.g. scripts/test.sh --preset asan
#        scripts/test.sh -- -R store_command      (only tests matching a regex)
#        scripts/test.sh -- -L conformance        (only the conformance suite)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; }

preset=debug
ctest_args=()
while (($# > 0)); do
  case "$1" in
    --preset) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; preset="$2"; shift 2 ;;
    --preset=*) preset="${1#--preset=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$preset" in
  debug | release | asan | tsan) ;;
  *) echo "test.sh: unknown preset \"$preset\" (debug, release, asan, tsan)" >&2; exit 2 ;;
esac

scripts/install-deps.sh --test
cmake --preset "$preset"
cmake --build --preset "$preset" -j"$(nproc)"
ctest --preset "$preset" --no-tests=error "${ctest_args[@]}"
