//! The daemon against a fake hubble-relay (a tonic `Observer` server on 127.0.0.1:0), scraped
//! over HTTP. No timed assertions: every wait polls `/metrics` until a deadline.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::fake_relay::{
    FakeRelay, Running, Step, T0, flow, start_relay, start_relay_on, test_config, ts,
};
use common::{BAD_CONFIG, FileDaemon, GOOD_CONFIG, http, scrape, sum, wait_for};
use hubble_noise::api::flow::{
    Endpoint, Flow, LostEvent, LostEventSource, TrafficDirection, Verdict,
};
use hubble_noise::api::observer::GetFlowsResponse;
use hubble_noise::api::observer::get_flows_response::ResponseTypes;
use hubble_noise::api::relay::{NodeState, NodeStatusEvent};
use hubble_noise::classify::{Attribution, Decision};
use hubble_noise::config::{Config, Loaded, MetricsConfig};
use hubble_noise::daemon::{Input, run_daemon};
use hubble_noise::flow::FlowCtx;
use hubble_noise::metrics::Metrics;
use hubble_noise::rules::Class;
use hubble_noise::server::{AppState, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Status;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

// ---------------------------------------------------------------- the fake relay

// ---------------------------------------------------------------- the daemon

async fn start_daemon(cfg: Config) -> Running {
    start_daemon_input(cfg, Input::Relay).await
}

async fn start_daemon_input(cfg: Config, input: Input) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let loaded = Loaded {
        config: cfg,
        path: None,
        text: String::new(),
    };
    tokio::spawn(async move {
        run_daemon(loaded, input, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
    }
}

fn flows_total(text: &str) -> f64 {
    sum(text, "hubble_noise_flows_total", &[])
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn happy_path_counts_exactly() {
    let relay = FakeRelay::new(vec![vec![
        Step::Send(Box::new(flow("u1", "n1", "a", T0))),
        Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1))),
        Step::Send(Box::new(flow("u3", "n2", "b", T0 + 2))),
    ]]);
    let r = start_relay(relay.clone()).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    let text = wait_for(d.addr, "3 flows", |t| flows_total(t) == 3.0).await;
    assert_eq!(
        sum(
            &text,
            "hubble_noise_flows_total",
            &[
                "class=\"unexpected\"",
                "source_namespace=\"a\"",
                "reason=\"unmatched\"",
                "verdict=\"DROPPED\"",
                "direction=\"egress\""
            ]
        ),
        2.0
    );
    assert_eq!(sum(&text, "hubble_noise_relay_connected", &[]), 1.0);
    assert_eq!(
        sum(&text, "hubble_noise_last_flow_timestamp_seconds", &[]),
        (T0 + 2) as f64
    );
    let req = &relay.requests()[0];
    assert!(req.follow);
    assert!(req.since.is_none());
    assert_eq!(
        req.whitelist[0].verdict,
        vec![Verdict::Dropped as i32, Verdict::Audit as i32]
    );
    assert_eq!(req.whitelist[1].protocol, vec!["dns".to_string()]);
}

#[tokio::test]
async fn stream_cut_resumes_with_since_and_counts_once() {
    let relay = FakeRelay::new(vec![
        vec![
            Step::Send(Box::new(flow("u1", "n1", "a", T0))),
            Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1))),
            Step::Send(Box::new(flow("u3", "n1", "a", T0 + 10))),
            Step::Fail(Status::unavailable("relay restarting")),
        ],
        vec![
            Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1))),
            Step::Send(Box::new(flow("u3", "n1", "a", T0 + 10))),
            Step::Send(Box::new(flow("u4", "n1", "a", T0 + 11))),
        ],
    ]);
    let r = start_relay(relay.clone()).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    let text = wait_for(d.addr, "4 flows after resume", |t| {
        flows_total(t) == 4.0 && sum(t, "hubble_noise_duplicate_flows_total", &[]) == 2.0
    })
    .await;
    assert_eq!(
        sum(
            &text,
            "hubble_noise_relay_reconnects_total",
            &["reason=\"unavailable\""]
        ),
        1.0
    );
    let reqs = relay.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].since.is_none());
    assert_eq!(
        reqs[1].since,
        Some(ts(T0 + 10 - 5)),
        "since = last flow - resume_overlap"
    );
}

