#!/usr/bin/env bash
# Installs every Debian package plinth needs to build and benchmark (Debian 12 "bookworm" or
# later); with --test also the database servers the tests start on loopback ports
# (PostgreSQL, MariaDB, etcd). Idempotent: when everything is already installed it makes no
# apt call at all, so running it before every build costs a fraction of a second. Uses sudo
# when not run as root.
set -euo pipefail

with_servers=0
if [[ ${1:-} == --test ]]; then with_servers=1; fi

packages=(
  build-essential     # gcc/g++, make
  cmake               # >= 3.25 (CMakePresets.json version 6)
  pkg-config
  libsqlite3-dev      # the sqlite backend
  sqlite3             # the sqlite3 shell, for looking inside a store file
  libgtest-dev        # tests
  libgmock-dev
  libbenchmark-dev    # benchmarks
  libcli11-dev        # the plinth command line
  nlohmann-json3-dev  # --output json
  libssl-dev          # OpenSSL (encryption at rest, TLS)
  libpq-dev           # the postgres backend
  libmariadb-dev      # the mysql backend
  libgrpc++-dev       # the etcd backend (and later the gRPC server)
  libprotobuf-dev
  protobuf-compiler
  protobuf-compiler-grpc
  golang-etcd-server-dev  # etcd's .proto files, trimmed and compiled at build time
  libtomlplusplus-dev     # plinth serve's configuration file
  libcpp-httplib-dev      # the Prometheus metrics endpoint
  libspdlog-dev           # structured logs
  perl                    # trims those .proto files
)
server_packages=(
  postgresql      # initdb, pg_ctl: scripts/servers/postgres.sh
  mariadb-server  # mariadb-install-db, mariadbd: scripts/servers/mariadb.sh
  mariadb-client
  etcd-server     # a 3-member cluster: scripts/servers/etcd.sh
  etcd-client
  procps          # pkill/pgrep in the server scripts
)
if ((with_servers)); then packages+=("${server_packages[@]}"); fi
names=()
for entry in "${packages[@]}"; do names+=("${entry%% *}"); done

missing=()
for pkg in "${names[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#names[@]} packages are installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: missing packages (${missing[*]}); run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
apt_get=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
"${apt_get[@]}" update -q
"${apt_get[@]}" install -y -q --no-install-recommends "${missing[@]}"
