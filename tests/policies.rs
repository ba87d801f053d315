//! `check` on a config with policy files: what it imported, the warnings about ignored fields
//! and about expected tags that no imported policy carries.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn check_lists_imported_policies_and_warns_about_typos_and_ignored_fields() {
    let out = Command::new(env!("CARGO_BIN_EXE_hubble-noise"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HUBBLE_NOISE_CONFIG")
        .args(["check", "-c", "tests/fixtures/policies/config.toml"])
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let want = [
        "policies: 2 from 1 path(s), 1 deny matcher(s)",
        "  CiliumNetworkPolicy shop/checkout-egress (no log value; 0 deny rule(s), 0 matcher(s)) \
         tests/fixtures/policies/policies/allow.yaml:1",
        "  CiliumNetworkPolicy shop/deny-vendor-telemetry (log vendor-telemetry-blocked \
         (expected); 2 deny rule(s), 1 matcher(s)) tests/fixtures/policies/policies/deny.yaml:1",
        "warning: tests/fixtures/policies/policies/deny.yaml:1:0: \
         document[0].items[0].spec.egressDeny[1]: toServices is not supported: rule skipped",
        "warning: classify.expected_log_tags: \"vendor-telemetry-blockd\" is carried by no \
         imported policy (a typo?)",
    ];
    for w in want {
        assert!(text.lines().any(|l| l == w), "missing {w:?} in:\n{text}");
    }
}

#[test]
fn a_bad_policy_file_fails_check_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[classify]\npolicy_files = [\"p.yaml\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("p.yaml"),
        "kind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: b}\n---\n\
         kind: CiliumNetworkPolicy\nmetadata: {name: c, namespace: b}\nspec:\n  egressDeny: 3\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hubble-noise"))
        .env_remove("HUBBLE_NOISE_CONFIG")
        .args(["check", "-c"])
        .arg(dir.path().join("config.toml"))
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert!(
        err.contains("p.yaml:7:15: document[1].spec.egressDeny: invalid type: integer `3`"),
        "{err}"
    );
}

#[test]
fn replay_classifies_flows_without_policy_log_by_the_imported_policies() {
    let out = Command::new(env!("CARGO_BIN_EXE_hubble-noise"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HUBBLE_NOISE_CONFIG")
        .args([
            "replay",
            "-c",
            "tests/fixtures/policies/config.toml",
            "--format",
            "jsonl",
            "--explain",
            "tests/fixtures/policies/recording.ndjson",
        ])
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let got: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap_or(""),
                r["class"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
                r["attribution"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("AUDIT", "expected", "vendor-telemetry-blocked", "policy"),
            (
                "DROPPED",
                "expected",
                "vendor-telemetry-blocked",
                "denied_by"
            ),
            // 203.0.113.200 is in the rule's `except` range.
            ("DROPPED", "unexpected", "unmatched", "none"),
        ]
    );
    let explain: Vec<&str> = rows[0]["explain"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    let explain = explain.join("\n");
    assert!(
        explain.contains("CiliumNetworkPolicy shop/deny-vendor-telemetry"),
        "{explain}"
    );
}
