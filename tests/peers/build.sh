#!/usr/bin/env bash
# Builds the real peers for the end-to-end tests: Cilium's hubble-relay and hubble CLI (pinned as
# `tool` lines in go.mod) and our test nodes, into a cache folder outside the repository.
# Idempotent: a binary whose inputs (go.mod, go.sum, our sources) did not change is kept.
#
#   tests/peers/build.sh            # prints the folder, and how long each build took
#
# The folder: $HUBBLE_NOISE_PEERS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers.
# Cold on 2 cores: about 4 minutes for hubble-relay, 1 more for the CLI; seconds when cached.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
mkdir -p "$out"

if ! command -v go >/dev/null 2>&1; then
  echo "peers: go not found (the Go toolchain builds the test peers)" >&2
  exit 2
fi

cd "$here"
# Go builds take only idle CPU: the machine is shared with Rust builds.
nice_go() { nice -n 19 go "$@"; }

modsum="$(cat go.mod go.sum | sha256sum | cut -d' ' -f1)"
nodesum="$(cat go.mod go.sum nodes/*.go | sha256sum | cut -d' ' -f1)"

# build NAME PACKAGE STAMP
build() {
  local name="$1" pkg="$2" stamp="$3"
  if [ -x "$out/$name" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "peers: $name cached"
    return
  fi
  local start=$SECONDS
  nice_go build -o "$out/$name.tmp" "$pkg"
  mv "$out/$name.tmp" "$out/$name"
  echo "$stamp" >"$out/$name.stamp"
  echo "peers: built $name in $((SECONDS - start)) s"
}

total=$SECONDS
build hubble-relay github.com/cilium/cilium/hubble-relay "$modsum"
build hubble github.com/cilium/cilium/hubble "$modsum"
build hubble-test-nodes ./nodes "$nodesum"
echo "peers: ready in $out ($((SECONDS - total)) s)"
