//! Names learned from DNS answers, end to end through `replay`: the pod that resolved the name
//! is matched by it until the TTL runs out; another pod (even of the same security identity)
//! is not, and neither is the same pod after the TTL.

use std::process::Command;

#[test]
fn a_learned_name_matches_only_the_pod_that_asked_and_only_within_the_ttl() {
    let out = Command::new(env!("CARGO_BIN_EXE_hubble-noise"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HUBBLE_NOISE_CONFIG")
        .args([
            "replay",
            "-c",
            "tests/fixtures/dns/config.toml",
            "--format",
            "jsonl",
            "tests/fixtures/dns/recording.ndjson",
        ])
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
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
