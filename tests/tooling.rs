//! The rule-writer's tools end to end: `suggest` round trips, `test`, `replay --explain`.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::cli::{fixtures, run, run_in, stdout};

fn recordings() -> Vec<PathBuf> {
    fixtures()
        .map(|d| common::cli::recordings(&d))
        .unwrap_or_default()
}

fn classes(jsonl: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
            v["class"].as_str().expect("class").to_string()
        })
        .collect()
}

/// `suggest` on each real recording gives a rule file that `check` accepts and that turns every
/// unexpected flow of that recording expected.
#[test]
fn suggest_round_trips_on_every_real_recording() {
    let mut with_unexpected = 0;
    for rec in recordings() {
        let r = rec.to_str().expect("utf-8");
        let before = run(&["replay", "--format", "jsonl", r]);
        assert!(before.status.success(), "{r}: {before:?}");
        let before = classes(&stdout(&before));
        let unexpected = before.iter().filter(|c| *c == "unexpected").count();

        let suggested = run(&["suggest", r]);
        assert!(suggested.status.success(), "{r}: {suggested:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("suggested.toml"), stdout(&suggested)).expect("write");
        std::fs::write(
            dir.path().join("config.toml"),
            "[classify]\nrule_files = [\"suggested.toml\"]\n",
        )
        .expect("write");
        let check = run_in(dir.path(), &["check", "-c", "config.toml"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{r}: check refuses:\n{check:?}"
        );

        let after = run_in(
            dir.path(),
            &["replay", "--format", "jsonl", "-c", "config.toml", r],
        );
        assert!(after.status.success(), "{r}: {after:?}");
        let after = classes(&stdout(&after));
        assert_eq!(after.len(), before.len(), "{r}: same flows counted");
        assert!(
            after.iter().all(|c| c == "expected"),
            "{r}: {} of {} still unexpected",
            after.iter().filter(|c| *c == "unexpected").count(),
            after.len()
        );
        if unexpected > 0 {
            with_unexpected += 1;
        }
    }
    if !recordings().is_empty() {
        assert!(
            with_unexpected >= 10,
            "most recordings have unexpected flows: {with_unexpected}"
        );
    }
}

#[test]
fn the_example_rule_tests_pass() {
    let out = run(&[
        "test",
        "-c",
        "examples/config.toml",
        "examples/rules.test.toml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("test: 6 passed, 0 failed"), "{out:?}");
}

#[test]
fn test_catches_a_wrong_expectation() {
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules.test.toml"),
    )
    .expect("example tests");
    // The first test expects the vendor rule; claim the opposite.
    let wrong = good.replacen(
        "expect = { class = \"expected\", rule = \"vendor-telemetry\", reason = \"app-explicit-traffic-blocked\" }",
        "expect = { class = \"unexpected\", rule = \"some-other-rule\" }",
        1,
    );
    assert_ne!(wrong, good);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wrong.test.toml");
    std::fs::write(&path, wrong).expect("write");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config.toml");
    let out = run(&[
        "test",
        "-c",
        config.to_str().expect("utf-8"),
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    let want = format!(
        "FAIL {}:6 telemetry to an IP the pod resolved is expected: class: expected \"unexpected\", got \"expected\"; rule: expected \"some-other-rule\", got \"vendor-telemetry\"",
        path.display()
    );
    assert!(text.contains(&want), "{text}");
    assert!(
        text.contains("step rule: rule \"vendor-telemetry\""),
        "decision path shown: {text}"
    );
    assert!(text.contains("test: 5 passed, 1 failed"), "{text}");
}

#[test]
fn a_bad_test_file_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.test.toml");
    std::fs::write(
        &path,
        "[[test]]\nname = \"x\"\nflow = '{}'\nexpect = { klass = \"expected\" }\n",
    )
    .expect("write");
    let out = run(&["test", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:4:12: test[0].expect.klass: unknown field `klass`",
            path.display()
        )),
        "{err}"
    );
}

/// `replay --explain` for each decision step, pinned. `HUBBLE_NOISE_BLESS=1` rewrites.
#[test]
fn golden_explain() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "explain-policies",
            &[
                "-c",
                "tests/fixtures/policies/config.toml",
                "tests/fixtures/policies/recording.ndjson",
            ],
        ),
        (
            "explain-steps",
            &[
                "-c",
                "tests/explain/config.toml",
                "tests/explain/recording.ndjson",
            ],
        ),
        (
            "explain-example",
            &["-c", "examples/config.toml", "examples/recording.ndjson"],
        ),
        (
            // Every reason a name does not count: a shared IP, an uncovered name on the flow,
            // a CNAME target alone, an untrusted server, an expired TTL.
            "explain-names",
            &[
                "-c",
                "tests/fixtures/names/config.toml",
                "tests/fixtures/names/recording.ndjson",
            ],
        ),
    ];
    let bless = std::env::var_os("HUBBLE_NOISE_BLESS").is_some();
    for (name, args) in cases {
        for format in ["table", "jsonl"] {
            let mut full = vec!["replay", "--explain", "--format", format];
            full.extend_from_slice(args);
            let out = run(&full);
            assert!(out.status.success(), "{name}: {out:?}");
            let got = stdout(&out);
            let ext = if format == "table" { "txt" } else { "jsonl" };
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.{ext}"));
            if bless {
                std::fs::write(&path, &got).expect("write golden");
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (run with HUBBLE_NOISE_BLESS=1)", path.display())
            });
            assert_eq!(
                got,
                want,
                "{name} ({format}) differs from {}",
                path.display()
            );
        }
    }
    let steps = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/explain-steps.txt"),
    )
    .expect("golden");
    for step in [
        "step policy_log:",
        "step rule:",
        "step none:",
        "FAIL expires",
    ] {
        assert!(steps.contains(step), "{step} pinned");
    }
}

