#!/usr/bin/env bash
# Starts and stops the project's own PostgreSQL 15 cluster (with pgvector) for tests,
# benchmarks and the examples. Everything lives under .pg/ in the checkout.
#
#   scripts/pg.sh pgvector   build and install pgvector from Debian's source package if missing
#   scripts/pg.sh start      initdb on first use, then start the cluster (idempotent)
#   scripts/pg.sh stop       stop it
#   scripts/pg.sh uri        print the connection URI
#
# PostgreSQL refuses to run as root, so when we are root (as in CI) the cluster is
# owned by and run as the `postgres` system user that Debian's package created.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONFIG="$PG_BIN/pg_config"
PGPORT="${SUPERDUPER_PGPORT:-54329}"
PGDIR="$ROOT/.pg"
DATA="$PGDIR/data"
RUN="$PGDIR/run"
LOG="$PGDIR/postgres.log"

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pgvector_installed() {
  [ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]
}

install_pgvector() {
  if pgvector_installed; then return 0; fi
  echo "pgvector: not installed; building it from Debian's source package (about 30 s)" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "pgvector: building needs root (apt-get and make install into $("$PG_CONFIG" --pkglibdir))." >&2
    echo "          run 'sudo scripts/pg.sh pgvector' once, then try again." >&2
    exit 1
  fi
  # Debian 12 has no pgvector package; the source package of Debian 13 (trixie) builds here.
  local src=/etc/apt/sources.list.d/superduper-trixie-src.sources
  if ! grep -rqs "trixie" /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null; then
    cat >"$src" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-server-dev-15 dpkg-dev >/dev/null
  local build
  build="$(mktemp -d)"
  (cd "$build" && apt-get source -qq pgvector >/dev/null 2>&1)
  local dir
  dir="$(find "$build" -maxdepth 1 -type d -name 'pgvector-*' | head -1)"
  make -s -C "$dir" -j2 PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
  make -s -C "$dir" install PG_CONFIG="$PG_CONFIG" >/dev/null
  rm -rf "$build"
  pgvector_installed || { echo "pgvector: build finished but vector.control is missing" >&2; exit 1; }
  echo "pgvector: installed" >&2
}

init_cluster() {
  if [ -f "$DATA/PG_VERSION" ]; then return 0; fi
  mkdir -p "$PGDIR" "$RUN"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PGDIR"; fi
  as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  # Test and benchmark settings: enough connections for parallel test files and
  # several sidecars; durability left at its defaults so benchmarks stay honest.
  cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$RUN'
max_connections = 300
shared_buffers = 512MB
max_wal_size = 4GB
log_min_messages = warning
CONF
}

start() {
  install_pgvector
  init_cluster
  if as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then return 0; fi
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null
  echo "postgres: running at $(uri)" >&2
}

stop() {
  if [ -f "$DATA/PG_VERSION" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
  fi
}

uri() { echo "postgres://postgres@127.0.0.1:$PGPORT/postgres"; }

case "${1:-}" in
  pgvector) install_pgvector ;;
  start) start ;;
  stop) stop ;;
  uri) uri ;;
  *) echo "usage: $0 pgvector|start|stop|uri" >&2; exit 2 ;;
esac
