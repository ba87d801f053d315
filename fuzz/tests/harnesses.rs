//! A smoke pass of the fuzz harnesses (`hubble_noise_fuzz`): random and structured inputs
//! through each of them, every fixture, and the committed libFuzzer corpus (`fuzz/corpus`,
//! regression inputs included); none may panic or break an invariant of the harnesses.
//! `HUBBLE_NOISE_FUZZ_CASES=100000 cargo test -p hubble-noise-fuzz` runs longer; `src/main.rs` is
//! the time-boxed mutation runner and `fuzz/` the libFuzzer targets (SECURITY.md).

use std::path::Path;

use hubble_noise_fuzz::{
    TARGETS, Verdict, config_file, frames, grpc_response, grpc_stream, grpc_structured, harness,
    json_line, policy_yaml, rule_file,
};
use proptest::prelude::*;
use prost::Message as _;

/// A path of the repository (tests run in the package's directory, `fuzz/`).
fn root(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn cases() -> u32 {
    std::env::var("HUBBLE_NOISE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A JSON value of bounded depth, built from hostile pieces.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("\"DROPPED\"".to_owned()),
        Just("4".to_owned()),
        Just("-1e308".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\"\\u0000\\ud800\"".to_owned()),
        "\"[a-zA-Z0-9.*/:-]{0,20}\"",
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("flow"),
                        Just("verdict"),
                        Just("source"),
                        Just("destination"),
                        Just("labels"),
                        Just("l7"),
                        Just("dns"),
                        Just("ips"),
                        Just("time"),
                        Just("IP"),
                        Just("l4"),
                        Just("TCP"),
                        Just("lost_events"),
                        Just("node_status"),
                        Just("drop_reason_desc"),
                        Just("policy_log"),
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_line_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        json_line(&data);
    }

    #[test]
    fn json_line_structured(v in json_value()) {
        json_line(format!("{{\"flow\":{v},\"node_name\":\"n\"}}").as_bytes());
        json_line(v.as_bytes());
    }

    #[test]
    fn grpc_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        grpc_response(&data);
    }

    #[test]
    fn grpc_from_json_values(v in json_value()) {
        // Whatever decodes from JSON must encode and go through the protobuf harness.
        let line = format!("{{\"flow\":{v}}}");
        if let Ok(Some(r)) = hubble_noise::source::file::decode_line(line.as_bytes()) {
            prop_assert_eq!(grpc_response(&r.encode_to_vec()), Verdict::Accepted);
        }
    }

    #[test]
    fn grpc_stream_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        grpc_stream(&data);
    }

    #[test]
    fn grpc_structured_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Any bytes describe a stream: it is always framed and decoded.
        grpc_structured(&data);
    }

    #[test]
    fn config_structured(
        section in prop_oneof![Just("relay"), Just("metrics"), Just("classify"), Just("dns"), Just("log")],
        key in prop_oneof![
            Just("backoff_initial"), Just("backoff_max"), Just("idle_timeout"),
            Just("pipeline_stall_timeout"), Just("min_ttl"), Just("max_series"),
            Just("dedup_window"), Just("max_entries"), Just("level"), Just("labels"),
            Just("address"), Just("max_message_size"), Just("expected_log_tags"),
        ],
        value in prop_oneof![
            "\"[0-9]{1,22}(ms|s|m|h|d)\"",
            "-?[0-9]{1,20}",
            "\"[a-z_=,:/.*]{0,20}\"",
            Just("[\"source_pod\", \"node\"]".to_owned()),
            Just("true".to_owned()),
        ],
    ) {
        config_file(format!("[{section}]\n{key} = {value}\n").as_bytes());
    }

    #[test]
    fn rule_file_random(text in "[\\[\\]a-z_.=\"*{},\\n 0-9/:-]{0,300}") {
        rule_file(text.as_bytes());
    }

    #[test]
    fn rule_file_structured(
        fqdn in "[a-z*.]{0,40}",
        cidr in "[0-9a-f.:/]{0,24}",
        port in "[0-9a-z/-]{0,12}",
        label in "[a-zA-Z0-9:./=!*-]{0,30}",
    ) {
        let text = format!(
            "[[rule]]\nname = \"r\"\nowner = \"o\"\ncomment = \"c\"\n\
             [rule.match]\nsource = {{ labels = [\"{label}\"] }}\n\
             destination = {{ fqdn = [\"{fqdn}\"], cidr = [\"{cidr}\"], port = [\"{port}\"] }}\n"
        );
        rule_file(text.as_bytes());
    }

    #[test]
    fn policy_random(text in "[a-zA-Z:\\- \\n{}\\[\\]&*!\"'0-9]{0,300}") {
        policy_yaml(text.as_bytes());
    }

    #[test]
    fn policy_structured(
        key in "[a-z.]{0,12}",
        value in "[a-zA-Z0-9*./-]{0,20}",
        op in prop_oneof![Just("In"), Just("NotIn"), Just("Exists"), Just("DoesNotExist"), Just("Bogus")],
    ) {
        let text = format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n  namespace: n\n\
             spec:\n  endpointSelector:\n    matchExpressions:\n    - key: \"{key}\"\n      operator: {op}\n      values: [\"{value}\"]\n\
             \x20 egressDeny:\n  - toFQDNs:\n    - matchPattern: \"{value}\"\n    toCIDR: [\"{value}\"]\n    toPorts:\n    - ports:\n      - port: \"{value}\"\n"
        );
        policy_yaml(text.as_bytes());
    }
}

