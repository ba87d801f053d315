#!/usr/bin/env python3
"""Checks of the Helm chart's rendered manifests (run by tests/deploy/helm.sh, which renders
them with `helm template` first). Reuses validate_manifests.py: its kubernetes-validate step and
its PASS/FAIL reporting.

Usage: helm_checks.py RENDER_DIR HUBBLE_NOISE_BIN
RENDER_DIR holds the renders named below (RENDERS) and rejected.txt (the schema cases).
Prints PASS/FAIL lines and "helm: N passed, M failed"; exits 1 on a failure.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import validate_manifests as vm  # noqa: E402

ROOT = vm.ROOT
NAMESPACE = "kube-system"
TLS_DIR = "/var/lib/hubble-noise/tls/"
check = vm.check

# name -> what it was rendered with (tests/deploy/helm.sh)
RENDERS = {
    "default": "the chart's default values",
    "plaintext": "tests/deploy/helm-values-plaintext.yaml",
    "servicemonitor": "--set metrics.monitor.kind=ServiceMonitor",
    "shard": "tests/deploy/helm-values-shard.yaml",
    "minimal": "monitor, PrometheusRule, dashboard and Service turned off",
    "web": "metrics.webSecurity on (TLS and basic auth, scraped with both)",
}
WEB_DIR = "/etc/hubble-noise-web/"


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def check_render(name, docs, bin_path, source_rules, render_dir):
    kinds = by_kind(docs)
    check(f"{name}: every object has a name and the release's namespace ({NAMESPACE})",
          all(d["metadata"].get("name") and d["metadata"].get("namespace") == NAMESPACE
              for d in docs),
          [(d["kind"], d["metadata"].get("namespace")) for d in docs])
    vm.validate_schemas(f"helm {name}", docs, render_dir)

    deps = kinds.get("Deployment", [])
    if not check(f"{name}: one Deployment with one hubble-noise container",
                 len(deps) == 1 and [c["name"] for c in vm.pod_spec(deps[0])["containers"]]
                 == ["hubble-noise"], [d["metadata"]["name"] for d in deps]):
        return
    dep = deps[0]
    spec = vm.pod_spec(dep)
    c = spec["containers"][0]
    pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
    check(f"{name}: one replica, Recreate (two would count every flow twice)",
          dep["spec"].get("replicas") == 1 and dep["spec"]["strategy"]["type"] == "Recreate")
    check(f"{name}: the selector matches the pod's labels",
          vm.labels_match(dep["spec"]["selector"]["matchLabels"], pod_labels))

    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    check(f"{name}: restricted container security context (non-root, read-only root, no escalation, "
          "no capabilities, RuntimeDefault seccomp)",
          sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"]
          and sc.get("runAsUser", 0) != 0 and sc.get("privileged") is not True
          and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", sc)
    check(f"{name}: pod security context: non-root, RuntimeDefault seccomp, fsGroup for the key",
          psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0
          and psc.get("fsGroup") == 65532
          and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", psc)
    check(f"{name}: no service-account token, no service links",
          spec.get("automountServiceAccountToken") is False and spec.get("enableServiceLinks") is False)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(f"{name}: liveness /healthz and readiness /readyz on the metrics port",
          c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
          and c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz"
          and c["livenessProbe"]["httpGet"]["port"] in ports
          and c["readinessProbe"]["httpGet"]["port"] in ports, ports)
    res = c.get("resources", {})
    check(f"{name}: cpu and memory requests and limits",
          all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")), res)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    check(f"{name}: every volume mount has its volume, read-only",
          all(n in volumes for n in mounts.values())
          and all(m.get("readOnly") is True for m in c["volumeMounts"]), mounts)

    configmaps = {d["metadata"]["name"]: d for d in kinds.get("ConfigMap", [])}
    cm_name = volumes.get(mounts.get("/etc/hubble-noise"), {}).get("configMap", {}).get("name")
    if not check(f"{name}: /etc/hubble-noise is the rendered config ConfigMap",
                 cm_name in configmaps, cm_name):
        return
    files = configmaps[cm_name]["data"]
    check(f"{name}: the container runs with /etc/hubble-noise/config.toml",
          c.get("args") == ["run", "-c", "/etc/hubble-noise/config.toml"], c.get("args"))
    try:
        config = tomllib.loads(files.get("config.toml", ""))
    except tomllib.TOMLDecodeError as e:
        check(f"{name}: config.toml is TOML", False, e)
        return
    relay = config.get("relay", {})
    check(f"{name}: metrics.listen is the container's port",
          config.get("metrics", {}).get("listen") == f"0.0.0.0:{ports.get('noise-metrics')}",
          config.get("metrics"))
    listed = config.get("classify", {}).get("rule_files", []) + config.get("classify", {}).get("policy_files", [])
    check(f"{name}: every rule and policy file listed in config.toml is in the ConfigMap",
          all(f in files for f in listed) and set(files) == {"config.toml", *listed},
          (listed, sorted(files)))

    secret = volumes.get(mounts.get(TLS_DIR.rstrip("/")), {}).get("secret")
    if name == "plaintext":
        check(f"{name}: plaintext to the relay's Service, no certificate mounted or configured",
              relay.get("address") == f"http://hubble-relay.{NAMESPACE}.svc:80" and secret is None
              and not {"server_name", "ca_file", "cert_file", "key_file"} & set(relay), relay)
    else:
        keys = {i["key"]: i["path"] for i in (secret or {}).get("items", [])}
        check(f"{name}: mounts Cilium's hubble-relay-client-certs (ca.crt, tls.crt, tls.key) read-only by group",
              secret is not None and secret.get("secretName") == "hubble-relay-client-certs"
              and keys == {"ca.crt": "ca.crt", "tls.crt": "tls.crt", "tls.key": "tls.key"}
              and secret.get("defaultMode") == 0o440, secret)
        check(f"{name}: mTLS to https://hubble-relay.{NAMESPACE}.svc:443 as ui.hubble-relay.cilium.io "
              "with the mounted CA, certificate and key",
              relay.get("address") == f"https://hubble-relay.{NAMESPACE}.svc:443"
              and relay.get("server_name") == "ui.hubble-relay.cilium.io"
              and relay.get("ca_file") == TLS_DIR + "ca.crt"
              and relay.get("cert_file") == TLS_DIR + "tls.crt"
              and relay.get("key_file") == TLS_DIR + "tls.key", relay)
    if name == "shard":
        check(f"{name}: relay.nodes and the config values reach config.toml with their types",
              relay.get("nodes") == ["prod/worker-0*", "prod/worker-1*"]
              and relay.get("max_message_size") == 33554432 and relay.get("idle_timeout") == "10m"
              and config.get("metrics", {}).get("exemplars") is False
              and config.get("dns", {}).get("scope") == "cluster"
              and config.get("export", {}) == {"enabled": True, "class": "all"}
              and config.get("classify", {}).get("expected_log_tags") == ["blocked-on-purpose", "audit-*"]
              and config.get("classify", {}).get("rule_files") == ["a-team.toml", "b-team.toml"]
              and config.get("classify", {}).get("policy_files") == ["default-deny.yaml"], config)

    if name == "web":
        check_web(name, config, c, volumes, mounts, kinds)

    # hubble-noise itself accepts config.toml with the rule and policy files beside it (the TLS
    # files are only read when it connects; the web config, which the user's Secret holds, is
    # stood in for by one with a throwaway certificate).
    with tempfile.TemporaryDirectory(dir=render_dir) as tmp:
        for k, v in files.items():
            if name == "web" and k == "config.toml":
                v = v.replace(WEB_DIR, tmp + "/")
                with open(os.path.join(tmp, "web-config.yml"), "w") as f:
                    f.write("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n")
                subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=x",
                                "-keyout", os.path.join(tmp, "tls.key"),
                                "-out", os.path.join(tmp, "tls.crt")], check=True, capture_output=True)
            with open(os.path.join(tmp, k), "w") as f:
                f.write(v)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBLE_NOISE_")}
        r = subprocess.run([bin_path, "check", "-c", os.path.join(tmp, "config.toml")],
                           capture_output=True, text=True, env=env)
        check(f"{name}: hubble-noise check accepts the rendered config.toml and rule files",
              r.returncode == 0, (r.stdout + r.stderr).strip()[-2000:])
    annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
    check(f"{name}: the pod carries checksum/config (a config change restarts it)",
          re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/config", "")), annotations)

    svc = kinds.get("Service", [])
    pm, sm = kinds.get("PodMonitor", []), kinds.get("ServiceMonitor", [])
    if name == "minimal":
        check(f"{name}: only the Deployment and the config ConfigMap",
              sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment"],
              sorted(d["kind"] for d in docs))
        return
    check(f"{name}: Service selects the pod and targets its metrics port",
          len(svc) == 1 and vm.labels_match(svc[0]["spec"]["selector"], pod_labels)
          and [p["targetPort"] for p in svc[0]["spec"]["ports"]] == ["noise-metrics"])
    job = pod_labels.get("app.kubernetes.io/name", "")
    if name == "servicemonitor":
        ok = len(sm) == 1 and not pm
        if ok:
            s = sm[0]["spec"]
            job = svc[0]["metadata"]["labels"].get(s.get("jobLabel"), "")
            ok = (sm[0]["apiVersion"] == "monitoring.coreos.com/v1"
                  and vm.labels_match(s["selector"]["matchLabels"], svc[0]["metadata"]["labels"])
                  and s["namespaceSelector"]["matchNames"] == [NAMESPACE]
                  and [(e["port"], e["path"]) for e in s["endpoints"]] == [("noise-metrics", "/metrics")])
        check(f"{name}: ServiceMonitor (and no PodMonitor) selects the Service and its metrics port", ok)
    else:
        ok = len(pm) == 1 and not sm
        if ok:
            s = pm[0]["spec"]
            job = pod_labels.get(s.get("jobLabel"), "")
            ok = (pm[0]["apiVersion"] == "monitoring.coreos.com/v1"
                  and vm.labels_match(s["selector"]["matchLabels"], pod_labels)
                  and s["namespaceSelector"]["matchNames"] == [NAMESPACE]
                  and [(e["port"], e["path"]) for e in s["podMetricsEndpoints"]] == [("noise-metrics", "/metrics")])
        check(f"{name}: PodMonitor (and no ServiceMonitor) selects the pod and its metrics port", ok)
    check(f"{name}: the scrape job's name contains hubble-noise (HubbleNoiseAbsent)",
          "hubble-noise" in job, job)

    # PrometheusRule: parsed, equal to the rule file; promtool accepts what it holds.
    prs = kinds.get("PrometheusRule", [])
    if check(f"{name}: one PrometheusRule (monitoring.coreos.com/v1)",
             len(prs) == 1 and prs[0]["apiVersion"] == "monitoring.coreos.com/v1"):
        spec_rules = prs[0]["spec"]
        want_rules = source_rules
        if name == "shard":
            # prometheusRule.externalURL replaces the placeholder of every flows_url.
            url = "https://hubble-noise.example.com/shard-a"
            want_rules = json.loads(json.dumps(source_rules).replace("http://localhost:9967", url))
            urls = [r["annotations"]["flows_url"] for g in spec_rules["groups"] for r in g["rules"]]
            check(f"{name}: prometheusRule.externalURL starts every alert's flows_url",
                  urls and all(u == url or u.startswith(url + "/?namespace=") for u in urls), urls)
        check(f"{name}: the PrometheusRule's spec equals deploy/prometheus/hubble-noise.rules.yml (parsed)",
              spec_rules == want_rules)
        rf = os.path.join(render_dir, f"helm-{name}.rules.yml")
        with open(rf, "w") as f:
            yaml.safe_dump(spec_rules, f)
        r = subprocess.run(["promtool", "check", "rules", rf], capture_output=True, text=True)
        check(f"{name}: promtool check rules accepts the PrometheusRule's rules", r.returncode == 0,
              r.stdout + r.stderr)
        if name == "shard":
            check(f"{name}: prometheusRule.labels reach the PrometheusRule",
                  prs[0]["metadata"]["labels"].get("release") == "kube-prometheus-stack")

    dashboards = [d for d in kinds.get("ConfigMap", []) if d["metadata"]["name"] != cm_name]
    want = json.load(open(os.path.join(ROOT, "dashboards", "hubble-noise.json")))
    check(f"{name}: dashboard ConfigMap labelled grafana_dashboard=1 holds dashboards/hubble-noise.json",
          len(dashboards) == 1
          and dashboards[0]["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
          and json.loads(dashboards[0]["data"]["hubble-noise.json"]) == want)


def check_web(name, config, c, volumes, mounts, kinds):
    """metrics.webSecurity: the Secret mounted where web_config_file points, HTTPS probes, and
    the PodMonitor scraping with https, the CA and basic auth."""
    check(f"{name}: config.toml names the mounted web-config.yml",
          config.get("metrics", {}).get("web_config_file") == WEB_DIR + "web-config.yml", config)
    secret = volumes.get(mounts.get(WEB_DIR.rstrip("/")), {}).get("secret", {})
    check(f"{name}: the web Secret is mounted there", secret.get("secretName") == "hubble-noise-web",
          secret)
    check(f"{name}: liveness and readiness probes use HTTPS",
          c["livenessProbe"]["httpGet"].get("scheme") == "HTTPS"
          and c["readinessProbe"]["httpGet"].get("scheme") == "HTTPS")
    pm = kinds.get("PodMonitor", [{}])[0]
    ep = pm.get("spec", {}).get("podMetricsEndpoints", [{}])[0]
    check(f"{name}: the PodMonitor scrapes with https, the Secret's CA, the service name and basic auth",
          ep.get("scheme") == "https"
          and ep.get("tlsConfig", {}).get("ca", {}).get("secret") == {"name": "hubble-noise-web", "key": "ca.crt"}
          and ep.get("tlsConfig", {}).get("serverName") == "hubble-noise.kube-system.svc"
          and ep.get("basicAuth", {}).get("password") == {"name": "scrape-auth", "key": "password"}, ep)


def main():
    render_dir, bin_path = sys.argv[1], sys.argv[2]
    source_path = os.path.join(ROOT, "deploy", "prometheus", "hubble-noise.rules.yml")
    source_rules = yaml.safe_load(open(source_path))
    source_text = open(source_path).read()
    for name in RENDERS:
        path = os.path.join(render_dir, f"helm-{name}.yaml")
        text = open(path).read()
        docs = [d for d in yaml.safe_load_all(text) if d]
        print(f"-- helm template: {name} ({RENDERS[name]}), {len(docs)} objects", flush=True)
        check_render(name, docs, bin_path, source_rules, render_dir)
        if name == "default":
            # Byte for byte: the rule file from `groups:` on, indented under spec, so Prometheus's
            # own {{ $labels.x }} / {{ $value }} templates come out of Helm untouched.
            groups = source_text[source_text.index("\ngroups:") + 1:].rstrip("\n")
            block = "\n".join("  " + line for line in groups.split("\n"))
            templates = re.findall(r"\{\{.*?\}\}", groups)
            check(f"default: the rule file's text, with its {len(templates)} Prometheus templates, is in the render byte for byte",
                  templates and block in text)
    # values.schema.json: the bad values helm.sh tried were all refused, each by the schema.
    rejected = open(os.path.join(render_dir, "rejected.txt")).read().split("\n")
    cases = [line.split("\t", 2) for line in rejected if line]
    for case, verdict, detail in cases:
        check(f"schema: helm template refuses {case}", verdict == "refused", detail)
    check("schema: the bad values were tried", len(cases) >= 8, len(cases))
    passed = sum(vm.RESULTS)
    failed = len(vm.RESULTS) - passed
    print(f"helm: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
