#!/usr/bin/env bash
# Checks of the Go test peers: gofmt, go vet, and that the matchPattern table the Rust tests use
# (tests/fixtures/matchpattern/table.tsv) is what Cilium's own code answers today. Needs the
# peers built (tests/peers/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "peers: gofmt, go vet"
unformatted="$(gofmt -l tests/peers)"
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted: $unformatted" >&2
  exit 1
fi
(cd tests/peers && nice -n 19 go vet ./...)
echo "peers: the matchPattern table is Cilium's own answers"
peers="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
table=tests/fixtures/matchpattern
if ! "$peers/hubble-test-matchpattern" -patterns "$table/patterns.txt" -names "$table/names.txt" |
  diff -u "$table/table.tsv" -; then
  echo "matchpattern: table.tsv differs from Cilium's answers (rewrite it with hubble-test-matchpattern)" >&2
  exit 1
fi
