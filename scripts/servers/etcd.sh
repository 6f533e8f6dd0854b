#!/usr/bin/env bash
# A throwaway 3-member etcd cluster on loopback ports for tests; the protocol is described in
# src/store/conformance/test_servers.h.
#
# usage: etcd.sh start DIR            start a new cluster under DIR; prints its base store URL
#        etcd.sh stop DIR             stop every member (succeeds if none is running)
#        etcd.sh restart DIR          stop and start again on the same ports, keeping the data
#        etcd.sh kill-member DIR N    SIGKILL member N (1, 2 or 3)
#        etcd.sh start-member DIR N   start member N again (it rejoins with its data)
#
# DIR holds everything: ports, member data directories (m1.data ...), logs (m1.log ...), pid
# files and the watchdog's pid. The watchdog started by `start` stops the cluster when the
# process that ran `start` (the test binary) exits.
set -euo pipefail

readonly MEMBERS=(1 2 3)
readonly HEALTH_TIMEOUT_S=60
readonly STOP_TIMEOUT_S=15

die() {
  echo "etcd.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '4,8s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

require_etcd() {
  command -v etcd > /dev/null 2>&1 ||
    die "the etcd server binary is not installed (Debian: apt-get install etcd-server)"
  command -v etcdctl > /dev/null 2>&1 ||
    die "etcdctl is not installed (Debian: apt-get install etcd-client)"
}

# A loopback TCP port nobody listens on, not in the arguments already chosen.
free_port() {
  local port taken
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    taken=0
    for p in "$@"; do [[ "$p" == "$port" ]] && taken=1; done
    ((taken)) && continue
    if ! (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free loopback port found"
}

load_ports() {
  [[ -f "$DIR/ports" ]] || die "$DIR/ports is missing: no cluster was started in $DIR"
  # shellcheck disable=SC1091
  source "$DIR/ports"
}

client_url() { local n=$1 v="CLIENT_$1"; echo "http://127.0.0.1:${!v}"; }
peer_url() { local n=$1 v="PEER_$1"; echo "http://127.0.0.1:${!v}"; }

initial_cluster() {
  local out="" n
  for n in "${MEMBERS[@]}"; do
    out+="${out:+,}m$n=$(peer_url "$n")"
  done
  echo "$out"
}

member_pid() {
  local file="$DIR/m$1.pid"
  [[ -f "$file" ]] || return 1
  local pid
  pid=$(cat "$file")
  [[ -n "$pid" ]] && kill -0 "$pid" 2> /dev/null && echo "$pid"
}

# start_member N STATE
start_member() {
  local n=$1 state=$2
  if member_pid "$n" > /dev/null; then return 0; fi
  local client peer
  client=$(client_url "$n")
  peer=$(peer_url "$n")
  setsid etcd --name "m$n" --data-dir "$DIR/m$n.data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$(initial_cluster)" --initial-cluster-state "$state" \
    --initial-cluster-token "$TOKEN" \
    --heartbeat-interval 50 --election-timeout 500 \
    < /dev/null >> "$DIR/m$n.log" 2>&1 &
  echo $! > "$DIR/m$n.pid"
}

# wait_healthy N...: until every listed member answers `endpoint health`, bounded.
wait_healthy() {
  local endpoints="" n
  for n in "$@"; do endpoints+="${endpoints:+,}$(client_url "$n")"; done
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=2s --command-timeout=3s \
      endpoint health > /dev/null 2>&1; then
      return 0
    fi
    for n in "$@"; do
      member_pid "$n" > /dev/null ||
        die "etcd member $n exited; the end of $DIR/m$n.log: $(tail -n 20 "$DIR/m$n.log" 2> /dev/null)"
    done
    sleep 0.2
  done
  die "etcd members $* not healthy within ${HEALTH_TIMEOUT_S}s; see $DIR/m*.log"
}

# stop_member N SIGNAL: signal the member and wait (bounded) until it is gone.
stop_member() {
  local n=$1 signal=$2 pid
  pid=$(member_pid "$n") || {
    rm -f "$DIR/m$n.pid"
    return 0
  }
  kill -s "$signal" "$pid" 2> /dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2> /dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  if kill -0 "$pid" 2> /dev/null; then
    kill -9 "$pid" 2> /dev/null || true
    while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done
  fi
  rm -f "$DIR/m$n.pid"
}

stop_all() {
  local n
  for n in "${MEMBERS[@]}"; do stop_member "$n" TERM; done
}

base_url() {
  local out="" n v
  for n in "${MEMBERS[@]}"; do
    v="CLIENT_$n"
    out+="${out:+,}127.0.0.1:${!v}"
  done
  echo "etcd://$out"
}

# Stops the cluster once process $1 is gone (or DIR was removed). Detached from our stdout so
# that the caller's read of it ends when this script exits.
start_watchdog() {
  local parent=$1
  (
    trap '' HUP
    while kill -0 "$parent" 2> /dev/null && [[ -d "$DIR" ]]; do sleep 1; done
    for n in "${MEMBERS[@]}"; do
      if [[ -f "$DIR/m$n.pid" ]]; then kill -9 "$(cat "$DIR/m$n.pid")" 2> /dev/null || true; fi
    done
  ) < /dev/null > /dev/null 2>&1 &
  echo $! > "$DIR/watchdog.pid"
}

cmd_start() {
  require_etcd
  mkdir -p "$DIR"
  start_watchdog "$PPID"
  # A port chosen free can be taken by another process before etcd binds it (tests start
  # servers in parallel): then start again on other ports, a bounded number of times. Each
  # attempt runs in a subshell, so that its `die` ends only the attempt.
  local attempt
  for attempt in 1 2 3; do
    if (start_new_cluster); then
      load_ports  # the attempt's variables stayed in its subshell
      base_url
      return 0
    fi
    load_ports
    stop_all 2> /dev/null || true
    rm -rf "$DIR"/m*.data
    echo "etcd.sh: start attempt $attempt failed; retrying on other ports" >&2
  done
  die "etcd cluster did not start after 3 attempts; see $DIR/m*.log"
}

# One attempt at a new cluster on freshly chosen ports (see cmd_start).
start_new_cluster() {
  local ports=()
  for _ in 1 2 3 4 5 6; do ports+=("$(free_port "${ports[@]}")"); done
  cat > "$DIR/ports" << EOF
CLIENT_1=${ports[0]}
CLIENT_2=${ports[1]}
CLIENT_3=${ports[2]}
PEER_1=${ports[3]}
PEER_2=${ports[4]}
PEER_3=${ports[5]}
TOKEN=plinth-$$-$RANDOM$RANDOM
EOF
  load_ports
  local n
  for n in "${MEMBERS[@]}"; do start_member "$n" new; done
  wait_healthy "${MEMBERS[@]}"
}

cmd_stop() {
  [[ -f "$DIR/ports" ]] || return 0
  load_ports
  stop_all
  if [[ -f "$DIR/watchdog.pid" ]]; then
    kill "$(cat "$DIR/watchdog.pid")" 2> /dev/null || true
    rm -f "$DIR/watchdog.pid"
  fi
}

cmd_restart() {
  require_etcd
  load_ports
  stop_all
  local n
  for n in "${MEMBERS[@]}"; do start_member "$n" existing; done
  wait_healthy "${MEMBERS[@]}"
  base_url
}

check_member() {
  [[ "$1" =~ ^[123]$ ]] || die "member must be 1, 2 or 3, not \"$1\""
}

cmd_kill_member() {
  check_member "$1"
  load_ports
  stop_member "$1" KILL
}

cmd_start_member() {
  require_etcd
  check_member "$1"
  load_ports
  start_member "$1" existing
  wait_healthy "$1"
}

(($# >= 2)) || usage
verb=$1
DIR=$2
shift 2
case "$verb" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart ;;
  kill-member) (($# == 1)) || usage; cmd_kill_member "$1" ;;
  start-member) (($# == 1)) || usage; cmd_start_member "$1" ;;
  *) usage ;;
esac
