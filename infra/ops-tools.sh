#!/usr/bin/env bash
# Installs the tools `make test-ops` validates the deployment files with, when missing (Debian packages,
# as root): docker-compose (its `config` command parses docker-compose.yml the way Compose does; no
# Docker engine needed) and promtool (from the prometheus package: checks and unit-tests the alerting
# and recording rules); and chromium, the browser the web console's end-to-end tests drive with
# playwright-core (Debian's build: no browser download). Usage: infra/ops-tools.sh [compose] [promtool] [chromium]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want=("$@")
((${#want[@]})) || want=(compose promtool)
for tool in "${want[@]}"; do
  case "$tool" in
    compose) command -v docker-compose >/dev/null || apt_install docker-compose ;;
    promtool) command -v promtool >/dev/null || apt_install prometheus ;;
    chromium) [[ -x /usr/bin/chromium ]] || apt_install chromium ;;
    *) fail "unknown tool $tool (compose, promtool, chromium)" ;;
  esac
done
