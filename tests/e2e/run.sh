#!/usr/bin/env bash
# End-to-end: hubble-noise -> Prometheus (the alert rules loaded) -> Alertmanager, and every
# dashboard query against that Prometheus. Everything listens on 127.0.0.1 and is stopped by PID.
#
# Three hubble-noise instances replay recordings (`run --replay --loop`, no cluster needed):
#   shop: examples/recording.ndjson, expected and unexpected drops in namespace "shop";
#   calm: the expected flows of the same recording only, in namespace "calm", 4x faster;
#   flowlog: the example recording 100 times over (fresh uuids), once, with the flow log
#     (`[export]`) on, to a file rotated at 4 KiB: checks.py reads the lines back.
# shop and calm serve over TLS with basic auth (`metrics.web_config_file`; certificates made with
# openssl here), and Prometheus scrapes them with `scheme: https`, `tls_config.ca_file` and
# `basic_auth`; the script checks that plain HTTP and a missing or wrong password are refused.
# The alert rules are deploy/prometheus/hubble-noise.rules.yml with the `for:` durations and the
# rate windows shortened to seconds (nothing else changes), so the test ends in seconds.
#
# The Prometheus and Alertmanager under test: Debian's (`prometheus`, `promtool`,
# `prometheus-alertmanager`, `amtool` from PATH) unless PROMETHEUS_BIN, PROMTOOL_BIN,
# ALERTMANAGER_BIN and AMTOOL_BIN name others. With a Prometheus 3.x, exemplar storage is on and
# tests/e2e/checks_prom3.py checks what 3.x adds: exemplars queried back, and the scrape protocol
# negotiated (a second job scrapes instance "shop" with `scrape_protocols: [PrometheusText0.0.4]`;
# tests/e2e/accept_probe.py records the Accept headers Prometheus sends). tests/e2e/run-all.sh
# runs Debian's pair and then Prometheus 3.16 + Alertmanager 0.28.1 (tests/peers/build.sh).
#
# Usage: tests/e2e/run.sh   (HUBBLE_NOISE_BIN=path to use another hubble-noise binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

prometheus_bin=${PROMETHEUS_BIN:-prometheus}
promtool_bin=${PROMTOOL_BIN:-promtool}
alertmanager_bin=${ALERTMANAGER_BIN:-prometheus-alertmanager}
amtool_bin=${AMTOOL_BIN:-amtool}

for tool in "$prometheus_bin" "$alertmanager_bin" "$promtool_bin" "$amtool_bin" python3 openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "${HUBBLE_NOISE_REQUIRE_TOOLS:-}" = 1 ]; then
      echo "e2e: $tool is required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but not installed" >&2
      exit 1
    fi
    echo "e2e: skipped: $tool not found (Debian's pair: apt-get install prometheus prometheus-alertmanager; Prometheus 3: tests/peers/build.sh, tests/e2e/run-all.sh)"
    exit 0
  fi
done

# "prometheus, version 3.16.0 (branch: ...)" -> 3.16.0
version_of() { "$1" --version 2>&1 | sed -nE '1s/^[a-z-]+, version ([^ ]+).*/\1/p'; }
prom_version=$(version_of "$prometheus_bin")
am_version=$(version_of "$alertmanager_bin")
if [ -z "$prom_version" ] || [ -z "$am_version" ]; then
  echo "e2e: cannot tell the versions of $prometheus_bin ('$prom_version') and $alertmanager_bin ('$am_version')" >&2
  exit 1
fi
pair="Prometheus $prom_version + Alertmanager $am_version"
prom3=
case "$prom_version" in 3.*) prom3=1 ;; esac
echo "e2e: $pair"

