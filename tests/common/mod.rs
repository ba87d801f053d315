//! Helpers shared by the integration tests that talk to a running daemon over HTTP.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod cli;
#[allow(unused_imports)]
pub use hubble_noise_testkit::fake_relay;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hubble_noise::daemon::{Input, run_daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A minimal HTTP/1.1 client: (status, content type, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{accept}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

pub async fn scrape(addr: SocketAddr) -> String {
    http(addr, "GET", "/metrics", None).await.2
}

/// The sum of every series of `name` whose labels contain all of `having`.
pub fn sum(text: &str, name: &str, having: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, rest) = match l.find('{') {
                Some(i) if l[..i] == *name => {
                    let end = l.find('}')?;
                    (&l[i..=end], &l[end + 1..])
                }
                _ => {
                    let (n, rest) = l.split_once(' ')?;
                    if n != name {
                        return None;
                    }
                    ("", rest)
                }
            };
            if !having.iter().all(|h| series.contains(h)) {
                return None;
            }
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Polls `/metrics` until `ok` holds; panics with the last scrape after 20 s.
pub async fn wait_for(addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr).await;
        if ok(&text) {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last scrape:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A daemon started from a config file on disk (for reload tests), following a relay that is
/// not there.
pub struct FileDaemon {
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// The config file.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    running: Running,
}

/// A daemon running in this test's runtime on 127.0.0.1.
pub struct Running {
    /// Its HTTP address.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts `run_daemon` of `loaded` on `input`, on a port of its own.
    pub async fn spawn(loaded: hubble_noise::config::Loaded, input: Input) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_daemon(loaded, input, listener, async {
            let _ = rx.await;
        }));
        Self { addr, stop, task }
    }

    /// Stops the daemon and waits for it (it must stop within 10 s, without an error).
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A config that loads, pointing at a relay nobody listens on.
pub const GOOD_CONFIG: &str = "[relay]\naddress = \"http://127.0.0.1:1\"\n";
/// A config that does not load.
pub const BAD_CONFIG: &str = "[relay]\naddress = \"ftp://nope\"\n";

impl FileDaemon {
    /// Writes [`GOOD_CONFIG`] and starts the daemon from it.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, GOOD_CONFIG).unwrap();
        let loaded = hubble_noise::load::config(Some(&path)).unwrap();
        let running = Running::spawn(loaded, Input::Relay).await;
        Self {
            addr: running.addr,
            path,
            _dir: dir,
            running,
        }
    }

    /// Replaces the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    /// Stops the daemon and waits for it (it must stop within 10 s).
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// A daemon in this process fed by a recording (`run --replay`), started once it has counted
/// the recording's flows.
pub struct ReplayDaemon {
    /// Its HTTP address.
    pub addr: SocketAddr,
    running: Running,
}

impl ReplayDaemon {
    /// Starts the daemon of `config` (plus the environment `env`) on `recording`, and waits
    /// until `hubble_noise_flows_total` reaches `counted`.
    pub async fn start(
        config: &std::path::Path,
        recording: &std::path::Path,
        env: &[(&str, &str)],
        counted: f64,
    ) -> Self {
        let vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let loaded = hubble_noise::config::Config::load_with_env(Some(config), vars).unwrap();
        let input = Input::Replay {
            path: recording.to_path_buf(),
            looped: false,
            rate: None,
        };
        let running = Running::spawn(loaded, input).await;
        let addr = running.addr;
        wait_for(addr, "every flow counted", |t| {
            sum(t, "hubble_noise_flows_total", &[]) >= counted
        })
        .await;
        Self { addr, running }
    }

    /// `GET path`: (status, content type, body).
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        http(self.addr, "GET", path, None).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, ctype, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(ctype, "application/json", "{path}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops the daemon and waits for it (it must stop within 10 s).
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// Whether a test that needs `what` must fail rather than skip (`HUBBLE_NOISE_REQUIRE_TOOLS=1`,
/// set by `.ci/run`): panics then, else prints that the test was skipped.
pub fn skip_or_fail(what: &str) {
    assert!(
        std::env::var("HUBBLE_NOISE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{what} is required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but missing"
    );
    println!("skipped: {what} missing");
}
