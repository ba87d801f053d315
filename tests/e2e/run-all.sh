#!/usr/bin/env bash
# The end-to-end test (tests/e2e/run.sh) against both Prometheus/Alertmanager pairs:
#   1. Debian's Prometheus 2.42 + Alertmanager 0.25 (from PATH);
#   2. Prometheus 3.16 + Alertmanager 0.28.1, built from their Go modules by
#      `tests/peers/build.sh prometheus promtool alertmanager amtool` into the peers folder
#      ($HUBBLE_NOISE_PEERS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers), with
#      the checks of what 3.x adds (exemplars, scrape protocol negotiation).
# A pair whose binaries are missing is skipped, saying so, unless HUBBLE_NOISE_REQUIRE_TOOLS=1
# (then it fails). Both pairs run even when the first fails; the exit status says whether all
# that ran passed.
#
# Usage: tests/e2e/run-all.sh   (HUBBLE_NOISE_BIN=path to use another hubble-noise binary)
set -euo pipefail
cd "$(dirname "$0")/../.."

peers="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
prom_want=3.16.0
am_want=0.28.1
status=0
summary=()

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run NAME [VAR=VALUE...]: tests/e2e/run.sh with those variables; its result in the summary.
run() {
  local name=$1
  shift
  if env "$@" tests/e2e/run.sh | tee "$out"; then
    if grep -q '^e2e: skipped' "$out"; then
      summary+=("$name: skipped, $(sed -n 's/^e2e: skipped: //p' "$out")")
    else
      summary+=("$name: passed, $(sed -n 's/^e2e: \([0-9]* passed, .*\)$/\1/p' "$out")")
    fi
  else
    status=1
    summary+=("$name: FAILED, $(sed -n 's/^e2e: \([0-9]* passed, .*\)$/\1/p' "$out")")
  fi
}

echo "== e2e: Debian's Prometheus + Alertmanager"
run "Debian's pair"

echo "== e2e: Prometheus $prom_want + Alertmanager $am_want (from $peers)"
missing=()
for b in prometheus promtool alertmanager amtool; do
  [ -x "$peers/$b" ] || missing+=("$b")
done
# A binary of another version (the folder filled by another checkout) is not the pair wanted.
if [ ${#missing[@]} -eq 0 ]; then
  for b in prometheus promtool alertmanager amtool; do
    want=$prom_want
    case "$b" in alertmanager | amtool) want=$am_want ;; esac
    first=$("$peers/$b" --version 2>&1 | sed -n 1p) || true
    case "$first" in
    *"version $want "*) ;;
    *) missing+=("$b $want") ;;
    esac
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  what="not built in $peers: ${missing[*]} (run tests/peers/build.sh prometheus promtool alertmanager amtool)"
  if [ "${HUBBLE_NOISE_REQUIRE_TOOLS:-}" = 1 ]; then
    echo "e2e: Prometheus $prom_want + Alertmanager $am_want required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but $what" >&2
    status=1
    summary+=("Prometheus 3 pair: FAILED, missing")
  else
    echo "e2e: skipped: Prometheus $prom_want + Alertmanager $am_want $what"
    summary+=("Prometheus 3 pair: skipped, not built")
  fi
else
  run "Prometheus 3 pair" PROMETHEUS_BIN="$peers/prometheus" PROMTOOL_BIN="$peers/promtool" \
    ALERTMANAGER_BIN="$peers/alertmanager" AMTOOL_BIN="$peers/amtool"
fi

echo "== e2e summary"
printf 'e2e: %s\n' "${summary[@]}"
exit "$status"