#[tokio::test]
async fn relay_down_at_start_then_up() {
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let d = start_daemon(test_config(&format!("http://{addr}"))).await;
    wait_for(d.addr, "connect errors", |t| {
        sum(
            t,
            "hubble_noise_relay_reconnects_total",
            &["reason=\"connect_error\""],
        ) >= 2.0
            && sum(t, "hubble_noise_relay_connected", &[]) == 0.0
    })
    .await;
    let (status, _, _) = http(d.addr, "GET", "/readyz", None).await;
    assert_eq!(status, 200, "ready does not depend on the relay");
    let relay = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let _r = start_relay_on(TcpListener::bind(addr).await.unwrap(), relay, None).await;
    wait_for(d.addr, "flow after relay came up", |t| {
        flows_total(t) == 1.0 && sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
}

#[tokio::test]
async fn relay_replaying_a_node_counts_once() {
    let relay = FakeRelay::new(vec![vec![
        Step::Send(Box::new(flow("u1", "n1", "a", T0))),
        Step::Send(Box::new(flow("u2", "n2", "a", T0))),
        Step::Send(Box::new(flow("u3", "n1", "a", T0 + 1))),
        // n1 comes back and the relay re-subscribes it with the original request
        Step::Send(Box::new(flow("u1", "n1", "a", T0))),
        Step::Send(Box::new(flow("u3", "n1", "a", T0 + 1))),
        // same uuid on another node is another flow
        Step::Send(Box::new(flow("u1", "n3", "a", T0 + 2))),
    ]]);
    let r = start_relay(relay).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    wait_for(d.addr, "4 flows, 2 duplicates", |t| {
        flows_total(t) == 4.0 && sum(t, "hubble_noise_duplicate_flows_total", &[]) == 2.0
    })
    .await;
}

#[tokio::test]
async fn lost_events_and_node_status_are_reflected() {
    let lost = GetFlowsResponse {
        response_types: Some(ResponseTypes::LostEvents(LostEvent {
            source: LostEventSource::HubbleRingBuffer as i32,
            num_events_lost: 7,
            ..Default::default()
        })),
        ..Default::default()
    };
    let status = |state: NodeState, nodes: &[&str]| GetFlowsResponse {
        response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
            state_change: state as i32,
            node_names: nodes.iter().map(|s| s.to_string()).collect(),
            message: String::new(),
        })),
        ..Default::default()
    };
    let relay = FakeRelay::new(vec![vec![
        Step::Send(Box::new(status(
            NodeState::NodeConnected,
            &["n1", "n2", "n3"],
        ))),
        Step::Send(Box::new(lost.clone())),
        Step::Send(Box::new(lost)),
        Step::Send(Box::new(status(NodeState::NodeUnavailable, &["n2"]))),
        Step::Send(Box::new(status(NodeState::NodeGone, &["n3"]))),
    ]]);
    let r = start_relay(relay).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    wait_for(d.addr, "lost events and node states", |t| {
        sum(
            t,
            "hubble_noise_lost_events_total",
            &["source=\"hubble_ring_buffer\""],
        ) == 14.0
            && sum(t, "hubble_noise_relay_nodes", &["state=\"connected\""]) == 1.0
            && sum(t, "hubble_noise_relay_nodes", &["state=\"unavailable\""]) == 1.0
            && sum(t, "hubble_noise_relay_nodes", &["state=\"gone\""]) == 1.0
            && sum(t, "hubble_noise_relay_nodes", &["state=\"error\""]) == 0.0
    })
    .await;
}

#[tokio::test]
async fn silent_stream_is_detected_and_reopened() {
    let relay = FakeRelay::new(vec![
        vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))],
        vec![Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1)))],
    ]);
    let r = start_relay(relay.clone()).await;
    let mut cfg = test_config(&format!("http://{}", r.addr));
    cfg.relay.idle_timeout = Duration::from_millis(300);
    let d = start_daemon(cfg).await;
    wait_for(d.addr, "idle timeout and second flow", |t| {
        flows_total(t) == 2.0
            && sum(
                t,
                "hubble_noise_relay_reconnects_total",
                &["reason=\"idle_timeout\""],
            ) >= 1.0
    })
    .await;
    assert!(relay.requests()[1].since.is_some());
}

