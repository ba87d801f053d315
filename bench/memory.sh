#!/usr/bin/env bash
# Memory soak (BENCHMARKS.md): the daemon with 1,000 rules, 10,000 series and 100,000 learned
# DNS names, fed at a steady rate for a while; its RSS is sampled every 2 s (the first samples
# show the parts: rules loaded, then names learned, then series and the de-duplication window).
#
#   bench/memory.sh [SECONDS] [RATE]      (defaults: 600 s at 50,000 flows/s)
#   BENCH_EXTRA_CONFIG='[section] key = ...' appends TOML to the daemon's config (e.g. the
#   triage store at its default size, to measure it in).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rate=${2:-50000}
. bench/full-caps.sh
start_full_caps 14246 19968
trap 'kill $daemon $sampler 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
( t=0; while kill -0 $daemon 2>/dev/null; do
    echo "t=${t}s rss=$(awk '/VmRSS/ {print $2}' /proc/$daemon/status) kB"; sleep 2; t=$((t + 2)); done ) > "$dir/rss.log" & sampler=$!
"$gen" --listen 127.0.0.1:14246 --metrics 127.0.0.1:19968 --namespaces 10000 \
  --dns-names 100000 --rate "$rate" --flows $((seconds * rate)) --probes 20 \
  --timeout $((seconds + 120)) --poll-ms 1000 --daemon-pid "$daemon"; status=$?
series=$(curl -s 127.0.0.1:19968/metrics | grep -c '^hubble_noise_flows_total{')
names=$(curl -s 127.0.0.1:19968/metrics | awk '/^hubble_noise_dns_cache_entries/ {print $2}')
echo "series $series, dns names $names, rules 1000"
echo "rss samples (the first 10 s, then every 60 s):"
awk 'NR<=6 || NR%30==0' "$dir/rss.log"
echo "peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$daemon/status)"
exit $status
