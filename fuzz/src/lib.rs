//! Fuzz harnesses: one function per kind of outside input, each taking arbitrary bytes.
//!
//! Every harness must return without panicking whatever it is given, and must respect the
//! input limits of PRODUCT.md §9. Flows go the whole way ([`path`]): decode → pipeline
//! (de-duplication, DNS learning, twin skip) → classification → metrics with exemplars →
//! `/metrics` in both formats, checked by a strict reader ([`exposition`]) and against the
//! counts that went in. A failed check panics, so that every driver reports it like a crash.
//!
//! Three drivers run the same functions (SECURITY.md, "Fuzzing"):
//!
//! - the libFuzzer targets of `fuzz/` (coverage-guided, nightly), one per harness;
//! - `src/main.rs` (`hubble-noise-fuzz`), a time-boxed mutation runner on stable;
//! - `tests/harnesses.rs`, property tests and the regression inputs, in `cargo test --workspace`.
//!
//! A harness returns a small summary of what the input became, so that a runner can tell
//! accepted inputs from refused ones (and keep the accepted ones as seeds).

pub mod exposition;
pub mod path;
pub mod structured;

use std::io::BufReader;
use std::path::{Path as FsPath, PathBuf};
use std::sync::LazyLock;

use prost::Message as _;

use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::classify::Classifier;
use hubble_noise::config::Config;
use hubble_noise::policy::{PolicySet, PolicySource};
use hubble_noise::rules::glob::Glob;
use hubble_noise::rules::{RuleSet, RuleSource};
use hubble_noise::source::file;

pub use path::{FlowPath, fuzz_config};

/// What a harness made of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The input was accepted (decoded, loaded).
    Accepted,
    /// The input was refused with an error (the expected outcome of most random input).
    Refused,
}

/// Rules for the flow harnesses: the bundled example's, and every key of a rule's `match`, so
/// that fuzzed flows reach every matcher and its index.
const FUZZ_RULES: &str = r#"
[[rule]]
name = "vendor-telemetry"
reason = "app-explicit-traffic-blocked"
owner = "team-shop"
comment = "Checkout's vendor SDK phones home; blocked on purpose (OPS-123)"
expires = 2027-06-01T00:00:00Z
[rule.match]
verdict = ["DROPPED", "AUDIT"]
direction = "egress"
[rule.match.source]
namespace = ["shop"]
workload = ["checkout"]
[rule.match.destination]
entity = ["world"]
fqdn = ["*.telemetry.example.com"]
port = ["443/TCP"]

[[rule]]
name = "labels-and-globs"
class = "unexpected"
[rule.match]
verdict = ["DROPPED"]
drop_reason = ["POLICY_DENIED", "IGMP_HANDLED", "UNSUPPORTED_L3_PROTOCOL"]
node = ["prod/*"]
[rule.match.source]
namespace = ["sh*p", "kube-*"]
pod = ["checkout-*-x2k4q"]
workload = ["check*"]
labels = ["app=checkout", "k8s:io.kubernetes.pod.namespace=shop", "app.kubernetes.io/name"]

[[rule]]
name = "world-cidrs-ports"
owner = "fuzz"
comment = "every kind of destination"
expires = 2030-01-01T00:00:00Z
[rule.match]
direction = "egress"
[rule.match.destination]
entity = ["world", "host", "kube-apiserver"]
cidr = ["203.0.113.0/25", "2001:db8::/32", "::ffff:0:0/96", "0.0.0.0/32"]
port = ["443/TCP", "53", "8000-8100/UDP", "1-65535/SCTP"]

[[rule]]
name = "fqdn-patterns"
owner = "fuzz"
comment = "wildcards in every position"
[rule.match.destination]
fqdn = ["*.example.com", "api.vendor.io", "*.*.example.com", "a*b*c*.example", "x-*.telemetry.example.com"]

[[rule]]
name = "policy-log-ingress"
owner = "fuzz"
comment = "policy log and ingress"
[rule.match]
direction = "ingress"
policy_log = ["vendor-*", "tag"]
[rule.match.source]
fqdn = ["*.svc.cluster.local"]
entity = ["remote-node", "health", "world-ipv6"]
"#;

