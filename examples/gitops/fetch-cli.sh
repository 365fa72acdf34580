#!/usr/bin/env bash
# Puts the vantageedge CLI bundle into the folder $1: built from a checkout of VantageEdge at the
# version named by $VANTAGEEDGE_REF (default: main). The bundle needs its npm dependencies
# (commander, yaml, zod) beside it, so the checkout's production install is kept with it.
set -euo pipefail
target="${1:?usage: fetch-cli.sh <folder>}"
repository="${VANTAGEEDGE_REPOSITORY:?set VANTAGEEDGE_REPOSITORY to the git URL of your VantageEdge}"
work="$(mktemp -d)"
git clone --quiet --depth 1 --branch "${VANTAGEEDGE_REF:-main}" "$repository" "$work/vantageedge"
(cd "$work/vantageedge" && npm ci --silent && npm run --silent build && npm prune --omit=dev --silent)
mkdir -p "$target"
cp "$work/vantageedge/dist/tools/cli/main.js" "$work/vantageedge/dist/tools/cli/main.js.map" "$target/"
cp -r "$work/vantageedge/node_modules" "$target/node_modules"
