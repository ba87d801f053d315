#!/usr/bin/env bash
# Writes the Kubernetes copies of the alert rules and the dashboard:
#   deploy/prometheus/hubble-noise.rules.yml -> deploy/base/prometheusrule.yaml
#                                            -> deploy/helm/hubble-noise/files/hubble-noise.rules.yml
#   dashboards/hubble-noise.json              -> deploy/base/dashboard-configmap.yaml
#                                            -> deploy/helm/hubble-noise/files/hubble-noise.json
# The chart's templates insert its files/ as they are (.Files.Get), so Prometheus's {{ $labels.x }}
# templates in the rules are never expanded by Helm.
# `deploy/generate.sh --check` fails when a copy differs from its source (run by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

prometheusrule() {
  cat <<'YAML'
# Generated from deploy/prometheus/hubble-noise.rules.yml by deploy/generate.sh: do not edit.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: hubble-noise
  namespace: kube-system
  labels:
    app.kubernetes.io/name: hubble-noise
spec:
YAML
  sed -n '/^groups:/,$p' deploy/prometheus/hubble-noise.rules.yml | sed -e 's/^\(.\)/  \1/'
}

dashboard() {
  cat <<'YAML'
# Generated from dashboards/hubble-noise.json by deploy/generate.sh: do not edit.
# Grafana's dashboard sidecar (kube-prometheus-stack, the Grafana chart) loads ConfigMaps
# labelled grafana_dashboard=1, from every namespace when it is set to search them all.
apiVersion: v1
kind: ConfigMap
metadata:
  name: hubble-noise-dashboard
  namespace: kube-system
  labels:
    app.kubernetes.io/name: hubble-noise
    grafana_dashboard: "1"
data:
  hubble-noise.json: |
YAML
  sed -e 's/^\(.\)/    \1/' dashboards/hubble-noise.json
}

chart=deploy/helm/hubble-noise/files

# The chart's copy of the rules: from `groups:` on (the spec of its PrometheusRule).
chart_rules() {
  echo "# Generated from deploy/prometheus/hubble-noise.rules.yml by deploy/generate.sh: do not edit."
  sed -n '/^groups:/,$p' deploy/prometheus/hubble-noise.rules.yml
}

chart_dashboard() {
  cat dashboards/hubble-noise.json
}

if [ "${1:-}" = --check ]; then
  rc=0
  diff -u deploy/base/prometheusrule.yaml <(prometheusrule) || rc=1
  diff -u deploy/base/dashboard-configmap.yaml <(dashboard) || rc=1
  diff -u "$chart/hubble-noise.rules.yml" <(chart_rules) || rc=1
  diff -u "$chart/hubble-noise.json" <(chart_dashboard) || rc=1
  if [ "$rc" -ne 0 ]; then
    echo "deploy/generate.sh: generated files are out of date; run deploy/generate.sh" >&2
  fi
  exit "$rc"
fi
prometheusrule >deploy/base/prometheusrule.yaml
dashboard >deploy/base/dashboard-configmap.yaml
mkdir -p "$chart"
chart_rules >"$chart/hubble-noise.rules.yml"
chart_dashboard >"$chart/hubble-noise.json"