#[tokio::test]
async fn stream_ended_by_the_relay_is_reopened() {
    let relay = FakeRelay::new(vec![
        vec![Step::Send(Box::new(flow("u1", "n1", "a", T0))), Step::End],
        vec![Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1)))],
    ]);
    let r = start_relay(relay).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    wait_for(d.addr, "stream_ended reconnect", |t| {
        flows_total(t) == 2.0
            && sum(
                t,
                "hubble_noise_relay_reconnects_total",
                &["reason=\"stream_ended\""],
            ) >= 1.0
    })
    .await;
}

// ---------------------------------------------------------------- TLS

struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server: Identity,
}

fn write(dir: &tempfile::TempDir, name: &str, data: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn ca(name: &str) -> (rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let issuer =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let pem = issuer.pem();
    (issuer, pem)
}

fn leaf(issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, san: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![san.to_owned()]).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> (Pki, rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) {
    let (issuer, ca_pem) = ca("hubble-ca");
    let (cert, key) = leaf(&issuer, "ui.hubble-relay.cilium.io");
    let dir = tempfile::tempdir().unwrap();
    (
        Pki {
            dir,
            ca: ca_pem,
            server: Identity::from_pem(cert, key),
        },
        issuer,
    )
}

async fn tls_relay(p: &Pki, mtls: bool, relay: FakeRelay) -> Running {
    let mut tls = ServerTlsConfig::new().identity(p.server.clone());
    if mtls {
        tls = tls.client_ca_root(Certificate::from_pem(&p.ca));
    }
    start_relay_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        relay,
        Some(tls),
    )
    .await
}

/// A TLS relay (mTLS when `mtls`) that sends one flow, and a config that trusts its CA.
async fn tls_setup(
    mtls: bool,
) -> (
    Pki,
    rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    Running,
    Config,
) {
    let (p, issuer) = pki();
    let relay = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let r = tls_relay(&p, mtls, relay).await;
    let mut cfg = test_config(&format!("https://{}", r.addr));
    cfg.relay.ca_file = Some(write(&p.dir, "ca.crt", &p.ca));
    cfg.relay.server_name = Some("ui.hubble-relay.cilium.io".into());
    (p, issuer, r, cfg)
}

#[tokio::test]
async fn tls_with_ca_and_server_name() {
    let (_p, _issuer, _r, cfg) = tls_setup(false).await;
    let d = start_daemon(cfg).await;
    wait_for(d.addr, "flow over TLS", |t| flows_total(t) == 1.0).await;
}

#[tokio::test]
async fn mtls_with_client_certificate() {
    let (p, issuer, _r, mut cfg) = tls_setup(true).await;
    let (cert, key) = leaf(&issuer, "hubble-noise.hubble-relay.cilium.io");
    cfg.relay.cert_file = Some(write(&p.dir, "tls.crt", &cert));
    cfg.relay.key_file = Some(write(&p.dir, "tls.key", &key));
    let d = start_daemon(cfg).await;
    wait_for(d.addr, "flow over mTLS", |t| flows_total(t) == 1.0).await;
}

#[tokio::test]
async fn wrong_ca_is_refused_and_retried() {
    let (p, _issuer, _r, mut cfg) = tls_setup(false).await;
    let (_other, other_pem) = ca("some-other-ca");
    cfg.relay.ca_file = Some(write(&p.dir, "wrong-ca.crt", &other_pem));
    let d = start_daemon(cfg).await;
    let text = wait_for(d.addr, "tls failures, retried", |t| {
        sum(
            t,
            "hubble_noise_relay_reconnects_total",
            &["reason=\"tls\""],
        ) >= 2.0
    })
    .await;
    assert_eq!(flows_total(&text), 0.0);
    assert_eq!(sum(&text, "hubble_noise_relay_connected", &[]), 0.0);
}

// ---------------------------------------------------------------- scrape format

