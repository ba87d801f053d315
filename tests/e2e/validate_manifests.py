#!/usr/bin/env python3
"""Static checks of dashboards/, deploy/ and the rendered manifests (run by
tests/e2e/validate-manifests.sh, which renders them first).

Usage: validate_manifests.py RENDER_DIR HUBBLE_NOISE_BIN
RENDER_DIR holds <variant>.yaml (kustomize output) and <variant>.patched.yaml (the relay
Deployment after `kubectl patch --local`, sidecar variants only).
Prints PASS/FAIL lines and "manifests: N passed, M failed"; exits 1 on a failure.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = []
CRD_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""),
          flush=True)
    return ok


def documented_metrics():
    text = open(os.path.join(ROOT, "docs", "METRICS.md")).read()
    return set(re.findall(r"^\| `(hubble_noise_\w+)`", text, re.M))


def exprs_metrics(expr):
    return set(re.findall(r"\bhubble_noise_\w+", expr))


def check_dashboard(metrics):
    path = os.path.join(ROOT, "dashboards", "hubble-noise.json")
    d = json.load(open(path))
    check("dashboard: schemaVersion is recent (>= 36)", d.get("schemaVersion", 0) >= 36)
    check("dashboard: uid is hubble-noise (the alerts link to /d/hubble-noise)",
          d.get("uid") == "hubble-noise")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    check("dashboard: datasource variable of type prometheus",
          variables.get("datasource", {}).get("type") == "datasource"
          and variables["datasource"].get("query") == "prometheus")
    check("dashboard: namespace and class variables",
          {"namespace", "class"} <= set(variables))
    panels, targets = [], []

    def walk(ps):
        for p in ps:
            panels.append(p)
            targets.extend((p, t) for t in p.get("targets", []))
            walk(p.get("panels", []))

    walk(d["panels"])
    ids = [p["id"] for p in panels]
    check("dashboard: panel ids are unique", len(ids) == len(set(ids)))
    bad_ds = [p["title"] for p, t in targets
              if t.get("datasource", {}).get("uid") != "${datasource}"
              or p.get("datasource", {}).get("uid") != "${datasource}"]
    check("dashboard: every panel and query uses ${datasource}", not bad_ds, bad_ds)
    ranges = [(p["title"], r) for p, t in targets
              for r in re.findall(r"\[([^\]]*)\]", t["expr"]) if r != "$__rate_interval"]
    check("dashboard: every range is [$__rate_interval]", not ranges, ranges)
    undocumented = sorted({m for _, t in targets for m in exprs_metrics(t["expr"])} - metrics)
    check("dashboard: queries use only metrics of docs/METRICS.md", not undocumented,
          undocumented)
    cells = {}
    overlaps = []
    for p in panels:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    overlaps.append((cells[(x, y)], p["title"]))
                cells[(x, y)] = p["title"]
    check("dashboard: panels do not overlap and fit 24 columns",
          not overlaps and all(x < 24 for x, _ in cells), sorted(set(overlaps))[:3])
    needed = {"hubble_noise_flows_total", "hubble_noise_rule_matches_total",
              "hubble_noise_rule_expiry_timestamp_seconds",
              "hubble_noise_rule_last_match_timestamp_seconds", "hubble_noise_rules",
              "hubble_noise_relay_connected", "hubble_noise_relay_reconnects_total",
              "hubble_noise_lost_events_total", "hubble_noise_series_overflow_total",
              "hubble_noise_config_last_reload_successful"}
    used = {m for _, t in targets for m in exprs_metrics(t["expr"])}
    check("dashboard: covers flows, rules, expiry, last match, relay, lost events, overflow, reload",
          needed <= used, sorted(needed - used))


def check_rules(metrics):
    path = os.path.join(ROOT, "deploy", "prometheus", "hubble-noise.rules.yml")
    rules = [r for g in yaml.safe_load(open(path))["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    want = {"HubbleNoiseUnexpectedFlows", "HubbleNoiseRelayDisconnected", "HubbleNoiseLostEvents",
            "HubbleNoiseRuleExpiringSoon", "HubbleNoiseRuleExpired", "HubbleNoiseRuleUnused",
            "HubbleNoiseReloadFailed", "HubbleNoiseAbsent", "HubbleNoiseNodesUnavailable"}
    check("rules: every alert of the issue is defined", want <= names, sorted(want - names))
    undocumented = sorted({m for r in rules for m in exprs_metrics(r["expr"])} - metrics)
    check("rules: expressions use only metrics of docs/METRICS.md", not undocumented,
          undocumented)
    incomplete = [r["alert"] for r in rules
                  if not r.get("for") or not r.get("labels", {}).get("severity")
                  or not {"summary", "description", "dashboard"} <= set(r.get("annotations", {}))
                  or "What to do" not in r["annotations"]["description"]
                  or not r["annotations"]["dashboard"].startswith("/d/hubble-noise")]
    check("rules: each has for, severity, summary, description with what to do, dashboard link",
          not incomplete, incomplete)
    unexpected = next(r for r in rules if r["alert"] == "HubbleNoiseUnexpectedFlows")
    sels = re.findall(r"hubble_noise_flows_total\{([^}]*)\}", unexpected["expr"])
    check("rules: HubbleNoiseUnexpectedFlows selects class=\"unexpected\" only",
          sels and all('class="unexpected"' in s for s in sels), sels)
    return rules


def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def validate_schemas(variant, docs, render_dir):
    """Schemas: every built-in kind, strictly (unknown fields rejected), for two Kubernetes
    versions. PodMonitor, ServiceMonitor and PrometheusRule are CRDs the validator has no schema
    for: the callers check them by what they must hold."""
    plain = [d for d in docs if d["kind"] not in CRD_KINDS]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=render_dir) as f:
        yaml.safe_dump_all(plain, f)
    for version in ("1.30.0", "1.37.0"):
        r = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, f.name],
                           capture_output=True, text=True)
        check(f"{variant}: {len(plain)} objects valid for Kubernetes {version} (kubernetes-validate --strict)",
              r.returncode == 0, (r.stdout + r.stderr).strip()[-2000:])


def check_variant(variant, docs, bin_path, rules, render_dir):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    check(f"{variant}: every object is in kube-system",
          all(d["metadata"].get("namespace") == "kube-system" for d in docs))

    validate_schemas(variant, docs, render_dir)

    deployments = by_kind.get("Deployment", [])
    noise = [(d, c) for d in deployments for c in pod_spec(d)["containers"]
             if c["name"] == "hubble-noise"]
    if not check(f"{variant}: one hubble-noise container", len(noise) == 1, len(noise)):
        return
    dep, c = noise[0]
    spec = pod_spec(dep)
    pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
    sc = c.get("securityContext", {})
    check(f"{variant}: restricted security context (non-root, read-only root, no escalation, no capabilities)",
          sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"]
          and sc.get("runAsUser", 0) != 0 and sc.get("privileged") is not True
          and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", sc)
    check(f"{variant}: enableServiceLinks is false", spec.get("enableServiceLinks") is False)
    port_names = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    probes_ok = (c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
                 and c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz"
                 and c["livenessProbe"]["httpGet"]["port"] in port_names
                 and c["readinessProbe"]["httpGet"]["port"] in port_names)
    check(f"{variant}: liveness /healthz and readiness /readyz on the metrics port", probes_ok)
    res = c.get("resources", {})
    check(f"{variant}: cpu and memory requests and limits",
          all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")), res)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    missing = [m["name"] for m in c.get("volumeMounts", []) if m["name"] not in volumes]
    check(f"{variant}: every volume mount has its volume", not missing, missing)
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    cm_name = volumes.get("hubble-noise-config", {}).get("configMap", {}).get("name")
    check(f"{variant}: the config volume names the rendered ConfigMap", cm_name in configmaps,
          cm_name)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}

    if variant.startswith("sidecar"):
        names = [x["name"] for x in spec["containers"]]
        check(f"{variant}: the hubble-relay container is kept beside hubble-noise",
              dep["metadata"]["name"] == "hubble-relay" and "hubble-relay" in names, names)
        address = env.get("HUBBLE_NOISE_RELAY__ADDRESS", "")
        check(f"{variant}: talks to the relay on localhost:4245",
              re.fullmatch(r"https?://localhost:4245", address), address)
        patched = os.path.join(render_dir, f"{variant}.patched.yaml")
        got = load(patched)[0]
        same = pod_spec(got) == spec and got["spec"]["template"]["metadata"] == dep["spec"]["template"]["metadata"]
        check(f"{variant}: `kubectl patch` with the same file gives the same pod as kustomize", same)
    if variant == "sidecar-mtls":
        secret = volumes.get("hubble-noise-tls", {}).get("secret", {})
        keys = {i["key"] for i in secret.get("items", [])}
        check(f"{variant}: mounts the relay's client certificate secret (ca.crt, tls.crt, tls.key)",
              secret.get("secretName") == "hubble-relay-client-certs"
              and keys == {"ca.crt", "tls.crt", "tls.key"}, secret)
        check(f"{variant}: https with server name ui.hubble-relay.cilium.io and the three TLS files",
              env.get("HUBBLE_NOISE_RELAY__ADDRESS", "").startswith("https://")
              and env.get("HUBBLE_NOISE_RELAY__SERVER_NAME") == "ui.hubble-relay.cilium.io"
              and all(env.get(f"HUBBLE_NOISE_RELAY__{k}", "").startswith("/var/lib/hubble-noise/tls/")
                      for k in ("CA_FILE", "CERT_FILE", "KEY_FILE")), env)
    if variant == "standalone":
        check(f"{variant}: no service-account token", spec.get("automountServiceAccountToken") is False)

    # Service and PodMonitor find the pod and its metrics port.
    svc = next((d for d in by_kind.get("Service", []) if d["metadata"]["name"] == "hubble-noise"), None)
    check(f"{variant}: Service selects the pod and targets its metrics port",
          svc and labels_match(svc["spec"]["selector"], pod_labels)
          and all(p["targetPort"] in port_names for p in svc["spec"]["ports"]))
    pm = by_kind.get("PodMonitor", [None])[0]
    check(f"{variant}: PodMonitor (monitoring.coreos.com/v1) selects the pod and its metrics port",
          pm and pm["apiVersion"] == "monitoring.coreos.com/v1"
          and labels_match(pm["spec"]["selector"]["matchLabels"], pod_labels)
          and all(e["port"] in port_names and e.get("path") == "/metrics"
                  for e in pm["spec"]["podMetricsEndpoints"]))

    # PrometheusRule: the same rules as the rule file, and promtool accepts them.
    pr = by_kind.get("PrometheusRule", [None])[0]
    ok = pr and pr["apiVersion"] == "monitoring.coreos.com/v1"
    if ok:
        got = [r for g in pr["spec"]["groups"] for r in g["rules"]]
        ok = got == rules
    check(f"{variant}: PrometheusRule holds exactly the rules of deploy/prometheus", ok)
    if pr:
        rf = os.path.join(render_dir, f"{variant}.prometheusrule.rules.yml")
        with open(rf, "w") as f:
            yaml.safe_dump({"groups": pr["spec"]["groups"]}, f)
        r = subprocess.run(["promtool", "check", "rules", rf], capture_output=True, text=True)
        check(f"{variant}: promtool check rules accepts the PrometheusRule's spec", r.returncode == 0,
              r.stdout + r.stderr)

    # Dashboard ConfigMap: labelled for Grafana's sidecar, the same JSON as dashboards/.
    dash = configmaps.get("hubble-noise-dashboard")
    want = json.load(open(os.path.join(ROOT, "dashboards", "hubble-noise.json")))
    check(f"{variant}: dashboard ConfigMap labelled grafana_dashboard=1 holds dashboards/hubble-noise.json",
          dash and dash["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
          and json.loads(dash["data"]["hubble-noise.json"]) == want)

    if variant.endswith("-web"):
        check_web(variant, by_kind, c, volumes, env, pm)

    # The config as the container sees it (files of the ConfigMap + the container's env)
    # passes `hubble-noise check`.
    cm = configmaps.get(cm_name or "", {}).get("data", {})
    with tempfile.TemporaryDirectory(dir=render_dir) as tmp:
        for k, v in cm.items():
            with open(os.path.join(tmp, k), "w") as f:
                f.write(v)
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBLE_NOISE_")}
        run_env.update({k: v for k, v in env.items() if v is not None})
        if "HUBBLE_NOISE_METRICS__WEB_CONFIG_FILE" in env:
            run_env["HUBBLE_NOISE_METRICS__WEB_CONFIG_FILE"] = web_files(by_kind, tmp)
        r = subprocess.run([bin_path, "check", "-c", os.path.join(tmp, "config.toml")],
                           capture_output=True, text=True, env=run_env)
        check(f"{variant}: hubble-noise check accepts the mounted config with the container's env",
              r.returncode == 0 and "config.toml" in cm, r.stdout + r.stderr)


def check_web(variant, by_kind, c, volumes, env, pm):
    """deploy/web-security: the web config mounted with the certificate beside it, probes over
    HTTPS, the PodMonitor scraping with TLS and basic auth from Secrets that exist."""
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    path = env.get("HUBBLE_NOISE_METRICS__WEB_CONFIG_FILE") or ""
    mount = next((m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"] + "/")), None)
    sources = volumes.get(mount["name"] if mount else "", {}).get("projected", {}).get("sources", [])
    files = {i["path"]: s["secret"]["name"] for s in sources for i in s.get("secret", {}).get("items", [])}
    check(f"{variant}: the web config and the certificate are mounted in one folder",
          files.get("web-config.yml") == "hubble-noise-web"
          and files.get("tls.crt") == files.get("tls.key") == "hubble-noise-web-tls", files)
    check(f"{variant}: liveness and readiness probes use HTTPS",
          c["livenessProbe"]["httpGet"].get("scheme") == "HTTPS"
          and c["readinessProbe"]["httpGet"].get("scheme") == "HTTPS")
    ep = (pm or {}).get("spec", {}).get("podMetricsEndpoints", [{}])[0]
    auth = ep.get("basicAuth", {})
    check(f"{variant}: the PodMonitor scrapes with https, a CA and basic auth from a Secret",
          ep.get("scheme") == "https" and ep.get("tlsConfig", {}).get("ca", {}).get("secret")
          and auth.get("username", {}).get("name") in secrets
          and auth.get("password", {}).get("name") in secrets, ep)


def web_files(by_kind, tmp):
    """The web config of Secret hubble-noise-web, with a throwaway certificate beside it (the
    real one is the user's): its path, for `hubble-noise check`."""
    secret = next(d for d in by_kind.get("Secret", []) if d["metadata"]["name"] == "hubble-noise-web")
    web = os.path.join(tmp, "web-config.yml")
    with open(web, "w") as f:
        f.write(secret["stringData"]["web-config.yml"])
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=hubble-noise.kube-system.svc",
                    "-keyout", os.path.join(tmp, "tls.key"), "-out", os.path.join(tmp, "tls.crt")],
                   check=True, capture_output=True)
    return web


def main():
    render_dir, bin_path = sys.argv[1], sys.argv[2]
    metrics = documented_metrics()
    check("docs/METRICS.md lists the metrics", len(metrics) >= 17, len(metrics))
    check_dashboard(metrics)
    rules = check_rules(metrics)
    for variant in ("base", "sidecar-plaintext", "sidecar-mtls", "standalone", "standalone-web"):
        docs = load(os.path.join(render_dir, f"{variant}.yaml"))
        if variant == "base":
            kinds = sorted(d["kind"] for d in docs)
            check("base: ConfigMaps (config, dashboard), Service, PodMonitor, PrometheusRule",
                  kinds == ["ConfigMap", "ConfigMap", "PodMonitor", "PrometheusRule", "Service"], kinds)
            continue
        check_variant(variant, docs, bin_path, rules, render_dir)
    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print(f"manifests: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