/// Every fixture of the repository through its harness (the runner's seeds).
#[test]
fn every_fixture_goes_through_its_harness() {
    let mut files = Vec::new();
    walk(&root("tests/fixtures"), &mut files);
    walk(&root("examples"), &mut files);
    files.push(root("config.toml"));
    let mut n = 0;
    for f in files {
        let data = std::fs::read(&f).unwrap();
        match f.extension().and_then(|e| e.to_str()) {
            Some("ndjson") => {
                // The whole recording, then each line, through the JSON and the gRPC paths.
                assert_eq!(json_line(&data), Verdict::Accepted, "{}", f.display());
                let mut stream = Vec::new();
                for line in data.split(|b| *b == b'\n') {
                    json_line(line);
                    if let Ok(Some(r)) = hubble_noise::source::file::decode_line(line) {
                        assert_eq!(grpc_response(&r.encode_to_vec()), Verdict::Accepted);
                        stream.push(r);
                    }
                    n += 1;
                }
                assert_eq!(grpc_stream(&frames(&stream)), Verdict::Accepted);
            }
            Some("toml") => {
                rule_file(&data);
                config_file(&data);
                n += 1;
            }
            Some("yaml" | "yml") => {
                policy_yaml(&data);
                n += 1;
            }
            _ => {}
        }
    }
    assert!(n > 40, "{n} inputs");
}

