#!/usr/bin/env bash
# Redis 7 from Debian, daemonised on 127.0.0.1, no persistence (tests and dev only).
# Usage: infra/redis.sh up|down|status|reset
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$VE_DATA/redis"
PIDFILE="$DIR/redis.pid"
LOGFILE="$DIR/redis.log"

up() {
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$DIR"
  if pid_alive "$PIDFILE" redis-server && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "redis: already running on 127.0.0.1:$REDIS_PORT"; return 0
  fi
  if pid_alive "$PIDFILE" redis-server; then
    log "redis: process $(cat "$PIDFILE") is not answering, restarting it"
    stop_pidfile redis "$PIDFILE" redis-server
  fi
  rm -f "$PIDFILE"
  refuse_foreign_port redis "$REDIS_PORT"
  log "redis: starting on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$PIDFILE" \
    --dir "$DIR" --logfile "$LOGFILE" --save '' --appendonly no --protected-mode yes \
    --maxmemory 512mb --maxmemory-policy volatile-lru >/dev/null || fail "redis failed to start, see $LOGFILE"
  wait_until 20 redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping || fail "redis did not answer PING, see $LOGFILE"
  log "redis: ready (redis://127.0.0.1:$REDIS_PORT, log $LOGFILE)"
}

down() { stop_pidfile redis "$PIDFILE" redis-server; }

status() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then echo "redis     up    127.0.0.1:$REDIS_PORT"
  else echo "redis     down  127.0.0.1:$REDIS_PORT"; return 1; fi
}

reset() { down; rm -rf "$DIR"; log "redis: data wiped"; }

"${1:-status}"