const ALL_METRICS: [&str; 17] = [
    "hubble_noise_flows_total",
    "hubble_noise_rule_matches_total",
    "hubble_noise_rule_last_match_timestamp_seconds",
    "hubble_noise_rule_expiry_timestamp_seconds",
    "hubble_noise_rules",
    "hubble_noise_relay_connected",
    "hubble_noise_relay_reconnects_total",
    "hubble_noise_relay_nodes",
    "hubble_noise_lost_events_total",
    "hubble_noise_last_flow_timestamp_seconds",
    "hubble_noise_duplicate_flows_total",
    "hubble_noise_decode_errors_total",
    "hubble_noise_series_overflow_total",
    "hubble_noise_dns_cache_entries",
    "hubble_noise_config_last_reload_successful",
    "hubble_noise_config_last_reload_success_timestamp_seconds",
    "hubble_noise_build_info",
];

#[tokio::test]
async fn scrape_has_every_metric_openmetrics_and_exemplars() {
    let relay = FakeRelay::new(vec![vec![
        Step::Send(Box::new(flow("uuid-unexpected-1", "kind-worker", "a", T0))),
        Step::Fail(Status::unavailable("bye")),
    ]]);
    let r = start_relay(relay).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    wait_for(d.addr, "one flow and a reconnect", |t| {
        flows_total(t) == 1.0 && sum(t, "hubble_noise_relay_reconnects_total", &[]) >= 1.0
    })
    .await;
    let (status, ctype, om) = http(
        d.addr,
        "GET",
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    let series = om
        .lines()
        .find(|l| l.starts_with("hubble_noise_flows_total{"))
        .expect("a flow series");
    assert!(series.contains("class=\"unexpected\""), "{series}");
    assert!(series.contains("verdict=\"DROPPED\""), "{series}");
    assert!(series.contains("reason=\"unmatched\""), "{series}");
    assert!(series.contains("direction=\"egress\""), "{series}");
    assert!(series.contains("source_namespace=\"a\""), "{series}");
    assert!(series.contains("destination_namespace=\"\""), "{series}");
    assert!(
        series.contains("# {uuid=\"uuid-unexpected-1\",node=\"kind-worker\"} 1"),
        "exemplar on the unexpected series: {series}"
    );
    for name in ALL_METRICS {
        if name.starts_with("hubble_noise_rule_") {
            continue; // per-rule series: no rules here, see rule_metrics_exist_from_the_start
        }
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            om.contains(&format!("# TYPE {family} ")),
            "{name} missing:\n{om}"
        );
    }
    assert!(om.contains("hubble_noise_build_info{version=\""));
    assert!(om.contains("hubble_noise_rules{state=\"active\"} 0"));
    assert!(om.contains("hubble_noise_rules{state=\"expired\"} 0"));
    assert!(om.contains("hubble_noise_config_last_reload_successful 1"));
    assert!(!om.contains("_total_total"));

    let (_, ctype, classic) = http(d.addr, "GET", "/metrics", None).await;
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!classic.contains("# EOF"));
    assert!(
        !classic.contains("# {uuid="),
        "no exemplars in the classic format"
    );

    assert_eq!(http(d.addr, "GET", "/healthz", None).await.0, 200);
    assert_eq!(http(d.addr, "GET", "/readyz", None).await.0, 200);
    assert_eq!(http(d.addr, "GET", "/nope", None).await.0, 404);
    assert_eq!(http(d.addr, "DELETE", "/metrics", None).await.0, 405);
    assert_eq!(http(d.addr, "GET", "/-/reload", None).await.0, 405);
}

#[tokio::test]
async fn reload_failure_keeps_serving_and_sets_gauge() {
    // The daemon was started from a file that then becomes invalid.
    let d = FileDaemon::start().await;
    let addr = d.addr;
    assert_eq!(http(addr, "POST", "/-/reload", None).await.0, 200);
    d.write_config(BAD_CONFIG);
    let (status, _, body) = http(addr, "POST", "/-/reload", None).await;
    assert_eq!(status, 500, "{body}");
    let text = scrape(addr).await;
    assert_eq!(
        sum(&text, "hubble_noise_config_last_reload_successful", &[]),
        0.0
    );
    assert!(
        sum(
            &text,
            "hubble_noise_config_last_reload_success_timestamp_seconds",
            &[]
        ) > 0.0
    );
    d.write_config(GOOD_CONFIG);
    assert_eq!(http(addr, "POST", "/-/reload", None).await.0, 200);
    assert_eq!(
        sum(
            &scrape(addr).await,
            "hubble_noise_config_last_reload_successful",
            &[]
        ),
        1.0
    );
    d.stop().await;
}

