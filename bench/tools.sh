#!/usr/bin/env bash
# Installs the benchmark's external tools when missing: nginx (origin and reference proxy) and wrk
# (the load generator of every HTTP/1.1 scenario), h2load for HTTP/2. Debian packages; idempotent.
set -euo pipefail
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
# h2load: the HTTP/2 side of the h2-versus-h1 comparison (wrk speaks HTTP/1.1 only).
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
  echo "[bench] installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
