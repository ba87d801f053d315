#!/usr/bin/env bash
# A short coverage-guided run of every libFuzzer target on the stable toolchain (no cargo-fuzz,
# no nightly): the targets are built with sanitizer-coverage instrumentation, debug assertions
# and overflow checks, then each one mutates its committed corpus (fuzz/corpus/<target>) for
# SECONDS seconds (default 10) into a scratch directory. A finding fails the run; its input is
# written to target/fuzz/findings/<target>/. See SECURITY.md, "Fuzzing".
#
#   fuzz/smoke.sh            # every target, 10 s each
#   fuzz/smoke.sh 600 rules  # one target, 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(grpc_bytes grpc_structured json_line rules policy config)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# --target keeps the instrumentation away from build scripts and proc macros.
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --locked --profile fuzz -p hubble-noise-fuzz --features libfuzzer "${bins[@]}" \
  --target "$host" --target-dir target/fuzz

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "target/fuzz/findings/$t"
  log="$scratch/$t.log"
  if "target/fuzz/$host/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="target/fuzz/findings/$t/" "$scratch/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, ${cov:-cov: ?}, no finding"
  else
    status=1
    tail -n 60 "$log"
    echo "fuzz $t: FINDING (input in target/fuzz/findings/$t/)" >&2
  fi
done
exit "$status"
