#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis answer, for `make run` and
# `make test`:
#   - running already: nothing to do;
#   - installed but stopped: start them;
#   - missing: install them from Debian packages (needs root and apt-get);
#   - otherwise: stop and say what to do.
# Then it creates the platform's database if it does not exist.
#
# Set SKIP_SERVICES=1 to manage the services yourself (DATABASE_URL, REDIS_URL
# and TEST_DATABASE_URL point wherever you like).
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379
DB_NAME=${DB_NAME:-incentives}

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

[ "${SKIP_SERVICES:-}" = 1 ] && { log "SKIP_SERVICES=1: not managing PostgreSQL and Redis"; exit 0; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  die "$2 did not start listening on 127.0.0.1:$1 within 30s"
}

installed_now=()
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "$* not installed, and this script can only install it as root with apt-get.
  Install it yourself (Debian/Ubuntu: sudo apt-get install $*), or run it elsewhere and
  set DATABASE_URL / REDIS_URL / TEST_DATABASE_URL, then SKIP_SERVICES=1."
  fi
  log "installing $* from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  installed_now+=("$@")
}

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

ensure_postgres() {
  if port_open "$PG_PORT"; then return; fi
  if [ -z "$(pg_version)" ]; then
    apt_install postgresql postgresql-client
  fi
  local v; v=$(pg_version)
  [ -n "$v" ] || die "PostgreSQL is installed but has no cluster in /etc/postgresql"
  if [[ " ${installed_now[*]} " == *" postgresql "* ]]; then
    # A fresh Debian cluster wants a password over TCP; the platform's local
    # default (DESIGN.md §10) is the postgres user without one, so trust
    # loopback connections on this development machine.
    local hba="/etc/postgresql/$v/main/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    log "PostgreSQL $v: trusting loopback connections in $hba (development machine)"
  fi
  log "starting PostgreSQL $v"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start
  wait_port "$PG_PORT" PostgreSQL
}

ensure_redis() {
  if port_open "$REDIS_PORT"; then return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  local dir=/var/lib/redis logdir=/var/log/redis
  mkdir -p "$dir" "$logdir" 2>/dev/null || { dir=${TMPDIR:-/tmp}; logdir=$dir; }
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$dir" --logfile "$logdir/redis-incentives.log"
  wait_port "$REDIS_PORT" Redis
}

ensure_database() {
  command -v psql >/dev/null || apt_install postgresql-client
  local psql=(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
  if ! "${psql[@]}" -c 'SELECT 1' >/dev/null 2>&1; then
    die "PostgreSQL answers on 127.0.0.1:$PG_PORT but refuses user postgres without a password.
  Allow it (trust for 127.0.0.1 in pg_hba.conf), or set DATABASE_URL and TEST_DATABASE_URL
  with credentials and SKIP_SERVICES=1."
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
    log "created database $DB_NAME"
  fi
}

ensure_postgres
ensure_redis
ensure_database
log "PostgreSQL on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up"
