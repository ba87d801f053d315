#!/usr/bin/env python3
"""Writes the hand-made and fixture-derived seeds of the text targets into fuzz/corpus/.

    python3 fuzz/seeds.py

The seeds of grpc_bytes and grpc_structured are binary: `cargo run -p hubble-noise-fuzz --
--write-seeds` writes them (frames of the same recordings). Regression inputs of findings
(`regression-*`) are added by hand and never rewritten here. Run from the repository root.
"""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def lines(path):
    return [l for l in (ROOT / path).read_bytes().split(b"\n") if l.strip()]


# ---------------------------------------------------------------- json_line
recording = lines("examples/recording.ndjson")
write("json_line", "example-dns-answer.json", recording[0])
write("json_line", "example-drop.json", recording[1])
write("json_line", "example-twin.json", recording[2])
write("json_line", "example-recording.ndjson", b"\n".join(recording) + b"\n")
write("json_line", "dns-fixture.ndjson", (ROOT / "tests/fixtures/dns/recording.ndjson").read_bytes())
write("json_line", "policies-fixture.ndjson",
      (ROOT / "tests/fixtures/policies/recording.ndjson").read_bytes())
write("json_line", "peer-cf2cnp.ndjson",
      (ROOT / "tests/fixtures/peers/cf2cnp-dns-world.ndjson").read_bytes())
for i, l in enumerate(lines("fuzz/src/samples.ndjson")[6:]):
    write("json_line", f"extreme-{i}.json", l)


def flow(**f):
    return json.dumps({"flow": f, "node_name": "prod/worker-1"})


hand = {
    "drop-reasons-199-200-201-250.ndjson": "\n".join(
        flow(uuid=f"r{r}", verdict="DROPPED", drop_reason_desc=r, drop_reason=r)
        for r in (199, 200, 201, 250)
    ),
    "unknown-names.json": flow(uuid="u", verdict="DROPPED", drop_reason_desc="NEW_REASON",
                               traffic_direction="SIDEWAYS", Type="L9"),
    "unknown-verdict.json": flow(uuid="v", verdict=99),
    "verdict-number.json": flow(uuid="n", verdict=2, drop_reason=181),
    "aggregate.json": flow(uuid="a", verdict="DROPPED",
                           aggregate={"ingress_flow_count": 4294967295,
                                      "egress_flow_count": 1,
                                      "unknown_direction_flow_count": 0}),
    "time-ends.ndjson": "\n".join([
        flow(uuid="t1", verdict="AUDIT", time="0001-01-01T00:00:00Z"),
        flow(uuid="t2", verdict="AUDIT", time="9999-12-31T23:59:59.999999999Z"),
        flow(uuid="t3", verdict="AUDIT", time="1970-01-01T00:00:00Z"),
    ]),
    "lost-events-max.json": json.dumps(
        {"lost_events": {"source": "PERF_EVENT_RING_BUFFER",
                         "num_events_lost": "18446744073709551615", "cpu": 3}}),
    "lost-events-camel.json": json.dumps({"lostEvents": {"source": 17, "numEventsLost": 5}}),
    "node-status.json": json.dumps(
        {"node_status": {"state_change": "NODE_UNAVAILABLE", "node_names": ["prod/a", "prod/b"]}}),
    "node-status-camel.json": json.dumps(
        {"nodeStatus": {"stateChange": 77, "nodeNames": ["x"], "message": "m"}}),
    "escaped-key.json": '{"flow":{"verd\\u0069ct":"DROPPED","uuid":"e"}}',
    "forwarded-skipped.json": flow(uuid="f", verdict="FORWARDED"),
    "label-escapes.json": flow(uuid="l", verdict="DROPPED",
                               source={"namespace": "a\"b\\c\nd\u001fe", "pod_name": "\u0000"},
                               node_name="n\n# EOF"),
    "dns-then-drop.ndjson": "\n".join([
        flow(uuid="d1", verdict="FORWARDED", IP={"source": "10.0.0.10", "destination": "10.0.1.5"},
             l4={"UDP": {"source_port": 53, "destination_port": 5353}},
             destination={"namespace": "shop", "pod_name": "p"},
             l7={"type": "RESPONSE", "dns": {"query": "x.example.com.", "ips": ["203.0.113.9"],
                                             "ttl": 4294967295, "cnames": ["Y.example.com."]}}),
        flow(uuid="d2", verdict="DROPPED", IP={"source": "10.0.1.5", "destination": "203.0.113.9"},
             source={"namespace": "shop", "pod_name": "p"}, traffic_direction="EGRESS",
             l4={"TCP": {"destination_port": 443}}),
    ]),
    "blank-and-crlf.ndjson": "\r\n\n  \n" + flow(uuid="c", verdict="AUDIT") + "\r\n",
    "invalid-utf8.json": b'{"flow":{"uuid":"\xff\xfe","verdict":"DROPPED"}}',
    "nul.json": b'{"flow":{"uuid":"\x00","verdict":"DROPPED"}}',
    "deep.json": '{"x":' * 200 + "1" + "}" * 200,
    "numbers-as-strings.json": flow(uuid="s", verdict="DROPPED",
                                    time={"seconds": "9223372036854775807"}),
}
for name, data in hand.items():
    write("json_line", name, data)

# ---------------------------------------------------------------- rules
for p in sorted((ROOT / "tests/fixtures/rules").glob("*.toml")):
    write("rules", p.name, p.read_bytes())
