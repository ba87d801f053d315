//! `replay` and `check` end to end: real recordings, golden output, bad input, exit codes.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::cli::{bin, fixtures, recordings, run};

/// What a correct replay counts, computed from the raw JSON without the project's code:
/// DROPPED/AUDIT flows, minus policy drop notifications, minus repeated (node, uuid).
fn oracle_count(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let mut seen = HashSet::new();
    let mut counted = 0;
    let mut lines = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let v: serde_json::Value = serde_json::from_str(line).expect("fixture is JSON");
        let f = &v["flow"];
        if f.is_null() {
            continue;
        }
        let uuid = f["uuid"].as_str().unwrap_or("");
        let node = f["node_name"]
            .as_str()
            .or(v["node_name"].as_str())
            .unwrap_or("");
        if !uuid.is_empty() && !seen.insert((node.to_string(), uuid.to_string())) {
            continue;
        }
        let verdict = f["verdict"].as_str().unwrap_or("");
        if verdict != "DROPPED" && verdict != "AUDIT" {
            continue;
        }
        let is_notify = f["event_type"]["type"].as_i64() == Some(1);
        let reason = f["drop_reason_desc"].as_str().unwrap_or("");
        if is_notify && ["POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED"].contains(&reason) {
            continue;
        }
        counted += 1;
    }
    (lines, counted)
}

#[test]
fn every_real_recording_replays_and_counts_each_denial_once() {
    let Some(dir) = fixtures() else { return };
    let files = recordings(&dir);
    assert!(
        files.len() >= 30,
        "expected the real recordings, found {}",
        files.len()
    );
    let mut total_counted = 0;
    for f in &files {
        let out = run(&[
            "replay",
            "--format",
            "jsonl",
            f.to_str().expect("utf-8 path"),
        ]);
        assert!(out.status.success(), "{}: {:?}", f.display(), out);
        let (lines, want) = oracle_count(f);
        let got = String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .count();
        assert_eq!(got, want, "{}: counted flows", f.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("replay: {lines} lines,"))
                && stderr.contains(", 0 unreadable"),
            "{}: every line read: {stderr}",
            f.display()
        );
        total_counted += got;
    }
    assert!(
        total_counted > 300,
        "the recordings hold hundreds of denials, got {total_counted}"
    );
}

#[test]
fn recordings_replayed_together_count_shared_flows_once() {
    let Some(dir) = fixtures() else { return };
    let base = dir.join("cilium-poc-1.20/captures/policies/27");
    let a = base.join("flows-audit.ndjson");
    let b = base.join("flows-audit-all.ndjson");
    let count = |files: &[&Path]| {
        let mut args = vec!["replay", "--format", "jsonl"];
        args.extend(files.iter().map(|p| p.to_str().expect("utf-8")));
        let out = run(&args);
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .count()
    };
    let (na, nb, both) = (count(&[&a]), count(&[&b]), count(&[&a, &b]));
    assert!(
        both < na + nb,
        "shared uuids count once: {na} + {nb} vs {both}"
    );
    assert!(
        both >= na.max(nb),
        "nothing else is lost: {na}, {nb} vs {both}"
    );
}

