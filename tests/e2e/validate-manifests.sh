#!/usr/bin/env bash
# Static checks of the alert rules, the dashboard and the Kubernetes manifests:
#   - deploy/generate.sh --check: the PrometheusRule and the dashboard ConfigMap match their sources;
#   - promtool check rules / test rules on deploy/prometheus;
#   - kustomize renders deploy/base, deploy/standalone (also with the deploy/web-security
#     component: TLS and basic auth) and the sidecar components applied to a hubble-relay
#     Deployment shaped like Cilium's (tests/deploy/), and `kubectl patch --local` gives the
#     same result;
#   - the rendered objects pass kubernetes-validate --strict (PyPI), and the checks of
#     validate_manifests.py (security context, probes, selectors, mTLS secret, config accepted
#     by `hubble-noise check`, ...);
#   - the Helm chart (tests/deploy/helm.sh: lint, template, the same checks; skipped, saying so,
#     when helm is not built, unless HUBBLE_NOISE_REQUIRE_TOOLS=1).
# Needs promtool, kubectl (its built-in kustomize) and python3 with PyYAML and kubernetes-validate.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(promtool)
command -v kubectl >/dev/null 2>&1 || missing+=("kubectl (kustomize)")
python3 -c 'import kubernetes_validate' 2>/dev/null || missing+=("kubernetes-validate (python3 -m pip install kubernetes-validate)")
python3 -c 'import yaml' 2>/dev/null || missing+=("PyYAML")
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${HUBBLE_NOISE_REQUIRE_TOOLS:-}" = 1 ]; then
    printf 'validate-manifests: missing (HUBBLE_NOISE_REQUIRE_TOOLS=1): %s\n' "${missing[@]}" >&2
    exit 1
  fi
  printf 'validate-manifests: skipped, missing: %s\n' "${missing[@]}"
  exit 0
fi

bin=${HUBBLE_NOISE_BIN:-$PWD/target/debug/hubble-noise}
[ -x "$bin" ] || cargo build --locked --quiet

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== deploy/generate.sh --check"
deploy/generate.sh --check

echo "== promtool check rules / test rules"
promtool check rules deploy/prometheus/hubble-noise.rules.yml
(cd deploy/prometheus && promtool test rules hubble-noise.rules.test.yml hubble-noise.rules.unused.test.yml)

echo "== kustomize"
kubectl kustomize deploy/base >"$tmp/base.yaml"
kubectl kustomize deploy/standalone >"$tmp/standalone.yaml"
kubectl kustomize tests/deploy/standalone-web >"$tmp/standalone-web.yaml"
for v in plaintext mtls; do
  kubectl kustomize "tests/deploy/sidecar-$v" >"$tmp/sidecar-$v.yaml"
  kubectl patch --local -f tests/deploy/cilium/hubble-relay.yaml --type strategic \
    --patch-file "deploy/sidecar/$v/relay-patch.yaml" -o yaml >"$tmp/sidecar-$v.patched.yaml"
done
echo "rendered: base, standalone, standalone-web, sidecar-plaintext, sidecar-mtls"

echo "== manifests"
python3 tests/e2e/validate_manifests.py "$tmp" "$bin"

echo "== helm chart"
HUBBLE_NOISE_BIN="$bin" tests/deploy/helm.sh
