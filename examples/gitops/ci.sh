#!/usr/bin/env bash
# The GitOps job: `ci.sh diff` on a pull request shows what merging it would change in each tenant;
# `ci.sh apply` on the main branch applies every tenant file. The admin API and a token come from
# the environment (VANTAGEEDGE_URL, VANTAGEEDGE_TOKEN: CI secrets), so no `vantageedge login` is needed.
# `vantageedge diff` exits 0 when a tenant already is what its file says, 1 when it differs and 2 or
# more on an error: only errors fail the job.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-diff}"
vantageedge="${VANTAGEEDGE:-vantageedge}"
status=0
shopt -s nullglob
for file in tenants/*.yaml; do
  echo "== $file"
  case "$mode" in
    diff)
      code=0
      $vantageedge diff -f "$file" || code=$?
      if [ "$code" -ge 2 ]; then status=$code; fi
      ;;
    apply)
      $vantageedge apply -f "$file" --wait-for-rollout "${ROLLOUT_WAIT:-60s}" || status=$?
      ;;
    *)
      echo "usage: ci.sh diff|apply" >&2
      exit 2
      ;;
  esac
done
exit "$status"