/// A policy for the flow harnesses: deny rules of every kind that steps 2 and 3 import.
const FUZZ_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: deny-telemetry
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: checkout
  log:
    value: vendor-telemetry-blocked
  egressDeny:
    - toCIDRSet:
        - cidr: 203.0.113.0/24
          except: [203.0.113.128/25]
      toPorts:
        - ports:
            - {port: "443", protocol: TCP}
    - toEntities: [world]
      toPorts:
        - ports:
            - {port: "8000", endPort: 8100, protocol: ANY}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: deny-metadata
spec:
  endpointSelector:
    matchExpressions:
      - {key: k8s:io.kubernetes.pod.namespace, operator: NotIn, values: [kube-system]}
  log:
    value: metadata-blocked
  egressDeny:
    - toCIDR: [169.254.169.254/32, "fd00:ec2::254/128"]
"#;

/// The classifier of the flow harnesses (built once per thread: compiling is the slow part).
fn flow_classifier() -> &'static Classifier {
    thread_local! {
        static CLASSIFIER: &'static Classifier = Box::leak(Box::new(build_flow_classifier()));
    }
    CLASSIFIER.with(|c| *c)
}

fn build_flow_classifier() -> Classifier {
    let tags = [
        "vendor-telemetry-blocked",
        "app-explicit-*",
        "metadata-blocked",
    ];
    let expected_log_tags = tags.iter().filter_map(|t| Glob::new(t).ok()).collect();
    let rule_sources = [RuleSource {
        path: PathBuf::from("fuzz-rules.toml"),
        text: FUZZ_RULES.to_owned(),
        inline: false,
    }];
    let policy = PolicySource {
        path: PathBuf::from("fuzz-policy.yaml"),
        text: FUZZ_POLICY.to_owned(),
    };
    let expected = |t: &str| {
        tags.iter()
            .any(|g| Glob::new(g).is_ok_and(|g| g.matches(t)))
    };
    // Both are constants of this module: a failure is a bug of the harness, found at once.
    let rules = RuleSet::load(&rule_sources).unwrap_or_else(|e| panic!("fuzz rules: {e}"));
    let policies =
        PolicySet::load(&[policy], &expected).unwrap_or_else(|e| panic!("fuzz policy: {e:?}"));
    Classifier {
        expected_log_tags,
        rules,
        policies,
    }
}

/// The flows the rule, policy and config harnesses classify, decoded once: from the bundled
/// example (a DNS answer, then drops to the answered IPs, and their twins), then lines that
/// reach the corners of the path (the ends of time, nanos out of range, counts at their ends,
/// enum numbers and names the schema lacks, IPv6, label values that need escaping, lost events
/// and node status).
fn sample_responses() -> &'static [GetFlowsResponse] {
    static SAMPLES: LazyLock<Vec<GetFlowsResponse>> = LazyLock::new(|| {
        include_str!("samples.ndjson")
            .lines()
            .filter_map(|l| file::decode_line(l.as_bytes()).ok().flatten())
            .collect()
    });
    &SAMPLES
}

fn through_path(cfg: &Config, classifier: &Classifier, responses: &[GetFlowsResponse]) {
    let mut path = FlowPath::new(cfg, classifier);
    for r in responses {
        path.feed(r);
    }
    path.finish();
}

/// A recording (one or more JSON lines), as `replay` and `run --replay` read it: lines of at
/// most [`file::MAX_LINE`], the prefilter, the full decode, then the whole path.
///
/// Also checks that an error about a line is one short line, and that a line the prefilter
/// lets through undecoded could not have counted anything.
pub fn json_line(data: &[u8]) -> Verdict {
    let cfg = fuzz_config();
    let mut path = FlowPath::new(&cfg, flow_classifier());
    let mut reader = BufReader::with_capacity(64 * 1024, data);
    let mut buf = Vec::new();
    let mut n = 0;
    let mut verdict = Verdict::Refused;
    // Reading from memory cannot fail.
    while let Ok(Some(fits)) = file::read_line(&mut reader, &mut buf, file::MAX_LINE) {
        n += 1;
        let line = fits.then_some(buf.as_slice());
        match file::decode_one(FsPath::new("fuzz.ndjson"), n, line) {
            None => {}
            Some(Ok(file::Line::Response(r))) => {
                verdict = Verdict::Accepted;
                path.feed(&r);
            }
            Some(Ok(file::Line::NotCounted)) => {
                verdict = Verdict::Accepted;
                check_not_counted(&buf);
            }
            Some(Err(e)) => {
                check_line_error(&e.message);
                path.decode_error(e.kind.as_str());
            }
        }
    }
    path.finish();
    verdict
}