bin=${HUBBLE_NOISE_BIN:-$root/target/debug/hubble-noise}
if [ ! -x "$bin" ]; then
  cargo build --locked --quiet
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] || continue
      echo "---- $(basename "$log") (last 20 lines)"
      tail -n 20 "$log"
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Free ports on 127.0.0.1 (bound and released by the kernel's choice).
read -r port_shop port_calm port_prom port_am port_probe port_log < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')

# wait_http URL SECONDS [CURL ARGS...]: until URL answers 2xx, or fail.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  shift 2
  until curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "e2e: $url did not answer within $2 s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# --- hubble-noise inputs -------------------------------------------------------------------
# Rules: the example's, plus one expiring in 3 days and one expired yesterday (neither matches).
soon=$(date -u -d '+3 days' +%Y-%m-%dT%H:%M:%SZ)
past=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$tmp/shop" "$tmp/calm" "$tmp/flowlog"
{
  cat examples/rules.toml
  cat <<TOML

[[rule]]
name = "e2e-expiring-soon"
owner = "team-e2e"
comment = "expires in 3 days"
expires = $soon
[rule.match.source]
namespace = ["e2e-nowhere"]

[[rule]]
name = "e2e-expired"
owner = "team-e2e"
comment = "expired yesterday"
expires = $past
[rule.match.source]
namespace = ["e2e-nowhere"]
TOML
} >"$tmp/shop/rules.toml"

# --- web security: a CA, a server certificate for 127.0.0.1, a bcrypt user -----------------
tls=$tmp/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=e2e-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hubble-noise \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$tls/server.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 1 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
# The password of user "prometheus" is e2e-password; its bcrypt hash (cost 10) is fixed here
# because htpasswd (`htpasswd -nBC 10 prometheus`) is not always installed.
web_user=prometheus
web_password=e2e-password
cat >"$tls/web-config.yml" <<'YAML'
tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  prometheus: $2b$10$fAUXnsn/MUkEi2KSaKiQt.LlCZtfieVfVNXMPpEEd1z.txq/Lv0Jm
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
YAML
https_args=(--cacert "$tls/ca.crt")
auth_args=(--cacert "$tls/ca.crt" -u "$web_user:$web_password")

write_config() { # DIR PORT [plain]
  local web="web_config_file = \"$tls/web-config.yml\""
  if [ "${3:-}" = plain ]; then web=""; fi
  cat >"$1/config.toml" <<TOML
[metrics]
listen = "127.0.0.1:$2"
$web
labels = ["source_namespace", "source_workload", "destination_namespace", "destination_workload", "destination_name", "destination_port"]

[classify]
expected_log_tags = ["app-explicit-traffic-blocked"]
rule_files = ["rules.toml"]
TOML
}
write_config "$tmp/shop" "$port_shop"
write_config "$tmp/calm" "$port_calm"
sed 's/shop/calm/g' "$tmp/shop/rules.toml" >"$tmp/calm/rules.toml"
cp examples/recording.ndjson "$tmp/shop/recording.ndjson"

# The flow log instance: shop's config and rules, the flow log on; its recording is the example
# 100 times, each copy with its own uuids (so that none is a duplicate).
write_config "$tmp/flowlog" "$port_log" plain
cp "$tmp/shop/rules.toml" "$tmp/flowlog/rules.toml"
cat >>"$tmp/flowlog/config.toml" <<TOML

[export]
enabled = true
class = "unexpected"
path = "log/flows.jsonl"
max_size = 4096
max_files = 1000
TOML
mkdir -p "$tmp/flowlog/log"
python3 - examples/recording.ndjson >"$tmp/flowlog/recording.ndjson" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
for i in range(100):
    for line in lines:
        d = json.loads(line)
        f = d.get("flow")
        if f and f.get("uuid"):
            f["uuid"] = f"{f['uuid']}-{i:03d}"
        print(json.dumps(d))
PY
"$bin" check -c "$tmp/flowlog/config.toml" >/dev/null

# The calm recording: the example without the unexpected flows (and their drop-notification
# twins: the lines of the same node and time), moved to namespace "calm".
"$bin" replay -c "$tmp/shop/config.toml" --format jsonl examples/recording.ndjson 2>/dev/null \
  >"$tmp/classified.jsonl"
python3 - "$tmp/classified.jsonl" examples/recording.ndjson >"$tmp/calm/recording.ndjson" <<'PY'
import json, sys
bad = set()
for line in open(sys.argv[1]):
    f = json.loads(line)
    if f["class"] == "unexpected":
        bad.add((f["node"], f["time"][:19]))
for line in open(sys.argv[2]):
    d = json.loads(line)
    if (d.get("node_name"), d.get("time", "")[:19]) not in bad:
        sys.stdout.write(line.replace("shop", "calm"))
PY
"$bin" check -c "$tmp/shop/config.toml" >/dev/null
"$bin" check -c "$tmp/calm/config.toml" >/dev/null
calm_unexpected=$("$bin" replay -c "$tmp/calm/config.toml" --format jsonl "$tmp/calm/recording.ndjson" 2>/dev/null | grep -c '"class":"unexpected"' || true)
calm_expected=$("$bin" replay -c "$tmp/calm/config.toml" --format jsonl "$tmp/calm/recording.ndjson" 2>/dev/null | grep -c '"class":"expected"' || true)
if [ "$calm_unexpected" != 0 ] || [ "$calm_expected" = 0 ]; then
  echo "e2e: FAIL: the calm recording has $calm_unexpected unexpected and $calm_expected expected flows" >&2
  exit 1
fi

# --- Prometheus rules and config -----------------------------------------------------------
sed -E -e 's/^( +for: ).*/\13s/' -e 's/\[(5m|10m)\]/[10s]/g' \
  deploy/prometheus/hubble-noise.rules.yml >"$tmp/rules.yml"
"$promtool_bin" check rules "$tmp/rules.yml" >/dev/null

cat >"$tmp/alertmanager.yml" <<YAML
route:
  receiver: e2e
  group_by: [alertname, namespace, rule]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: e2e
YAML
"$amtool_bin" check-config "$tmp/alertmanager.yml" >/dev/null

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $tmp/rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$port_am"]
scrape_configs:
  - job_name: hubble-noise
    scheme: https
    tls_config:
      ca_file: $tls/ca.crt
    basic_auth:
      username: $web_user
      password: $web_password
    static_configs:
      - targets: ["127.0.0.1:$port_shop", "127.0.0.1:$port_calm"]
  - job_name: hubble-noise-flowlog
    static_configs:
      - targets: ["127.0.0.1:$port_log"]
YAML
prom_flags=()
if [ -n "$prom3" ]; then
  # 3.x: exemplars stored; the same instance scraped as classic text by a second job; the
  # probe records the Accept header of each scrape protocol setting.
  prom_flags+=(--enable-feature=exemplar-storage)
  cat >>"$tmp/prometheus.yml" <<YAML
  - job_name: hubble-noise-text
    scrape_protocols: [PrometheusText0.0.4]
    scheme: https
    tls_config:
      ca_file: $tls/ca.crt
    basic_auth:
      username: $web_user
      password: $web_password
    static_configs:
      - targets: ["127.0.0.1:$port_shop"]
  - job_name: accept-probe-openmetrics
    metrics_path: /openmetrics
    static_configs:
      - targets: ["127.0.0.1:$port_probe"]
  - job_name: accept-probe-text
    metrics_path: /text
    scrape_protocols: [PrometheusText0.0.4]
    static_configs:
      - targets: ["127.0.0.1:$port_probe"]
YAML
fi
"$promtool_bin" check config "$tmp/prometheus.yml" >/dev/null

# --- start everything ----------------------------------------------------------------------
start=$SECONDS
"$alertmanager_bin" --config.file="$tmp/alertmanager.yml" --storage.path="$tmp/am" \
  --web.listen-address="127.0.0.1:$port_am" --cluster.listen-address= \
  >"$tmp/alertmanager.log" 2>&1 &
pids+=($!)
"$bin" run -c "$tmp/shop/config.toml" --replay "$tmp/shop/recording.ndjson" --loop --rate 50 \
  >"$tmp/hubble-noise-shop.log" 2>&1 &
pids+=($!)
"$bin" run -c "$tmp/calm/config.toml" --replay "$tmp/calm/recording.ndjson" --loop --rate 200 \
  >"$tmp/hubble-noise-calm.log" 2>&1 &
pids+=($!)
"$bin" run -c "$tmp/flowlog/config.toml" --replay "$tmp/flowlog/recording.ndjson" \
  >"$tmp/hubble-noise-flowlog.log" 2>&1 &
pids+=($!)
if [ -n "$prom3" ]; then
  python3 tests/e2e/accept_probe.py "$port_probe" "$tmp/accept" >"$tmp/accept-probe.log" 2>&1 &
  pids+=($!)
fi
"$prometheus_bin" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$port_prom" --rules.alert.resend-delay=1s "${prom_flags[@]}" \
  >"$tmp/prometheus.log" 2>&1 &
pids+=($!)

wait_http "http://127.0.0.1:$port_am/-/ready" 30
wait_http "https://127.0.0.1:$port_shop/readyz" 30 "${https_args[@]}"
wait_http "https://127.0.0.1:$port_calm/readyz" 30 "${https_args[@]}"
wait_http "http://127.0.0.1:$port_log/readyz" 30
wait_http "http://127.0.0.1:$port_prom/-/ready" 30

# web_checks: what the daemon serves to a client without the right credentials or without TLS.
web_checks() {
  local url="https://127.0.0.1:$port_shop" code fails=0
  # check NAME OK
  check() {
    if [ "$2" = 1 ]; then echo "PASS $1"; else echo "FAIL $1"; fails=1; fi
  }
  code=$(curl -s -o /dev/null -w '%{http_code}' "${https_args[@]}" "$url/metrics")
  check "web: /metrics without a password is refused (401, got $code)" "$([ "$code" = 401 ] && echo 1)"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${https_args[@]}" -u "$web_user:wrong" "$url/metrics")
  check "web: /metrics with a wrong password is refused (401, got $code)" "$([ "$code" = 401 ] && echo 1)"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${https_args[@]}" -X POST "$url/-/reload")
  check "web: POST /-/reload without a password is refused (401, got $code)" "$([ "$code" = 401 ] && echo 1)"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth_args[@]}" "$url/metrics")
  check "web: /metrics with the password over TLS answers (200, got $code)" "$([ "$code" = 200 ] && echo 1)"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${https_args[@]}" "$url/healthz")
  check "web: /healthz stays open for the kubelet (200, got $code)" "$([ "$code" = 200 ] && echo 1)"
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "$web_user:$web_password" "http://127.0.0.1:$port_shop/metrics" || true)
  check "web: plain HTTP on the TLS port is refused (400, got $code)" "$([ "$code" = 400 ] && echo 1)"
  return "$fails"
}

