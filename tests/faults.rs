//! Faults (SECURITY.md): a relay that accepts and never sends, one that sends garbage, one
//! that resets after every message, an oversized message, a slow scraper, certificate rotation
//! mid-stream, and a rule file deleted, truncated or made unreadable during reload.
//!
//! For each: `/metrics` keeps being served (every wait polls it), the fault shows in a metric
//! and a log line, and the daemon recovers when the fault ends. No timed assertions: waits
//! poll until a deadline.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::fake_relay::{
    FakeRelay, Front, Mode, Step, T0, flow, logged, start_daemon, start_relay, start_relay_tls,
    test_config,
};
use common::{http, scrape, sum, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Status;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

fn flows_total(text: &str) -> f64 {
    sum(text, "hubble_noise_flows_total", &[])
}

fn reconnects(text: &str, reason: &str) -> f64 {
    sum(
        text,
        "hubble_noise_relay_reconnects_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

/// Polls until `ok`, for log lines (the metric waits come first, so this is short).
async fn wait_logged(parts: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !logged(parts) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {parts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn relay_that_accepts_and_never_sends() {
    let relay = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let r = start_relay(relay).await;
    let front = Front::start(Mode::Blackhole).await;
    let mut cfg = test_config(&format!("http://{}", front.addr));
    cfg.relay.idle_timeout = Duration::from_millis(300);
    let d = start_daemon(cfg, None).await;
    let text = wait_for(d.addr, "idle timeouts", |t| {
        reconnects(t, "idle_timeout") >= 2.0
    })
    .await;
    assert_eq!(sum(&text, "hubble_noise_relay_connected", &[]), 0.0);
    wait_logged(&["relay stream down", "idle_timeout"]).await;
    // The fault ends: the next connection reaches the relay.
    front.set(Mode::Forward(r.addr));
    wait_for(d.addr, "recovered", |t| {
        flows_total(t) == 1.0 && sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
}

#[tokio::test]
async fn relay_that_sends_garbage() {
    let relay = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let r = start_relay(relay).await;
    let front = Front::start(Mode::Garbage).await;
    let d = start_daemon(test_config(&format!("http://{}", front.addr)), None).await;
    let all = |t: &str| sum(t, "hubble_noise_relay_reconnects_total", &[]);
    let text = wait_for(d.addr, "garbage refused", |t| all(t) >= 3.0).await;
    assert_eq!(flows_total(&text), 0.0);
    wait_logged(&["relay stream down"]).await;
    front.set(Mode::Forward(r.addr));
    wait_for(d.addr, "recovered", |t| flows_total(t) == 1.0).await;
}

#[tokio::test]
async fn relay_that_sends_garbage_messages() {
    use prost::Message as _;
    let good = |u: &str, t| flow(u, "n1", "a", t).encode_to_vec();
    // Field 1 with wire type 7 (there is none), a truncated varint, a length beyond the end.
    let scripts = vec![
        vec![good("u1", T0), vec![0x0f, 0xff, 0xff]],
        vec![vec![0x08, 0xff, 0xff, 0xff]],
        vec![vec![0x0a, 0x7f, 0x01]],
        vec![good("u2", T0 + 1)],
    ];
    let r = common::fake_relay::start_raw_relay(scripts).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr)), None).await;
    let text = wait_for(d.addr, "garbage counted, good flows read", |t| {
        flows_total(t) == 2.0 && reconnects(t, "decode") >= 3.0
    })
    .await;
    assert!(
        sum(
            &text,
            "hubble_noise_decode_errors_total",
            &["kind=\"grpc\""]
        ) >= 3.0
    );
    assert_eq!(sum(&text, "hubble_noise_relay_connected", &[]), 1.0);
    wait_logged(&["relay stream down", "reason=\"decode\""]).await;
}

#[tokio::test]
async fn oversized_message_is_a_decode_error_and_the_stream_reopens() {
    let mut big = flow("big", "n1", "a", T0);
    if let Some(hubble_noise::api::observer::get_flows_response::ResponseTypes::Flow(f)) =
        big.response_types.as_mut()
    {
        f.summary = "x".repeat(256 * 1024);
    }
    let relay = FakeRelay::new(vec![
        vec![Step::Send(Box::new(big))],
        vec![Step::Send(Box::new(flow("u2", "n1", "a", T0 + 1)))],
    ]);
    let r = start_relay(relay).await;
    let mut cfg = test_config(&format!("http://{}", r.addr));
    cfg.relay.max_message_size = 64 * 1024;
    let d = start_daemon(cfg, None).await;
    let text = wait_for(d.addr, "decode error then the next flow", |t| {
        flows_total(t) == 1.0 && reconnects(t, "decode") >= 1.0
    })
    .await;
    assert!(
        sum(
            &text,
            "hubble_noise_decode_errors_total",
            &["kind=\"grpc\""]
        ) >= 1.0
    );
    wait_logged(&["relay stream down", "decode", "too large"]).await;
}

#[tokio::test]
async fn relay_that_resets_after_every_message() {
    // Each stream delivers one new flow and the previous one again (the `since` back-fill),
    // then dies a different way.
    let n = 20;
    let scripts = (0..n)
        .map(|i| {
            let mut s = Vec::new();
            if i > 0 {
                s.push(Step::Send(Box::new(flow(
                    &format!("u{}", i - 1),
                    "n1",
                    "a",
                    T0 + i - 1,
                ))));
            }
            s.push(Step::Send(Box::new(flow(
                &format!("u{i}"),
                "n1",
                "a",
                T0 + i,
            ))));
            s.push(match i % 3 {
                0 => Step::Fail(Status::unavailable("connection reset")),
                1 => Step::Fail(Status::aborted("reset")),
                _ => Step::End,
            });
            s
        })
        .collect();
    let relay = FakeRelay::new(scripts);
    let r = start_relay(relay.clone()).await;
    let d = start_daemon(test_config(&format!("http://{}", r.addr)), None).await;
    let text = wait_for(d.addr, "every flow once", |t| {
        sum(t, "hubble_noise_relay_reconnects_total", &[]) >= n as f64
    })
    .await;
    assert_eq!(flows_total(&text), n as f64);
    assert_eq!(
        sum(&text, "hubble_noise_duplicate_flows_total", &[]),
        (n - 1) as f64
    );
    assert!(reconnects(&text, "unavailable") >= 1.0);
    assert!(reconnects(&text, "stream_ended") >= 1.0);
    wait_logged(&["relay stream down", "stream_ended"]).await;
    // Every reopened stream asked to resume.
    assert!(relay.requests()[1..].iter().all(|r| r.since.is_some()));
}

#[tokio::test]
async fn slow_scraper_blocks_neither_scrapes_nor_counting() {
    let relay = FakeRelay::default();
    let r = start_relay(relay.clone()).await;
    let mut cfg = test_config(&format!("http://{}", r.addr));
    // Many series make the scrape large enough not to fit in the socket buffers at once.
    cfg.metrics.labels = vec!["source_namespace".into(), "source_pod".into()];
    let d = start_daemon(cfg, None).await;
    wait_for(d.addr, "connected", |t| {
        sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
    for i in 0..3000 {
        assert!(
            relay
                .send_held(flow(&format!("u{i}"), "n1", &format!("ns-{i}"), T0))
                .await
        );
    }
    wait_for(d.addr, "3000 flows", |t| flows_total(t) == 3000.0).await;
    // The slow scraper: asks, then reads one byte every 100 ms.
    let mut slow = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        for _ in 0..20 {
            if slow.read(&mut b).await.unwrap_or(0) == 0 {
                break;
            }
            got.push(b[0]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (slow, got)
    });
    // Meanwhile: more flows are counted and other scrapes are answered in full.
    for i in 3000..3100 {
        assert!(
            relay
                .send_held(flow(&format!("u{i}"), "n1", "late", T0))
                .await
        );
    }
    let text = wait_for(d.addr, "flows during the slow scrape", |t| {
        flows_total(t) == 3100.0
    })
    .await;
    assert!(text.contains("hubble_noise_build_info"));
    let (status, _, _) = http(d.addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (_slow, got) = reader.await.unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
}

/// A scraper that asks and then never reads: once the response no longer fits in the socket
/// buffers and stays blocked for `metrics.client_stall_timeout`, the connection is closed,
/// counted and logged; other scrapes are answered throughout.
#[tokio::test]
async fn stuck_scraper_is_disconnected_counted_and_logged() {
    common::fake_relay::init_logs();
    let relay = FakeRelay::default();
    let r = start_relay(relay.clone()).await;
    let mut cfg = test_config(&format!("http://{}", r.addr));
    cfg.metrics.labels = vec!["source_namespace".into(), "source_pod".into()];
    cfg.metrics.client_stall_timeout = Duration::from_millis(500);
    cfg.metrics.max_series = 30_000;
    let d = start_daemon(cfg, None).await;
    wait_for(d.addr, "connected", |t| {
        sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
    // Enough series that a scrape (about 12 MB) is far larger than the socket buffers (the
    // kernel's send buffer grows to 4 MB).
    let long = "n".repeat(100);
    for i in 0..30_000 {
        assert!(
            relay
                .send_held(flow(&format!("u{i}"), "n1", &format!("{long}-{i:05}"), T0))
                .await
        );
    }
    wait_for(d.addr, "30000 flows", |t| flows_total(t) == 30_000.0).await;
    let mut stuck = Vec::new();
    for _ in 0..4 {
        // A small receive window, so that the response backs up quickly.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(d.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stuck.push(s); // never read
    }
    let text = wait_for(d.addr, "stuck scrapers disconnected", |t| {
        sum(t, "hubble_noise_http_clients_stalled_total", &[]) >= 4.0
    })
    .await;
    assert!(
        text.contains("hubble_noise_build_info"),
        "served throughout"
    );
    wait_logged(&["stopped reading"]).await;
    // Recovered: a normal scrape works and counting goes on.
    assert!(relay.send_held(flow("after", "n1", "late", T0)).await);
    wait_for(d.addr, "counting goes on", |t| flows_total(t) == 30_001.0).await;
    drop(stuck);
}

// ---------------------------------------------------------------- TLS

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

/// A TLS relay whose certificate is signed by a new CA; returns it with the CA's PEM.
async fn tls_relay(ca_name: &str, relay: FakeRelay) -> (common::fake_relay::Running, String) {
    let (issuer, ca_pem) = ca(ca_name);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["ui.hubble-relay.cilium.io".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert.pem(), key.serialize_pem()));
    let _ = Certificate::from_pem(&ca_pem);
    (start_relay_tls(relay, Some(tls)).await, ca_pem)
}

/// Replaces a file the way a secret update does: write aside, rename over.
fn replace(path: &std::path::Path, data: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn certificate_rotation_mid_stream() {
    let old = FakeRelay::new(vec![vec![Step::Send(Box::new(flow("u1", "n1", "a", T0)))]]);
    let new = FakeRelay::new(vec![vec![Step::Send(Box::new(flow(
        "u2",
        "n1",
        "a",
        T0 + 1,
    )))]]);
    let (old_r, old_ca) = tls_relay("ca-2026", old).await;
    let (new_r, new_ca) = tls_relay("ca-2027", new).await;
    let front = Front::start(Mode::Forward(old_r.addr)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &old_ca).unwrap();
    let mut cfg = test_config(&format!("https://{}", front.addr));
    cfg.relay.ca_file = Some(ca_file.clone());
    cfg.relay.server_name = Some("ui.hubble-relay.cilium.io".into());
    let d = start_daemon(cfg, None).await;
    wait_for(d.addr, "first flow over TLS", |t| flows_total(t) == 1.0).await;
    // The relay comes back with a certificate from the new CA before the CA file is updated:
    // the stream is cut, and reconnects fail the handshake.
    front.set(Mode::Forward(new_r.addr));
    wait_for(d.addr, "handshake failures", |t| {
        reconnects(t, "tls") >= 1.0
    })
    .await;
    wait_logged(&["relay stream down", "tls"]).await;
    // The CA file is rotated: the next reconnect reads it and trusts the new relay.
    replace(&ca_file, &new_ca);
    let text = wait_for(d.addr, "second flow after rotation", |t| {
        flows_total(t) == 2.0 && sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
    // The cut itself was a reset, not a TLS problem.
    assert!(
        reconnects(&text, "unavailable") + reconnects(&text, "stream_ended") >= 1.0,
        "{}",
        text.lines()
            .filter(|l| l.starts_with("hubble_noise_relay_reconnects_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------- reload

const RULES: &str = r#"
[[rule]]
name = "namespace-a-is-expected"
owner = "team"
comment = "test"

[rule.match]
source = { namespace = ["a"] }
"#;

struct Broken {
    what: &'static str,
    apply: fn(&std::path::Path),
}

fn expected_by_rule(text: &str) -> f64 {
    sum(
        text,
        "hubble_noise_flows_total",
        &["class=\"expected\"", "source_namespace=\"a\""],
    )
}

#[tokio::test]
async fn rule_file_deleted_truncated_or_unreadable_during_reload() {
    let relay = FakeRelay::default();
    let r = start_relay(relay.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\naddress = \"http://{}\"\nbackoff_initial = \"50ms\"\n\
             [classify]\nrule_files = [{:?}]\n",
            r.addr,
            rules.display().to_string()
        ),
    )
    .unwrap();
    let d = start_daemon(test_config(""), Some(config)).await;
    wait_for(d.addr, "connected", |t| {
        sum(t, "hubble_noise_relay_connected", &[]) == 1.0
    })
    .await;
    let faults = [
        Broken {
            what: "deleted",
            apply: |p| std::fs::remove_file(p).unwrap(),
        },
        Broken {
            what: "truncated",
            apply: |p| std::fs::write(p, &RULES[..RULES.len() / 2]).unwrap(),
        },
        Broken {
            what: "a directory",
            apply: |p| {
                std::fs::remove_file(p).unwrap();
                std::fs::create_dir(p).unwrap();
            },
        },
        Broken {
            what: "a dangling symlink",
            apply: |p| std::os::unix::fs::symlink("/nonexistent/rules.toml", p).unwrap(),
        },
    ];
    let restore = |p: &std::path::Path| {
        if p.is_dir() {
            std::fs::remove_dir(p).unwrap();
        } else if std::fs::symlink_metadata(p).is_ok() {
            std::fs::remove_file(p).unwrap();
        }
        std::fs::write(p, RULES).unwrap();
    };
    for (i, f) in faults.iter().enumerate() {
        let sent = i as u32 + 1;
        if f.what == "a dangling symlink" {
            std::fs::remove_file(&rules).unwrap();
        }
        (f.apply)(&rules);
        let (status, _, body) = http(d.addr, "POST", "/-/reload", None).await;
        assert_eq!(status, 500, "{}: {body}", f.what);
        assert!(body.contains("rules.toml"), "{}: {body}", f.what);
        let text = scrape(d.addr).await;
        assert_eq!(
            sum(&text, "hubble_noise_config_last_reload_successful", &[]),
            0.0,
            "{}",
            f.what
        );
        // The old rules still decide.
        assert!(
            relay
                .send_held(flow(&format!("u{i}"), "n1", "a", T0 + i as i64))
                .await
        );
        wait_for(d.addr, "old rules decide", |t| {
            expected_by_rule(t) == f64::from(sent)
                && sum(
                    t,
                    "hubble_noise_rule_matches_total",
                    &["rule=\"namespace-a-is-expected\""],
                ) == f64::from(sent)
        })
        .await;
        wait_logged(&["reload failed, previous rules kept", "rules.toml"]).await;
        // Fixed: the reload succeeds again.
        restore(&rules);
        let (status, _, body) = http(d.addr, "POST", "/-/reload", None).await;
        assert_eq!(status, 200, "{}: {body}", f.what);
        wait_for(d.addr, "reload ok", |t| {
            sum(t, "hubble_noise_config_last_reload_successful", &[]) == 1.0
        })
        .await;
    }
}