/// A line the prefilter did not decode must hold nothing that counts, learns or reports.
fn check_not_counted(line: &[u8]) {
    let Ok(Some(resp)) = file::decode_line(line) else {
        return;
    };
    let cfg = fuzz_config();
    let classifier = Classifier::default();
    let mut pipeline = hubble_noise::pipeline::Pipeline::new(&cfg);
    let skipped = matches!(
        pipeline.process(&resp, &classifier),
        hubble_noise::pipeline::Outcome::NotCounted | hubble_noise::pipeline::Outcome::Empty
    );
    assert!(
        skipped && pipeline.names.is_empty(),
        "the prefilter skipped a line that counts or teaches a name: {resp:?}"
    );
}

/// SECURITY.md: an error about a line is one line of at most 200 bytes, without control
/// characters.
fn check_line_error(message: &str) {
    assert!(
        message.len() <= file::MAX_MESSAGE + '…'.len_utf8(),
        "line error of {} bytes",
        message.len()
    );
    assert!(
        !message.chars().any(char::is_control),
        "control character in a line error: {message:?}"
    );
}

/// One protobuf `GetFlowsResponse` as the relay stream delivers it (after gRPC framing); an
/// accepted message must survive an encode/decode round trip, then goes the whole path.
pub fn grpc_response(data: &[u8]) -> Verdict {
    let cfg = fuzz_config();
    let mut path = FlowPath::new(&cfg, flow_classifier());
    let verdict = grpc_message(&mut path, data);
    path.finish();
    verdict
}

fn grpc_message(path: &mut FlowPath<'_>, data: &[u8]) -> Verdict {
    match GetFlowsResponse::decode(data) {
        Ok(resp) => {
            let again = GetFlowsResponse::decode(resp.encode_to_vec().as_slice());
            assert_eq!(again.as_ref().ok(), Some(&resp), "protobuf round trip");
            path.feed(&resp);
            Verdict::Accepted
        }
        Err(_) => {
            path.decode_error("grpc");
            Verdict::Refused
        }
    }
}

/// The gRPC length-prefixed framing of a stream of messages: per message a compression flag
/// (0), its length (u32, big-endian) and the message.
pub fn frames(responses: &[GetFlowsResponse]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in responses {
        let m = r.encode_to_vec();
        out.push(0);
        out.extend_from_slice(&u32::try_from(m.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&m);
    }
    out
}

/// A relay stream: gRPC frames ([`frames`]), each message through one path, so that
/// duplicates, DNS answers, twins, series caps and node states meet across messages. A frame
/// marked compressed is a decode error, as it is from tonic without compression; a frame
/// longer than what is left is cut there (the stream ended inside it).
pub fn grpc_stream(data: &[u8]) -> Verdict {
    let cfg = fuzz_config();
    let mut path = FlowPath::new(&cfg, flow_classifier());
    let mut verdict = Verdict::Refused;
    let mut rest = data;
    while let [flag, a, b, c, d, tail @ ..] = rest {
        let len = usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])).unwrap_or(usize::MAX);
        let (msg, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        if *flag != 0 {
            path.decode_error("grpc");
            continue;
        }
        if grpc_message(&mut path, msg) == Verdict::Accepted {
            verdict = Verdict::Accepted;
        }
    }
    path.finish();
    verdict
}

/// A structure-aware relay stream: the bytes describe messages ([`structured::Stream`]),
/// which are framed and go through [`grpc_stream`].
pub fn grpc_structured(data: &[u8]) -> Verdict {
    let stream = structured::Stream::from_bytes(data);
    grpc_stream(&frames(&stream.responses()))
}

/// A rule file (`classify.rule_files`): parse, validate, compile, then classify the sample
/// flows with the rules through the whole path.
pub fn rule_file(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    let src = RuleSource {
        path: PathBuf::from("fuzz.toml"),
        text: text.to_owned(),
        inline: false,
    };
    match RuleSet::load(&[src]) {
        Ok(rules) => {
            let classifier = Classifier {
                rules,
                ..Classifier::default()
            };
            through_path(&fuzz_config(), &classifier, sample_responses());
            Verdict::Accepted
        }
        Err(_) => Verdict::Refused,
    }
}

