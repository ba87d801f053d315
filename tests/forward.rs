//! Newer Hubble than our schema, aggregated flows and hostile values (PRODUCT.md §2, §3, §9):
//! `replay`, `check` and the daemon against a fake relay (a tonic server on 127.0.0.1:0).
//! No timed assertions: every wait polls `/metrics` until a deadline.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::cli;
use common::fake_relay::{FakeRelay, Running, Step, T0, flow, start_relay, test_config, ts};
use common::{http, sum, wait_for};
use hubble_noise::api::flow::{
    Aggregate, CiliumEventType, Dns, Endpoint, Flow, Ip, Layer4, Layer7, LostEvent, Policy, Sctp,
    Tcp, Udp, Verdict, layer4, layer7,
};
use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::relay::NodeStatusEvent;
use hubble_noise::config::{Config, Loaded};
use hubble_noise::daemon::{Input, run_daemon};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn start_daemon(cfg: Config, input: Input) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let loaded = Loaded {
        config: cfg,
        path: None,
        text: String::new(),
    };
    tokio::spawn(async move {
        run_daemon(loaded, input, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
    }
}

/// A config whose flow series carry the drop reason and the source namespace.
fn config(relay: &str) -> Config {
    let mut c = test_config(relay);
    c.metrics.labels = vec!["drop_reason".into(), "source_namespace".into()];
    c
}

fn flows_total(text: &str, having: &[&str]) -> f64 {
    sum(text, "hubble_noise_flows_total", having)
}

/// `promtool check metrics` on `text`: `false` (and a note) when promtool is not installed
/// and HUBBLE_NOISE_REQUIRE_TOOLS is not 1.
fn promtool_accepts(text: &str, what: &str) -> bool {
    promtool(&["check", "metrics"], text, what)
}

/// Runs promtool with `text` on standard input; see [`promtool_accepts`].
fn promtool(args: &[&str], text: &str, what: &str) -> bool {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("HUBBLE_NOISE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "promtool is required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but not installed"
            );
            println!("skipped: promtool not installed ({what})");
            return false;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} refused the {what}:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Prometheus' own OpenMetrics parser on `text`. `promtool check metrics` reads only the classic
/// text format (it stops at the first exemplar: "expected integer as timestamp, got #"), so
/// the OpenMetrics body goes through `promtool tsdb create-blocks-from openmetrics`, which
/// parses it with the parser Prometheus scrapes with. Backfilling needs a timestamp on every
/// sample: one is written after each value (before its exemplar), nothing else is changed.
fn openmetrics_parser_accepts(text: &str, what: &str) -> bool {
    let mut stamped = String::with_capacity(text.len() + 16 * 1024);
    for line in text.lines() {
        if line.starts_with('#') {
            stamped.push_str(line);
        } else {
            // The exemplar starts at the first `#` outside a quoted label value.
            let (mut quoted, mut escaped, mut cut) = (false, false, line.len());
            for (i, c) in line.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if quoted => escaped = true,
                    '"' => quoted = !quoted,
                    '#' if !quoted => {
                        cut = i;
                        break;
                    }
                    _ => {}
                }
            }
            let (sample, exemplar) = line.split_at(cut);
            stamped.push_str(sample.trim_end());
            stamped.push_str(" 1790000000");
            if !exemplar.is_empty() {
                stamped.push(' ');
                stamped.push_str(exemplar);
            }
        }
        stamped.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metrics.om");
    std::fs::write(&input, &stamped).unwrap();
    let out = dir.path().join("blocks");
    promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        "",
        what,
    )
}

// ------------------------------------------------------------ newer enum values

/// One flow of a newer Cilium: its JSON line, the same flow as protobuf (`None` when only
/// JSON can carry it: a name), and the labels it must get.
struct Case {
    ns: &'static str,
    json: String,
    proto: Option<Flow>,
    drop_reason: &'static str,
    direction: &'static str,
}

