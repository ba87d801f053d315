//! `hubble-noise observe` (PRODUCT.md §7) against the fake relay (a tonic `Observer` server
//! on 127.0.0.1:0): it prints the unexpected flows the relay sent, as they arrive, and stops
//! on SIGINT with exit status 0. No Go peer needed.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cli::bin;
use common::fake_relay::{FakeRelay, Step, T0, flow, start_relay};

/// Flows of namespace `b` are expected by an inline rule; the others are unexpected.
fn config(dir: &std::path::Path, relay: std::net::SocketAddr) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            r#"[relay]
address = "http://{relay}"
backoff_initial = "50ms"
backoff_max = "200ms"

[[rule]]
name = "namespace-b"
owner = "team-b"
comment = "b's drops are known"

[rule.match.source]
namespace = ["b"]
"#
        ),
    )
    .unwrap();
    p
}

/// Reads lines from `rx` until `n` arrived (30 s at most).
fn take_lines(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => out.push(l),
            Err(e) => panic!("{e}: got only {out:?}"),
        }
    }
    out
}

fn observe_prints_then_stops_on_sigint(format: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = FakeRelay::new(vec![vec![
        Step::Send(Box::new(flow("u1", "n1", "a", T0))),
        Step::Send(Box::new(flow("u2", "n1", "b", T0 + 1))),
        Step::Send(Box::new(flow("u3", "n2", "c", T0 + 2))),
    ]]);
    // The stream stays open after the script (the relay holds it): observe keeps following.
    let r = rt.block_on(start_relay(relay));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), r.addr);
    let mut child = bin()
        .args(["observe", "-c"])
        .arg(&cfg)
        .args(["-o", format])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let lines = take_lines(&rx, 2);
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("observe did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Nothing more was printed: the expected flow of b never shows.
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
    drop(r);
    lines
}

#[test]
fn observe_prints_the_relays_unexpected_flows_and_stops_on_sigint() {
    let lines = observe_prints_then_stops_on_sigint("jsonl");
    let recs: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let uuids: Vec<&str> = recs.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids, ["u1", "u3"]);
    for r in &recs {
        assert_eq!(r["class"], "unexpected");
        assert_eq!(r["reason"], "unmatched");
        assert_eq!(r["verdict"], "DROPPED");
        assert_eq!(r["direction"], "egress");
    }
    assert_eq!(recs[0]["source"], "a/a-pod");
    assert_eq!(recs[1]["node"], "n2");
}

#[test]
fn observe_compact_lines_name_the_flow_class_and_reason() {
    let lines = observe_prints_then_stops_on_sigint("compact");
    assert!(lines[0].contains("[n1]: a/a-pod"), "{}", lines[0]);
    assert!(lines[1].contains("[n2]: c/c-pod"), "{}", lines[1]);
    for l in &lines {
        assert!(
            l.contains("DROPPED POLICY_DENIED EGRESS => unexpected (unmatched)"),
            "{l}"
        );
    }
}
