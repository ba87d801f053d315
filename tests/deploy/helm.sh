#!/usr/bin/env bash
# Checks of the Helm chart deploy/helm/hubble-noise, with the helm that tests/peers/build.sh
# builds from its Go module (helm.sh/helm/v4, pinned in tests/peers/helm/go.mod):
#   - helm lint --strict, with the default values, the plaintext values and the shard values;
#   - helm template in kube-system with the default values (mTLS), tests/deploy/helm-values-plaintext.yaml,
#     the ServiceMonitor switch, tests/deploy/helm-values-shard.yaml and everything optional off;
#     tests/deploy/helm_checks.py then validates the objects (kubernetes-validate --strict), checks
#     security context, probes, mTLS secret and config.toml (accepted by `hubble-noise check`),
#     extracts the PrometheusRule's rules (promtool check rules; equal to
#     deploy/prometheus/hubble-noise.rules.yml) and compares the dashboard with dashboards/;
#   - values.schema.json: bad values (wrong types, unknown keys, keys the chart owns) are refused.
# Without helm (or promtool, kubernetes-validate, PyYAML) it says "skipped" and exits 0, unless
# HUBBLE_NOISE_REQUIRE_TOOLS=1: then it fails. Run by tests/e2e/validate-manifests.sh.
#
#   tests/peers/build.sh helm && tests/deploy/helm.sh
#
# helm: $HUBBLE_NOISE_HELM, else helm in $HUBBLE_NOISE_PEERS_DIR or
# ${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers (where tests/peers/build.sh puts it).
set -euo pipefail
cd "$(dirname "$0")/../.."

peers="${HUBBLE_NOISE_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers}"
helm="${HUBBLE_NOISE_HELM:-$peers/helm}"
chart=deploy/helm/hubble-noise

missing=()
[ -x "$helm" ] || missing+=("helm ($helm; build it with tests/peers/build.sh helm)")
command -v promtool >/dev/null 2>&1 || missing+=(promtool)
python3 -c 'import kubernetes_validate' 2>/dev/null || missing+=("kubernetes-validate (python3 -m pip install kubernetes-validate)")
python3 -c 'import yaml' 2>/dev/null || missing+=("PyYAML")
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${HUBBLE_NOISE_REQUIRE_TOOLS:-}" = 1 ]; then
    printf 'helm chart: missing (HUBBLE_NOISE_REQUIRE_TOOLS=1): %s\n' "${missing[@]}" >&2
    exit 1
  fi
  printf 'helm chart: skipped, missing: %s\n' "${missing[@]}"
  exit 0
fi

bin=${HUBBLE_NOISE_BIN:-$PWD/target/debug/hubble-noise}
[ -x "$bin" ] || cargo build --locked --quiet

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# helm keeps its own state out of $HOME and away from any cluster: nothing here needs either.
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" HELM_DATA_HOME="$tmp/helm/data"
export KUBECONFIG=/dev/null
echo "== helm: $("$helm" version --short)"

echo "== helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f tests/deploy/helm-values-plaintext.yaml
"$helm" lint --strict "$chart" -f tests/deploy/helm-values-shard.yaml

template() { "$helm" template hubble-noise "$chart" --namespace kube-system "$@"; }

echo "== helm template"
template >"$tmp/helm-default.yaml"
template -f tests/deploy/helm-values-plaintext.yaml >"$tmp/helm-plaintext.yaml"
template --set metrics.monitor.kind=ServiceMonitor >"$tmp/helm-servicemonitor.yaml"
template -f tests/deploy/helm-values-shard.yaml >"$tmp/helm-shard.yaml"
template --set metrics.monitor.enabled=false,prometheusRule.enabled=false,dashboard.enabled=false \
  --set metrics.service.enabled=false >"$tmp/helm-minimal.yaml"
template --set metrics.webSecurity.enabled=true,metrics.webSecurity.existingSecret=hubble-noise-web \
  --set metrics.webSecurity.scrape.basicAuthSecret=scrape-auth >"$tmp/helm-web.yaml"
echo "rendered: default, plaintext, servicemonitor, shard, minimal, web"

echo "== values.schema.json refuses bad values"
# refuse NAME HELM-ARGS...: helm template must fail, and say that the schema refused the values.
refuse() {
  local name="$1" out
  shift
  if out="$(template "$@" 2>&1 >/dev/null)"; then
    printf '%s\taccepted\thelm template %s succeeded\n' "$name" "$*" >>"$tmp/rejected.txt"
  elif grep -q "values don't meet the specifications of the schema" <<<"$out"; then
    printf '%s\trefused\t%s\n' "$name" "$(tr '\n' ' ' <<<"$out")" >>"$tmp/rejected.txt"
  else
    printf '%s\tfailed otherwise\t%s\n' "$name" "$(tr '\n' ' ' <<<"$out")" >>"$tmp/rejected.txt"
  fi
}
: >"$tmp/rejected.txt"
refuse "a string for a boolean (relay.tls.enabled=yes)" --set-string relay.tls.enabled=yes
refuse "a string for an integer (metrics.port=metrics)" --set metrics.port=metrics
refuse "a port out of range (metrics.port=70000)" --set metrics.port=70000
refuse "an unknown key (relay.tls.enable)" --set relay.tls.enable=false
refuse "an unknown config key (config.relay.idle_timout)" --set config.relay.idle_timout=5m
refuse "a key the chart sets (config.relay.address)" --set config.relay.address=http://x:80
refuse "a key the chart sets (config.metrics.listen)" --set config.metrics.listen=0.0.0.0:1
refuse "a bad duration (config.relay.idle_timeout=5 minutes)" --set "config.relay.idle_timeout=5 minutes"
refuse "an unknown metrics label (config.metrics.labels={pod})" --set "config.metrics.labels={pod}"
refuse "an unknown monitor kind (metrics.monitor.kind=Probe)" --set metrics.monitor.kind=Probe
refuse "a rule file named config.toml" --set-string "rules.config\.toml=x"
refuse "a rule file not ending in .toml" --set-string "rules.rules\.txt=x"
refuse "a log format (config.log.format=xml)" --set config.log.format=xml
refuse "a key the chart sets (config.metrics.web_config_file)" --set config.metrics.web_config_file=w.yml
refuse "an unknown webSecurity key (metrics.webSecurity.secret)" --set metrics.webSecurity.secret=x
cut -f1,2 "$tmp/rejected.txt" | sed 's/^/  /'

echo "== rendered manifests"
python3 tests/deploy/helm_checks.py "$tmp" "$bin"