fn newer_flow(ns: &str, desc: i32, numeric: u32, direction: i32) -> Flow {
    Flow {
        uuid: format!("uuid-{ns}"),
        verdict: Verdict::Dropped as i32,
        drop_reason_desc: desc,
        drop_reason: numeric,
        traffic_direction: direction,
        time: Some(ts(T0)),
        source: Some(Endpoint {
            namespace: ns.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn newer_cases() -> Vec<Case> {
    let line = |ns: &str, fields: &str| {
        format!(
            r#"{{"flow":{{"uuid":"uuid-{ns}","verdict":"DROPPED",{fields},"source":{{"namespace":"{ns}"}},"time":"2026-09-21T13:46:40Z"}},"node_name":"n1"}}"#
        )
    };
    let case = |ns, fields: &str, proto, drop_reason, direction| Case {
        ns,
        json: line(ns, fields),
        proto,
        drop_reason,
        direction,
    };
    vec![
        case(
            "igmp-handled-name",
            r#""drop_reason_desc":"IGMP_HANDLED","drop_reason":199,"traffic_direction":"INGRESS""#,
            Some(newer_flow("igmp-handled-name", 199, 199, 1)),
            "IGMP_HANDLED",
            "ingress",
        ),
        case(
            "igmp-handled-number",
            r#""drop_reason_desc":199,"drop_reason":199,"traffic_direction":"EGRESS""#,
            Some(newer_flow("igmp-handled-number", 199, 199, 2)),
            "IGMP_HANDLED",
            "egress",
        ),
        case(
            "igmp-subscribed-name",
            r#""drop_reason_desc":"IGMP_SUBSCRIBED","traffic_direction":"EGRESS""#,
            Some(newer_flow("igmp-subscribed-name", 200, 0, 2)),
            "IGMP_SUBSCRIBED",
            "egress",
        ),
        case(
            "igmp-subscribed-number",
            r#""drop_reason_desc":200,"traffic_direction":"EGRESS""#,
            Some(newer_flow("igmp-subscribed-number", 200, 0, 2)),
            "IGMP_SUBSCRIBED",
            "egress",
        ),
        case(
            "multicast-name",
            r#""drop_reason_desc":"MULTICAST_HANDLED","traffic_direction":"INGRESS""#,
            Some(newer_flow("multicast-name", 201, 0, 1)),
            "MULTICAST_HANDLED",
            "ingress",
        ),
        case(
            "multicast-number",
            r#""drop_reason_desc":201,"traffic_direction":"INGRESS""#,
            Some(newer_flow("multicast-number", 201, 0, 1)),
            "MULTICAST_HANDLED",
            "ingress",
        ),
        // drop_reason_desc absent: the deprecated number decides.
        case(
            "numeric-only",
            r#""drop_reason":201,"traffic_direction":"INGRESS""#,
            Some(newer_flow("numeric-only", 0, 201, 1)),
            "MULTICAST_HANDLED",
            "ingress",
        ),
        // No release has 250 (nor the never-released 206): the number.
        case(
            "unreleased-250",
            r#""drop_reason_desc":250,"drop_reason":250,"traffic_direction":"EGRESS""#,
            Some(newer_flow("unreleased-250", 250, 250, 2)),
            "250",
            "egress",
        ),
        case(
            "unreleased-206",
            r#""drop_reason_desc":206,"traffic_direction":"EGRESS""#,
            Some(newer_flow("unreleased-206", 206, 0, 2)),
            "206",
            "egress",
        ),
        // An unknown drop reason: the known deprecated number decides.
        case(
            "desc-unknown-numeric-known",
            r#""drop_reason_desc":250,"drop_reason":133,"traffic_direction":"EGRESS""#,
            Some(newer_flow("desc-unknown-numeric-known", 250, 133, 2)),
            "POLICY_DENIED",
            "egress",
        ),
        // A direction no release has.
        case(
            "direction-7",
            r#""drop_reason_desc":"POLICY_DENIED","traffic_direction":7"#,
            Some(newer_flow("direction-7", 133, 0, 7)),
            "POLICY_DENIED",
            "7",
        ),
        // Names only JSON can carry: a newer `hubble` printing names we lack.
        case(
            "unknown-name",
            r#""drop_reason_desc":"DROP_FROM_THE_FUTURE","traffic_direction":"EGRESS""#,
            None,
            "DROP_FROM_THE_FUTURE",
            "egress",
        ),
        case(
            "unknown-direction-name",
            r#""drop_reason_desc":201,"traffic_direction":"SIDEWAYS""#,
            None,
            "MULTICAST_HANDLED",
            "sideways",
        ),
    ]
}

/// Lines that are not counted, whatever enum values they hold: an unknown verdict (by name
/// and by number) and a forwarded flow with an unknown drop reason.
const NOT_COUNTED: &str = concat!(
    r#"{"flow":{"uuid":"nc1","verdict":"VERDICT_FROM_THE_FUTURE","drop_reason_desc":250,"source":{"namespace":"x"}}}"#,
    "\n",
    r#"{"flow":{"uuid":"nc2","verdict":99,"drop_reason_desc":"IGMP_HANDLED","source":{"namespace":"x"}}}"#,
    "\n",
    r#"{"flow":{"uuid":"nc3","verdict":"FORWARDED","drop_reason_desc":250,"Type":"L9","source":{"namespace":"x"}}}"#,
    "\n",
);

/// `replay` in `dir` with an empty config (no rules: every flow is unexpected).
fn replay(dir: &Path, args: &[&str]) -> std::process::Output {
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let mut all = vec!["replay", "-c", "config.toml"];
    all.extend_from_slice(args);
    cli::run_in(dir, &all)
}

fn write_recording(dir: &Path, cases: &[Case]) -> std::path::PathBuf {
    let mut text: String = cases.iter().map(|c| format!("{}\n", c.json)).collect();
    text.push_str(NOT_COUNTED);
    let path = dir.join("newer.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn replay_counts_newer_drop_reasons_and_directions_with_their_labels() {
    let cases = newer_cases();
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path(), &cases);
    let out = replay(dir.path(), &["--format", "jsonl", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("0 unreadable"), "{stderr}");
    let records: Vec<serde_json::Value> = cli::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        cases.len(),
        "every DROPPED flow, nothing else"
    );
    for (c, r) in cases.iter().zip(&records) {
        assert_eq!(r["uuid"], format!("uuid-{}", c.ns));
        assert_eq!(r["drop_reason"], c.drop_reason, "{}", c.ns);
        assert_eq!(r["direction"], c.direction, "{}", c.ns);
        assert_eq!(r["class"], "unexpected", "{}", c.ns);
    }
}

#[tokio::test]
async fn newer_enum_values_get_the_same_labels_over_grpc_and_from_a_recording() {
    let cases = newer_cases();
    // Over gRPC: every case protobuf can carry.
    let steps = cases
        .iter()
        .filter_map(|c| c.proto.clone())
        .map(|f| {
            Step::Send(Box::new(GetFlowsResponse {
                response_types: Some(ResponseTypes::Flow(f)),
                node_name: "n1".into(),
                time: Some(ts(T0)),
            }))
        })
        .collect();
    let r = start_relay(FakeRelay::new(vec![steps])).await;
    let grpc = start_daemon(config(&format!("http://{}", r.addr)), Input::Relay).await;
    // From a recording (`run --replay`): every case.
    let dir = tempfile::tempdir().unwrap();
    let path = write_recording(dir.path(), &cases);
    let file = start_daemon(
        config("http://127.0.0.1:1"),
        Input::Replay {
            path,
            looped: false,
            rate: None,
        },
    )
    .await;
    let over_grpc = cases.iter().filter(|c| c.proto.is_some()).count() as f64;
    for (addr, n, json) in [
        (grpc.addr, over_grpc, false),
        (file.addr, cases.len() as f64, true),
    ] {
        let text = wait_for(addr, "every newer flow", |t| flows_total(t, &[]) == n).await;
        assert_eq!(
            sum(&text, "hubble_noise_decode_errors_total", &[]),
            0.0,
            "{text}"
        );
        for c in cases.iter().filter(|c| json || c.proto.is_some()) {
            let ns = format!("source_namespace=\"{}\"", c.ns);
            let reason = format!("drop_reason=\"{}\"", c.drop_reason);
            let direction = format!("direction=\"{}\"", c.direction);
            assert_eq!(
                flows_total(&text, &[&ns, &reason, &direction, "verdict=\"DROPPED\""]),
                1.0,
                "{} (json: {json}):\n{text}",
                c.ns
            );
        }
        assert_eq!(flows_total(&text, &["source_namespace=\"x\""]), 0.0);
    }
}

// ------------------------------------------------------------ rule files

/// Every drop reason Cilium had released by v1.19.4 (its `flow.proto`): 75 reasons, 130–158
/// and 160–205, besides DROP_REASON_UNKNOWN.
const RELEASED_DROP_REASONS: [&str; 75] = [
    "INVALID_SOURCE_MAC",
    "INVALID_DESTINATION_MAC",
    "INVALID_SOURCE_IP",
    "POLICY_DENIED",
    "INVALID_PACKET_DROPPED",
    "CT_TRUNCATED_OR_INVALID_HEADER",
    "CT_MISSING_TCP_ACK_FLAG",
    "CT_UNKNOWN_L4_PROTOCOL",
    "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
    "UNSUPPORTED_L3_PROTOCOL",
    "MISSED_TAIL_CALL",
    "ERROR_WRITING_TO_PACKET",
    "UNKNOWN_L4_PROTOCOL",
    "UNKNOWN_ICMPV4_CODE",
    "UNKNOWN_ICMPV4_TYPE",
    "UNKNOWN_ICMPV6_CODE",
    "UNKNOWN_ICMPV6_TYPE",
    "ERROR_RETRIEVING_TUNNEL_KEY",
    "ERROR_RETRIEVING_TUNNEL_OPTIONS",
    "INVALID_GENEVE_OPTION",
    "UNKNOWN_L3_TARGET_ADDRESS",
    "STALE_OR_UNROUTABLE_IP",
    "NO_MATCHING_LOCAL_CONTAINER_FOUND",
    "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
    "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
    "CT_MAP_INSERTION_FAILED",
    "INVALID_IPV6_EXTENSION_HEADER",
    "IP_FRAGMENTATION_NOT_SUPPORTED",
    "SERVICE_BACKEND_NOT_FOUND",
    "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
    "FAILED_TO_INSERT_INTO_PROXYMAP",
    "REACHED_EDT_RATE_LIMITING_DROP_HORIZON",
    "UNKNOWN_CONNECTION_TRACKING_STATE",
    "LOCAL_HOST_IS_UNREACHABLE",
    "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION",
    "UNSUPPORTED_L2_PROTOCOL",
    "NO_MAPPING_FOR_NAT_MASQUERADE",
    "UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE",
    "FIB_LOOKUP_FAILED",
    "ENCAPSULATION_TRAFFIC_IS_PROHIBITED",
    "INVALID_IDENTITY",
    "UNKNOWN_SENDER",
    "NAT_NOT_NEEDED",
    "IS_A_CLUSTERIP",
    "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
    "FORBIDDEN_ICMPV6_MESSAGE",
    "DENIED_BY_LB_SRC_RANGE_CHECK",
    "SOCKET_LOOKUP_FAILED",
    "SOCKET_ASSIGN_FAILED",
    "PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL",
    "POLICY_DENY",
    "VLAN_FILTERED",
    "INVALID_VNI",
    "INVALID_TC_BUFFER",
    "NO_SID",
    "MISSING_SRV6_STATE",
    "NAT46",
    "NAT64",
    "AUTH_REQUIRED",
    "CT_NO_MAP_FOUND",
    "SNAT_NO_MAP_FOUND",
    "INVALID_CLUSTER_ID",
    "UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
    "NO_EGRESS_GATEWAY",
    "UNENCRYPTED_TRAFFIC",
    "TTL_EXCEEDED",
    "NO_NODE_ID",
    "DROP_RATE_LIMITED",
    "IGMP_HANDLED",
    "IGMP_SUBSCRIBED",
    "MULTICAST_HANDLED",
    "DROP_HOST_NOT_READY",
    "DROP_EP_NOT_READY",
    "DROP_NO_EGRESS_IP",
    "DROP_PUNT_PROXY",
];

fn check_rule(dir: &Path, reasons: &[&str]) -> std::process::Output {
    let list = reasons
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("rules.toml"),
        format!(
            "[[rule]]\nname = \"every-drop\"\nowner = \"t\"\ncomment = \"c\"\n\
             [rule.match]\nverdict = [\"DROPPED\"]\ndrop_reason = [{list}]\n\
             [rule.match.source]\nnamespace = [\"a\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[classify]\nrule_files = [\"rules.toml\"]\n",
    )
    .unwrap();
    cli::run_in(dir, &["check", "-c", "config.toml"])
}

#[test]
fn check_accepts_a_rule_naming_all_75_released_drop_reasons() {
    let mut distinct = RELEASED_DROP_REASONS.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 75);
    let dir = tempfile::tempdir().unwrap();
    let out = check_rule(dir.path(), &RELEASED_DROP_REASONS);
    assert!(
        out.status.success(),
        "{}{}",
        cli::stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_refuses_an_unreleased_drop_reason_in_one_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_rule(dir.path(), &["POLICY_DENIED", "DROP_NO_DEVICE"]);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        cli::stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = all
        .lines()
        .find(|l| l.contains("DROP_NO_DEVICE"))
        .unwrap_or_else(|| panic!("no error naming DROP_NO_DEVICE in:\n{all}"));
    assert!(line.contains("rules.toml"), "{line}");
    assert!(line.len() < 300, "{} bytes: {line}", line.len());
}

// ------------------------------------------------------------ aggregated flows

const AGGREGATED: &str = concat!(
    r#"{"flow":{"uuid":"agg1","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","traffic_direction":"EGRESS","source":{"namespace":"agg"},"aggregate":{"ingress_flow_count":3,"egress_flow_count":4,"unknown_direction_flow_count":5}},"node_name":"n1"}"#,
    "\n",
    // camelCase, counts as strings? No: uint32 is a number in JSON; one count only.
    r#"{"flow":{"uuid":"agg2","verdict":"AUDIT","traffic_direction":"EGRESS","source":{"namespace":"agg"},"aggregate":{"egressFlowCount":2}},"node_name":"n1"}"#,
    "\n",
    // An aggregate with no counts still stands for one flow.
    r#"{"flow":{"uuid":"agg3","verdict":"DROPPED","traffic_direction":"EGRESS","source":{"namespace":"agg"},"aggregate":{}},"node_name":"n1"}"#,
    "\n",
    r#"{"flow":{"uuid":"plain","verdict":"DROPPED","traffic_direction":"EGRESS","source":{"namespace":"agg"}},"node_name":"n1"}"#,
    "\n",
);

#[test]
fn replay_counts_the_flows_of_an_aggregated_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agg.jsonl");
    std::fs::write(&path, AGGREGATED).unwrap();
    let p = path.to_str().unwrap();
    let out = replay(dir.path(), &[p]);
    let table = cli::stdout(&out);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("counted 16 flow(s): 0 expected, 16 unexpected"),
        "{table}"
    );
    let out = replay(dir.path(), &["--format", "jsonl", p]);
    let flows: Vec<Option<u64>> = cli::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["flows"].as_u64())
        .collect();
    assert_eq!(flows, vec![Some(12), Some(2), Some(1), None]);
}

#[tokio::test]
async fn an_aggregated_flow_counts_its_flows_in_run_and_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agg.jsonl");
    std::fs::write(&path, AGGREGATED).unwrap();
    let file = start_daemon(
        config("http://127.0.0.1:1"),
        Input::Replay {
            path,
            looped: false,
            rate: None,
        },
    )
    .await;
    let mut max = flow("agg-max", "n1", "agg", T0);
    if let Some(ResponseTypes::Flow(f)) = max.response_types.as_mut() {
        f.aggregate = Some(Aggregate {
            ingress_flow_count: u32::MAX,
            egress_flow_count: u32::MAX,
            unknown_direction_flow_count: u32::MAX,
        });
    }
    let r = start_relay(FakeRelay::new(vec![vec![Step::Send(Box::new(max))]])).await;
    let grpc = start_daemon(config(&format!("http://{}", r.addr)), Input::Relay).await;
    wait_for(file.addr, "16 flows", |t| {
        flows_total(t, &["source_namespace=\"agg\""]) == 16.0
    })
    .await;
    let three_max = 3.0 * f64::from(u32::MAX);
    wait_for(grpc.addr, "3 × u32::MAX flows", |t| {
        flows_total(t, &["source_namespace=\"agg\""]) == three_max
    })
    .await;
}

