#!/usr/bin/env bash
# Builds the real peers for the end-to-end tests: Cilium's hubble-relay and hubble CLI (pinned as
# `tool` lines in go.mod), our test nodes and matchPattern table writer, helm (pinned in
# helm/go.mod), Prometheus 3.16 with promtool (prometheus/go.mod) and Alertmanager 0.28.1 with
# amtool (alertmanager/go.mod), into a cache folder outside the repository. helm, Prometheus and
# Alertmanager each have a module of their own so that their dependencies move neither Cilium's
# nor each other's.
# Idempotent: a binary whose inputs (go.mod, go.sum, our sources, link flags) did not change is
# kept.
#
#   tests/peers/build.sh            # all of them; prints the folder, and how long each build took
#   tests/peers/build.sh helm       # only the named ones (hubble-relay hubble hubble-test-nodes
#                                   # hubble-test-matchpattern helm prometheus promtool
#                                   # alertmanager amtool)
#
# The folder: $HUBBLE_NOISE_PEERS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers.
# Cold on 2 cores: about 4 minutes for hubble-relay, 1 more for the CLI, 3 to 4 for helm (5 minutes
# of CPU), 5 to 14 for prometheus (11 minutes of CPU: 14 on a machine busy with other builds),
# 15 s more for promtool, 1 minute for alertmanager and amtool together; seconds when cached.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wanted=("$@")
for name in "${wanted[@]}"; do
  case "$name" in
    hubble-relay | hubble | hubble-test-nodes | hubble-test-matchpattern | helm | prometheus | promtool | alertmanager | amtool) ;;
    *)
      echo "peers: unknown peer $name (hubble-relay hubble hubble-test-nodes hubble-test-matchpattern helm prometheus promtool alertmanager amtool)" >&2
      exit 2
      ;;
  esac
done

out="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
mkdir -p "$out"
out="$(cd "$out" && pwd)" # builds run in the module folders

if ! command -v go >/dev/null 2>&1; then
  echo "peers: go not found (the Go toolchain builds the test peers)" >&2
  exit 2
fi

cd "$here"
# Go builds take only idle CPU: the machine is shared with Rust builds.
nice_go() { nice -n 19 go "$@"; }

modsum="$(cat go.mod go.sum | sha256sum | cut -d' ' -f1)"
nodesum="$(cat go.mod go.sum nodes/*.go | sha256sum | cut -d' ' -f1)"
mpsum="$(cat go.mod go.sum matchpattern/*.go | sha256sum | cut -d' ' -f1)"
# helm's own version string (its Makefile sets it the same way; without it `helm version` says v4.3).
helm_version="$(sed -n 's/^[[:space:]]*helm\.sh\/helm\/v4 \(v[^ ]*\).*/\1/p' helm/go.mod)"
helm_ldflags="-X helm.sh/helm/v4/internal/version.version=$helm_version"
helmsum="$( (cat helm/go.mod helm/go.sum; echo "$helm_ldflags") | sha256sum | cut -d' ' -f1)"
# Prometheus' and Alertmanager's version strings (`--version`, /api/v1/status/buildinfo,
# prometheus_build_info) are empty unless set at link time. Module v0.316.0 is Prometheus 3.16.0.
prom_ldflags="-X github.com/prometheus/common/version.Version=3.16.0"
promsum="$( (cat prometheus/go.mod prometheus/go.sum; echo "$prom_ldflags") | sha256sum | cut -d' ' -f1)"
am_ldflags="-X github.com/prometheus/common/version.Version=0.28.1"
amsum="$( (cat alertmanager/go.mod alertmanager/go.sum; echo "$am_ldflags") | sha256sum | cut -d' ' -f1)"

# build NAME DIR STAMP GO-BUILD-ARGS... (run in DIR, a module folder)
build() {
  local name="$1" dir="$2" stamp="$3"
  shift 3
  if [ "${#wanted[@]}" -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then
    return
  fi
  if [ -x "$out/$name" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "peers: $name cached"
    return
  fi
  local start=$SECONDS
  (cd "$dir" && nice_go build -o "$out/$name.tmp" "$@")
  mv "$out/$name.tmp" "$out/$name"
  echo "$stamp" >"$out/$name.stamp"
  echo "peers: built $name in $((SECONDS - start)) s"
}

total=$SECONDS
build hubble-relay . "$modsum" github.com/cilium/cilium/hubble-relay
build hubble . "$modsum" github.com/cilium/cilium/hubble
build hubble-test-nodes . "$nodesum" ./nodes
build hubble-test-matchpattern . "$mpsum" ./matchpattern
build helm helm "$helmsum" -ldflags "$helm_ldflags" helm.sh/helm/v4/cmd/helm
build prometheus prometheus "$promsum" -ldflags "$prom_ldflags" github.com/prometheus/prometheus/cmd/prometheus
build promtool prometheus "$promsum" -ldflags "$prom_ldflags" github.com/prometheus/prometheus/cmd/promtool
build alertmanager alertmanager "$amsum" -ldflags "$am_ldflags" github.com/prometheus/alertmanager/cmd/alertmanager
build amtool alertmanager "$amsum" -ldflags "$am_ldflags" github.com/prometheus/alertmanager/cmd/amtool
echo "peers: ready in $out ($((SECONDS - total)) s)"
