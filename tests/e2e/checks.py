#!/usr/bin/env python3
"""Assertions of the end-to-end test (tests/e2e/run.sh) against a running Prometheus and
Alertmanager. Standard library only. Prints one PASS/FAIL line per check and, last,
"checks: N passed, M failed"; exits 1 when a check failed.
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Dashboard queries that may legitimately return no data in this test. Every query must still be
# valid PromQL. Empty on purpose: the e2e setup gives every panel data (the rules include one
# expiring soon, one expired and unused ones; counters of bounded labels exist at 0).
ALLOW_EMPTY = set()

RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""),
          flush=True)
    return ok


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def prom_query(prom, expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return get(url)
    except urllib.error.HTTPError as e:
        return json.loads(e.read().decode() or "{}") | {"status": "error", "http": e.code}


def am_alerts(am, name):
    url = f"{am}/api/v2/alerts?" + urllib.parse.urlencode(
        {"filter": f'alertname="{name}"', "active": "true", "silenced": "false"})
    return get(url)


def prom_alerts(prom, name):
    return [a for a in get(f"{prom}/api/v1/alerts")["data"]["alerts"]
            if a["labels"].get("alertname") == name]


def wait_for(deadline, what, fn, step=0.5):
    """Polls fn() until it returns a truthy value or the deadline passes; returns the value."""
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
            last = None
            print(f"  waiting for {what}: {e}", file=sys.stderr)
        if last:
            return last
        time.sleep(step)
    return last


def scalar(prom, expr):
    r = prom_query(prom, expr)
    res = r.get("data", {}).get("result", [])
    return float(res[0]["value"][1]) if res else None


def dashboard_queries(path):
    """Every PromQL expression of the dashboard: panel targets (rows included) and, for the
    label_values() variables, an equivalent query."""
    d = json.load(open(path))
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((f"panel '{p['title']}' {t['refId']}", t["expr"]))
            walk(p.get("panels", []))

    walk(d["panels"])
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q.strip())
        if not m:
            out.append((f"variable {v['name']}", q))
        else:
            out.append((f"variable {v['name']}", f"count by ({m[2]}) ({m[1]}{{{m[2]}!=\"\"}})"))
    return out


# The fields of a flow log line (docs/LOKI.md): replay --format jsonl's, then five more.
FLOW_LOG_FIELDS = ["time", "uuid", "node", "verdict", "drop_reason", "direction", "class", "reason",
                   "rule", "attribution", "source", "destination", "names", "source_namespace",
                   "source_workload", "destination_namespace", "destination_workload",
                   "destination_port"]


def metrics_sum(url, name, having=()):
    """The sum of the series `name` of a /metrics page whose labels contain every `having`."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] == name and all(h in series for h in having):
            total += float(value)
    return total


def check_flow_log(a, deadline):
    """The flow log instance (a recording replayed once, `[export]` to a rotated file): every
    line is a JSON object with the documented fields, and their count equals the unexpected
    flows counted in its /metrics and in Prometheus."""
    def settled():
        unexpected = metrics_sum(a.flowlog_metrics, "hubble_noise_flows_total", ['class="unexpected"'])
        lines = metrics_sum(a.flowlog_metrics, "hubble_noise_export_lines_total")
        return (unexpected, lines) if unexpected >= 200 and lines == unexpected else None
    got = wait_for(deadline, "the flow log written", settled)
    check("flow log: hubble_noise_export_lines_total equals the unexpected flows counted", got,
          "never settled")
    dropped = metrics_sum(a.flowlog_metrics, "hubble_noise_export_dropped_total")
    check("flow log: nothing dropped", dropped == 0, f"{dropped} dropped")
    base = a.flowlog_file
    files = [base] + [f"{base}.{i}" for i in range(1, 1001) if os.path.exists(f"{base}.{i}")]
    records, bad = [], []
    for path in reversed(files):
        for line in open(path):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                bad.append(f"{path}: {e}")
    check("flow log: every line is JSON", not bad, "; ".join(bad[:3]))
    missing = [r for r in records if not isinstance(r, dict) or any(k not in r for k in FLOW_LOG_FIELDS)]
    check("flow log: every line has the documented fields", records and not missing,
          json.dumps(missing[:1]))
    check("flow log: every line is an unexpected flow",
          all(r.get("class") == "unexpected" for r in records))
    uuids = [r.get("uuid") for r in records]
    check("flow log: each flow once", len(set(uuids)) == len(uuids))
    unexpected = got[0] if got else None
    check("flow log: the lines read back = the unexpected flows counted in /metrics",
          len(records) == unexpected, f"{len(records)} lines, {unexpected} counted")
    sizes = {p: os.path.getsize(p) for p in files}
    check(f"flow log: rotated at max_size ({len(files)} files, each <= {a.flowlog_max_size} bytes)",
          len(files) > 1 and all(n <= a.flowlog_max_size for n in sizes.values()), sizes)
    in_prom = wait_for(deadline, "Prometheus scrapes the flow log instance", lambda: scalar(
        a.prom, 'sum(hubble_noise_flows_total{job="hubble-noise-flowlog",class="unexpected"})')
        == len(records))
    check("flow log: the lines read back = the unexpected flows in Prometheus", in_prom)