#[tokio::test]
async fn promtool_accepts_the_classic_output() {
    let relay = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let r = start_relay(relay).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr))).await;
    let text = wait_for(d.addr, "one flow", |t| flows_total(t) == 1.0).await;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("HUBBLE_NOISE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "promtool is required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but not installed"
            );
            println!("skipped: promtool not installed");
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn replay_feeds_a_recording_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"flow":{"uuid":"r1","verdict":"DROPPED","traffic_direction":"EGRESS","source":{"namespace":"a"}},"node_name":"n1","time":"2026-05-01T10:00:00Z"}"#, "\n",
            "not json\n",
            r#"{"flow":{"uuid":"r2","verdict":"AUDIT","traffic_direction":"INGRESS","destination":{"namespace":"b"}},"node_name":"n1","time":"2026-05-01T10:00:01Z"}"#, "\n",
            r#"{"flow":{"uuid":"r2","verdict":"AUDIT","traffic_direction":"INGRESS","destination":{"namespace":"b"}},"node_name":"n1","time":"2026-05-01T10:00:01Z"}"#, "\n",
        ),
    )
    .unwrap();
    let d = start_daemon_input(
        test_config("http://127.0.0.1:1"),
        Input::Replay {
            path,
            looped: false,
            rate: None,
        },
    )
    .await;
    let text = wait_for(d.addr, "replayed flows", |t| {
        flows_total(t) == 2.0
            && sum(t, "hubble_noise_decode_errors_total", &["kind=\"json\""]) == 1.0
    })
    .await;
    assert_eq!(sum(&text, "hubble_noise_duplicate_flows_total", &[]), 1.0);
    assert_eq!(
        sum(
            &text,
            "hubble_noise_flows_total",
            &[
                "verdict=\"AUDIT\"",
                "direction=\"ingress\"",
                "destination_namespace=\"b\""
            ]
        ),
        1.0
    );
}

#[tokio::test]
async fn replay_loop_gives_fresh_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    std::fs::write(
        &path,
        concat!(r#"{"flow":{"uuid":"r1","verdict":"DROPPED","source":{"namespace":"a"}},"node_name":"n1"}"#, "\n"),
    )
    .unwrap();
    let d = start_daemon_input(
        test_config("http://127.0.0.1:1"),
        Input::Replay {
            path,
            looped: true,
            rate: Some(200.0),
        },
    )
    .await;
    wait_for(d.addr, "the same flow counted on several passes", |t| {
        flows_total(t) >= 5.0 && sum(t, "hubble_noise_duplicate_flows_total", &[]) == 0.0
    })
    .await;
}

fn rule(name: &str, expires: Option<f64>) -> hubble_noise::rules::Rule {
    hubble_noise::rules::Rule {
        name: name.into(),
        class: hubble_noise::rules::Class::Expected,
        reason: format!("{name}-reason"),
        owner: Some("team".into()),
        comment: Some("test".into()),
        expires,
        file: PathBuf::from("rules.toml"),
        line: 1,
    }
}

/// Serves `metrics` with [`hubble_noise::server::serve`] and returns its address.
async fn serve_metrics(metrics: Arc<Metrics>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(metrics, None));
    let (stop, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(stop),
    }
}

