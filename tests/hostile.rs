//! Hostile input (SECURITY.md): every input limit and every kind of bad input, each at the
//! lowest level that proves it. None may panic; the process' peak RSS (all tests of this binary
//! together) must stay under 256 MiB.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use common::sum;
use hubble_noise::api::flow::{Endpoint, Flow, TrafficDirection, Verdict};
use hubble_noise::classify::{Attribution, Decision};
use hubble_noise::config::{Config, Loaded, MetricsConfig};
use hubble_noise::flow::FlowCtx;
use hubble_noise::metrics::{MAX_LABEL_VALUE, Metrics};
use hubble_noise::rules::Class;
use hubble_noise::source::file::{self, Line, LineErrorKind};

const RSS_LIMIT_MIB: f64 = 256.0;

/// The peak resident set of this test process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Tests that measure memory run one at a time, each from a reset peak.
static MEASURED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measured() -> std::sync::MutexGuard<'static, ()> {
    let guard = MEASURED.lock().unwrap_or_else(|e| e.into_inner());
    // "5" resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    guard
}

fn assert_rss(what: &str) {
    let peak = peak_rss_mib();
    eprintln!("{what}: peak RSS of the test process {peak:.1} MiB");
    assert!(peak < RSS_LIMIT_MIB, "{what}: peak RSS {peak:.1} MiB");
}

/// A reader that produces its segments without holding them: `(byte, count)` runs and slices.
enum Seg {
    Run(u8, usize),
    Bytes(Vec<u8>),
}

struct Synthetic {
    segs: std::collections::VecDeque<Seg>,
}

impl Synthetic {
    fn new(segs: Vec<Seg>) -> BufReader<Self> {
        BufReader::with_capacity(256 * 1024, Self { segs: segs.into() })
    }
}

impl Read for Synthetic {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.segs.front_mut() {
                None => return Ok(0),
                Some(Seg::Run(_, 0)) => {
                    self.segs.pop_front();
                }
                Some(Seg::Run(b, n)) => {
                    let k = (*n).min(out.len());
                    out[..k].fill(*b);
                    *n -= k;
                    return Ok(k);
                }
                Some(Seg::Bytes(v)) if v.is_empty() => {
                    self.segs.pop_front();
                }
                Some(Seg::Bytes(v)) => {
                    let k = v.len().min(out.len());
                    out[..k].copy_from_slice(&v[..k]);
                    v.drain(..k);
                    return Ok(k);
                }
            }
        }
    }
}

const DROPPED_LINE: &[u8] =
    br#"{"flow":{"uuid":"ok","verdict":"DROPPED","source":{"namespace":"a"}},"node_name":"n"}"#;

