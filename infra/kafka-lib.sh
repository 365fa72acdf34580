# Kafka helpers shared by infra/kafka.sh (one node) and infra/kafka-cluster.sh (three nodes). Sourced
# after lib.sh, not run. The pinned version lives in infra/kafka/pom.xml; VE_KAFKA_VERSION overrides it.

KAFKA_POM="$VE_ROOT/infra/kafka/pom.xml"
KAFKA_LOG4J_CONFIG="$VE_ROOT/infra/kafka/log4j2.properties"
KAFKA_PINNED_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1)"
KAFKA_VERSION="${VE_KAFKA_VERSION:-$KAFKA_PINNED_VERSION}"
# The jars are shared by every Kafka these scripts start (single node and cluster).
KAFKA_LIB="$VE_DATA/kafka/lib-$KAFKA_VERSION"
KAFKA_MAIN_CLASS=kafka.Kafka

# kafka_tool JAVA_OPTS... -- CLASS ARGS: one-shot tools start faster with the C1 compiler only.
kafka_tool() { java -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG" -cp "$KAFKA_LIB/*" "$@"; }

# Broker jars: copied once per version from Maven Central (needs only network to it and an empty ~/.m2 is fine).
kafka_install_jars() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  [[ -f "$KAFKA_LIB/.complete" ]] && return 0
  command -v mvn >/dev/null || apt_install maven
  mkdir -p "$VE_DATA/kafka"
  log "kafka: downloading Apache Kafka $KAFKA_VERSION jars from Maven Central (once)"
  rm -rf "$KAFKA_LIB.partial"
  mvn -q -B -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIB.partial" >"$VE_DATA/kafka/maven.log" 2>&1 \
    || fail "kafka: downloading the jars failed, see $VE_DATA/kafka/maven.log"
  rm -rf "$KAFKA_LIB"; mv "$KAFKA_LIB.partial" "$KAFKA_LIB"; touch "$KAFKA_LIB/.complete"
}

# A Kafka Uuid as `StorageTool random-uuid` prints it (16 random bytes, url-safe base64 without
# padding, never starting with "-"), without paying for a JVM start.
kafka_new_cluster_id() {
  local id
  while :; do
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" != -* ]] && { echo "$id"; return 0; }
  done
}

# kafka_broker_ready HOST:PORT -> a kafkajs metadata request lists an alive broker (the port opens well
# before it serves).
kafka_broker_ready() { node "$VE_ROOT/infra/kafka-ready.mjs" "$@"; }
