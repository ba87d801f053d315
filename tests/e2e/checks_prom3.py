#!/usr/bin/env python3
"""What Prometheus 3 adds to the end-to-end test (tests/e2e/run.sh runs it when the Prometheus
under test is 3.x). Standard library only; one PASS/FAIL line per check, then
"checks (Prometheus 3): N passed, M failed"; exits 1 when a check failed.

- Exemplars (`--enable-feature=exemplar-storage`): /api/v1/query_exemplars for
  hubble_noise_flows_total{class="unexpected"} returns an exemplar whose uuid and node are those
  of an unexpected flow of the replayed recording (`run --replay --loop` gives later passes the
  uuid `<uuid>-<pass>`).
- The scrape protocol: job "hubble-noise" (Prometheus' default protocols, OpenMetrics first)
  stores exemplars; job "hubble-noise-text" (`scrape_protocols: [PrometheusText0.0.4]`) scrapes
  the same instance and stores none. And from the daemon: /metrics fetched with the Accept
  header Prometheus really sent for each job (recorded by accept_probe.py) answers OpenMetrics
  with exemplars, and classic text without, respectively.
"""
import argparse
import base64
import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree from importing checks.py
from checks import check, get, prom_query, wait_for, RESULTS  # noqa: E402

OPENMETRICS = "application/openmetrics-text"
CLASSIC = "text/plain; version=0.0.4"


def exemplars(prom, selector, window=600):
    now = time.time()
    url = f"{prom}/api/v1/query_exemplars?" + urllib.parse.urlencode(
        {"query": selector, "start": f"{now - window:.3f}", "end": f"{now + 60:.3f}"})
    r = get(url)
    if r.get("status") != "success":
        raise ValueError(f"query_exemplars {selector}: {r}")
    return [(s["seriesLabels"], e) for s in r["data"] for e in s["exemplars"]]


def recording_uuid(uuid, known):
    """The recording's uuid behind an exemplar's uuid (a looped pass appends -<pass>), or None."""
    if uuid in known:
        return uuid
    m = re.fullmatch(r"(.+)-(\d+)", uuid)
    return m[1] if m and m[1] in known else None


def fetch_metrics(url, accept, ca_file=None, basic_auth=None):
    """GET url with Accept; over TLS trusting ca_file, with basic auth "user:password"."""
    headers = {"Accept": accept}
    if basic_auth:
        headers["Authorization"] = "Basic " + base64.b64encode(basic_auth.encode()).decode()
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else None
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prom", required=True)
    ap.add_argument("--metrics", required=True, help="/metrics URL of the instance both jobs scrape")
    ap.add_argument("--ca-file", help="CA of the daemon's TLS certificate (an https --metrics)")
    ap.add_argument("--basic-auth", help="user:password for --metrics")
    ap.add_argument("--accept-dir", required=True, help="accept_probe.py's folder")
    ap.add_argument("--classified", required=True, help="`replay --format jsonl` of the recording")
    ap.add_argument("--version", required=True, help="the Prometheus version expected")
    ap.add_argument("--timeout", type=float, default=30, help="seconds for each wait")
    a = ap.parse_args()

    def deadline():
        # Each wait has its own: one failing check does not starve the next ones.
        return time.monotonic() + a.timeout

    build = get(f"{a.prom}/api/v1/status/buildinfo")["data"]
    check(f"Prometheus reports version {a.version}", build.get("version") == a.version,
          json.dumps(build))

    unexpected = {}
    for line in open(a.classified):
        f = json.loads(line)
        if f["class"] == "unexpected" and f.get("uuid"):
            unexpected[f["uuid"]] = f["node"]

    # 1. An exemplar stored by Prometheus names an unexpected flow of the recording.
    sel = 'hubble_noise_flows_total{job="hubble-noise",class="unexpected"}'
    got = wait_for(deadline(), "an exemplar of the unexpected flows", lambda: exemplars(a.prom, sel))
    check("Prometheus stores exemplars of hubble_noise_flows_total{class=\"unexpected\"}", got,
          f"none for {sel}")
    if got:
        good = []
        for series, e in got:
            uuid = e["labels"].get("uuid", "")
            base = recording_uuid(uuid, unexpected)
            if base and e["labels"].get("node") == unexpected[base]:
                good.append((series, e, base))
        check("an exemplar's uuid and node are those of an unexpected flow of the recording",
              good, json.dumps(got[:3]))
        if good:
            series, e, base = good[0]
            print(f"  exemplar: uuid={e['labels']['uuid']} node={e['labels']['node']} "
                  f"(recording uuid {base}) on {series.get('instance')} "
                  f"reason={series.get('reason')} value={e['value']} at {e['timestamp']}",
                  flush=True)
        expected = exemplars(a.prom, 'hubble_noise_flows_total{class="expected"}')
        check("expected series carry no exemplars", not expected, json.dumps(expected[:3]))

    # 2. The scrape protocol, from what Prometheus stored: the classic-text job has the series
    #    of the same instance, and no exemplar.
    text_sel = 'hubble_noise_flows_total{job="hubble-noise-text",class="unexpected"}'
    up_text = wait_for(deadline(), "job hubble-noise-text up",
                       lambda: (prom_query(a.prom, f'up{{job="hubble-noise-text"}} == 1')
                                .get("data", {}).get("result")))
    check("job hubble-noise-text (scrape_protocols: [PrometheusText0.0.4]) scrapes", up_text)
    series = prom_query(a.prom, text_sel).get("data", {}).get("result", [])
    check("job hubble-noise-text stores the unexpected series", series, f"no data for {text_sel}")
    # Several scrapes of both jobs have passed since the first exemplar was stored.
    time.sleep(3)
    text_ex = exemplars(a.prom, text_sel)
    inst = series[0]["metric"]["instance"] if series else ""
    om_ex = exemplars(a.prom, 'hubble_noise_flows_total{job="hubble-noise",instance="%s",'
                              'class="unexpected"}' % inst)
    check(f"job hubble-noise (OpenMetrics) stores exemplars of that instance ({inst})", om_ex)
    check("job hubble-noise-text (classic text) stores no exemplars", not text_ex,
          json.dumps(text_ex[:3]))

    # 3. The scrape protocol, from the daemon: the Accept headers Prometheus 3 sent.
    for job, want_om in (("openmetrics", True), ("text", False)):
        path = f"{a.accept_dir}/{job}.accept"
        accept = wait_for(deadline(), f"the Accept header of probe job {job}",
                          lambda: open(path).read().strip() or None)
        if not check(f"Prometheus' Accept header for the {job} job recorded", accept):
            continue
        print(f"  Accept ({job}): {accept}", flush=True)
        ctype, body = fetch_metrics(a.metrics, accept, a.ca_file, a.basic_auth)
        has_exemplar = " # {" in body
        if want_om:
            check(f"hubble-noise answers OpenMetrics, with exemplars, to the {job} job's Accept",
                  ctype.startswith(OPENMETRICS) and has_exemplar and body.endswith("# EOF\n"),
                  f"Content-Type {ctype!r}, exemplars {has_exemplar}")
        else:
            check(f"hubble-noise answers classic text, without exemplars, to the {job} job's Accept",
                  ctype.startswith(CLASSIC) and not has_exemplar and "# EOF" not in body,
                  f"Content-Type {ctype!r}, exemplars {has_exemplar}")
        print(f"  Content-Type ({job}): {ctype}", flush=True)

    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print(f"checks (Prometheus 3): {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
        print(f"FAIL checks (Prometheus 3) could not run: {e!r}", flush=True)
        sys.exit(1)
