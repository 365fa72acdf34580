#!/usr/bin/env bash
# PostgreSQL 15 from Debian, run as the `postgres` OS user (it refuses root), TCP on 127.0.0.1 only.
# Usage: infra/postgres.sh up|down|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_USER=vantageedge
PG_PASSWORD=vantageedge
PG_DB=vantageedge

find_pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [[ -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }; done
  return 1
}

# The server runs as `postgres`, which must be able to reach its data folder. A clone under a
# private home folder is not reachable, so then the data lives in /var/tmp (recorded in .data).
pg_home() {
  local preferred="$VE_DATA/postgres"
  mkdir -p "$preferred"
  chown postgres:postgres "$preferred" 2>/dev/null || true
  if runuser -u postgres -- test -x "$preferred" 2>/dev/null && runuser -u postgres -- test -w "$preferred"; then
    echo "$preferred"
  else
    local fallback
    fallback="/var/tmp/vantageedge-$(printf '%s' "$VE_ROOT" | md5sum | cut -c1-12)/postgres"
    mkdir -p "$fallback"; chmod 755 "$(dirname "$fallback")"; chown postgres:postgres "$fallback"
    echo "$fallback"
  fi
}

as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

up() {
  local bin
  if ! bin="$(find_pg_bin)"; then apt_install postgresql-15; bin="$(find_pg_bin)" || fail "PostgreSQL installed but pg_ctl not found"; fi
  id postgres >/dev/null 2>&1 || fail "the postgres OS user is missing (the Debian package creates it)"
  local home; home="$(pg_home)"
  local data="$home/data" logfile="$home/postgres.log"
  echo "$home" > "$VE_DATA/postgres.home"

  if [[ -s "$data/postmaster.pid" ]] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
    return 0
  fi
  if [[ ! -s "$data/PG_VERSION" ]]; then
    log "postgres: initdb in $data"
    local pwfile="$home/.pwfile"
    printf '%s\n' "$PG_PASSWORD" > "$pwfile"; chown postgres:postgres "$pwfile"; chmod 600 "$pwfile"
    as_postgres "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
      --encoding=UTF8 --no-sync >"$home/initdb.log" 2>&1 || fail "postgres: initdb failed, see $home/initdb.log"
    rm -f "$pwfile"
  fi
  rm -f "$data/postmaster.pid" 2>/dev/null || true # stale after a crash; pg_ctl status said not running
  log "postgres: starting on 127.0.0.1:$PG_PORT"
  as_postgres "$bin/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='' -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" \
    >/dev/null 2>&1 || fail "postgres failed to start, see $logfile"
  head -n1 "$data/postmaster.pid" > "$VE_DATA/postgres.pid"
  if ! PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "select 1 from pg_database where datname='$PG_DB'" | grep -q 1; then
    PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "create database $PG_DB" \
      || fail "postgres: could not create database $PG_DB, see $logfile"
  fi
  log "postgres: ready (postgres://$PG_USER:***@127.0.0.1:$PG_PORT/$PG_DB, log $logfile)"
}

down() {
  local bin home
  home="$(cat "$VE_DATA/postgres.home" 2>/dev/null || echo "$VE_DATA/postgres")"
  if bin="$(find_pg_bin)" && [[ -s "$home/data/postmaster.pid" ]]; then
    as_postgres "$bin/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null 2>&1 && log "postgres: stopped" || true
  fi
  stop_pidfile postgres "$VE_DATA/postgres.pid"
}

status() {
  if PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    echo "postgres  up    127.0.0.1:$PG_PORT"
  else
    echo "postgres  down  127.0.0.1:$PG_PORT"; return 1
  fi
}

reset() { down; local home; home="$(cat "$VE_DATA/postgres.home" 2>/dev/null || echo "$VE_DATA/postgres")"; rm -rf "$home"; log "postgres: data wiped"; }

"${1:-status}"
