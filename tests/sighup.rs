//! SIGHUP reloads the configuration. In its own test binary (its own process), so the signal
//! reaches no other test's daemon.

use std::time::Duration;

use hubble_noise::cmd::run::{Input, run_daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn sighup_reloads_and_a_failed_reload_keeps_serving() {
    // Own the process-wide SIGHUP handler first, so an early signal cannot kill the process.
    let _guard = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[relay]\naddress = \"http://127.0.0.1:1\"\n").unwrap();
    let loaded = hubble_noise::load::config(Some(&path)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run_daemon(loaded, Input::Relay, listener, async {
        let _ = rx.await;
    }));
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
    };
    // A broken config: SIGHUP makes the reload fail (the reloader may not listen yet: repeat).
    std::fs::write(&path, "[relay]\naddress = \"ftp://x\"\n").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        hup();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = scrape(addr).await;
        if gauge(&t, "hubble_noise_config_last_reload_successful") == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP never reloaded:\n{t}"
        );
    }
    // Fixed again: the next SIGHUP succeeds.
    std::fs::write(&path, "[relay]\naddress = \"http://127.0.0.1:1\"\n").unwrap();
    loop {
        hup();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = scrape(addr).await;
        if gauge(&t, "hubble_noise_config_last_reload_successful") == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP never reloaded:\n{t}"
        );
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