// ------------------------------------------------------------ hostile messages

/// A string that would break a label, a log line or an exposition line if written raw.
fn nasty(n: usize) -> String {
    format!(
        "a\"b\\c}}d\ne\r\0f{{g=\"h\"}} # EOF\u{2028}é{}",
        "x".repeat(n)
    )
}

fn response(f: Flow) -> GetFlowsResponse {
    GetFlowsResponse {
        node_name: f.node_name.clone(),
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
}

fn hostile_flow(i: usize) -> Flow {
    Flow {
        uuid: format!("hostile-{i}"),
        node_name: "n1".into(),
        verdict: Verdict::Dropped as i32,
        source: Some(Endpoint {
            namespace: "hostile".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// At least ten kinds of message the wire allows and a careless daemon would choke on.
fn hostile_messages() -> Vec<(&'static str, GetFlowsResponse)> {
    let ts = |seconds, nanos| Some(pbjson_types::Timestamp { seconds, nanos });
    let with = |i: usize, edit: &dyn Fn(&mut Flow)| {
        let mut f = hostile_flow(i);
        edit(&mut f);
        response(f)
    };
    let mut out: Vec<(&'static str, GetFlowsResponse)> = vec![
        (
            "time at i64::MAX with nanos at i32::MAX (an exemplar time once panicked here)",
            with(0, &|f| f.time = ts(i64::MAX, i32::MAX)),
        ),
        (
            "time at i64::MIN with negative nanos",
            with(1, &|f| f.time = ts(i64::MIN, -1)),
        ),
        (
            "time just past year 9999, nanos out of range",
            with(2, &|f| f.time = ts(253_402_300_800, 1_999_999_999)),
        ),
        (
            "ports at u32::MAX on TCP",
            with(3, &|f| {
                f.l4 = Some(Layer4 {
                    protocol: Some(layer4::Protocol::Tcp(Tcp {
                        source_port: u32::MAX,
                        destination_port: u32::MAX,
                    })),
                })
            }),
        ),
        (
            "ports at 65536 on UDP and SCTP",
            with(4, &|f| {
                f.l4 = Some(Layer4 {
                    protocol: Some(layer4::Protocol::Udp(Udp {
                        source_port: 65_536,
                        destination_port: 65_536,
                    })),
                })
            }),
        ),
        (
            "SCTP port 0",
            with(5, &|f| {
                f.l4 = Some(Layer4 {
                    protocol: Some(layer4::Protocol::Sctp(Sctp {
                        source_port: 0,
                        destination_port: 0,
                    })),
                })
            }),
        ),
        (
            "event types and sub-types at the ends of int32",
            with(6, &|f| {
                f.event_type = Some(CiliumEventType {
                    r#type: i32::MIN,
                    sub_type: i32::MAX,
                })
            }),
        ),
        (
            "a drop notification whose sub-type is no drop reason",
            with(7, &|f| {
                f.event_type = Some(CiliumEventType {
                    r#type: 1,
                    sub_type: -1,
                })
            }),
        ),
        (
            "enum numbers no schema has: direction, reason, type, policy match, ip version",
            with(8, &|f| {
                f.traffic_direction = i32::MIN;
                f.drop_reason_desc = i32::MAX;
                f.drop_reason = u32::MAX;
                f.r#type = -1;
                f.policy_match_type = u32::MAX;
                f.ip = Some(Ip {
                    source: "10.0.0.1".into(),
                    destination: "not an ip".into(),
                    ip_version: 77,
                });
            }),
        ),
        (
            "aggregate counts at u32::MAX",
            with(9, &|f| {
                f.aggregate = Some(Aggregate {
                    ingress_flow_count: u32::MAX,
                    egress_flow_count: u32::MAX,
                    unknown_direction_flow_count: u32::MAX,
                })
            }),
        ),
        (
            "label-breaking strings in every string the daemon reads",
            with(10, &|f| {
                f.uuid = nasty(10);
                f.node_name = nasty(2000);
                f.source = Some(Endpoint {
                    namespace: "hostile".into(),
                    pod_name: nasty(5000),
                    labels: (0..5000).map(|i| format!("k8s:{}={i}", nasty(3))).collect(),
                    workloads: vec![hubble_noise::api::flow::Workload {
                        name: nasty(300),
                        kind: nasty(3),
                    }],
                    ..Default::default()
                });
                f.destination = Some(Endpoint {
                    namespace: nasty(100),
                    ..Default::default()
                });
                f.destination_names = (0..2000).map(|_| nasty(200)).collect();
                f.policy_log = vec![String::new(), nasty(40)];
                f.egress_denied_by = vec![Policy {
                    name: nasty(100),
                    namespace: nasty(10),
                    revision: u64::MAX,
                    ..Default::default()
                }];
                f.summary = nasty(60_000);
            }),
        ),
        (
            "a DNS answer with ttl u32::MAX at the end of time",
            response(Flow {
                uuid: "hostile-dns".into(),
                node_name: "n1".into(),
                verdict: Verdict::Forwarded as i32,
                time: ts(i64::MAX, 999_999_999),
                is_reply: Some(pbjson_types::BoolValue { value: true }),
                source: Some(Endpoint {
                    namespace: "kube-system".into(),
                    pod_name: "coredns-1".into(),
                    labels: vec!["k8s:k8s-app=kube-dns".into()],
                    ..Default::default()
                }),
                destination: Some(Endpoint {
                    namespace: "hostile".into(),
                    pod_name: "asker".into(),
                    ..Default::default()
                }),
                l7: Some(Layer7 {
                    r#type: 2,
                    latency_ns: u64::MAX,
                    record: Some(layer7::Record::Dns(Dns {
                        query: format!("{}.", nasty(50)),
                        ips: (0..1000)
                            .map(|i| format!("10.9.{}.{}", i / 256, i % 256))
                            .collect(),
                        ttl: u32::MAX,
                        cnames: vec![nasty(300)],
                        rcode: u32::MAX,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
        ),
        (
            "an unknown L7 type with a DNS record",
            with(11, &|f| {
                f.l7 = Some(Layer7 {
                    r#type: i32::MAX,
                    latency_ns: 0,
                    record: Some(layer7::Record::Dns(Dns::default())),
                })
            }),
        ),
        (
            "lost events at u64::MAX from a source no schema has",
            GetFlowsResponse {
                response_types: Some(ResponseTypes::LostEvents(LostEvent {
                    source: 99,
                    num_events_lost: u64::MAX,
                    cpu: Some(pbjson_types::Int32Value { value: i32::MIN }),
                    first: ts(i64::MIN, i32::MIN),
                    last: ts(i64::MAX, i32::MAX),
                })),
                node_name: nasty(10),
                time: ts(i64::MAX, -5),
            },
        ),
        (
            "node status with an unknown state and label-breaking names",
            GetFlowsResponse {
                response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                    state_change: i32::MAX,
                    node_names: (0..1000).map(|_| nasty(20)).collect(),
                    message: nasty(1000),
                })),
                node_name: String::new(),
                time: None,
            },
        ),
        (
            "node error with label-breaking names",
            GetFlowsResponse {
                response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                    state_change: 4,
                    node_names: vec![nasty(20), String::new()],
                    message: nasty(1000),
                })),
                node_name: nasty(5),
                time: ts(i64::MIN, 0),
            },
        ),
        ("an empty response", GetFlowsResponse::default()),
        ("an empty flow", response(Flow::default())),
        (
            "a verdict no schema has",
            with(12, &|f| f.verdict = i32::MAX),
        ),
    ];
    // The same lost source twice: the counter saturates, it does not wrap.
    let lost = out
        .iter()
        .find(|(what, _)| what.starts_with("lost events"))
        .map(|(_, m)| m.clone())
        .unwrap();
    out.push(("lost events at u64::MAX again", lost));
    out
}

#[tokio::test]
async fn hostile_messages_between_ordinary_flows_never_stop_the_counting() {
    let hostile = hostile_messages();
    assert!(hostile.len() >= 10);
    let mut steps = Vec::new();
    let mut ordinary = 0u32;
    for (i, (_, msg)) in hostile.iter().enumerate() {
        steps.push(Step::Send(Box::new(flow(
            &format!("ordinary-{i}"),
            "n1",
            "ordinary",
            T0 + i as i64,
        ))));
        ordinary += 1;
        steps.push(Step::Send(Box::new(msg.clone())));
    }
    let relay = FakeRelay::new(vec![steps]);
    let r = start_relay(relay.clone()).await;
    let d = start_daemon(config(&format!("http://{}", r.addr)), Input::Relay).await;
    let ordinary_ns = "source_namespace=\"ordinary\"";
    let n = f64::from(ordinary);
    wait_for(d.addr, "every ordinary flow", |t| {
        flows_total(t, &[ordinary_ns]) == n
    })
    .await;
    // The stream stays open: one more ordinary flow after all of them is counted too, so the
    // pipeline is still alive, not just the HTTP server.
    let last = flow("ordinary-last", "n1", "ordinary", T0 + 1000);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !relay.send_held(last.clone()).await {
        assert!(tokio::time::Instant::now() < deadline, "stream not held");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let text = wait_for(d.addr, "the last ordinary flow", |t| {
        flows_total(t, &[ordinary_ns]) == n + 1.0
    })
    .await;
    assert_eq!(
        sum(&text, "hubble_noise_decode_errors_total", &[]),
        0.0,
        "{text}"
    );
    // u64::MAX lost twice saturates at u64::MAX (as a float, 1.8446744073709552e19).
    assert_eq!(
        sum(&text, "hubble_noise_lost_events_total", &["source=\"99\""]),
        u64::MAX as f64,
        "{text}"
    );
    let (status, _, _) = http(d.addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    // Both exposition formats stay valid.
    let (_, ctype, open_metrics) = http(
        d.addr,
        "GET",
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert!(ctype.contains("openmetrics"), "{ctype}");
    assert!(
        open_metrics.contains("# {uuid=\""),
        "exemplars:\n{open_metrics}"
    );
    assert!(open_metrics.ends_with("# EOF\n"));
    for line in open_metrics.lines() {
        assert!(!line.contains('\0') && !line.contains('\r'), "{line:?}");
    }
    let (_, _, classic) = http(d.addr, "GET", "/metrics", None).await;
    promtool_accepts(&classic, "classic text");
    openmetrics_parser_accepts(&open_metrics, "OpenMetrics text with exemplars");
}

// ------------------------------------------------------------ regressions

fn unexpected() -> hubble_noise::classify::Decision<'static> {
    hubble_noise::classify::Decision {
        class: hubble_noise::rules::Class::Unexpected,
        reason: "unmatched",
        rule: None,
        attribution: hubble_noise::classify::Attribution::None,
        ambiguous: false,
    }
}

/// An overflow turning a flow's timestamp into an exemplar time panicked a tokio worker: the
/// pipeline died while `/healthz` kept answering.
#[test]
fn exemplar_time_overflow_is_no_panic() {
    let metrics = hubble_noise::metrics::Metrics::new(&Default::default(), "test");
    let times = [
        (i64::MAX, i32::MAX),
        (i64::MAX, -1),
        (i64::MIN, i32::MIN),
        (18_446_744_073, 709_551_615),
        (253_402_300_800, 0),
        (0, -1),
    ];
    for (i, (seconds, nanos)) in times.into_iter().enumerate() {
        let flow = Flow {
            uuid: format!("t{i}"),
            verdict: Verdict::Dropped as i32,
            time: Some(pbjson_types::Timestamp { seconds, nanos }),
            // A series each, so that each flow leaves its exemplar.
            source: Some(Endpoint {
                namespace: format!("ns{i}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ctx = hubble_noise::flow::FlowCtx::new(&flow, "n1", None);
        metrics.record_flow(&ctx, &unexpected());
        metrics.record_rule_match("none", ctx.time);
    }
    let text = metrics.encode_openmetrics().unwrap();
    assert_eq!(
        sum(&text, "hubble_noise_flows_total", &[]),
        times.len() as f64
    );
    // Times the platform or OpenMetrics cannot carry (past 9999, before the epoch) give an
    // exemplar without a timestamp; the others keep theirs.
    for i in [0, 1, 2, 4, 5] {
        assert!(
            text.contains(&format!("# {{uuid=\"t{i}\",node=\"n1\"}} 1.0\n")),
            "t{i}:\n{text}"
        );
    }
    assert!(
        text.contains("# {uuid=\"t3\",node=\"n1\"} 1.0 18446744073.7095"),
        "{text}"
    );
}

/// `num_events_lost` at `u64::MAX`, twice: the counter stays at `u64::MAX` rather than wrapping
/// round to a small number (a counter reset to Prometheus) or panicking on overflow.
#[test]
fn lost_events_at_u64_max_saturate() {
    let metrics = hubble_noise::metrics::Metrics::new(&Default::default(), "test");
    let lost = LostEvent {
        source: 3,
        num_events_lost: u64::MAX,
        ..Default::default()
    };
    metrics.record_lost(&lost);
    metrics.record_lost(&lost);
    let text = metrics.encode_text().unwrap();
    assert!(
        text.contains(&format!(
            "hubble_noise_lost_events_total{{source=\"hubble_ring_buffer\"}} {}",
            u64::MAX
        )),
        "{text}"
    );
}

/// Lost-event sources no schema has get their number as a label, up to a bound; the rest
/// count under `other`, so a sender cannot make series without end.
#[test]
fn unknown_lost_sources_are_bounded() {
    let metrics = hubble_noise::metrics::Metrics::new(&Default::default(), "test");
    for source in 100..200 {
        metrics.record_lost(&LostEvent {
            source,
            num_events_lost: 1,
            ..Default::default()
        });
    }
    let text = metrics.encode_text().unwrap();
    let max = hubble_noise::metrics::MAX_LOST_SOURCES as f64;
    assert_eq!(
        sum(&text, "hubble_noise_lost_events_total", &["source=\"100\""]),
        1.0
    );
    assert_eq!(
        sum(
            &text,
            "hubble_noise_lost_events_total",
            &["source=\"other\""]
        ),
        100.0 - max
    );
    assert_eq!(sum(&text, "hubble_noise_lost_events_total", &[]), 100.0);
}

/// Directions no schema has are a number a sender picks: once `max_series` is reached they
/// overflow like the context labels instead of making a series each.
#[test]
fn unknown_directions_past_the_series_cap_overflow() {
    let cfg = hubble_noise::config::MetricsConfig {
        max_series: 10,
        ..Default::default()
    };
    let metrics = hubble_noise::metrics::Metrics::new(&cfg, "test");
    for d in 0..1000 {
        let flow = Flow {
            uuid: format!("d{d}"),
            verdict: Verdict::Dropped as i32,
            traffic_direction: 100 + d,
            ..Default::default()
        };
        let ctx = hubble_noise::flow::FlowCtx::new(&flow, "n1", None);
        metrics.record_flow(&ctx, &unexpected());
    }
    assert!(metrics.flow_series() <= 11, "{}", metrics.flow_series());
    let text = metrics.encode_text().unwrap();
    assert_eq!(sum(&text, "hubble_noise_flows_total", &[]), 1000.0);
    assert_eq!(
        sum(
            &text,
            "hubble_noise_flows_total",
            &["direction=\"__overflow__\""]
        ),
        990.0
    );
}

/// Durations, counts and rates at the ends of their types: a clear error naming the key, never
/// a panic (exit 2 from `check` is a usage error, 1 an invalid config; 101 would be a panic).
#[test]
fn config_values_at_the_ends_of_their_types_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "[relay]\nbackoff_initial = \"10000000000000000000s\"\nbackoff_max = \"10000000000000000000s\"\n",
            "relay.backoff_initial",
        ),
        (
            "[relay]\nbackoff_max = \"18446744073709551615s\"\n",
            "relay.backoff_max",
        ),
        (
            "[relay]\nidle_timeout = \"99999999999999999999d\"\n",
            "relay.idle_timeout",
        ),
        (
            "[dns]\nmin_ttl = \"18446744073709551615h\"\n",
            "dns.min_ttl",
        ),
        (
            "[dns]\nmax_entries = 18446744073709551615\n",
            "dns.max_entries",
        ),
        (
            "[classify]\ndedup_window = 18446744073709551615\n",
            "classify.dedup_window",
        ),
        ("[classify]\ndedup_window = 0\n", "classify.dedup_window"),
        (
            "[metrics]\nmax_series = 9223372036854775807\n",
            "metrics.max_series",
        ),
        ("[metrics]\nmax_series = 0\n", "metrics.max_series"),
    ] {
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let out = cli::run_in(dir.path(), &["check", "-c", "config.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{text}: {:?}\n{err}",
            out.status
        );
        assert!(
            err.contains("config.toml") && err.contains(key),
            "{text}: {err}"
        );
        assert!(err.lines().count() <= 3, "{text}: {err}");
    }
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    for rate in ["1e-300", "0", "-1", "inf", "NaN", "1e300"] {
        std::fs::write(dir.path().join("r.jsonl"), "").unwrap();
        let arg = format!("--rate={rate}");
        let out = cli::run_in(
            dir.path(),
            &["run", "-c", "config.toml", "--replay", "r.jsonl", &arg],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--rate {rate}: {err}");
        assert!(err.contains("--rate"), "--rate {rate}: {err}");
    }
}
