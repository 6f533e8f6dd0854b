#!/usr/bin/env bash
# A throwaway MariaDB server for tests, on a free loopback port, with every file under one
# directory. Protocol (shared by every scripts/servers/<kind>.sh): see
# src/store/conformance/test_servers.h.
#
# usage: scripts/servers/mariadb.sh start DIR     start a server; print its base store URL
#                                                 (mysql://root@127.0.0.1:PORT/plinth) last
#        scripts/servers/mariadb.sh stop DIR      stop it; succeeds if it is not running
#        scripts/servers/mariadb.sh restart DIR   stop and start again, same port and data
#
# The server stops by itself when the process that ran "start" exits (a background watchdog
# polls it). Root may connect over TCP from 127.0.0.1 without a password; the database
# "plinth" exists. Runs as root (as CI does, with mariadbd --user=root) or as any other user.
set -euo pipefail

readonly ready_timeout=60 # seconds to wait for the server to answer
readonly stop_timeout=30  # seconds to wait for it to shut down before SIGKILL

usage() { sed -n '6,9s/^# \{0,1\}//p' "$0"; }
die() {
  echo "mariadb.sh: $*" >&2
  exit 1
}

# Finds a program in PATH or the usual sbin directories (mariadbd lives in /usr/sbin).
find_program() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
    if [[ -x "/usr/sbin/$name" ]]; then
      echo "/usr/sbin/$name"
      return 0
    fi
  done
  return 1
}

find_programs() {
  mariadbd=$(find_program mariadbd mysqld) ||
    die "mariadbd not found: install MariaDB (Debian: apt-get install mariadb-server)"
  install_db=$(find_program mariadb-install-db mysql_install_db) ||
    die "mariadb-install-db not found: install MariaDB (Debian: apt-get install mariadb-server)"
  admin=$(find_program mariadb-admin mysqladmin) ||
    die "mariadb-admin not found: install MariaDB (Debian: apt-get install mariadb-client)"
  client=$(find_program mariadb mysql) ||
    die "mariadb (the client) not found: install MariaDB (Debian: apt-get install mariadb-client)"
}

user_args=()
if [[ $(id -u) -eq 0 ]]; then
  user_args=(--user=root)
fi

