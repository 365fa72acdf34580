#!/usr/bin/env bash
# Redis Cluster: three masters and three replicas from the same Debian redis-server as infra/redis.sh,
# formed with `redis-cli --cluster create`, on 127.0.0.1. Tests and local scale-out work only; the single
# server of infra/redis.sh keeps running beside it on its own port.
# Usage: infra/redis-cluster.sh up|down|status|reset [port]
# Ports: VE_REDIS_CLUSTER_PORT .. +5 (16100-16105). `up` starts every node that is not running; a node
# that was killed rejoins from its nodes.conf (a failed-over master comes back as a replica).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_PORT="${VE_REDIS_CLUSTER_PORT:-16100}"
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((BASE_PORT + i))); done
DIR="$VE_DATA/redis-cluster"
# A master that does not answer for this long is failed over to its replica (the documented bound).
NODE_TIMEOUT_MS="${VE_REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}"

node_dir() { echo "$DIR/$1"; }
pidfile() { echo "$DIR/$1/redis.pid"; }
cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

# Every node's address, comma-separated: what REDIS_CLUSTER_NODES must say to use this cluster.
seeds() { (IFS=,; printf '%s' "${PORTS[*]/#/127.0.0.1:}"); }

start_node() {
  local port="$1" dir; dir="$(node_dir "$port")"
  if pid_alive "$(pidfile "$port")" redis-server && cli "$port" ping >/dev/null 2>&1; then return 0; fi
  if pid_alive "$(pidfile "$port")" redis-server; then stop_pidfile "redis-cluster $port" "$(pidfile "$port")" redis-server; fi
  rm -f "$(pidfile "$port")"
  refuse_foreign_port "redis-cluster node" "$port"
  mkdir -p "$dir"
  # The node ports and their cluster-bus ports (+10000) lie below Linux's ephemeral range (32768-60999),
  # where outgoing connections take their ports; a node that could not bind anyway (another program, a
  # wider range) is started again (3 times at most).
  local attempt
  for attempt in 1 2 3 4; do
    log "redis-cluster: starting node 127.0.0.1:$port"
    : >"$dir/redis.log"
    # No persistence (like infra/redis.sh): a restarted node resyncs from its master. The cluster bus
    # listens on port + 10000. Without full coverage, a master down only stops its own slots.
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$(pidfile "$port")" \
      --dir "$dir" --logfile "$dir/redis.log" --save '' --appendonly no --protected-mode yes \
      --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout "$NODE_TIMEOUT_MS" \
      --cluster-require-full-coverage no \
      --maxmemory 256mb --maxmemory-policy volatile-lru >/dev/null || fail "redis-cluster node $port failed to start, see $dir/redis.log"
    if wait_until 20 "redis-cluster $port" node_answers_or_failed_to_bind "$port" "$dir/redis.log"; then
      cli "$port" ping >/dev/null 2>&1 && return 0
      if ((attempt < 4)); then
        log "redis-cluster node $port: its port was in use, starting it again"
        sleep 1
        continue
      fi
    fi
    break
  done
  fail "redis-cluster node $port did not answer PING, see $dir/redis.log"
}

# The node answers PING, or its log says a port was taken (then it has exited).
node_answers_or_failed_to_bind() {
  cli "$1" ping >/dev/null 2>&1 || grep -q 'Address already in use' "$2"
}

cluster_info() { cli "$1" cluster info 2>/dev/null | tr -d '\r'; }
slots_assigned() { cluster_info "$1" | sed -n 's/^cluster_slots_assigned://p'; }

# Healthy = every node says the cluster is ok, all 16384 slots are served, 3 masters each with a replica.
healthy() {
  local port
  for port in "${PORTS[@]}"; do
    cluster_info "$port" | grep -qx 'cluster_state:ok' || return 1
    [[ "$(cluster_info "$port" | sed -n 's/^cluster_slots_ok://p')" == 16384 ]] || return 1
  done
  local nodes; nodes="$(cli "${PORTS[0]}" cluster nodes 2>/dev/null)"
  [[ "$(grep -c 'master' <<<"$nodes" | tr -d ' ')" -ge 3 ]] || return 1
  [[ "$(grep -v 'fail' <<<"$nodes" | grep -c 'slave')" -ge 3 ]] || return 1
  # Every replica synced with its master: one restarted a moment ago that has not synced yet counts its
  # data as infinitely old, and refuses to take over when its master fails.
  for port in "${PORTS[@]}"; do
    local replication; replication="$(cli "$port" info replication 2>/dev/null | tr -d '\r')"
    grep -qx 'role:slave' <<<"$replication" || continue
    grep -qx 'master_link_status:up' <<<"$replication" || return 1
  done
}

up() {
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-cli >/dev/null || apt_install redis-tools
  mkdir -p "$DIR"
  local port
  for port in $(if [[ -n "${1:-}" ]]; then echo "$1"; else echo "${PORTS[@]}"; fi); do start_node "$port"; done
  if [[ "$(slots_assigned "${PORTS[0]}")" == 0 ]]; then
    # A fresh set of nodes (or one whose nodes.conf files were wiped): form the cluster.
    log "redis-cluster: creating the cluster (3 masters, 3 replicas)"
    local addresses=()
    for port in "${PORTS[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log" 2>&1 \
      || fail "redis-cluster: redis-cli --cluster create failed, see $DIR/create.log"
  fi
  wait_until 60 "redis-cluster healthy" healthy || fail "redis-cluster: not healthy after 60 s (cluster nodes: $(cli "${PORTS[0]}" cluster nodes 2>&1 | tr '\n' ';'))"
  log "redis-cluster: ready (REDIS_CLUSTER_NODES=$(seeds))"
}

down() {
  local port
  for port in $(if [[ -n "${1:-}" ]]; then echo "$1"; else echo "${PORTS[@]}"; fi); do
    stop_pidfile "redis-cluster $port" "$(pidfile "$port")" redis-server
  done
}

status() {
  if healthy >/dev/null 2>&1; then
    echo "redis-cluster  up    $(seeds)"
  else
    echo "redis-cluster  down  $(seeds)"; return 1
  fi
}

reset() { down; rm -rf "$DIR"; log "redis-cluster: data wiped"; }

action="${1:-status}"; shift || true
"$action" "$@"