def substitute(expr):
    return (expr.replace("$__rate_interval", "1m")
            .replace('"$namespace"', '".*"').replace('"$class"', '".*"'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prom", required=True)
    ap.add_argument("--am", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--flowlog-metrics", required=True, help="/metrics of the flow log instance")
    ap.add_argument("--flowlog-file", required=True, help="its export.path")
    ap.add_argument("--flowlog-max-size", type=int, required=True, help="its export.max_size")
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout

    # Both targets scraped.
    up = wait_for(deadline, "two targets up",
                  lambda: scalar(a.prom, 'count(up{job="hubble-noise"} == 1)') == 2)
    check("Prometheus scrapes both hubble-noise instances", up)

    # 1. An unexpected drop fires HubbleNoiseUnexpectedFlows at Alertmanager (namespace shop).
    t0 = time.monotonic()
    fired = wait_for(deadline, "HubbleNoiseUnexpectedFlows{namespace=shop} at Alertmanager",
                     lambda: [x for x in am_alerts(a.am, "HubbleNoiseUnexpectedFlows")
                              if x["labels"].get("namespace") == "shop"])
    check("unexpected drops in namespace shop fire HubbleNoiseUnexpectedFlows at Alertmanager",
          fired)
    if fired:
        ann = fired[0]["annotations"]
        check("the alert carries severity, summary, description and dashboard link",
              fired[0]["labels"].get("severity") == "warning" and ann.get("summary")
              and "What to do" in ann.get("description", "")
              and ann.get("dashboard", "").startswith("/d/hubble-noise"), json.dumps(fired[0]))
        check("the alert links to the flow page filtered by its namespace (flows_url)",
              ann.get("flows_url") == "http://localhost:9967/?namespace=shop", ann.get("flows_url"))
        print(f"  fired {time.monotonic() - t0:.1f}s after both targets were up", flush=True)

    # 2. Expected drops alone never fire, whatever their rate: instance "calm" sends only
    #    expected drops, faster than the other one; give it a few more evaluations.
    time.sleep(3)
    exp_rate = scalar(a.prom, 'sum(rate(hubble_noise_flows_total{class="expected",source_namespace="calm"}[10s]))')
    unexp = scalar(a.prom, 'sum(hubble_noise_flows_total{class="unexpected",source_namespace="calm"})')
    check("namespace calm has expected drops and no unexpected ones",
          exp_rate and exp_rate > 0 and not unexp, f"expected rate {exp_rate}, unexpected {unexp}")
    calm_prom = [x for x in prom_alerts(a.prom, "HubbleNoiseUnexpectedFlows")
                 if x["labels"].get("namespace") == "calm"]
    calm_am = [x for x in am_alerts(a.am, "HubbleNoiseUnexpectedFlows")
               if x["labels"].get("namespace") == "calm"]
    check("expected drops only (namespace calm) fire no HubbleNoiseUnexpectedFlows, pending or firing",
          not calm_prom and not calm_am, json.dumps(calm_prom + calm_am))

    # 3. The rule lifecycle alerts reach Alertmanager too.
    soon = wait_for(deadline, "HubbleNoiseRuleExpiringSoon",
                    lambda: [x for x in am_alerts(a.am, "HubbleNoiseRuleExpiringSoon")
                             if x["labels"].get("rule") == "e2e-expiring-soon"])
    check("a rule expiring in 3 days fires HubbleNoiseRuleExpiringSoon", soon)
    expired = wait_for(deadline, "HubbleNoiseRuleExpired",
                       lambda: am_alerts(a.am, "HubbleNoiseRuleExpired"))
    check("an expired rule fires HubbleNoiseRuleExpired", expired)
    absent = prom_alerts(a.prom, "HubbleNoiseAbsent")
    check("HubbleNoiseAbsent is silent while the targets are up", not absent, json.dumps(absent))

    # 4. The flow log, read back.
    check_flow_log(a, deadline)

    # 5. Every dashboard query is valid PromQL and returns data from this Prometheus.
    for name, expr in dashboard_queries(a.dashboard):
        q = substitute(expr)
        r = prom_query(a.prom, q)
        if r.get("status") != "success":
            check(f"dashboard {name} is valid PromQL", False, f"{q}: {r.get('error')}")
            continue
        n = len(r["data"]["result"])
        if name in ALLOW_EMPTY:
            check(f"dashboard {name} is valid PromQL (may be empty)", True)
        else:
            check(f"dashboard {name} returns data", n > 0, f"no data for {q}")

    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print(f"checks: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
