#!/usr/bin/env bash
# CI: build the real peers (cached between runs on one machine) and run the end-to-end tests
# over Cilium's own hubble-relay, which are required here (they fail instead of skipping).
#
#   bash tests/peers/ci.sh
#
# Cold (new machine, 2 cores): the Go module download and builds take several minutes;
# warm: seconds plus the tests (about 25 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$SECONDS
echo "== real peers: build (Cilium v1.19.4 hubble-relay, hubble CLI, test nodes, helm v4.3.2, Prometheus 3.16, Alertmanager 0.28.1)"
tests/peers/build.sh
echo "== real peers: gofmt, go vet"
unformatted="$(gofmt -l tests/peers)"
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted: $unformatted" >&2
  exit 1
fi
(cd tests/peers && nice -n 19 go vet ./...)
echo "== real peers: the matchPattern table is Cilium's own answers"
peers="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
table=tests/fixtures/matchpattern
if ! "$peers/hubble-test-matchpattern" -patterns "$table/patterns.txt" -names "$table/names.txt" |
  diff -u "$table/table.tsv" -; then
  echo "matchpattern: table.tsv differs from Cilium's answers (rewrite it with hubble-test-matchpattern)" >&2
  exit 1
fi
echo "== real peers: end-to-end over hubble-relay"
HUBBLE_NOISE_REQUIRE_TOOLS=1 cargo test --locked --test real_relay
echo "== real peers: done in $((SECONDS - start)) s"