#[tokio::test]
async fn rule_metrics_exist_from_the_start_and_survive_reload() {
    let metrics = Arc::new(Metrics::new(&MetricsConfig::default(), "1.2.3"));
    metrics.set_rules(&[
        rule("vendor-telemetry", Some(4_102_444_800.0)),
        rule("old", Some(1.0)),
        rule("plain", None),
    ]);
    let s = serve_metrics(metrics.clone()).await;
    let (status, _, om) = http(
        s.addr,
        "GET",
        "/metrics",
        Some("application/openmetrics-text"),
    )
    .await;
    assert_eq!(status, 200);
    for name in ALL_METRICS {
        if name == "hubble_noise_flows_total" {
            continue; // no flow yet: see scrape_has_every_metric_openmetrics_and_exemplars
        }
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            om.contains(&format!("# TYPE {family} ")),
            "{name} missing:\n{om}"
        );
    }
    assert!(
        om.contains("hubble_noise_rule_matches_total{rule=\"vendor-telemetry\"} 0"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_rule_matches_total{rule=\"plain\"} 0"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_rule_last_match_timestamp_seconds{rule=\"old\"} 0"),
        "{om}"
    );
    assert!(
        om.contains(
            "hubble_noise_rule_expiry_timestamp_seconds{rule=\"vendor-telemetry\"} 4102444800"
        ),
        "{om}"
    );
    assert!(
        !om.contains("hubble_noise_rule_expiry_timestamp_seconds{rule=\"plain\"}"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_rules{state=\"active\"} 2"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_rules{state=\"expired\"} 1"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_build_info{version=\"1.2.3\"} 1"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_relay_reconnects_total{reason=\"idle_timeout\"} 0"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_lost_events_total{source=\"hubble_ring_buffer\"} 0"),
        "{om}"
    );
    assert!(
        om.contains("hubble_noise_decode_errors_total{kind=\"json\"} 0"),
        "{om}"
    );

    // a rule matches, then the rules are reloaded: its counter keeps its value
    metrics.record_rule_match("vendor-telemetry", Some(T0 as f64));
    metrics.record_rule_match("vendor-telemetry", Some(T0 as f64 + 1.0));
    metrics.set_rules(&[rule("vendor-telemetry", None), rule("new", None)]);
    let classic = http(s.addr, "GET", "/metrics", None).await.2;
    assert!(
        classic.contains("hubble_noise_rule_matches_total{rule=\"new\"} 0"),
        "{classic}"
    );
    assert!(
        !classic.contains("rule=\"old\""),
        "removed rules disappear: {classic}"
    );
    assert!(
        classic.contains("hubble_noise_rules{state=\"active\"} 2"),
        "{classic}"
    );
    assert!(
        classic.contains("hubble_noise_rule_matches_total{rule=\"vendor-telemetry\"} 2"),
        "{classic}"
    );
    assert!(
        classic.contains(&format!(
            "hubble_noise_rule_last_match_timestamp_seconds{{rule=\"vendor-telemetry\"}} {}",
            T0 + 1
        )),
        "{classic}"
    );
}

#[test]
fn cardinality_is_capped_and_totals_stay_exact() {
    let cfg = MetricsConfig {
        max_series: 1000,
        ..Default::default()
    };
    let metrics = Metrics::new(&cfg, "test");
    let d = Decision {
        class: Class::Unexpected,
        reason: "unmatched",
        rule: None,
        attribution: Attribution::None,
        ambiguous: false,
    };
    let n = 100_000;
    for i in 0..n {
        let flow = Flow {
            uuid: format!("u{i}"),
            verdict: Verdict::Dropped as i32,
            traffic_direction: TrafficDirection::Egress as i32,
            source: Some(Endpoint {
                namespace: format!("ns-{i}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ctx = FlowCtx::new(&flow, "n1", None);
        metrics.record_flow(&ctx, &d);
    }
    assert!(metrics.flow_series() <= 1001, "{}", metrics.flow_series());
    let text = metrics.encode_text().unwrap();
    let series = text
        .lines()
        .filter(|l| l.starts_with("hubble_noise_flows_total{"))
        .count();
    assert!(series <= 1001, "{series}");
    assert_eq!(sum(&text, "hubble_noise_flows_total", &[]), n as f64);
    assert_eq!(
        sum(&text, "hubble_noise_series_overflow_total", &[]),
        (n - 1000) as f64
    );
    assert_eq!(
        sum(
            &text,
            "hubble_noise_flows_total",
            &["source_namespace=\"__overflow__\",destination_namespace=\"__overflow__\""]
        ),
        (n - 1000) as f64
    );
}