/// What `for_each_response` made of each line: `Ok(true)` a decoded response, `Ok(false)` a
/// line that cannot count, `Err(kind)` a skipped line.
fn read_all(segs: Vec<Seg>) -> Vec<(u64, Result<bool, LineErrorKind>)> {
    let mut r = Synthetic::new(segs);
    let mut out = Vec::new();
    file::for_each_response(Path::new("hostile.ndjson"), &mut r, |n, item| {
        out.push((
            n,
            match item {
                Ok(Line::Response(_)) => Ok(true),
                Ok(Line::NotCounted) => Ok(false),
                Err(e) => Err(e.kind),
            },
        ));
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

// ---------------------------------------------------------------- JSON lines

#[test]
fn line_of_64_mib_without_newline_is_skipped_and_the_next_line_read() {
    let _m = measured();
    let got = read_all(vec![
        Seg::Run(b'x', 64 << 20),
        Seg::Bytes(b"\n".to_vec()),
        Seg::Bytes(DROPPED_LINE.to_vec()),
        Seg::Bytes(b"\n".to_vec()),
        // And one at the very end, never terminated.
        Seg::Run(b'{', 64 << 20),
    ]);
    assert_eq!(
        got,
        vec![
            (1, Err(LineErrorKind::TooLong)),
            (2, Ok(true)),
            (3, Err(LineErrorKind::TooLong))
        ]
    );
    assert_rss("64 MiB lines");
}

#[test]
fn many_long_lines_keep_memory_bounded() {
    let _m = measured();
    // 24 lines just under the limit (384 MiB in all): two deeply nested arrays (the whole
    // line is checked), the others rejected at their first byte.
    let mut segs = Vec::new();
    for i in 0..24 {
        let b = if i < 2 { b'[' } else { b'x' };
        segs.push(Seg::Run(b, file::MAX_LINE - 1024));
        segs.push(Seg::Bytes(b"\n".to_vec()));
    }
    segs.push(Seg::Bytes(DROPPED_LINE.to_vec()));
    let got = read_all(segs);
    assert_eq!(got.len(), 25);
    assert!(
        got[..24]
            .iter()
            .all(|(_, r)| *r == Err(LineErrorKind::Json))
    );
    assert_eq!(got[24], (25, Ok(true)));
    assert_rss("24 lines of 16 MiB");
}

#[test]
fn deep_nesting_is_a_counted_skip_without_stack_overflow() {
    let _m = measured();
    let depth = 1_000_000;
    let mut segs = Vec::new();
    // Under an unknown key (skipped without decoding), under known keys (decoded), bare;
    // arrays and objects; never closed.
    for prefix in [
        &b"{\"flow\":{\"verdict\":\"DROPPED\",\"x\":"[..],
        b"{\"flow\":{\"verdict\":\"DROPPED\",\"source\":{\"labels\":",
        b"{\"unknown\":",
        b"",
    ] {
        segs.push(Seg::Bytes(prefix.to_vec()));
        segs.push(Seg::Run(b'[', depth));
        segs.push(Seg::Bytes(b"\n".to_vec()));
        segs.push(Seg::Bytes(prefix.to_vec()));
        for _ in 0..depth / 8 {
            segs.push(Seg::Bytes(b"{\"a\":".to_vec()));
        }
        segs.push(Seg::Bytes(b"\n".to_vec()));
    }
    // Closed, under an unknown key: skipped iteratively (no recursion), the flow is read.
    segs.push(Seg::Bytes(
        b"{\"flow\":{\"verdict\":\"DROPPED\",\"x\":".to_vec(),
    ));
    segs.push(Seg::Run(b'[', depth));
    segs.push(Seg::Run(b']', depth));
    segs.push(Seg::Bytes(b"}}\n".to_vec()));
    segs.push(Seg::Bytes(DROPPED_LINE.to_vec()));
    let got = read_all(segs);
    assert_eq!(got.len(), 10, "{got:?}");
    assert!(got[..8].iter().all(|(_, r)| *r == Err(LineErrorKind::Json)));
    assert_eq!(got[8].1, Ok(true));
    assert_eq!(got[9].1, Ok(true));
    assert_rss("deep nesting");
    // Where a value is decoded recursively, serde_json's limit of 128 levels applies.
    let line = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let err = serde_json::from_str::<serde_json::Value>(&line).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn invalid_utf8_and_nul_bytes_are_counted_skips() {
    let bad_utf8 =
        b"{\"flow\":{\"verdict\":\"DROPPED\",\"source\":{\"namespace\":\"\xff\xfe\"}}}".to_vec();
    let raw_nul = b"{\"flow\":{\"verdict\":\"DROPPED\"}}\0".to_vec();
    let nul_in_key = b"{\"fl\0ow\":{\"verdict\":\"DROPPED\"}}".to_vec();
    let got = read_all(vec![
        Seg::Bytes(bad_utf8),
        Seg::Bytes(b"\n".to_vec()),
        Seg::Bytes(raw_nul),
        Seg::Bytes(b"\n".to_vec()),
        Seg::Bytes(nul_in_key),
        Seg::Bytes(b"\n\0\0\0\n".to_vec()),
        // An escaped NUL is valid JSON: decoded, and counted below.
        Seg::Bytes(br#"{"flow":{"verdict":"DROPPED","source":{"namespace":"a\u0000b"}}}"#.to_vec()),
    ]);
    let kinds: Vec<_> = got.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Err(LineErrorKind::Json),
            Err(LineErrorKind::Json),
            Err(LineErrorKind::Json),
            Err(LineErrorKind::Json),
            Ok(true)
        ]
    );
}

// ---------------------------------------------------------------- metrics

fn unexpected() -> Decision<'static> {
    Decision {
        class: Class::Unexpected,
        reason: "unmatched",
        rule: None,
        attribution: Attribution::None,
        ambiguous: false,
    }
}

#[test]
fn enormous_and_odd_label_values_are_cut_and_escaped() {
    let cfg = MetricsConfig {
        labels: vec![
            "source_namespace".into(),
            "source_pod".into(),
            "destination_name".into(),
            "node".into(),
        ],
        ..Default::default()
    };
    let metrics = Metrics::new(&cfg, "test");
    // 1 MiB of 'é' (two bytes each, so the cut falls inside a character), quotes, newlines,
    // NUL, backslashes.
    let huge = "é".repeat(512 * 1024);
    let odd = "a\"b\\c\nd\0e\r".repeat(50);
    for (i, v) in [huge.as_str(), odd.as_str()].iter().enumerate() {
        let flow = Flow {
            uuid: v.to_string(),
            verdict: Verdict::Dropped as i32,
            traffic_direction: TrafficDirection::Egress as i32,
            source: Some(Endpoint {
                namespace: v.to_string(),
                pod_name: format!("{v}{i}"),
                ..Default::default()
            }),
            destination_names: vec![v.to_string()],
            ..Default::default()
        };
        let ctx = FlowCtx::new(&flow, v, None);
        metrics.record_flow(&ctx, &unexpected());
    }
    for text in [
        metrics.encode_text().unwrap(),
        metrics.encode_openmetrics().unwrap(),
    ] {
        let longest = text.lines().map(str::len).max().unwrap();
        // Four context labels of at most 128 bytes (escaping doubles some), plus the rest.
        assert!(longest < 4 * 2 * MAX_LABEL_VALUE + 512, "{longest}");
        assert_eq!(sum(&text, "hubble_noise_flows_total", &[]), 2.0);
        assert!(text.contains(&"é".repeat(MAX_LABEL_VALUE / 2)));
        assert!(!text.contains(&"é".repeat(MAX_LABEL_VALUE / 2 + 1)));
    }
}

#[test]
fn a_million_distinct_pods_are_capped_and_totals_exact() {
    let _m = measured();
    let cfg = MetricsConfig {
        labels: vec!["source_namespace".into(), "source_pod".into()],
        ..Default::default()
    };
    let metrics = Metrics::new(&cfg, "test");
    let n = 1_000_000u64;
    let mut flow = Flow {
        verdict: Verdict::Dropped as i32,
        traffic_direction: TrafficDirection::Ingress as i32,
        source: Some(Endpoint {
            namespace: "ns".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for i in 0..n {
        if let Some(s) = flow.source.as_mut() {
            s.pod_name.clear();
            use std::fmt::Write as _;
            let _ = write!(s.pod_name, "pod-{i}");
        }
        let ctx = FlowCtx::new(&flow, "n1", None);
        metrics.record_flow(&ctx, &unexpected());
    }
    let max = cfg.max_series;
    assert_eq!(metrics.flow_series(), max + 1);
    let text = metrics.encode_text().unwrap();
    assert_eq!(sum(&text, "hubble_noise_flows_total", &[]), n as f64);
    assert_eq!(
        sum(&text, "hubble_noise_series_overflow_total", &[]),
        (n - max as u64) as f64
    );
    assert_rss("10^6 pods");
}

// ---------------------------------------------------------------- rule files and patterns

fn loaded_with(rule_files: Vec<PathBuf>, policy_files: Vec<PathBuf>) -> Loaded {
    let mut config = Config::default();
    config.classify.rule_files = rule_files;
    config.classify.policy_files = policy_files;
    Loaded {
        config,
        path: None,
        text: String::new(),
    }
}

fn load_error(l: &Loaded) -> String {
    match hubble_noise::load::classifier(l) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn oversized_unreadable_and_non_utf8_rule_files_are_clear_errors() {
    let _m = measured();
    let dir = tempfile::tempdir().unwrap();
    // A sparse 1 GiB file: only the first 4 MiB + 1 byte are ever read.
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let e = load_error(&loaded_with(vec![big.clone()], vec![]));
    assert!(
        e.contains("big.toml") && e.contains("larger than 4 MiB"),
        "{e}"
    );
    let e = load_error(&loaded_with(vec![PathBuf::from("/dev/zero")], vec![]));
    assert!(e.contains("not a regular file"), "{e}");
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let e = load_error(&loaded_with(vec![fifo], vec![]));
        assert!(e.contains("not a regular file"), "{e}");
    }
    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"# caf\xe9\n").unwrap();
    let e = load_error(&loaded_with(vec![latin1], vec![]));
    assert!(e.contains("latin1.toml") && e.contains("not UTF-8"), "{e}");
    let e = load_error(&loaded_with(vec![dir.path().to_path_buf()], vec![]));
    assert!(e.contains("cannot read"), "{e}");
    // Policy files: 16 MiB.
    let e = load_error(&loaded_with(vec![], vec![big]));
    assert!(e.contains("larger than 16 MiB"), "{e}");
    assert_rss("oversized files");
}

fn rule_text(name: &str, body: &str) -> String {
    format!("[[rule]]\nname = \"{name}\"\nowner = \"o\"\ncomment = \"c\"\n{body}\n")
}

fn load_rules(text: &str) -> Result<hubble_noise::rules::RuleSet, String> {
    hubble_noise::rules::RuleSet::load(&[hubble_noise::rules::RuleSource {
        path: "hostile.toml".into(),
        text: text.to_owned(),
        inline: false,
    }])
    .map_err(|e| e.to_string())
}

#[test]
fn rule_names_must_be_label_safe() {
    for bad in ["A", "a b", "a\\\"b", "é", "a{b}", "a\\nb", ""] {
        let e = load_rules(&rule_text(bad, "match = { direction = \"egress\" }")).unwrap_err();
        assert!(e.contains("name"), "{bad}: {e}");
    }
    let long = "a".repeat(129);
    let e = load_rules(&rule_text(&long, "match = { direction = \"egress\" }")).unwrap_err();
    assert!(e.contains("longer than 128"), "{e}");
    load_rules(&rule_text(
        "ok-name_1.2",
        "match = { direction = \"egress\" }",
    ))
    .unwrap();
}

/// `rules` rules of `per_rule` copies of `pattern` each.
fn pattern_rules(pattern: &str, rules: usize, per_rule: usize) -> String {
    let list: Vec<String> = (0..per_rule).map(|_| format!("\"{pattern}\"")).collect();
    let body = format!("match.destination = {{ fqdn = [{}] }}", list.join(","));
    (0..rules)
        .map(|i| rule_text(&format!("r{i}"), &body))
        .collect()
}

#[test]
fn pattern_sets_compile_within_bounds_or_are_refused_by_name() {
    let _m = measured();
    // The worst pattern: 255 bytes, 83 wildcards.
    let wild = format!("*.{}.*.com", "*.a".repeat(82));
    assert!(wild.len() <= 255, "{}", wild.len());
    let literal = format!("{}com", "abcdefghi.".repeat(25));
    assert!(literal.len() <= 255, "{}", literal.len());
    let flow = Flow {
        destination_names: vec![format!("{}com", "x.a.".repeat(60))],
        verdict: Verdict::Dropped as i32,
        ..Default::default()
    };
    // Just under the limit: compiles, matches, memory bounded.
    for (pattern, rules) in [(&wild, 22), (&literal, 90)] {
        let set = load_rules(&pattern_rules(pattern, rules, 10)).unwrap();
        let ctx = FlowCtx::new(&flow, "n", None);
        assert_eq!(set.first_match(&ctx), None);
    }
    // As many as fit in a 4 MiB file: refused before compiling, naming the file.
    let per_rule = 100;
    let rules = hubble_noise::rules::MAX_FILE_BYTES / (wild.len() + 3) / per_rule - 2;
    let e = load_rules(&pattern_rules(&wild, rules, per_rule)).unwrap_err();
    assert!(
        e.contains("hostile.toml") && e.contains("too large together"),
        "{e}"
    );
    assert_rss("largest pattern sets");
}

#[test]
fn pathological_globs_against_huge_values_end() {
    use hubble_noise::rules::glob::Glob;
    let g = Glob::new(&format!("{}b", "*a".repeat(127))).unwrap();
    let value = "a".repeat(1 << 20);
    assert!(!g.matches(&value));
    // One star then a long literal: the single-backtrack matcher's worst case, at the
    // longest value matched and beyond.
    let g = Glob::new(&format!("*{}b", "a".repeat(253))).unwrap();
    assert!(!g.matches(&value));
    let at_limit = "a".repeat(hubble_noise::rules::glob::MAX_SUBJECT);
    assert!(!g.matches(&at_limit));
    let g = Glob::new(&format!("*{}", "a".repeat(253))).unwrap();
    assert!(g.matches(&at_limit));
    assert!(
        !g.matches(&value),
        "longer than MAX_SUBJECT: only match-all matches"
    );
    let g = Glob::new(&"*".repeat(255)).unwrap();
    assert!(g.matches(&value));
    assert!(Glob::new(&"*".repeat(256)).is_err());
    assert!(Glob::new("a\u{0}b").is_err());
}

// ---------------------------------------------------------------- policy YAML

fn load_policy(text: &str) -> Result<usize, String> {
    hubble_noise::policy::PolicySet::load(
        &[hubble_noise::policy::PolicySource {
            path: "hostile.yaml".into(),
            text: text.to_owned(),
        }],
        &|_| false,
    )
    .map(|p| p.policies().len())
    .map_err(|e| {
        e.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn hostile_policy_yaml_is_refused_cleanly() {
    let _m = measured();
    // Deep nesting, flow and block style.
    let e = load_policy(&format!("kind: {}", "[".repeat(100_000))).unwrap_err();
    assert!(e.contains("hostile.yaml"), "{e}");
    let mut block = String::from("kind: CiliumNetworkPolicy\nmetadata:\n  name: p\nspec:\n");
    for d in 0..5000 {
        block.push_str(&" ".repeat(2 + d));
        block.push_str("- \n");
    }
    assert!(load_policy(&block).is_err());
    // Alias expansion ("billion laughs").
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (p, c) in ('a'..='h').zip('b'..='i') {
        laughs.push_str(&format!(
            "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    laughs.push_str("kind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: y}\nspec: *i\n");
    assert!(load_policy(&laughs).is_err());
    // NUL bytes and odd documents.
    assert!(load_policy("kind: \0\n").is_err() || load_policy("kind: \0\n").is_ok());
    assert_eq!(load_policy("---\n---\n").unwrap(), 0);
    assert_rss("hostile policy YAML");
}

// ---------------------------------------------------------------- the binary

/// `hubble-noise replay` on a recording with two 64 MiB lines (one unterminated at the end):
/// both reported with their line numbers, the flows around them read, the child's peak RSS
/// (polled from /proc while it runs) under 256 MiB.
#[test]
fn replay_binary_skips_64_mib_lines_within_256_mib() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ndjson");
    let good = |uuid: &str| {
        format!(
            r#"{{"flow":{{"uuid":"{uuid}","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","event_type":{{"type":5}},"traffic_direction":"EGRESS"}},"node_name":"n1"}}"#
        )
    };
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{}", good("a")).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f).unwrap();
        writeln!(f, "{}", good("b")).unwrap();
        let chunk = vec![b'{'; 1 << 20];
        for _ in 0..64 {
            f.write_all(&chunk).unwrap();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hubble-noise"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HUBBLE_NOISE_CONFIG")
        .args(["replay", "--format", "jsonl"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(v) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(v);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.to_str().unwrap();
    assert!(stderr.contains(&format!("{p}:2: ")), "{stderr}");
    assert!(stderr.contains(&format!("{p}:4: ")), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"a\"") && stdout.contains("\"b\""),
        "{stdout}"
    );
    let peak = peak_kib as f64 / 1024.0;
    eprintln!("replay of two 64 MiB lines: child peak RSS {peak:.1} MiB");
    assert!(peak > 0.0 && peak < RSS_LIMIT_MIB, "{peak:.1} MiB");
}

#[test]
fn tls_files_are_read_bounded() {
    let mut cfg = hubble_noise::config::RelayConfig {
        address: "https://127.0.0.1:1".into(),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("ca.crt");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    cfg.ca_file = Some(big);
    let e = hubble_noise::source::relay::endpoint(&cfg).unwrap_err();
    assert_eq!(e.reason, hubble_noise::source::relay::Reason::Tls);
    assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
    cfg.ca_file = Some(PathBuf::from("/dev/zero"));
    let e = hubble_noise::source::relay::endpoint(&cfg).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{}", e.message);
}