rc=0
python3 tests/e2e/checks.py --prom "http://127.0.0.1:$port_prom" --am "http://127.0.0.1:$port_am" \
  --dashboard dashboards/hubble-noise.json --timeout 90 \
  --flowlog-metrics "http://127.0.0.1:$port_log/metrics" --flowlog-file "$tmp/flowlog/log/flows.jsonl" \
  --flowlog-max-size 4096 | tee "$tmp/checks.out" || rc=$?
web_checks | tee -a "$tmp/checks.out" || rc=$?
if [ -n "$prom3" ]; then
  python3 tests/e2e/checks_prom3.py --prom "http://127.0.0.1:$port_prom" \
    --metrics "https://127.0.0.1:$port_shop/metrics" --ca-file "$tls/ca.crt" \
    --basic-auth "$web_user:$web_password" --accept-dir "$tmp/accept" \
    --classified "$tmp/classified.jsonl" --version "$prom_version" --timeout 30 \
    | tee -a "$tmp/checks.out" || rc=$?
fi
passed=$(grep -c '^PASS' "$tmp/checks.out" || true)
failed=$(grep -c '^FAIL' "$tmp/checks.out" || true)
if [ "$rc" -ne 0 ] && [ "$failed" = 0 ]; then
  failed=1 # checks.py itself crashed
fi
echo "e2e: took $((SECONDS - start)) s"
echo "e2e: $passed passed, $failed failed ($pair)"
[ "$failed" = 0 ]
