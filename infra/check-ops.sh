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
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
printf 'API_KEY_PEPPER=%s\nCLERK_JWT_KEY=%s\nGATEWAY_ADMIN_TOKEN=%s\nGRAFANA_ADMIN_PASSWORD=%s\n' \
  "ci-only-pepper-0123456789abcdefghijklmnop" '-----BEGIN PUBLIC KEY-----\nci\n-----END PUBLIC KEY-----' \
  "ci-only-admin-token-0123" "ci-only-grafana-password" >"$env_file"
compose() { docker-compose --project-directory "$ROOT" --env-file "$1" -f "$ROOT/docker-compose.yml" config -q; }
check "docker-compose config (docker-compose.yml)" compose "$env_file"
refuses_without_sign_in_key() {
  local bare output
  bare="$(mktemp)"
  printf 'API_KEY_PEPPER=%s\n' "ci-only-pepper-0123456789abcdefghijklmnop" >"$bare"
  if output="$(compose "$bare" 2>&1)"; then
    rm -f "$bare"; echo "compose accepted a stack without CLERK_JWT_KEY"; return 1
  fi
  rm -f "$bare"
  grep -q 'make compose-env' <<<"$output" || { echo "$output"; return 1; }
}
check "docker-compose config refuses a stack without a sign-in key" refuses_without_sign_in_key

check "promtool check rules" promtool check rules infra/observability/prometheus/rules/*.yml
check "promtool test rules" promtool test rules infra/observability/prometheus/tests/*.test.yml
check "promtool check config" promtool check config --syntax-only infra/observability/prometheus/prometheus.yml

if ((failures > 0)); then
  echo "test-ops: $failures check(s) failed"
  exit 1
fi
echo "test-ops: all deployment checks passed"
