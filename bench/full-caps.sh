# Sourced by bench/cost.sh and bench/memory.sh: builds the release binaries and starts the daemon
# at full caps (1,000 generated rules of which half fqdn, max_series 10,000, 100,000 DNS
# names) following the load generator.
#
#   start_full_caps RELAY_PORT METRICS_PORT
#
# Sets $gen (the generator), $dir (a temporary folder with config.toml and rules.toml) and
# $daemon (the daemon's PID). HUBBLE_NOISE_BIN: another build of the daemon to measure (e.g. a
# commit before a change); BENCH_EXTRA_CONFIG: TOML appended to its config (e.g.
# $'[triage]\nenabled = false'); DAEMON_ENV: variables for the daemon alone (e.g.
# LD_PRELOAD=... to measure another allocator).
start_full_caps() {
  local relay_port=$1 metrics_port=$2
  local bin=${HUBBLE_NOISE_BIN:-target/release/hubble-noise}
  gen=target/release/hubble-noise-bench
  # Built one at a time: the shipped binary with its own features, as users get it.
  cargo build --release --locked --quiet -p hubble-noise &&
    cargo build --release --locked --quiet -p hubble-noise-bench || exit 1
  dir=$(mktemp -d)
  "$gen" --emit-rules 1000 >"$dir/rules.toml"
  cat >"$dir/config.toml" <<CONF
[relay]
address = "http://127.0.0.1:$relay_port"
backoff_initial = "100ms"
[metrics]
listen = "127.0.0.1:$metrics_port"
max_series = 10000
[classify]
rule_files = ["rules.toml"]
[dns]
max_entries = 100000
[log]
level = "warn"
${BENCH_EXTRA_CONFIG:-}
CONF
  env ${DAEMON_ENV:-} "$bin" run -c "$dir/config.toml" &
  daemon=$!
}
