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
    # Keyed by the data folder, so two clones (or a private test instance) never share a cluster.
    fallback="/var/tmp/vantageedge-$(printf '%s' "$VE_DATA" | md5sum | cut -c1-12)/postgres"
    mkdir -p "$fallback"; chmod 755 "$(dirname "$fallback")"; chown postgres:postgres "$fallback"
    echo "$fallback"
  fi
}

pg_answers() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'select 1' >/dev/null 2>&1; }

as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

up() {
  local bin
  if ! bin="$(find_pg_bin)"; then apt_install postgresql-15; bin="$(find_pg_bin)" || fail "PostgreSQL installed but pg_ctl not found"; fi
  id postgres >/dev/null 2>&1 || fail "the postgres OS user is missing (the Debian package creates it)"
  local home; home="$(pg_home)"
  local data="$home/data" logfile="$home/postgres.log"
  echo "$home" > "$VE_DATA/postgres.home"

  # postmaster.pid stays after a kill -9; postgres itself checks it on start, so it is not removed here.
  if pid_alive "$data/postmaster.pid" postgres; then
    local pid; pid="$(head -n1 "$data/postmaster.pid")"
    # Running, or still recovering after a crash: give it time to accept connections.
    wait_until 60 postgres pg_answers || fail "postgres: process $pid runs but does not answer on 127.0.0.1:$PG_PORT, see $logfile"
    head -n1 "$data/postmaster.pid" > "$VE_DATA/postgres.pid"
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
  refuse_foreign_port postgres "$PG_PORT"
  log "postgres: starting on 127.0.0.1:$PG_PORT"
  # After a kill -9 the old server's children hold its shared memory until they notice and exit,
  # and postgres refuses to start until then: a few tries cover that moment.
  local attempt
  for attempt in 1 2 3 4 5 6; do
    as_postgres "$bin/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='' -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" \
      >/dev/null 2>&1 && break
    ((attempt < 6)) || fail "postgres failed to start, see $logfile"
    sleep 1
  done
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
    local pid; pid="$(head -n1 "$home/data/postmaster.pid")"
    if as_postgres "$bin/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null 2>&1; then
      # pg_ctl returns once postmaster.pid is gone, a moment before the process itself.
      wait_gone "$pid" 30 || true
      rm -f "$VE_DATA/postgres.pid"
      log "postgres: stopped (pid $pid)"
      return 0
    fi
  fi
  stop_pidfile postgres "$VE_DATA/postgres.pid" postgres
}

status() {
  if PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    echo "postgres  up    127.0.0.1:$PG_PORT"
  else
    echo "postgres  down  127.0.0.1:$PG_PORT"; return 1
  fi
}

reset() {
  down
  local home; home="$(cat "$VE_DATA/postgres.home" 2>/dev/null || echo "$VE_DATA/postgres")"
  rm -rf "$home"; rm -f "$VE_DATA/postgres.home"
  [[ "$home" == /var/tmp/vantageedge-*/postgres ]] && rmdir "$(dirname "$home")" 2>/dev/null
  log "postgres: data wiped"
}

"${1:-status}"
