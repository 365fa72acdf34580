#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode (combined broker + controller), from Maven Central's jars,
# run with `java` on 127.0.0.1. No Docker. The pinned version lives in infra/kafka/pom.xml.
# Usage: infra/kafka.sh up|down|status|reset
# Two client listeners: PLAINTEXT on $KAFKA_PORT (what tests and `make dev` use) and SASL_SSL on
# $KAFKA_SASL_SSL_PORT (SCRAM-SHA-512 over TLS, certificate from a local CA in .data/kafka/tls, one SCRAM
# user) to exercise the services' KAFKA_SASL_* / KAFKA_TLS_* settings against a real broker.
# VE_KAFKA_VERSION overrides the pinned version (compatibility probes only; see infra/kafka/README.md).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

DIR="$VE_DATA/kafka"
LOGDIR="$DIR/data"
PROPS="$DIR/server.properties"
PIDFILE="$DIR/kafka.pid"
LOGFILE="$DIR/server.log"
TLS_DIR="$DIR/tls"
# The SCRAM user exists once per formatted data folder; this file remembers for which cluster id.
SCRAM_MARKER="$DIR/scram-user.cluster"
SCRAM_USERNAME="${VE_KAFKA_SASL_USERNAME:-vantageedge}"
SCRAM_PASSWORD="${VE_KAFKA_SASL_PASSWORD:-vantageedge-local-scram}"
MAIN_CLASS="$KAFKA_MAIN_CLASS"
READY_TIMEOUT="${VE_KAFKA_READY_TIMEOUT:-120}"