/// A crafted recording cannot write rules into `suggest`'s output: a uuid and names holding
/// newlines, quotes and a `[[rule]]` table stay inside their strings or are not repeated, and
/// the output is rules that `check` accepts.
#[test]
fn suggest_output_cannot_be_injected_from_a_recording() {
    let evil = "\n[[rule]]\nname = \"evil\"\nclass = \"expected\"\nowner = \"x\"\ncomment = \"x\"\n[rule.match]\nverdict = [\"DROPPED\"]\n# ";
    let line = |uuid: &str, pod: &str, dst: &str| {
        serde_json::json!({
            "flow": {
                "uuid": uuid,
                "verdict": "DROPPED",
                "drop_reason_desc": "POLICY_DENIED",
                "IP": {"source": "10.0.0.1", "destination": dst, "ipVersion": "IPv4"},
                "l4": {"TCP": {"source_port": 40000, "destination_port": 443}},
                "source": {"namespace": "shop", "pod_name": pod},
                "destination": {"identity": 2, "labels": ["reserved:world"]},
                "event_type": {"type": 5},
                "traffic_direction": "EGRESS",
                "time": "2026-11-20T10:00:00Z"
            }
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("crafted.ndjson");
    std::fs::write(
        &rec,
        format!(
            "{}\n{}\n",
            line(&format!("5eed{evil}"), "web-1", "192.0.2.1"),
            line("5eed-2", &format!("p'\"x{evil}"), "192.0.2.2")
        ),
    )
    .expect("write");
    let out = run(&["suggest", rec.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let doc: toml::Table = toml::from_str(&text).expect("suggest writes valid TOML");
    let rules = doc["rule"].as_array().expect("rules");
    assert_eq!(rules.len(), 1, "{text}");
    assert_ne!(rules[0]["name"].as_str(), Some("evil"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("#"))
            .all(|l| !l.contains("evil")),
        "nothing from the flow in a comment:\n{text}"
    );
    assert!(
        text.contains("endpoint names a rule cannot hold as they are"),
        "the crafted pod gets no rule: {text}"
    );
    std::fs::write(dir.path().join("s.toml"), &text).expect("write");
    std::fs::write(
        dir.path().join("config.toml"),
        "[classify]\nrule_files = [\"s.toml\"]\n",
    )
    .expect("write");
    let check = run_in(dir.path(), &["check", "-c", "config.toml"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
}

/// `observe --replay`: the unexpected flows by default, each a compact line with class and
/// reason; `--class` chooses; `-o jsonl` has the fields of `replay --format jsonl`.
#[test]
fn observe_prints_the_classified_flows_of_a_recording() {
    let args = |extra: &[&str]| {
        let mut a = vec![
            "observe",
            "-c",
            "tests/fixtures/names/config.toml",
            "--replay",
            "tests/fixtures/names/recording.ndjson",
        ];
        a.extend_from_slice(extra);
        let out = run(&a);
        assert!(out.status.success(), "{out:?}");
        stdout(&out)
    };
    let unexpected = args(&[]);
    assert_eq!(unexpected.lines().count(), 6, "{unexpected}");
    assert!(
        unexpected
            .lines()
            .all(|l| l.ends_with("=> unexpected (unmatched)")),
        "{unexpected}"
    );
    assert!(
        unexpected.starts_with(
            "Nov 20 10:00:03.000 [prod/worker-1]: shop/shared-one-6d5f8b7c9-x2k4q:50001 -> \
             198.51.100.10:443 (collector.telemetry.example.com) DROPPED POLICY_DENIED EGRESS"
        ),
        "{unexpected}"
    );
    let expected = args(&["--class", "expected"]);
    assert_eq!(expected.lines().count(), 3, "{expected}");
    assert!(
        expected
            .lines()
            .all(|l| l
                .ends_with("=> expected (app-explicit-traffic-blocked, rule vendor-telemetry)")),
        "{expected}"
    );
    let all = args(&["--class", "all", "-o", "jsonl"]);
    let replayed = run(&[
        "replay",
        "--format",
        "jsonl",
        "-c",
        "tests/fixtures/names/config.toml",
        "tests/fixtures/names/recording.ndjson",
    ]);
    assert_eq!(
        all,
        stdout(&replayed),
        "observe -o jsonl prints what replay does"
    );
    let explained = args(&["--explain"]);
    assert!(
        explained.contains("    step none: nothing decided") && explained.contains("dns.servers"),
        "{explained}"
    );
}
