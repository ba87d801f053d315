#!/usr/bin/env bash
# End-to-end benchmark (BENCHMARKS.md): `hubble-noise run` follows the load generator
# (`hubble-noise-bench`, bench/src) over loopback gRPC; throughput, latency and the daemon's memory.
#
#   bench/e2e.sh [FLOWS] [NAMESPACES] [RATE]   (release build; RATE 0 = as fast as possible)
set -uo pipefail
status=0
cd "$(dirname "$0")/.."
flows=${1:-3000000}
namespaces=${2:-100}
rate=${3:-0}
# HUBBLE_NOISE_BIN: another build of the daemon to measure (e.g. a commit before a change).
bin=${HUBBLE_NOISE_BIN:-target/release/hubble-noise}
gen=target/release/hubble-noise-bench
# Built one at a time: the shipped binary with its own features, as users get it.
cargo build --release --locked --quiet -p hubble-noise && cargo build --release --locked --quiet -p hubble-noise-bench || exit 1
dir=$(mktemp -d)
cat > "$dir/config.toml" <<CONF
[relay]
address = "http://127.0.0.1:14245"
backoff_initial = "100ms"
[metrics]
listen = "127.0.0.1:19967"
max_series = 10000
[log]
level = "warn"
CONF
"$bin" run -c "$dir/config.toml" & daemon=$!
trap 'kill $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true; rm -rf "$dir"' EXIT
"$gen" --listen 127.0.0.1:14245 --metrics 127.0.0.1:19967 \
  --flows "$flows" --namespaces "$namespaces" --rate "$rate" || status=$?
curl -s 127.0.0.1:19967/metrics | grep -E "^hubble_noise_(duplicate|decode_errors|relay_reconnects|series_overflow|lost)" | grep -v " 0$" || true
echo "daemon peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$daemon/status)"
exit $status
