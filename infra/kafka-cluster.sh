#!/usr/bin/env bash
# Apache Kafka with replication: three KRaft nodes (each broker + controller, so the controller quorum
# survives one node down), from the same jars as infra/kafka.sh, on 127.0.0.1. Tests and local
# scale-out work only; the single node of infra/kafka.sh keeps running beside it on its own ports.
# Usage: infra/kafka-cluster.sh up|down|status|reset [node 1-3]
# Ports: broker i on VE_KAFKA_CLUSTER_PORT+i-1 (16200-16202), controller i on VE_KAFKA_CLUSTER_PORT+2+i
# (16203-16205). `up` starts every node that is not running (a killed broker comes back with its data).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

BASE_PORT="${VE_KAFKA_CLUSTER_PORT:-16200}"
NODES=(1 2 3)
DIR="$VE_DATA/kafka-cluster"
READY_TIMEOUT="${VE_KAFKA_READY_TIMEOUT:-180}"
# Small heaps: three brokers share a 2-core machine with everything else the tests start.
JAVA_OPTS=(-Xms64m -Xmx256m -XX:+UseSerialGC -XX:CICompilerCount=2 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG")

broker_port() { echo $((BASE_PORT + $1 - 1)); }
controller_port() { echo $((BASE_PORT + 2 + $1)); }
node_dir() { echo "$DIR/node-$1"; }
pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
logfile() { echo "$(node_dir "$1")/server.log"; }

# Every broker's address, comma-separated: what KAFKA_BROKERS must say to use this cluster.
bootstrap() {
  local list=() n
  for n in "${NODES[@]}"; do list+=("127.0.0.1:$(broker_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

voters() {
  local list=() n
  for n in "${NODES[@]}"; do list+=("$n@127.0.0.1:$(controller_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

write_properties() {
  local n="$1" dir; dir="$(node_dir "$n")"
  cat >"$dir/server.properties" <<PROPS
# Written by infra/kafka-cluster.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# Replicated like production: three copies, a write is acknowledged (acks=all) by at least two.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
log.segment.bytes=67108864
log.cleaner.backoff.ms=1000
# Fewer threads than the defaults: three brokers on two cores.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.cleaner.threads=1
PROPS
}

# All nodes share one cluster id (kept in $DIR/cluster.id); a node's storage is formatted once.
format_storage() {
  local n="$1" dir; dir="$(node_dir "$n")"
  if [[ -s "$dir/data/meta.properties" && "$(cat "$DIR/data.version" 2>/dev/null)" == "$KAFKA_VERSION" ]]; then
    return 0
  fi
  rm -rf "$dir/data"
  log "kafka-cluster: formatting node $n storage (cluster $(cat "$DIR/cluster.id"))"
  kafka_tool kafka.tools.StorageTool format -t "$(cat "$DIR/cluster.id")" -c "$dir/server.properties" \
    >>"$(logfile "$n")" 2>&1 || fail "kafka-cluster: formatting node $n failed, see $(logfile "$n")"
}

start_node() {
  local n="$1"
  if pid_alive "$(pidfile "$n")" "$KAFKA_MAIN_CLASS"; then return 0; fi
  rm -f "$(pidfile "$n")"
  refuse_foreign_port "kafka-cluster node $n" "$(broker_port "$n")"
  refuse_foreign_port "kafka-cluster node $n controller" "$(controller_port "$n")"
  log "kafka-cluster: starting node $n on 127.0.0.1:$(broker_port "$n") (controller $(controller_port "$n"))"
  setsid nohup java "${JAVA_OPTS[@]}" -cp "$KAFKA_LIB/*" "$KAFKA_MAIN_CLASS" "$(node_dir "$n")/server.properties" \
    >>"$(logfile "$n")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$n")"
}

# The last error the node logged (its log is appended to on every start).
start_failure() {
  local errors
  errors="$(tail -n 400 "$(logfile "$1")" | grep -E 'ERROR|FATAL|Exception' | tail -n 3 | cut -c1-300 | tr '\n' ' ')"
  echo "${errors:-no error in its log (killed from outside, e.g. for memory?)}"
}

# Ready = every node's broker answers and the metadata lists all three as alive.
all_ready() {
  local n
  for n in "${NODES[@]}"; do kafka_broker_ready "127.0.0.1:$(broker_port "$n")" "${#NODES[@]}" || return 1; done
}

selected() { if [[ -n "${1:-}" ]]; then echo "$1"; else echo "${NODES[@]}"; fi; }

up() {
  [[ -n "$KAFKA_VERSION" ]] || fail "kafka-cluster: no <kafka.version> in $KAFKA_POM"
  [[ -d "$VE_ROOT/node_modules/kafkajs" ]] || fail "kafka-cluster: node_modules/kafkajs is missing (its readiness check uses it): run make install"
  mkdir -p "$DIR"
  if all_ready >/dev/null 2>&1; then log "kafka-cluster: already running ($(bootstrap))"; return 0; fi
  kafka_install_jars
  # Storage from another Kafka version is wiped for every node at once (they must agree).
  if [[ -f "$DIR/data.version" && "$(cat "$DIR/data.version")" != "$KAFKA_VERSION" ]]; then
    log "kafka-cluster: data is from another version, wiping it"; down; rm -rf "$DIR"/node-* "$DIR/cluster.id"
  fi
  [[ -s "$DIR/cluster.id" ]] || kafka_new_cluster_id >"$DIR/cluster.id"
  local n pids=()
  # Formatting starts a JVM per node: done for all nodes at once.
  for n in $(selected "${1:-}"); do
    pid_alive "$(pidfile "$n")" "$KAFKA_MAIN_CLASS" && continue
    mkdir -p "$(node_dir "$n")"
    write_properties "$n"
    format_storage "$n" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || fail "kafka-cluster: formatting failed, see $DIR/node-*/server.log"; done
  for n in $(selected "${1:-}"); do start_node "$n"; done
  echo "$KAFKA_VERSION" >"$DIR/data.version"
  local deadline=$((SECONDS + READY_TIMEOUT)) restarts=0
  until all_ready >/dev/null 2>&1; do
    for n in $(selected "${1:-}"); do
      pid_alive "$(pidfile "$n")" "$KAFKA_MAIN_CLASS" && continue
      # A node can lose a race for its port (another program's listener, or an outgoing connection
      # where the ephemeral range is set wider than Linux's 32768-60999 these ports lie below): say
      # why it stopped and start it again.
      log "kafka-cluster node $n exited during start-up: $(start_failure "$n")"
      ((restarts++ < 3)) || fail "kafka-cluster node $n exited during start-up, see $(logfile "$n")"
      sleep 1
      start_node "$n"
    done
    ((SECONDS < deadline)) || fail "kafka-cluster did not list ${#NODES[@]} alive brokers within ${READY_TIMEOUT}s, see $DIR/node-*/server.log"
    sleep 0.5
  done
  log "kafka-cluster: ready, ${#NODES[@]} brokers (KAFKA_BROKERS=$(bootstrap))"
}

# All at once: a node stopped after the others could not reach a controller quorum for its controlled
# shutdown and would wait out the TERM grace period.
down() {
  local n pids=()
  for n in $(selected "${1:-}"); do
    stop_pidfile "kafka-cluster node $n" "$(pidfile "$n")" "$KAFKA_MAIN_CLASS" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}

status() {
  local n rc=0
  for n in "${NODES[@]}"; do
    if pid_alive "$(pidfile "$n")" "$KAFKA_MAIN_CLASS" && kafka_broker_ready "127.0.0.1:$(broker_port "$n")" >/dev/null 2>&1; then
      echo "kafka-cluster node $n  up    127.0.0.1:$(broker_port "$n")"
    else
      echo "kafka-cluster node $n  down  127.0.0.1:$(broker_port "$n")"; rc=1
    fi
  done
  return $rc
}

reset() { down; rm -rf "$DIR"/node-* "$DIR/cluster.id" "$DIR/data.version"; log "kafka-cluster: data wiped"; }

action="${1:-status}"; shift || true
"$action" "$@"
