#!/usr/bin/env bash
# The real peers on their own: build them (cached between runs on one machine), lint them, and
# run the end-to-end tests over Cilium's own hubble-relay as required tests (they fail instead
# of skipping). `.ci/run` does the same as part of the whole suite.
#
#   bash tests/peers/ci.sh
#
# Cold (new machine, 2 cores): the Go module downloads and builds take 15 to 20 minutes; warm:
# seconds plus the tests (about a minute).
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$SECONDS
echo "== real peers: build (Cilium v1.19.4 hubble-relay, hubble CLI, test nodes, helm v4.3.2, Prometheus 3.16, Alertmanager 0.28.1)"
tests/peers/build.sh
echo "== real peers: lint"
tests/peers/lint.sh
echo "== real peers: end-to-end over hubble-relay"
HUBBLE_NOISE_REQUIRE_TOOLS=1 cargo test --locked --test real_relay
echo "== real peers: done in $((SECONDS - start)) s"