/// A Cilium policy YAML document (`classify.policy_files`): parse and compile, then classify
/// the sample flows with the policies through the whole path.
pub fn policy_yaml(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    if text.len() > hubble_noise::load::MAX_POLICY_FILE {
        return Verdict::Refused;
    }
    let src = PolicySource {
        path: PathBuf::from("fuzz.yaml"),
        text: text.to_owned(),
    };
    let expected = |t: &str| t.starts_with("expected") || t.starts_with("vendor");
    match PolicySet::load(&[src], &expected) {
        Ok(policies) => {
            let classifier = Classifier {
                expected_log_tags: ["expected*", "vendor*"]
                    .iter()
                    .filter_map(|g| Glob::new(g).ok())
                    .collect(),
                policies,
                ..Classifier::default()
            };
            through_path(&fuzz_config(), &classifier, sample_responses());
            Verdict::Accepted
        }
        Err(_) => Verdict::Refused,
    }
}

/// The config file (`config.toml`): parse and validate (every error names its key), then build
/// what the daemon builds from it: the classifier (expected tags and inline rules; the files
/// it names are not read), the relay request and endpoint, the reconnect backoff, the
/// heartbeat interval, the HTTP connection cap, the log filter, and a pipeline and metrics
/// that classify the sample flows. An accepted file must also survive the environment merge unchanged.
pub fn config_file(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    let file = FsPath::new("/etc/hubble-noise/config.toml");
    let Ok(mut loaded) = Config::from_text(file, text.to_owned(), []) else {
        return Verdict::Refused;
    };
    // The environment merge goes through figment: an accepted file must come out the same.
    let env = [("HUBBLE_NOISE_LOG__FORMAT".to_owned(), "json".to_owned())];
    match Config::from_text(file, text.to_owned(), env) {
        Ok(merged) => {
            let mut want = loaded.config.clone();
            want.log.format = hubble_noise::config::LogFormat::Json;
            assert_eq!(
                merged.config, want,
                "the environment merge changed the config"
            );
        }
        Err(e) => panic!("an accepted config fails the environment merge: {e}"),
    }
    let cfg = &mut loaded.config;
    // Files are the operator's: reading them here would make the harness read the disk.
    cfg.classify.rule_files.clear();
    cfg.classify.policy_files.clear();
    for f in [
        &mut cfg.relay.ca_file,
        &mut cfg.relay.cert_file,
        &mut cfg.relay.key_file,
    ] {
        *f = None;
    }
    let cfg = &loaded.config;
    let mut backoff =
        hubble_noise::backoff::Backoff::new(cfg.relay.backoff_initial, cfg.relay.backoff_max);
    for _ in 0..64 {
        let d = backoff.next_delay();
        let bound = (cfg.relay.backoff_max)
            .max(cfg.relay.backoff_initial)
            .max(std::time::Duration::from_millis(1));
        assert!(d <= bound, "backoff delay {d:?} above its bound {bound:?}");
    }
    let _ = hubble_noise::health::beat_interval(cfg.metrics.pipeline_stall_timeout);
    let _ = hubble_noise::server::connection_limit(cfg.metrics.max_connections);
    let since = pbjson_types::Timestamp {
        seconds: i64::MIN,
        nanos: i32::MIN,
    };
    let _ = hubble_noise::source::relay::request(&cfg.relay, cfg.dns.learn, Some(since));
    let _ = hubble_noise::source::relay::endpoint(&cfg.relay);
    let _ = tracing_subscriber::EnvFilter::try_new(&cfg.log.level);
    match hubble_noise::load::classifier(&loaded) {
        Ok(classifier) => {
            through_path(&loaded.config, &classifier, sample_responses());
            Verdict::Accepted
        }
        Err(_) => Verdict::Refused,
    }
}

/// A harness.
pub type Harness = fn(&[u8]) -> Verdict;

/// The harnesses by name (the names of the libFuzzer targets of `fuzz/`), for runners.
pub const TARGETS: [(&str, Harness); 7] = [
    ("json_line", json_line),
    ("grpc_bytes", grpc_stream),
    ("grpc_structured", grpc_structured),
    ("grpc_message", grpc_response),
    ("rules", rule_file),
    ("policy", policy_yaml),
    ("config", config_file),
];

/// Older short names of targets, still accepted by runners.
pub const ALIASES: [(&str, &str); 2] = [("json", "json_line"), ("grpc", "grpc_message")];

/// The harness named `name` (a target or an alias).
pub fn harness(name: &str) -> Option<Harness> {
    let name = ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, t)| t);
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}
