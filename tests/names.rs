//! Names learned from DNS answers, end to end: a learned name matches only the pod that asked
//! and only within the TTL; and a name is evidence only when it is unambiguous and came from a
//! trusted DNS server (PRODUCT.md §5): shared IPs, several names on a flow, CNAME targets and
//! untrusted servers never make a drop expected. Each situation is in
//! `tests/fixtures/names/recording.ndjson` (one pod each) and, as a rule test, in
//! `tests/fixtures/names/names.test.toml`.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::cli::{run, stdout};
use common::{scrape, sum, wait_for};
use hubble_noise::daemon::{Input, run_daemon};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn jsonl(args: &[&str]) -> Vec<serde_json::Value> {
    let out = run(args);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn a_learned_name_matches_only_the_pod_that_asked_and_only_within_the_ttl() {
    let rows = jsonl(&[
        "replay",
        "-c",
        "tests/fixtures/dns/config.toml",
        "--format",
        "jsonl",
        "tests/fixtures/dns/recording.ndjson",
    ]);
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap_or(""),
                r["class"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // Five seconds after the answer: the name decides.
            (
                "shop/checkout-6d5f8b7c9-x2k4q",
                "expected",
                "app-explicit-traffic-blocked"
            ),
            // Another pod, same identity, same IP: it never asked.
            ("shop/checkout-6d5f8b7c9-zz9pq", "unexpected", "unmatched"),
            // The same pod, 39 s after an answer with a 30 s TTL.
            ("shop/checkout-6d5f8b7c9-x2k4q", "unexpected", "unmatched"),
        ]
    );
    assert_eq!(rows[0]["names"][0], "collector.telemetry.example.com");
}

/// Each situation's pod and the class its drop must get.
const SITUATIONS: [(&str, &str); 9] = [
    // Covered and uncovered asked names behind one IP, either order: unexpected.
    ("shop/shared-one-6d5f8b7c9-x2k4q", "unexpected"),
    ("shop/shared-two-6d5f8b7c9-x2k4q", "unexpected"),
    // One asked name, asked twice in other spellings: expected.
    ("shop/single-6d5f8b7c9-x2k4q", "expected"),
    // destination_names with a covered and an uncovered name; then only the covered one.
    ("shop/flow-names-6d5f8b7c9-x2k4q", "unexpected"),
    ("shop/flow-names-6d5f8b7c9-x2k4q", "expected"),
    // Asked x.evil.example, which CNAMEs into the covered domain: unexpected.
    ("shop/cname-only-6d5f8b7c9-x2k4q", "unexpected"),
    // Asked the vendor's name, answered through a CDN CNAME: expected.
    ("shop/cdn-6d5f8b7c9-x2k4q", "expected"),
    // A tenant's resolver answered: nothing learned.
    ("shop/untrusted-6d5f8b7c9-x2k4q", "unexpected"),
    // The answer's TTL ran out.
    ("shop/expired-6d5f8b7c9-x2k4q", "unexpected"),
];

#[test]
fn names_that_are_ambiguous_aliases_or_untrusted_never_make_a_drop_expected() {
    let rows = jsonl(&[
        "replay",
        "-c",
        "tests/fixtures/names/config.toml",
        "--format",
        "jsonl",
        "tests/fixtures/names/recording.ndjson",
    ]);
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap_or(""),
                r["class"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(got, SITUATIONS);
    // The table says what the names did.
    let out = run(&[
        "replay",
        "-c",
        "tests/fixtures/names/config.toml",
        "tests/fixtures/names/recording.ndjson",
    ]);
    let table = stdout(&out);
    assert!(
        table.contains("names: 1 DNS answer(s) from untrusted servers not learned; 4 flow(s)"),
        "{table}"
    );
}

#[test]
fn the_same_situations_pass_as_rule_tests() {
    let out = run(&[
        "test",
        "-c",
        "tests/fixtures/names/config.toml",
        "tests/fixtures/names/names.test.toml",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with("test: 9 passed, 0 failed\n"), "{text}");
    // A wrong expectation fails and shows why the name did not count.
    let dir = tempfile::tempdir().expect("tempdir");
    let tests = std::fs::read_to_string("tests/fixtures/names/names.test.toml")
        .expect("names.test.toml")
        .replacen(
            "expect = { class = \"unexpected\", reason = \"unmatched\" }",
            "expect = { class = \"expected\" }",
            1,
        );
    let path = dir.path().join("wrong.test.toml");
    std::fs::write(&path, tests).expect("write");
    let out = run(&[
        "test",
        "-c",
        "tests/fixtures/names/config.toml",
        path.to_str().expect("utf-8 path"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("the pod asked for 2 names that resolved to"),
        "{text}"
    );
}

/// `run` counts the ignored answer and the flows a lone name would have decided otherwise.
#[tokio::test]
async fn the_daemon_counts_untrusted_answers_and_ambiguous_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = hubble_noise::load::config(Some(&root.join("tests/fixtures/names/config.toml")))
        .expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, rx) = oneshot::channel::<()>();
    let input = Input::Replay {
        path: root.join("tests/fixtures/names/recording.ndjson"),
        looped: false,
        rate: None,
    };
    let task = tokio::spawn(run_daemon(loaded, input, listener, async {
        let _ = rx.await;
    }));
    let text = wait_for(addr, "9 flows", |t| {
        sum(t, "hubble_noise_flows_total", &[]) == 9.0
    })
    .await;
    assert_eq!(
        sum(&text, "hubble_noise_flows_total", &["class=\"expected\""]),
        3.0
    );
    assert_eq!(
        sum(
            &text,
            "hubble_noise_dns_answers_ignored_total",
            &["reason=\"untrusted_server\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(sum(&text, "hubble_noise_names_ambiguous_total", &[]), 4.0);
    let _ = scrape(addr).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