pid_of_server() {
  local pid
  [[ -s "$dir/mariadb.pid" ]] || return 1
  pid=$(<"$dir/mariadb.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ping_server() {
  "$admin" --no-defaults --protocol=socket --socket="$dir/mysql.sock" --user=root \
    --connect-timeout=2 ping >/dev/null 2>&1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts mariadbd on $dir/port and waits until it answers. Returns 2 if the port was taken.
launch() {
  local port pid deadline
  port=$(<"$dir/port")
  : >"$dir/mariadb.log"
  # setsid: the server gets its own session, so signals to the caller's process group (e.g.
  # Ctrl-C on a test) leave shutdown to the watchdog and the stop verb.
  setsid "$mariadbd" --no-defaults "${user_args[@]}" \
    --datadir="$dir/data" \
    --socket="$dir/mysql.sock" \
    --pid-file="$dir/mariadb.pid" \
    --log-error="$dir/mariadb.log" \
    --port="$port" \
    --bind-address=127.0.0.1 \
    --skip-name-resolve \
    --innodb-flush-log-at-trx-commit=1 \
    --max-allowed-packet=64M \
    --max-connections=1000 \
    --innodb-buffer-pool-size=64M \
    --skip-log-bin \
    </dev/null >>"$dir/mariadb.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/mariadb.launched"
  deadline=$((SECONDS + ready_timeout))
  while ! ping_server; do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -qi "address already in use\|Can't start server: Bind" "$dir/mariadb.log"; then
        return 2
      fi
      die "mariadbd exited during startup; its log ($dir/mariadb.log):
$(tail -n 30 "$dir/mariadb.log")"
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      die "mariadbd did not answer within ${ready_timeout}s; its log ($dir/mariadb.log):
$(tail -n 30 "$dir/mariadb.log")"
    fi
    sleep 0.2
  done
}

stop_server() {
  local pid deadline
  if [[ -s "$dir/mariadb.launched" ]] && ! pid_of_server >/dev/null; then
    # The pid file may not have been written yet (or was removed): use the launched pid.
    pid=$(<"$dir/mariadb.launched")
    kill -0 "$pid" 2>/dev/null || return 0
  else
    pid=$(pid_of_server) || return 0
  fi
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + stop_timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
  done
  rm -f "$dir/mariadb.pid" "$dir/mariadb.launched"
}

# Stops the server once process $1 has exited. Runs detached, with no inherited stdout (the
# test binary reads the script's stdout until it closes).
start_watchdog() {
  local parent=$1
  (
    trap '' HUP INT
    while kill -0 "$parent" 2>/dev/null && [[ -d "$dir" ]]; do
      sleep 1
    done
    [[ -d "$dir" ]] && stop_server
  ) </dev/null >/dev/null 2>&1 &
  echo "$!" >"$dir/watchdog.pid"
  disown
}

stop_watchdog() {
  local pid
  [[ -s "$dir/watchdog.pid" ]] || return 0
  pid=$(<"$dir/watchdog.pid")
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/watchdog.pid"
}

watchdog_alive() {
  [[ -s "$dir/watchdog.pid" ]] && kill -0 "$(<"$dir/watchdog.pid")" 2>/dev/null
}

# Creates the database and lets root in over TCP from 127.0.0.1 without a password.
provision() {
  "$client" --no-defaults --protocol=socket --socket="$dir/mysql.sock" --user=root \
    --connect-timeout=10 --batch <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS plinth;
SQL
}

cmd_start() {
  local port rc
  find_programs
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if pid_of_server >/dev/null; then
    die "a server is already running in $dir (pid $(pid_of_server))"
  fi
  if [[ ! -d "$dir/data/mysql" ]]; then
    "$install_db" --no-defaults "${user_args[@]}" --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
      >"$dir/install-db.log" 2>&1 ||
      die "mariadb-install-db failed; its output ($dir/install-db.log):
$(tail -n 30 "$dir/install-db.log")"
  fi
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_in_use "$port" && continue
    echo "$port" >"$dir/port"
    rc=0
    launch || rc=$?
    [[ $rc -eq 0 ]] && break
    [[ $rc -eq 2 ]] || exit "$rc"
    port=""
  done
  [[ -n "${port:-}" ]] || die "could not find a free loopback port for mariadbd"
  start_watchdog "$PPID"
  if ! provision >"$dir/provision.log" 2>&1; then
    stop_server
    stop_watchdog
    die "setting up database plinth failed: $(cat "$dir/provision.log")"
  fi
  echo "mysql://root@127.0.0.1:$port/plinth"
}

cmd_stop() {
  [[ -d "$dir" ]] || return 0
  stop_watchdog
  stop_server
}

cmd_restart() {
  local port deadline rc
  find_programs
  [[ -s "$dir/port" ]] || die "no server was started in $dir"
  port=$(<"$dir/port")
  stop_server
  # The port was ours a moment ago; wait (bounded) should anything else hold it briefly.
  deadline=$((SECONDS + 10))
  while true; do
    rc=0
    launch || rc=$?
    [[ $rc -eq 0 ]] && break
    [[ $rc -eq 2 ]] || exit "$rc"
    ((SECONDS < deadline)) || die "port $port stayed in use; cannot restart mariadbd"
    sleep 0.5
  done
  watchdog_alive || start_watchdog "$PPID"
  echo "mysql://root@127.0.0.1:$port/plinth"
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
if (($# != 2)); then
  usage >&2
  exit 2
fi
dir=$2
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart ;;
  *)
    echo "mariadb.sh: unknown verb \"$1\"" >&2
    usage >&2
    exit 2
    ;;
esac
