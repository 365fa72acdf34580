#!/usr/bin/env bash
# The demo requests against a running `make dev`, each printed with its status and the
# headers worth looking at. Usage: scripts/test-requests.sh   (env: GATEWAY_URL, DEMO_HOST, TOKEN, API_KEY)
set -uo pipefail
cd "$(dirname "$0")/.."

GATEWAY_URL="${GATEWAY_URL:-http://127.0.0.1:${GATEWAY_PORT:-8000}}"
CONTROL_PLANE_URL="${CONTROL_PLANE_URL:-http://127.0.0.1:${CONTROL_PLANE_PORT:-8080}}"
POSTS_ROUTE_ID="${POSTS_ROUTE_ID:-de000000-0000-4000-8000-000000000013}" # the demo's /api/posts/* route
DEMO_HOST="${DEMO_HOST:-demo.localhost}"
API_KEY="${API_KEY:-demo_key_abc123}"
TOKEN="${TOKEN:-$(node_modules/.bin/tsx services/dev/src/dev-token.ts 2>/dev/null)}"
LOOP="${LOOP:-150}"
failures=0

show() { # show TITLE EXPECTED_STATUS curl-args...   (env RETRY_ON=STATUS: that status once is sent again)
  local title="$1" expected="$2"; shift 2
  local headers status
  headers="$(curl -s -o /dev/null -D - -H "Host: $DEMO_HOST" "$@")"
  status="$(printf '%s' "$headers" | head -n1 | awk '{print $2}')"
  if [[ -n "${RETRY_ON:-}" && "$status" == "$RETRY_ON" ]]; then
    printf '%-44s %s (sent again)\n' "$title" "$status"
    headers="$(curl -s -o /dev/null -D - -H "Host: $DEMO_HOST" "$@")"
    status="$(printf '%s' "$headers" | head -n1 | awk '{print $2}')"
  fi
  printf '%-44s %s' "$title" "${status:-no answer}"
  printf '%s\n' "$headers" | grep -iE '^(x-cache|age|ratelimit|ratelimit-policy|retry-after|x-request-id):' \
    | tr -d '\r' | sed 's/^/   /' | tr '\n' ' '
  echo
  if [[ "$status" != "$expected" ]]; then echo "   expected $expected"; failures=$((failures + 1)); fi
}

echo "gateway: $GATEWAY_URL (Host: $DEMO_HOST)"
show "1. public route, no auth"               200 "$GATEWAY_URL/api/public/posts"
show "   public status"                       200 "$GATEWAY_URL/api/public/status"
show "2. JWT route without a token"           401 "$GATEWAY_URL/api/users/1"
show "2. JWT route with the dev token"        200 "$GATEWAY_URL/api/users/1" -H "Authorization: Bearer $TOKEN"
show "3. API-key route without a key"         401 "$GATEWAY_URL/api/admin/users"
show "3. API-key route with demo_key_abc123"  200 "$GATEWAY_URL/api/admin/users" -H "X-API-Key: $API_KEY"
# A fresh cache key each run, so the first call is a MISS even when the cache is warm.
bust="run=$(date +%s%N)"
show "4. cached route, first call (MISS)"     200 "$GATEWAY_URL/api/posts/1?$bust"
show "4. cached route, second call (HIT)"     200 "$GATEWAY_URL/api/posts/1?$bust"
purge="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
  "$CONTROL_PLANE_URL/api/v1/routes/$POSTS_ROUTE_ID/cache/purge")"
printf '%-44s %s\n' "   purge the route's cache (admin API)" "$purge"
if [[ "$purge" != "200" ]]; then echo "   expected 200"; failures=$((failures + 1)); fi
show "   cached route after the purge (MISS)"   200 "$GATEWAY_URL/api/posts/1?$bust"

echo "5. $LOOP requests to the JWT route (limit: burst of 100, then 1 request/s per user):"
declare -A counts=()
for ((i = 1; i <= LOOP; i++)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $DEMO_HOST" -H "Authorization: Bearer $TOKEN" "$GATEWAY_URL/api/users/1")"
  counts[$code]=$(( ${counts[$code]:-0} + 1 ))
done
for code in "${!counts[@]}"; do echo "   $code × ${counts[$code]}"; done
if [[ -z "${counts[429]:-}" ]]; then
  echo "   expected some 429s"; failures=$((failures + 1))
else
  # The limit gives a request back each second: one that comes just then is admitted, the next is not.
  RETRY_ON=200 show "   one more while limited"   429 "$GATEWAY_URL/api/users/1" -H "Authorization: Bearer $TOKEN"
fi

if ((failures)); then echo "demo: $failures unexpected results"; exit 1; fi
echo "demo: all requests behaved as expected"
