#!/usr/bin/env bash
# Drives every local server: infra/infra.sh up|down|status|reset [server...]
# Servers: postgres redis kafka redis-cluster kafka-cluster. Default: postgres, redis, kafka; with
# REDIS_MODE=cluster the Redis Cluster replaces the single Redis, with KAFKA_MODE=cluster the
# three-broker Kafka replaces the single broker.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action="${1:-status}"; shift || true
servers=("$@")
if [[ ${#servers[@]} -eq 0 ]]; then
  case "${REDIS_MODE:-single}" in single) redis=redis ;; cluster) redis=redis-cluster ;; *) fail "REDIS_MODE must be single or cluster" ;; esac
  case "${KAFKA_MODE:-single}" in single) kafka=kafka ;; cluster) kafka=kafka-cluster ;; *) fail "KAFKA_MODE must be single or cluster" ;; esac
  servers=(postgres "$redis" "$kafka")
fi
here="$(dirname "${BASH_SOURCE[0]}")"
rc=0
for server in "${servers[@]}"; do
  [[ -f "$here/$server.sh" ]] || fail "unknown server $server"
  bash "$here/$server.sh" "$action" || rc=1
done
exit $rc