/// Golden `jsonl` output. `HUBBLE_NOISE_BLESS=1 cargo test` rewrites the files.
#[test]
fn golden_jsonl() {
    let Some(dir) = fixtures() else { return };
    let cases: [(&str, &[&str]); 4] = [
        (
            "example",
            &["-c", "examples/config.toml", "examples/recording.ndjson"],
        ),
        (
            "kiosk",
            &["cilium-poc-1.20/captures/policies/32/flows-kiosk.ndjson"],
        ),
        (
            "shop-audit",
            &["cilium-poc-1.20/demos/35-shop-platform/policies/flows-audit.ndjson"],
        ),
        (
            "frontend",
            &["cilium-poc-1.20/demos/32-operator-loop/policies/flows-frontend.ndjson"],
        ),
    ];
    let bless = std::env::var_os("HUBBLE_NOISE_BLESS").is_some();
    for (name, args) in cases {
        let mut full = vec!["replay".to_string(), "--format".into(), "jsonl".into()];
        for a in args {
            if a.ends_with(".json") || a.ends_with(".ndjson") && !a.starts_with("examples") {
                full.push(dir.join(a).to_string_lossy().into_owned());
            } else {
                full.push((*a).to_string());
            }
        }
        let out = bin().args(&full).output().expect("runs");
        assert!(out.status.success(), "{name}: {out:?}");
        let got = String::from_utf8(out.stdout).expect("utf-8");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.jsonl"));
        if bless {
            std::fs::write(&path, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with HUBBLE_NOISE_BLESS=1)", path.display()));
        assert_eq!(got, want, "{name}: output differs from {}", path.display());
    }
}

#[test]
fn a_malformed_line_is_reported_and_the_rest_is_classified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("torn.ndjson");
    let good = |uuid: &str| {
        format!(
            r#"{{"flow":{{"time":"2026-01-01T00:00:00Z","uuid":"{uuid}","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","event_type":{{"type":5}},"traffic_direction":"EGRESS"}},"node_name":"n1"}}"#
        )
    };
    let text = format!(
        "{}\n{{\"flow\":{{\"verdict\":\"DROPP\n{}\nnot json at all\n\n{}\n",
        good("a"),
        good("b"),
        good("c")
    );
    std::fs::write(&path, text).expect("write");
    let p = path.to_str().expect("utf-8");
    let out = run(&["replay", "--format", "jsonl", p]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{p}:2: ")),
        "line 2 reported: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{p}:4: ")),
        "line 4 reported: {stderr}"
    );
    assert!(stderr.contains("2 unreadable"), "{stderr}");
    let uuids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
            v["uuid"].as_str().expect("uuid").to_string()
        })
        .collect();
    assert_eq!(uuids, ["a", "b", "c"]);
}

#[test]
fn gzip_and_stdin_inputs_are_read() {
    use std::io::Write;
    let line =
        br#"{"flow":{"uuid":"z","verdict":"AUDIT","event_type":{"type":5}},"node_name":"n"}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = dir.path().join("r.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create"),
        flate2::Compression::default(),
    );
    enc.write_all(line).expect("write");
    enc.finish().expect("finish");
    let out = run(&["replay", "--format", "jsonl", gz.to_str().expect("utf-8")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{out:?}"
    );

    let mut child = bin()
        .args(["replay", "--format", "jsonl", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(line)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn check_exit_codes() {
    let ok = run(&["check", "-c", "config.toml"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let ok = run(&["check", "-c", "examples/config.toml"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("config.toml");
    std::fs::write(&bad, "[metrics]\nlisten = \"0.0.0.0:9967\"\nlables = []\n").expect("write");
    let out = run(&["check", "-c", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1: metrics.lables: unknown field `lables`, expected one of `listen`, `labels`, `max_series`, `exemplars`", bad.display())),
        "{stderr}"
    );

    let missing = run(&["check", "-c", "/nonexistent/config.toml"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// `check` refuses each invalid rule file with exit 1 and the exact messages of its `.err` file.
#[test]
fn check_refuses_each_invalid_rule_file_with_its_exact_message() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let mut n = 0;
    for e in std::fs::read_dir(&fixtures).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        let want = std::fs::read_to_string(p.with_extension("err")).expect(".err file");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(&p, dir.path().join(name)).expect("copy");
        std::fs::write(
            dir.path().join("config.toml"),
            format!("[classify]\nrule_files = [\"{name}\"]\n"),
        )
        .expect("config");
        let out = bin()
            .current_dir(dir.path())
            .args(["check", "-c", "config.toml"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in want.lines().filter(|l| !l.is_empty()) {
            assert!(
                stderr.contains(line),
                "{name}: missing {line:?} in\n{stderr}"
            );
        }
        n += 1;
    }
    assert!(n >= 12, "every kind of bad rule file, found {n}");
}
