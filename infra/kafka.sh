#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode (combined broker + controller), from Maven Central's jars,
# run with `java` on 127.0.0.1. No Docker. The pinned version lives in infra/kafka/pom.xml.
# Usage: infra/kafka.sh up|down|status|reset
# VE_KAFKA_VERSION overrides the pinned version (compatibility probes only; see infra/kafka/README.md).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

DIR="$VE_DATA/kafka"
LOGDIR="$DIR/data"
PROPS="$DIR/server.properties"
PIDFILE="$DIR/kafka.pid"
LOGFILE="$DIR/server.log"
MAIN_CLASS="$KAFKA_MAIN_CLASS"
READY_TIMEOUT="${VE_KAFKA_READY_TIMEOUT:-120}"

JAVA_OPTS=(-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG")

write_properties() {
  cat >"$PROPS" <<EOF
# Written by infra/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOGDIR
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
# One broker: every internal topic must have a single replica or it is never created.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumer groups in tests start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# Our code creates its topics explicitly (with their cleanup policy); a typo must not create one.
auto.create.topics.enable=false
log.retention.hours=24
log.segment.bytes=67108864
log.cleaner.backoff.ms=1000
EOF
}

# Storage is formatted once; a data folder from another Kafka version is wiped (local data only).
format_storage() {
  if [[ -s "$LOGDIR/meta.properties" && "$(cat "$DIR/data.version" 2>/dev/null)" == "$KAFKA_VERSION" ]]; then
    return 0
  fi
  if [[ -d "$LOGDIR" ]]; then log "kafka: data folder is from another version, wiping $LOGDIR"; rm -rf "$LOGDIR"; fi
  local cluster_id
  cluster_id="$(kafka_new_cluster_id)"
  log "kafka: formatting storage in $LOGDIR (cluster $cluster_id)"
  kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" >>"$LOGFILE" 2>&1 \
    || fail "kafka: formatting the storage failed, see $LOGFILE"
  echo "$KAFKA_VERSION" >"$DIR/data.version"
}

# Ready = a kafkajs metadata request lists our broker (the port opens well before it serves).
broker_ready() { kafka_broker_ready "127.0.0.1:$KAFKA_PORT"; }

up() {
  [[ -n "$KAFKA_VERSION" ]] || fail "kafka: no <kafka.version> in $KAFKA_POM"
  [[ -d "$VE_ROOT/node_modules/kafkajs" ]] || fail "kafka: node_modules/kafkajs is missing (its readiness check uses it): run make install"
  mkdir -p "$DIR"
  if pid_alive "$PIDFILE" "$MAIN_CLASS" && broker_ready; then
    log "kafka: already running on 127.0.0.1:$KAFKA_PORT"; return 0
  fi
  if pid_alive "$PIDFILE" "$MAIN_CLASS"; then
    log "kafka: process $(cat "$PIDFILE") is not answering, restarting it"
    stop_pidfile kafka "$PIDFILE" "$MAIN_CLASS"
  fi
  rm -f "$PIDFILE"
  refuse_foreign_port kafka "$KAFKA_PORT"
  refuse_foreign_port kafka-controller "$KAFKA_CONTROLLER_PORT"
  kafka_install_jars
  write_properties
  format_storage
  log "kafka: starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
  # setsid: a Ctrl-C in the terminal that ran `make infra-up` must not reach the broker later.
  setsid nohup java "${JAVA_OPTS[@]}" -cp "$KAFKA_LIB/*" "$MAIN_CLASS" "$PROPS" >>"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + READY_TIMEOUT))
  until broker_ready >/dev/null 2>&1; do
    pid_alive "$PIDFILE" "$MAIN_CLASS" || fail "kafka exited during start-up, see $LOGFILE"
    ((SECONDS < deadline)) || fail "kafka did not answer a metadata request within ${READY_TIMEOUT}s, see $LOGFILE"
    sleep 0.5
  done
  log "kafka: ready (127.0.0.1:$KAFKA_PORT, Apache Kafka $KAFKA_VERSION, log $LOGFILE)"
}

down() { stop_pidfile kafka "$PIDFILE" "$MAIN_CLASS"; }

status() {
  if pid_alive "$PIDFILE" "$MAIN_CLASS" && broker_ready >/dev/null 2>&1; then
    echo "kafka     up    127.0.0.1:$KAFKA_PORT"
  else
    echo "kafka     down  127.0.0.1:$KAFKA_PORT"; return 1
  fi
}

reset() { down; rm -rf "$LOGDIR" "$DIR/data.version" "$LOGFILE"; log "kafka: data wiped (jars kept)"; }

"${1:-status}"
