//! The triage page in a real browser (PRODUCT.md §12): Debian's headless Chromium, driven by
//! `tests/browser/triage.mjs` (playwright-core from npm), against a daemon on 127.0.0.1 fed by
//! `--replay`. The groups page lists the unexpected groups with the right counts; a click opens
//! a group and then a flow with its decision path; the copy box holds a rule that `check`
//! accepts and that makes the group's flows expected on the next replay; names with markup are
//! text; inline script is refused. Screenshots go to `target/browser-shots/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `HUBBLE_NOISE_CHROMIUM`) and
//! `tests/browser/node_modules` (`npm ci` there): skipped without them, unless
//! `HUBBLE_NOISE_REQUIRE_TOOLS=1` (CI).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{replay_jsonl, run};
use common::{ReplayDaemon, skip_or_fail};
use serde_json::Value;

const CONFIG: &str = "tests/fixtures/names/config.toml";
const RECORDING: &str = "tests/fixtures/triage/recording.ndjson";
const HOSTILE_FLOW: &str = "5eed0000-0000-4000-8000-0000000000f0";
const HOSTILE_FLOW_2: &str = "5eed0000-0000-4000-8000-0000000000f1";

fn root(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn tools() -> Result<(), String> {
    let chromium = std::env::var("HUBBLE_NOISE_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node".into());
    }
    if !root("tests/browser/node_modules/playwright-core").exists() {
        return Err("tests/browser/node_modules (npm ci in tests/browser)".into());
    }
    Ok(())
}

/// The replay of the recording with `config`: class and rule by uuid.
fn classes(config: &Path) -> std::collections::HashMap<String, (String, Value)> {
    replay_jsonl(config, &root(RECORDING))
        .into_iter()
        .map(|v| {
            let uuid = v["uuid"].as_str().unwrap().to_string();
            let class = v["class"].as_str().unwrap().to_string();
            (uuid, (class, v["rule"].clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triage_page_in_chromium() {
    if let Err(missing) = tools() {
        skip_or_fail(&format!("the browser test's tools: {missing}"));
        return;
    }
    let d = ReplayDaemon::start(&root(CONFIG), &root(RECORDING), &[], 11.0).await;
    let api = d.json("/api/v1/groups").await;
    let groups = api["groups"].as_array().unwrap().clone();
    let target = groups
        .iter()
        .find(|g| g["source"] == "shop/expired")
        .unwrap()
        .clone();
    let hostile_group = d.json(&format!("/api/v1/flows/{HOSTILE_FLOW_2}")).await["group"]
        .as_str()
        .unwrap()
        .to_string();
    let shots = root("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{}", d.addr);
    let shots_arg = shots.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(root("tests/browser"))
            .args(["triage.mjs", &base, &shots_arg, "shop/expired"])
            .args([HOSTILE_FLOW, &hostile_group])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "triage.mjs: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    d.stop().await;

    // The groups, with the counts the API and a replay give.
    let rows = seen["groups"].as_array().unwrap();
    assert_eq!(rows.len(), groups.len(), "{seen}");
    for (row, g) in rows.iter().zip(&groups) {
        assert_eq!(row["flows"], g["flows"], "{row} vs {g}");
        assert_eq!(row["destination"], g["destination"], "{row} vs {g}");
    }
    let before = classes(&root(CONFIG));
    let unexpected = before.values().filter(|(c, _)| c == "unexpected").count();
    let shown: u64 = rows.iter().map(|r| r["flows"].as_u64().unwrap()).sum();
    assert_eq!(shown, unexpected as u64);

    // The group, the copy box and the flow.
    assert!(
        seen["groupUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/groups/{}", target["id"].as_str().unwrap()))
    );
    assert_eq!(
        seen["clipboard"], seen["draftPlaceholder"],
        "the button copies the draft"
    );
    assert_eq!(seen["copyLabel"], "Copied");
    let draft = seen["draft"].as_str().unwrap();
    assert!(
        draft.contains("owner = \"team-shop\"") && draft.contains("OPS-42"),
        "{draft}"
    );
    let explain = seen["explain"].as_str().unwrap();
    assert!(
        explain.starts_with("step none: nothing decided"),
        "{explain}"
    );
    assert!(
        explain.contains("nearest rule \"vendor-telemetry\""),
        "{explain}"
    );

    // The copied rule passes `check` and makes the group's flows expected.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("draft.toml"), draft).unwrap();
    let config = std::fs::read_to_string(root(CONFIG)).unwrap().replacen(
        "[classify]\n",
        "[classify]\nrule_files = [\"draft.toml\"]\n",
        1,
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let check = run(&["check", "-c", config_path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let after = classes(&config_path);
    let sample = target["sample_uuid"].as_str().unwrap();
    let name = draft
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .trim_matches('"');
    assert_eq!(after[sample].0, "expected", "{draft}");
    assert_eq!(after[sample].1, name);
    for (uuid, was) in &before {
        if uuid != sample {
            assert_eq!(&after[uuid], was, "only the group's flows change: {uuid}");
        }
    }

    // Markup in names is text; inline script is refused.
    assert!(
        seen["hostileFlowText"]
            .as_str()
            .unwrap()
            .contains("web-\"><script>window.__xss=1</script>")
    );
    assert!(
        seen["hostileGroupText"]
            .as_str()
            .unwrap()
            .contains("x\"'<img src=x onerror=window.__xss=3>")
    );
    assert!(
        seen["hostileIndexText"]
            .as_str()
            .unwrap()
            .contains("w<script>alert(1)</script>")
    );
    assert_eq!(seen["xss"], Value::Null, "no injected script ran");
    assert_eq!(seen["dialogs"], serde_json::json!([]));
    assert!(seen["csp"].as_str().unwrap().contains("script-src 'self'"));
    assert_eq!(seen["inlineRan"], false, "the CSP refuses inline script");
    assert!(seen["violations"].as_u64().unwrap() >= 1);

    // Without JavaScript.
    assert_eq!(seen["noJsRows"].as_u64().unwrap() as usize, groups.len());
    assert_eq!(seen["noJsCopyVisible"], false);
    assert!(seen["noJsDraft"].as_str().unwrap().contains("[[rule]]"));
    for shot in ["groups.png", "group.png", "flow.png", "groups-phone.png"] {
        let png = std::fs::read(shots.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot}");
    }
}
