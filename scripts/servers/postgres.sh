#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests (protocol: src/store/conformance/test_servers.h).
#
#   postgres.sh start DIR     initdb under DIR, start on a free 127.0.0.1 port with trust auth,
#                             create database "plinth", print the base store URL last.
#   postgres.sh stop DIR      stop it (fast, bounded); succeeds if it is not running.
#   postgres.sh restart DIR   stop and start again on the same port, keeping the data.
#
# Run as root, the server runs as the "postgres" system user (created if missing), since
# PostgreSQL refuses to run as root. A watchdog stops the server when the process that ran
# "start" (the test binary) exits.
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

[[ $# -ge 2 ]] || die "usage: postgres.sh start|stop|restart DIR"
verb=$1
dir=$2
[[ -d $dir ]] || die "$dir is not a directory"
dir=$(cd "$dir" && pwd)
data=$dir/data
sock=$dir/sock
log=$dir/postgres.log

find_bin() {
  local name=$1 d
  for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin /usr/local/pgsql/bin; do
    if [[ -x $d/$name ]]; then
      echo "$d/$name"
      return 0
    fi
  done
  command -v "$name" 2>/dev/null && return 0
  return 1
}

INITDB=$(find_bin initdb) ||
  die "initdb not found (looked in /usr/lib/postgresql/*/bin and PATH); install postgresql (apt-get install postgresql)"
PG_CTL=$(find_bin pg_ctl) || die "pg_ctl not found; install postgresql"
PG_ISREADY=$(find_bin pg_isready) || die "pg_isready not found; install postgresql"
PSQL=$(find_bin psql) || die "psql not found; install postgresql-client"

# Runs a command as the server's user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
      die "cannot create the postgres system user"
  fi
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

is_running() {
  [[ -f $data/postmaster.pid ]] && as_owner "$PG_CTL" -D "$data" status >/dev/null 2>&1
}

start_server() {
  local port
  port=$(cat "$dir/port")
  as_owner "$PG_CTL" -D "$data" -l "$log" -w -t 60 -s \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $sock -c fsync=on -c max_connections=300" \
    start </dev/null >/dev/null 2>&1 ||
    die "pg_ctl start failed; log $log: $(tail -n 20 "$log" 2>/dev/null)"
  local i
  for i in $(seq 1 300); do
    if "$PG_ISREADY" -q -h 127.0.0.1 -p "$port" -t 1; then
      return 0
    fi
    sleep 0.2
  done
  die "server on port $port did not become ready; log $log: $(tail -n 20 "$log" 2>/dev/null)"
}

stop_server() {
  if [[ -f $data/postmaster.pid ]]; then
    as_owner "$PG_CTL" -D "$data" -m fast -w -t 30 -s stop </dev/null >/dev/null 2>&1 ||
      as_owner "$PG_CTL" -D "$data" -m immediate -w -t 30 -s stop </dev/null >/dev/null 2>&1 || true
  fi
}

start_watchdog() {
  local parent=$1
  # Detached, with no inherited stdout (the caller reads our stdout until it closes).
  setsid bash -c '
    parent=$1; pg_ctl=$2; data=$3; owner_is_root=$4
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    if [[ -f $data/postmaster.pid ]]; then
      if [[ $owner_is_root == 1 ]]; then
        runuser -u postgres -- "$pg_ctl" -D "$data" -m immediate -w -t 30 stop
      else
        "$pg_ctl" -D "$data" -m immediate -w -t 30 stop
      fi
    fi
  ' watchdog "$parent" "$PG_CTL" "$data" "$([[ $(id -u) -eq 0 ]] && echo 1 || echo 0)" \
    </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

case $verb in
  start)
    ensure_user
    [[ -e $data ]] && die "$data already exists; use restart"
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres "$dir"
      chmod 0755 "$dir"
    fi
    as_owner mkdir -p "$sock"
    as_owner "$INITDB" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
      </dev/null >"$dir/initdb.log" 2>&1 ||
      as_owner "$INITDB" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        </dev/null >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -n 20 "$dir/initdb.log")"
    free_port >"$dir/port"
    start_server
    start_watchdog "$PPID"
    port=$(cat "$dir/port")
    as_owner "$PSQL" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE DATABASE plinth" </dev/null >/dev/null 2>"$dir/psql.err" ||
      die "creating database plinth failed: $(cat "$dir/psql.err")"
    echo "postgres://postgres@127.0.0.1:$port/plinth"
    ;;
  stop)
    [[ -d $data ]] || exit 0
    stop_server
    if [[ -f $dir/watchdog.pid ]]; then
      kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
      rm -f "$dir/watchdog.pid"
    fi
    ;;
  restart)
    [[ -d $data ]] || die "no server data under $dir; use start"
    stop_server
    start_server
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/plinth"
    ;;
  *)
    die "unknown verb \"$verb\"; expected start, stop or restart"
    ;;
esac