JAVA_OPTS=(-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG")

write_properties() {
  cat >"$PROPS" <<EOF
# Written by infra/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
# SASL_SSL: SCRAM-SHA-512 over TLS with a PEM key and certificate chain from the local CA (write_tls).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.pem
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$TLS_DIR/ca.crt
listener.name.sasl_ssl.ssl.client.auth=none
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

# A local CA and a broker certificate for 127.0.0.1/localhost, made once (kept across `reset`).
# ca.crt is what a client trusts (KAFKA_TLS_CA_FILE); broker.pem is the broker's PKCS#8 key + chain.
write_tls() {
  [[ -s "$TLS_DIR/broker.pem" && -s "$TLS_DIR/ca.crt" ]] && return 0
  command -v openssl >/dev/null || apt_install openssl
  log "kafka: creating a local CA and a broker certificate in $TLS_DIR"
  rm -rf "$TLS_DIR.partial"; mkdir -p "$TLS_DIR.partial"
  (
    cd "$TLS_DIR.partial"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=VantageEdge local Kafka CA" \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.crt
    openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pkcs8.key
    cat broker.pkcs8.key broker.crt ca.crt >broker.pem
    rm -f broker.csr broker.ext broker.key broker.pkcs8.key ca.srl
    chmod 600 ca.key broker.pem
  ) >>"$LOGFILE" 2>&1 || fail "kafka: creating the TLS certificates failed, see $LOGFILE"
  rm -rf "$TLS_DIR"; mv "$TLS_DIR.partial" "$TLS_DIR"
}

cluster_id_of_data() { sed -n 's/^cluster.id=//p' "$LOGDIR/meta.properties" 2>/dev/null; }

# Storage is formatted once; a data folder from another Kafka version is wiped (local data only).
format_storage() {
  if [[ -s "$LOGDIR/meta.properties" && "$(cat "$DIR/data.version" 2>/dev/null)" == "$KAFKA_VERSION" ]]; then
    return 0
  fi
  if [[ -d "$LOGDIR" ]]; then log "kafka: data folder is from another version, wiping $LOGDIR"; rm -rf "$LOGDIR"; fi
  local cluster_id
  cluster_id="$(kafka_new_cluster_id)"
  log "kafka: formatting storage in $LOGDIR (cluster $cluster_id)"
  kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" \
    --add-scram "SCRAM-SHA-512=[name=$SCRAM_USERNAME,password=$SCRAM_PASSWORD]" >>"$LOGFILE" 2>&1 \
    || fail "kafka: formatting the storage failed, see $LOGFILE"
  echo "$KAFKA_VERSION" >"$DIR/data.version"
  echo "$cluster_id" >"$SCRAM_MARKER"
}

# A data folder formatted before the SASL_SSL listener existed gets its SCRAM user through the
# PLAINTEXT listener once the broker serves (the jars hold no kafka-configs tool: a single-file Java
# program, which needs a JDK; `infra/kafka.sh reset` is the way without one).
ensure_scram_user() {
  [[ "$(cat "$SCRAM_MARKER" 2>/dev/null)" == "$(cluster_id_of_data)" ]] && return 0
  java --list-modules 2>/dev/null | grep -q '^jdk.compiler' \
    || fail "kafka: this data folder has no SCRAM user and creating one needs a JDK (javac); install one or run infra/kafka.sh reset"
  log "kafka: creating the SCRAM-SHA-512 user $SCRAM_USERNAME"
  VE_SCRAM_PASSWORD="$SCRAM_PASSWORD" kafka_tool "$VE_ROOT/infra/kafka/ScramUser.java" \
    "127.0.0.1:$KAFKA_PORT" "$SCRAM_USERNAME" >>"$LOGFILE" 2>&1 \
    || fail "kafka: creating the SCRAM user failed, see $LOGFILE"
  cluster_id_of_data >"$SCRAM_MARKER"
}

# Ready = a kafkajs metadata request lists our broker (the port opens well before it serves).
broker_ready() { kafka_broker_ready "127.0.0.1:$KAFKA_PORT"; }

up() {
  [[ -n "$KAFKA_VERSION" ]] || fail "kafka: no <kafka.version> in $KAFKA_POM"
  [[ -d "$VE_ROOT/node_modules/kafkajs" ]] || fail "kafka: node_modules/kafkajs is missing (its readiness check uses it): run make install"
  mkdir -p "$DIR"
  if pid_alive "$PIDFILE" "$MAIN_CLASS" && broker_ready; then
    ensure_scram_user
    if grep -q "SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT" "$PROPS" 2>/dev/null; then
      log "kafka: already running on 127.0.0.1:$KAFKA_PORT (SASL_SSL $KAFKA_SASL_SSL_PORT)"
    else
      log "kafka: already running on 127.0.0.1:$KAFKA_PORT, without the SASL_SSL listener: \`infra/kafka.sh down && infra/kafka.sh up\` adds it"
    fi
    return 0
  fi
  if pid_alive "$PIDFILE" "$MAIN_CLASS"; then
    log "kafka: process $(cat "$PIDFILE") is not answering, restarting it"
    stop_pidfile kafka "$PIDFILE" "$MAIN_CLASS"
  fi
  rm -f "$PIDFILE"
  refuse_foreign_port kafka "$KAFKA_PORT"
  refuse_foreign_port kafka-controller "$KAFKA_CONTROLLER_PORT"
  refuse_foreign_port kafka-sasl-ssl "$KAFKA_SASL_SSL_PORT"
  kafka_install_jars
  write_tls
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
  ensure_scram_user
  log "kafka: ready (127.0.0.1:$KAFKA_PORT, SASL_SSL 127.0.0.1:$KAFKA_SASL_SSL_PORT user $SCRAM_USERNAME, CA $TLS_DIR/ca.crt, Apache Kafka $KAFKA_VERSION, log $LOGFILE)"
}

down() { stop_pidfile kafka "$PIDFILE" "$MAIN_CLASS"; }

status() {
  if pid_alive "$PIDFILE" "$MAIN_CLASS" && broker_ready >/dev/null 2>&1; then
    echo "kafka     up    127.0.0.1:$KAFKA_PORT"
  else
    echo "kafka     down  127.0.0.1:$KAFKA_PORT"; return 1
  fi
}

reset() { down; rm -rf "$LOGDIR" "$DIR/data.version" "$SCRAM_MARKER" "$LOGFILE"; log "kafka: data wiped (jars kept)"; }

"${1:-status}"
