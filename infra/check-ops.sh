#!/usr/bin/env bash
# `make test-ops`: validates the deployment files with the real tools (installed when missing by
# infra/ops-tools.sh): docker-compose.yml through `docker-compose config`, and the Prometheus rules of
# infra/observability through `promtool check rules` and their unit tests (`promtool test rules`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash infra/ops-tools.sh compose promtool

failures=0
check() {
  local what="$1"; shift
  local output
  if output="$("$@" 2>&1)"; then
    printf 'ok    %s\n' "$what"
  else
    printf 'FAIL  %s\n%s\n' "$what" "$output"
    failures=$((failures + 1))
  fi
}

# Compose needs the settings the file requires; dummy values are enough for `config`.
required_settings=(
  "API_KEY_PEPPER=ci-only-pepper-0123456789abcdefghijklmnop"
  'CLERK_JWT_KEY=-----BEGIN PUBLIC KEY-----\nci\n-----END PUBLIC KEY-----'
  "GATEWAY_ADMIN_TOKEN=ci-only-admin-token-0123"
  "GRAFANA_ADMIN_PASSWORD=ci-only-grafana-password"
  "SNAPSHOT_SIGNING_KEY_PATH=./ci-only/snapshot-signing-key.pem"
  "SNAPSHOT_VERIFY_KEYS_PATH=./ci-only/snapshot-verify-keys.pem"
)
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
printf '%s\n' "${required_settings[@]}" >"$env_file"
# Compose takes a setting from the shell before the env file: the shell's own (exported to run a
# service outside compose, say) are left out, so each check sees only its env file.
unset_required=()
for setting in "${required_settings[@]}"; do unset_required+=(-u "${setting%%=*}"); done
compose() {
  env "${unset_required[@]}" \
    docker-compose --project-directory "$ROOT" --env-file "$1" -f "$ROOT/docker-compose.yml" config -q
}
check "docker-compose config (docker-compose.yml)" compose "$env_file"
# Without one of them (and with every other), compose refuses the stack with a message naming it and
# the development quick start: a service would otherwise restart forever on the missing key.
refuses_without() {
  local name="$1" without output
  without="$(mktemp)"
  printf '%s\n' "${required_settings[@]}" | grep -v "^$name=" >"$without"
  if output="$(compose "$without" 2>&1)"; then
    rm -f "$without"; echo "compose accepted a stack without $name"; return 1
  fi
  rm -f "$without"
  grep -q "set $name in .env.*make compose-env" <<<"$output" || { echo "$output"; return 1; }
}
for setting in "${required_settings[@]}"; do
  check "docker-compose config refuses a stack without ${setting%%=*}" refuses_without "${setting%%=*}"
done

check "promtool check rules" promtool check rules infra/observability/prometheus/rules/*.yml
check "promtool test rules" promtool test rules infra/observability/prometheus/tests/*.test.yml
check "promtool check config" promtool check config --syntax-only infra/observability/prometheus/prometheus.yml

if ((failures > 0)); then
  echo "test-ops: $failures check(s) failed"
  exit 1
fi
echo "test-ops: all deployment checks passed"
