//! The triage API and page (PRODUCT.md §12) of a daemon fed by `--replay`: the JSON of each
//! endpoint pinned by golden files (`HUBBLE_NOISE_BLESS=1` rewrites them), the filters, the
//! escaping of hostile names, the headers, and `triage.enabled = false`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{ReplayDaemon, sum};
use serde_json::Value;

const CONFIG: &str = "tests/fixtures/names/config.toml";
const RECORDING: &str = "tests/fixtures/triage/recording.ndjson";
/// Flows the recording counts (replay of it: 8 unexpected, 3 expected).
const COUNTED: f64 = 11.0;

fn root(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

async fn start(env: &[(&str, &str)]) -> ReplayDaemon {
    ReplayDaemon::start(&root(CONFIG), &root(RECORDING), env, COUNTED).await
}

/// The draft rules' expiry depends on today, and rule locations on the checkout's folder:
/// both pinned as placeholders.
fn normalize(body: &str) -> String {
    let re = regex::Regex::new(r"expires = \d{4}-\d{2}-\d{2}T00:00:00Z").unwrap();
    re.replace_all(body, "expires = <30 days ahead>")
        .replace(concat!(env!("CARGO_MANIFEST_DIR"), "/"), "")
}

fn golden(name: &str, got: &Value) {
    let got = normalize(&(serde_json::to_string_pretty(got).unwrap() + "\n"));
    let path = root(&format!("tests/golden/{name}.json"));
    if std::env::var_os("HUBBLE_NOISE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with HUBBLE_NOISE_BLESS=1)", path.display()));
    assert_eq!(got, want, "{name} differs from {}", path.display());
}

fn uuids(v: &Value) -> Vec<String> {
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["uuid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_api_answers_with_the_pinned_json_and_filters() {
    let d = start(&[]).await;
    let groups = d.json("/api/v1/groups").await;
    golden("api-groups", &groups);
    let all = d.json("/api/v1/flows").await;
    golden("api-flows", &all);
    assert_eq!(
        uuids(&all).len(),
        11,
        "8 unexpected and the rule's 3 expected"
    );
    assert!(
        all["flows"][0].get("explain").is_none(),
        "lists carry no path"
    );
    let total: u64 = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["flows"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 8, "the groups hold every unexpected flow");

    let one = d
        .json("/api/v1/flows/5eed0000-0000-4000-8000-000000000003")
        .await;
    golden("api-flow", &one);
    assert!(one["explain"].as_array().is_some_and(|e| !e.is_empty()));

    let expected = d.json("/api/v1/flows?class=expected").await;
    assert_eq!(uuids(&expected).len(), 3);
    assert_eq!(
        uuids(&d.json("/api/v1/flows?rule=vendor-telemetry").await),
        uuids(&expected)
    );
    let unexpected = d.json("/api/v1/flows?class=unexpected&limit=3").await;
    assert_eq!(uuids(&unexpected).len(), 3);
    let evil = d.json("/api/v1/flows?namespace=evil%27%22ns%3Cb%3E").await;
    assert_eq!(uuids(&evil), ["5eed0000-0000-4000-8000-0000000000f0"]);
    let by_name = d.json("/api/v1/flows?destination=CDN-customer").await;
    assert!(!uuids(&by_name).is_empty());
    for f in by_name["flows"].as_array().unwrap() {
        assert!(f["names"].to_string().contains("cdn-customer"), "{f}");
    }
    let late = d.json("/api/v1/flows?since=2026-11-20T10:09:00Z").await;
    assert_eq!(late["flows"].as_array().unwrap().len(), 2);
    let id = groups["groups"][0]["id"].as_str().unwrap();
    let g = d.json(&format!("/api/v1/groups?group={id}")).await;
    assert_eq!(g["groups"].as_array().unwrap().len(), 1);
    let of_group = d.json(&format!("/api/v1/flows?group={id}")).await;
    assert_eq!(
        of_group["flows"].as_array().unwrap().len() as u64,
        groups["groups"][0]["flows"].as_u64().unwrap()
    );
    let shop = d
        .json("/api/v1/groups?namespace=shop&workload=expired")
        .await;
    assert_eq!(shop["groups"].as_array().unwrap().len(), 1);

    let (status, _, body) = d.get("/api/v1/flows?limit=0").await;
    assert_eq!(status, 400);
    assert!(body.contains("limit=\\\"0\\\""), "{body}");
    let (status, _, _) = d.get("/api/v1/flows/no-such-uuid").await;
    assert_eq!(status, 404);
    let (status, _, _) = d.get("/api/v1/nothing").await;
    assert_eq!(status, 404);
    let metrics = common::scrape(d.addr).await;
    assert_eq!(
        sum(
            &metrics,
            "hubble_noise_triage_flows",
            &["class=\"unexpected\""]
        ),
        8.0
    );
    d.stop().await;
}

#[tokio::test]
async fn the_page_escapes_every_name_and_forbids_inline_script() {
    let d = start(&[]).await;
    let (status, ctype, index) = d.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/html; charset=utf-8");
    let hostile = d.get("/flows/5eed0000-0000-4000-8000-0000000000f0").await.2;
    let group_of_hostile = d
        .json("/api/v1/flows/5eed0000-0000-4000-8000-0000000000f1")
        .await["group"]
        .as_str()
        .unwrap()
        .to_string();
    let group = d.get(&format!("/groups/{group_of_hostile}")).await.2;
    for page in [&index, &hostile, &group] {
        assert!(!page.contains("<script>window"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("'onmouseover='"), "{page}");
        // Only the page's own script tag.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }
    assert!(hostile.contains("web-&quot;&gt;&lt;script&gt;window.__xss=1&lt;/script&gt;"));
    assert!(group.contains("x&quot;&#39;&lt;img src=x onerror=window.__xss=3&gt;"));
    assert!(hostile.contains("Decision path"));

    let headers = raw_head(d.addr, "/").await;
    for h in [
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';",
        "x-content-type-options: nosniff",
        "x-frame-options: DENY",
    ] {
        assert!(
            headers.to_lowercase().contains(&h.to_lowercase()),
            "{h}\n{headers}"
        );
    }
    let (status, ctype, css) = d.get("/static/style.css").await;
    assert_eq!((status, ctype.as_str()), (200, "text/css; charset=utf-8"));
    assert!(css.contains("prefers-color-scheme"));
    let (status, _, _) = d.get("/flows/not-kept").await;
    assert_eq!(status, 404);
    d.stop().await;
}

async fn raw_head(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn triage_disabled_removes_the_page_and_the_api() {
    let d = start(&[("HUBBLE_NOISE_TRIAGE__ENABLED", "false")]).await;
    for path in ["/", "/api/v1/flows", "/api/v1/groups", "/static/style.css"] {
        assert_eq!(d.get(path).await.0, 404, "{path}");
    }
    let metrics = common::scrape(d.addr).await;
    assert!(!metrics.contains("hubble_noise_triage_flows{"), "{metrics}");
    d.stop().await;
}