/// The committed libFuzzer corpus, regression inputs included, through its harness on stable:
/// CI replays it on every run.
#[test]
fn the_committed_corpus_goes_through_its_harness() {
    let mut n = 0;
    for (name, _) in TARGETS {
        let dir = root("fuzz/corpus").join(name);
        if !dir.exists() {
            continue;
        }
        let run = harness(name).unwrap();
        let mut files = Vec::new();
        walk(&dir, &mut files);
        for f in files {
            run(&std::fs::read(&f).unwrap());
            n += 1;
        }
    }
    assert!(n >= 60, "only {n} corpus files");
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

// ------------------------------------------------------------------ findings of the fuzzers
//
// One test per bug the fuzz targets found, named after it; the crashing input is also in
// `fuzz/corpus/<target>/regression-*`.

/// Found by `config`: a context label listed twice in `metrics.labels` was accepted, and every
/// series of `hubble_noise_flows_total` then carried that label twice, which Prometheus
/// refuses: every scrape failed. It is now a start-up error naming the key.
#[test]
fn metrics_label_listed_twice_broke_every_scrape() {
    let input = std::fs::read(root(
        "fuzz/corpus/config/regression-metrics-label-listed-twice.toml",
    ))
    .unwrap();
    assert_eq!(config_file(&input), Verdict::Refused);
    let text = "[metrics]\nlabels = [\"node\", \"source_pod\", \"node\"]\n";
    let err = hubble_noise::config::Config::from_text(
        Path::new("config.toml"),
        text.to_owned(),
        std::iter::empty(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "config.toml:2:10: metrics.labels: label \"node\" is listed twice"
    );
    // The environment is validated the same way.
    let env = [(
        "HUBBLE_NOISE_METRICS__LABELS".to_owned(),
        "[\"node\",\"node\"]".to_owned(),
    )];
    let err = hubble_noise::config::Config::from_text(Path::new("c.toml"), String::new(), env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("listed twice"), "{err}");
}

/// Found by the series check of the flow harnesses (every flow in the series of its own
/// labels), on a hand-made recording; the fuzzers had not reached it in their first runs.
/// Series keys joined label values with `\u{1f}`, which a value from the wire may hold: a flow
/// from namespace `"\u{1f}"`, workload `""` and one from namespace `""`, workload `"\u{1f}"`
/// made the same key, and the second was counted in the first one's series (under another
/// namespace). Keys now prefix each value with its length.
#[test]
fn label_values_holding_the_key_separator_merged_two_series() {
    let input = std::fs::read(root(
        "fuzz/corpus/json_line/regression-label-separator-merged-two-series.ndjson",
    ))
    .unwrap();
    assert_eq!(json_line(&input), Verdict::Accepted);
    // The same flows through the daemon's path: two series of one flow each.
    let cfg = hubble_noise::config::MetricsConfig {
        labels: vec!["source_namespace".into(), "source_workload".into()],
        ..Default::default()
    };
    let metrics = hubble_noise::metrics::Metrics::new(&cfg, "test");
    let classifier = hubble_noise::classify::Classifier::default();
    let mut pipeline =
        hubble_noise::pipeline::Pipeline::new(&hubble_noise::config::Config::default());
    for line in input.split(|b| *b == b'\n') {
        if let Some(r) = hubble_noise::source::file::decode_line(line).unwrap() {
            let outcome = pipeline.process(&r, &classifier);
            metrics.record_outcome(&outcome);
        }
    }
    let text = metrics.encode_text().unwrap();
    for (ns, workload) in [("\u{1f}", ""), ("", "\u{1f}")] {
        let series = format!("source_namespace=\"{ns}\",source_workload=\"{workload}\"}} 1\n");
        assert!(text.contains(&series), "no {series:?} in\n{text}");
    }
}

/// Found by the `config` harness on a hand-made extreme (the fuzzer had not reached it): a
/// `metrics.max_connections` above 2^61 - 1 was accepted, and the HTTP server task panicked
/// at start-up creating its connection semaphore ("a semaphore may not have more than
/// MAX_PERMITS permits"), so the daemon stopped with a task failure instead of a config error.
/// It is now refused with the other counts (at most 10^8).
#[test]
fn max_connections_past_the_semaphore_limit_panicked_the_server() {
    let input = std::fs::read(root(
        "fuzz/corpus/config/regression-max-connections-past-the-semaphore-limit.toml",
    ))
    .unwrap();
    assert_eq!(config_file(&input), Verdict::Refused);
    let err = hubble_noise::config::Config::from_text(
        Path::new("config.toml"),
        String::from_utf8(input).unwrap(),
        std::iter::empty(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "config.toml:2:19: metrics.max_connections: must be at most 100000000"
    );
    // The largest accepted value makes a semaphore.
    let most = hubble_noise::config::MAX_COUNT;
    assert_eq!(
        hubble_noise::server::connection_limit(most).available_permits(),
        most
    );
}

/// Found in review while writing the `config` harness (no panic: the heartbeat's timers
/// saturate): `metrics.pipeline_stall_timeout` was the one duration without the 365-day bound
/// SECURITY.md gives every timeout, so `/healthz` could be told never to fail.
#[test]
fn pipeline_stall_timeout_had_no_upper_bound() {
    let input = std::fs::read(root("fuzz/corpus/config/stall-timeout-huge.toml")).unwrap();
    assert_eq!(config_file(&input), Verdict::Refused);
    let err = hubble_noise::config::Config::from_text(
        Path::new("config.toml"),
        String::from_utf8(input).unwrap(),
        std::iter::empty(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with("metrics.pipeline_stall_timeout: must be at most 31536000s"),
        "{err}"
    );
}
