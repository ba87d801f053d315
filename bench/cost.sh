#!/usr/bin/env bash
# CPU cost (BENCHMARKS.md, "Sidecar cost"): the daemon at full caps (1,000 rules of which half
# fqdn, 10,000 namespaces = series, 100,000 DNS answers first, half the flows to learned names)
# follows the load generator; then the same generator serves the same stream to the
# bare-decode floor (a tonic client that only decodes). Both CPU times are read from
# /proc/PID/stat (user + system), never wall time. Prints CPU per message of each, the ratio,
# and millicores over the stream.
#
#   bench/cost.sh [FLOWS] [RATE]    (defaults: 2,000,000 flows as fast as possible; RATE 15000
#                                    for the millicores a busy cluster costs)
#   BENCH_EXTRA_CONFIG='[section] key = ...' appends TOML to the daemon's config (e.g. the
#   triage store's size, to measure it in).
set -uo pipefail
cd "$(dirname "$0")/.."
flows=${1:-2000000}
rate=${2:-0}
. bench/full-caps.sh
start_full_caps 14247 19969
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
# Probes off and a slow poll: every scrape renders 10,000 series on the daemon's CPU.
"$gen" --listen 127.0.0.1:14247 --metrics 127.0.0.1:19969 --namespaces 10000 \
  --dns-names 100000 --flows "$flows" --rate "$rate" --probes 0 --poll-ms 1000 \
  --daemon-pid "$daemon" --floor --timeout 900; status=$?
echo "daemon peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$daemon/status)"
exit $status
