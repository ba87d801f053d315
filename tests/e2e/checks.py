#!/usr/bin/env python3
"""Assertions of the end-to-end test (tests/e2e/run.sh) against a running Prometheus and
Alertmanager. Standard library only. Prints one PASS/FAIL line per check and, last,
"checks: N passed, M failed"; exits 1 when a check failed.
"""
import argparse
import json
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


def substitute(expr):
    return (expr.replace("$__rate_interval", "1m")
            .replace('"$namespace"', '".*"').replace('"$class"', '".*"'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prom", required=True)
    ap.add_argument("--am", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--timeout", type=float, default=90)
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

    # 4. Every dashboard query is valid PromQL and returns data from this Prometheus.
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
