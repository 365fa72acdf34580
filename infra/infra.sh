#!/usr/bin/env bash
# Drives every local server: infra/infra.sh up|down|status|reset [server...]
# Servers: postgres redis kafka (default: all).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action="${1:-status}"; shift || true
servers=("$@"); [[ ${#servers[@]} -gt 0 ]] || servers=(postgres redis kafka)
here="$(dirname "${BASH_SOURCE[0]}")"
rc=0
for server in "${servers[@]}"; do
  [[ -f "$here/$server.sh" ]] || fail "unknown server $server"
  bash "$here/$server.sh" "$action" || rc=1
done
exit $rc