write("rules", "example-rules.toml", (ROOT / "examples/rules.toml").read_bytes())
write("rules", "every-key.toml", """
[[rule]]
name = "all"
class = "unexpected"
reason = "r"
expires = 2027-06-01
[rule.match]
verdict = ["DROPPED"]
direction = "ingress"
drop_reason = ["POLICY_DENIED", "IGMP_HANDLED", "MULTICAST_HANDLED"]
policy_log = ["t*"]
node = ["prod/*"]
[rule.match.source]
namespace = ["a*"]
pod = ["p-*"]
workload = ["w"]
labels = ["k8s:app=x", "team", "app.kubernetes.io/name=y"]
entity = ["world-ipv6", "remote-node"]
cidr = ["::/0", "10.0.0.0/8"]
fqdn = ["*.*.example.com", "a*b*c*d*e*f*g.example"]
port = ["0-65535/SCTP", "53/UDP", "443"]
[rule.match.destination]
fqdn = ["*"]
""")
write("rules", "fqdn-stars.toml", """
[[rule]]
name = "stars"
owner = "o"
comment = "c"
[rule.match.destination]
fqdn = ["*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "**.x", "*.", ".*"]
""")

# ---------------------------------------------------------------- policy
for p in sorted((ROOT / "tests/fixtures/policies/policies").glob("*.yaml")):
    write("policy", p.name, p.read_bytes())
write("policy", "ccnp-multidoc.yaml", """---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: deny-imds}
spec:
  nodeSelector: {}
  log: {value: expected-imds}
  egressDeny:
    - toCIDR: [169.254.169.254/32]
    - toEntities: [world, kube-apiserver]
      toPorts: [{ports: [{port: "8000", endPort: 9000, protocol: UDP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ing, namespace: shop}
specs:
  - endpointSelector:
      matchExpressions:
        - {key: app, operator: In, values: [a, b]}
        - {key: tier, operator: DoesNotExist}
    log: {value: vendor-x}
    ingressDeny:
      - fromEntities: [remote-node]
      - fromCIDRSet: [{cidr: "2001:db8::/32", except: ["2001:db8::/64"]}]
""")
write("policy", "anchors.yaml", """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: &m {name: a, namespace: b}
spec:
  endpointSelector: &sel {matchLabels: {app: x}}
  log: {value: expected}
  egressDeny:
    - toEndpoints: [*sel]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
""")
write("policy", "laughs-small.yaml",
      'a: &a ["lol","lol"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n'
      "kind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: y}\nspec: *c\n")
write("policy", "list-empty.yaml", "apiVersion: v1\nkind: List\nitems: []\n---\n---\n")

# ---------------------------------------------------------------- config
write("config", "default-config.toml", (ROOT / "config.toml").read_bytes())
write("config", "example-config.toml", (ROOT / "examples/config.toml").read_bytes())
write("config", "dns-fixture-config.toml", (ROOT / "tests/fixtures/dns/config.toml").read_bytes())
write("config", "policies-fixture-config.toml",
      (ROOT / "tests/fixtures/policies/config.toml").read_bytes())
configs = {
    "durations-at-bounds.toml": """
[relay]
address = "https://hubble-relay:443"
server_name = "ui.hubble-relay.cilium.io"
backoff_initial = "1d"
backoff_max = "24h"
connect_timeout = "365d"
keepalive_interval = "8760h"
keepalive_timeout = "1ms"
idle_timeout = "525600m"
resume_overlap = "0"
max_message_size = 1024
[metrics]
client_stall_timeout = "1ms"
pipeline_stall_timeout = "1ms"
max_series = 100000000
[classify]
dedup_window = 100000000
[dns]
max_entries = 100000000
min_ttl = "365d"
""",
    "backoff-1e19s.toml": '[relay]\nbackoff_initial = "10000000000000000000s"\n',
    "duration-overflow.toml": '[relay]\nbackoff_max = "18446744073709551615d"\n',
    "stall-timeout-huge.toml": '[metrics]\npipeline_stall_timeout = "18446744073709551615s"\n',
    "max-message-size-huge.toml": "[relay]\nmax_message_size = 9223372036854775807\n",
    "labels-all.toml": '[metrics]\nlabels = ["source_namespace", "source_workload", "source_pod", '
                       '"destination_namespace", "destination_workload", "destination_pod", '
                       '"destination_port", "destination_name", "drop_reason", "node", '
                       '"attribution"]\nmax_series = 1\nexemplars = false\n',
    "inline-rules.toml": """
[classify]
expected_log_tags = ["vendor-*", "a*b*c"]
count_policy_drop_notifications = true
[dns]
scope = "cluster"
learn = false
[log]
format = "json"
level = "hubble_noise=debug,h2[{stream}]=off,warn"
[[rule]]
name = "inline"
owner = "o"
comment = "c"
[rule.match.destination]
cidr = ["203.0.113.0/24"]
""",
    "mtls-paths.toml": '[relay]\naddress = "https://relay:4245"\nca_file = "ca.pem"\n'
                       'cert_file = "c.pem"\nkey_file = "k.pem"\nnodes = ["prod/*", ""]\n',
    "bad-address.toml": '[relay]\naddress = "http://[::1"\n',
    "unknown-key.toml": "[relay]\nbogus = 1\n",
}
for name, data in configs.items():
    write("config", name, data)
