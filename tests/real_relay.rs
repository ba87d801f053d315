//! End to end over Cilium's own hubble-relay (v1.19.4, built from its Go module by
//! `tests/peers/build.sh`), fed by our test nodes (`tests/peers/nodes`, Cilium's own observer
//! server per node). Every scenario asserts that the daemon counts exactly what
//! `hubble-noise replay` counts for the same recording.
//!
//! The binaries are looked up in `$HUBBLE_NOISE_PEERS_DIR`, else
//! `${XDG_CACHE_HOME:-$HOME/.cache}/hubble-noise-peers`. Without them each test says it was
//! skipped, unless `HUBBLE_NOISE_REQUIRE_TOOLS=1` (CI), where that is a failure.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one wait may take before the test fails with what it last saw.
const PATIENCE: Duration = Duration::from_secs(90);

// ---- the binaries ---------------------------------------------------------------------------

struct Tools {
    relay: PathBuf,
    hubble: PathBuf,
    nodes: PathBuf,
}

fn peers_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HUBBLE_NOISE_PEERS_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("hubble-noise-peers")
}

/// The real relay, CLI and test nodes, or `None` (saying so) when they were not built.
fn tools() -> Option<Tools> {
    let dir = peers_dir();
    let t = Tools {
        relay: dir.join("hubble-relay"),
        hubble: dir.join("hubble"),
        nodes: dir.join("hubble-test-nodes"),
    };
    let missing: Vec<_> = [&t.relay, &t.hubble, &t.nodes]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(t);
    }
    assert!(
        std::env::var("HUBBLE_NOISE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "the real peers are required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but missing: {}; \
         run tests/peers/build.sh",
        missing.join(", ")
    );
    println!(
        "skipped: real hubble-relay peers not built ({}); run tests/peers/build.sh",
        missing.join(", ")
    );
    None
}

// ---- recordings -----------------------------------------------------------------------------

/// The base flows: real recordings copied into tests/fixtures/peers.
fn base_flows() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/peers")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            out.push(serde_json::from_str(line).expect("fixture line is JSON"));
        }
    }
    out
}

fn node_name(i: usize) -> String {
    format!("peers/node-{i:02}")
}

/// `2026-01-01T00:00:00Z` plus `ms` milliseconds (less than a day), as RFC 3339.
fn time_at(ms: usize) -> String {
    let (s, ms) = (ms / 1000, ms % 1000);
    assert!(s < 86_400, "a recording spans less than a day");
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.{ms:03}000000Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A recording of `copies` rounds of the base flows on each of `nodes` nodes: every flow with
/// its own uuid, node name and a time 1 ms after the one before (so the file is in time order
/// and each node's part is the base flows in their order, again and again).
fn generate(nodes: usize, copies: usize) -> Vec<String> {
    let base = base_flows();
    let mut out = Vec::with_capacity(nodes * copies * base.len());
    for round in 0..copies {
        for (j, b) in base.iter().enumerate() {
            for i in 0..nodes {
                let k = out.len();
                let mut v = b.clone();
                let node = Value::String(node_name(i));
                let time = Value::String(time_at(k));
                let uuid = format!("{i:08x}-{round:04x}-4000-8000-{j:012x}");
                v["flow"]["node_name"] = node.clone();
                v["flow"]["time"] = time.clone();
                v["flow"]["uuid"] = Value::String(uuid);
                v["node_name"] = node;
                v["time"] = time;
                out.push(v.to_string());
            }
        }
    }
    out
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create recording"));
    for l in lines {
        writeln!(f, "{l}").expect("write recording");
    }
    f.flush().expect("flush recording");
}

/// A config that classifies some flows expected (shop-clients' AUDIT flows) and labels counts
/// by node, so the comparison is per node.
fn config(dir: &Path, relay: &str, relay_extra: &str, metrics: SocketAddr) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[relay]\naddress = \"{relay}\"\nbackoff_initial = \"100ms\"\n\
             backoff_max = \"500ms\"\n{relay_extra}\
             [metrics]\nlisten = \"{metrics}\"\n\
             labels = [\"source_namespace\", \"destination_namespace\", \"node\"]\n\
             [log]\nformat = \"json\"\n\
             [[rule]]\nname = \"shopper-probes\"\nowner = \"team-test\"\n\
             comment = \"the shop's synthetic shoppers probe on purpose\"\n\
             [rule.match]\nverdict = [\"AUDIT\"]\n\
             [rule.match.source]\nnamespace = [\"shop-clients\"]\n"
        ),
    )
    .expect("write config");
    path
}

/// Counts by (class, reason, node).
type Counts = BTreeMap<(String, String, String), u64>;

/// What `hubble-noise replay` counts for `recording` with `config`.
fn replay_counts(config: &Path, recording: &Path) -> Counts {
    let out = common::cli::bin()
        .args(["replay", "--format", "jsonl", "-c"])
        .arg(config)
        .arg(recording)
        .output()
        .expect("replay runs");
    assert!(out.status.success(), "replay: {out:?}");
    let mut counts = Counts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).expect("replay jsonl");
        let key = (
            v["class"].as_str().unwrap_or_default().to_owned(),
            v["reason"].as_str().unwrap_or_default().to_owned(),
            v["node"].as_str().unwrap_or_default().to_owned(),
        );
        *counts.entry(key).or_default() += 1;
    }
    assert!(
        counts.keys().any(|k| k.0 == "expected") && counts.keys().any(|k| k.0 == "unexpected"),
        "the recording has both classes: {counts:?}"
    );
    counts
}

fn total(c: &Counts) -> u64 {
    c.values().sum()
}

// ---- plain HTTP/1.1 -------------------------------------------------------------------------

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, dechunk(body));
    }
    (status, body.to_owned())
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").expect("chunk end");
    }
    out
}

/// A free port for a process this test starts (relay, daemon), below the kernel's ephemeral
/// range (32768 and up on Linux). A port the kernel picked for `bind(0)` could be handed out
/// again, to a test node of a test running beside this one, before the relay binds it; the
/// daemon would then read that node directly. Ports from this range are never picked by the
/// kernel, and a counter keeps the tests of this binary apart.
fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id() % 8_000;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base + n) % 12_000;
        let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).expect("port")));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in 20000-31999 on 127.0.0.1");
}

/// Polls `probe` until it returns `Some`; fails with `what` and the last state after
/// [`PATIENCE`].
fn wait<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

// ---- the processes --------------------------------------------------------------------------

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test nodes and peer service.
struct Nodes {
    control: SocketAddr,
    peer: String,
    names: Vec<String>,
    _stdin: ChildStdin,
    _proc: Proc,
}

impl Nodes {
    fn start(t: &Tools, flows: &Path, request_log: &Path) -> Self {
        let mut child = Command::new(&t.nodes)
            .arg("-flows")
            .arg(flows)
            .arg("-request-log")
            .arg(request_log)
            .arg("-exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("test nodes start");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let proc = Proc(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("test nodes did not start ({e}): {line:?}"));
        let mut names: Vec<String> = ready["nodes"]
            .as_object()
            .expect("nodes")
            .keys()
            .cloned()
            .collect();
        names.sort();
        Self {
            control: ready["control"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .expect("control address"),
            peer: ready["peer"].as_str().expect("peer address").to_owned(),
            names,
            _stdin: stdin,
            _proc: proc,
        }
    }

    fn post(&self, path: &str) -> Value {
        let (status, body) = http(self.control, "POST", path);
        assert_eq!(status, 200, "control {path}: {body}");
        serde_json::from_str(&body).expect("control JSON")
    }

    fn status(&self) -> Value {
        let (status, body) = http(self.control, "GET", "/status");
        assert_eq!(status, 200, "status: {body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// GetFlows requests each node has received.
    fn requests(&self) -> BTreeMap<String, u64> {
        let s = self.status();
        s["nodes"]
            .as_object()
            .expect("nodes")
            .iter()
            .map(|(k, v)| (k.clone(), v["requests"].as_u64().unwrap_or(0)))
            .collect()
    }
}

/// Cilium's hubble-relay, plaintext on both sides.
struct Relay {
    addr: SocketAddr,
    _proc: Proc,
}

impl Relay {
    /// The relay with `tls` flags (its server side in plaintext when empty).
    fn start(t: &Tools, peer: &str, addr: SocketAddr, tls: &[String], log: &Path) -> Self {
        let health = free_addr();
        let server_tls = if tls.is_empty() {
            vec!["--disable-server-tls".to_owned()]
        } else {
            tls.to_vec()
        };
        let child = Command::new(&t.relay)
            .args(["serve", "--peer-service", peer])
            .arg("--listen-address")
            .arg(addr.to_string())
            .arg("--health-listen-address")
            .arg(health.to_string())
            .args(["--disable-client-tls", "--gops=false", "--retry-timeout=1s"])
            .args(&server_tls)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .expect("relay log"),
            )
            .spawn()
            .expect("hubble-relay starts");
        let mut proc = Proc(child);
        wait("hubble-relay to listen", || {
            if let Ok(Some(status)) = proc.0.try_wait() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("hubble-relay exited ({status}):\n{log}");
            }
            TcpStream::connect(addr)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Self { addr, _proc: proc }
    }
}

/// `hubble-noise run` against the relay.
struct Daemon {
    metrics: SocketAddr,
    _proc: Proc,
}

impl Daemon {
    fn start(config: &Path, metrics: SocketAddr, log: &Path) -> Self {
        let child = common::cli::bin()
            .args(["run", "-c"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("daemon log"))
            .spawn()
            .expect("daemon starts");
        let mut proc = Proc(child);
        wait("the daemon's /metrics", || {
            if let Ok(Some(status)) = proc.0.try_wait() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("the daemon exited ({status}):\n{log}");
            }
            TcpStream::connect(metrics)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Self {
            metrics,
            _proc: proc,
        }
    }

    fn scrape(&self) -> String {
        let (status, body) = http(self.metrics, "GET", "/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }
}

/// Labels of one series line: `name{a="b",...} value`.
fn series(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (name_labels, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match name_labels.split_once('{') {
        Some((n, rest)) => (n, rest.strip_suffix('}')?),
        None => (name_labels, ""),
    };
    let mut map = BTreeMap::new();
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once("=\"")?;
        map.insert(k, v.trim_end_matches('"'));
    }
    Some((name, map, value))
}

/// The daemon's `hubble_noise_flows_total` by (class, reason, node).
fn daemon_counts(text: &str) -> Counts {
    let mut c = Counts::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, labels, value)) = series(line) else {
            continue;
        };
        if name != "hubble_noise_flows_total" || value == 0.0 {
            continue;
        }
        let get = |k: &str| labels.get(k).copied().unwrap_or_default().to_owned();
        *c.entry((get("class"), get("reason"), get("node")))
            .or_default() += value as u64;
    }
    c
}

/// The value of the series `name` whose labels include `having` (summed), 0 when absent.
fn value(text: &str, name: &str, having: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(series)
        .filter(|(n, l, _)| {
            *n == name && having.iter().all(|(k, v)| l.get(k).is_some_and(|x| x == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn nodes_in(text: &str, state: &str) -> f64 {
    value(text, "hubble_noise_relay_nodes", &[("state", state)])
}

// ---- one whole set-up -----------------------------------------------------------------------

/// How the relay serves and how the daemon reaches it.
#[derive(Default)]
struct Link {
    /// `hubble-relay serve` TLS flags; empty = plaintext.
    relay_tls: Vec<String>,
    /// Extra `[relay]` lines of the daemon's config (ca_file, server_name, ...).
    daemon_relay: String,
}

struct Setup {
    dir: tempfile::TempDir,
    link: Link,
    tools: Tools,
    nodes: Nodes,
    relay: Option<Relay>,
    relay_addr: SocketAddr,
    daemon: Daemon,
    config: PathBuf,
    lines: Vec<String>,
}

impl Setup {
    /// Nodes holding `lines` (none released yet), the relay, and the daemon following it, with
    /// every node subscribed.
    fn start(tools: Tools, lines: Vec<String>) -> Self {
        let s = Self::start_with(tools, lines, Link::default(), |_| {});
        s.wait_subscribed(&BTreeMap::new());
        s
    }

    /// Like [`Setup::start`], with `prepare` run on the nodes before the relay starts, and
    /// without waiting for the nodes.
    fn start_with(
        tools: Tools,
        lines: Vec<String>,
        link: Link,
        prepare: impl FnOnce(&Nodes),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let recording = dir.path().join("recording.ndjson");
        write_lines(&recording, &lines);
        let nodes = Nodes::start(&tools, &recording, &dir.path().join("requests.ndjson"));
        prepare(&nodes);
        let relay_addr = free_addr();
        let relay = Relay::start(
            &tools,
            &nodes.peer,
            relay_addr,
            &link.relay_tls,
            &dir.path().join("relay.log"),
        );
        let metrics = free_addr();
        let scheme = if link.relay_tls.is_empty() {
            "http"
        } else {
            "https"
        };
        let config = config(
            dir.path(),
            &format!("{scheme}://{}", relay.addr),
            &link.daemon_relay,
            metrics,
        );
        let daemon = Daemon::start(&config, metrics, &dir.path().join("daemon.log"));
        Self {
            dir,
            link,
            tools,
            nodes,
            relay: Some(relay),
            relay_addr,
            daemon,
            config,
            lines,
        }
    }

    /// Waits until every node has had more GetFlows requests than in `before` and the daemon
    /// knows them all connected: only then does a released flow reach the daemon.
    fn wait_subscribed(&self, before: &BTreeMap<String, u64>) {
        let n = self.nodes.names.len() as f64;
        wait("every node subscribed and connected", || {
            let req = self.nodes.requests();
            let behind: Vec<_> = req
                .iter()
                .filter(|(k, v)| **v <= before.get(*k).copied().unwrap_or(0))
                .map(|(k, _)| k.clone())
                .collect();
            let text = self.daemon.scrape();
            let connected = nodes_in(&text, "connected");
            if behind.is_empty() && connected == n {
                Ok(())
            } else {
                Err(format!(
                    "nodes without a new request: {behind:?}; connected {connected} of {n}"
                ))
            }
        });
    }

    /// What replay counts for the first `k` lines.
    fn expected(&self, k: usize) -> Counts {
        self.expected_of(&format!("prefix-{k}"), &self.lines[..k])
    }

    /// What replay counts for `lines`.
    fn expected_of(&self, name: &str, lines: &[String]) -> Counts {
        let path = self.dir.path().join(format!("{name}.ndjson"));
        write_lines(&path, lines);
        replay_counts(&self.config, &path)
    }

    fn release(&self, k: usize) {
        let s = self.nodes.post(&format!("/release?n={k}"));
        assert!(s["released"].as_u64().is_some(), "release: {s}");
    }

    /// Waits until the daemon's counts equal `want`, then, after the relay's sort window has
    /// passed twice, checks that nothing more arrived (nothing counted twice).
    fn wait_counts(&self, want: &Counts) -> String {
        let want_total = total(want);
        wait("the daemon to count what replay counts", || {
            let text = self.daemon.scrape();
            let got = daemon_counts(&text);
            if total(&got) >= want_total {
                Ok(())
            } else {
                Err(format!("{} of {want_total} counted", total(&got)))
            }
        });
        std::thread::sleep(Duration::from_secs(3));
        let text = self.daemon.scrape();
        let got = daemon_counts(&text);
        assert_eq!(
            &got,
            want,
            "daemon (left) and replay (right) disagree; totals {} vs {want_total}",
            total(&got)
        );
        text
    }
}

impl Drop for Setup {
    /// On failure, the ends of the daemon's and the relay's logs (the folder goes away).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for name in ["daemon.log", "relay.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<_> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            eprintln!(
                "---- {name} (last {} lines)\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

// ---- the scenarios --------------------------------------------------------------------------

/// Scenario 1: 12 nodes, about 25,000 lines, steady: counts equal replay's.
#[test]
fn steady_state_over_the_real_relay_counts_what_replay_counts() {
    let Some(tools) = tools() else { return };
    let lines = generate(12, 10);
    assert!(lines.len() >= 20_000, "{} lines", lines.len());
    let s = Setup::start(tools, lines);
    let want = s.expected(s.lines.len());
    s.release(s.lines.len());
    let text = s.wait_counts(&want);
    println!(
        "steady state: {} lines on {} nodes, {} counted",
        s.lines.len(),
        s.nodes.names.len(),
        total(&want)
    );
    assert_eq!(value(&text, "hubble_noise_duplicate_flows_total", &[]), 0.0);
    assert_eq!(nodes_in(&text, "connected"), 12.0);
    // Every node was asked (through the relay) for DROPPED and AUDIT flows.
    let log = std::fs::read_to_string(s.dir.path().join("requests.ndjson")).expect("request log");
    for n in &s.nodes.names {
        assert!(
            log.lines().any(|l| l.contains(&format!("\"node\":\"{n}\""))
                && l.contains("DROPPED")
                && l.contains("\"follow\":true")),
            "no follow request for DROPPED flows logged for {n}:\n{log}"
        );
    }
}

/// Scenario 2: a node stops mid-stream and comes back: nothing lost, nothing counted twice, and
/// the node gauges say connected again once it sends.
#[test]
fn a_node_that_restarts_is_connected_again_once_it_sends_and_nothing_is_lost() {
    let Some(tools) = tools() else { return };
    let lines = generate(10, 3);
    let s = Setup::start(tools, lines);
    let half = s.lines.len() / 2;
    s.release(half);
    s.wait_counts(&s.expected(half));

    let victim = s.nodes.names[3].clone();
    let before = s.nodes.requests();
    s.nodes.post(&format!("/stop?node={victim}"));
    wait("the relay to report the stopped node", || {
        let text = s.daemon.scrape();
        let down = nodes_in(&text, "error") + nodes_in(&text, "unavailable");
        if down >= 1.0 {
            Ok(())
        } else {
            Err(format!("error+unavailable = {down}"))
        }
    });
    s.nodes.post(&format!("/start?node={victim}"));
    wait("the relay to re-subscribe the node", || {
        let now = s.nodes.requests();
        let (b, n) = (before[&victim], now[&victim]);
        if n > b {
            Ok(())
        } else {
            Err(format!("{victim}: {n} requests"))
        }
    });
    // The relay never says the node is back: the gauge still shows it down until it sends.
    let text = s.daemon.scrape();
    assert!(
        nodes_in(&text, "error") + nodes_in(&text, "unavailable") >= 1.0,
        "a node status came back without a flow"
    );

    s.release(s.lines.len() - half);
    let text = s.wait_counts(&s.expected(s.lines.len()));
    assert_eq!(nodes_in(&text, "error"), 0.0, "{text}");
    assert_eq!(nodes_in(&text, "unavailable"), 0.0, "{text}");
    assert_eq!(nodes_in(&text, "connected"), 10.0, "{text}");
}

/// Scenario 3: the relay restarts: the daemon resumes with `since`, the back-fill is not counted
/// twice, the reconnect is counted, and flows the nodes saw while the relay was down arrive.
#[test]
fn a_relay_restart_resumes_with_since_without_double_counting() {
    let Some(tools) = tools() else { return };
    let lines = generate(10, 3);
    let mut s = Setup::start(tools, lines);
    let first = s.lines.len() / 2;
    s.release(first);
    s.wait_counts(&s.expected(first));
    let reconnects_before = value(
        &s.daemon.scrape(),
        "hubble_noise_relay_reconnects_total",
        &[],
    );

    s.relay = None; // SIGKILL: the relay may hang after "Server stopped" on SIGTERM.
    // The nodes go on seeing flows while the relay is away.
    s.release(s.lines.len() - first);
    let before = s.nodes.requests();
    s.relay = Some(Relay::start(
        &s.tools,
        &s.nodes.peer,
        s.relay_addr,
        &s.link.relay_tls,
        &s.dir.path().join("relay.log"),
    ));
    let text = s.wait_counts(&s.expected(s.lines.len()));
    let now = s.nodes.requests();
    assert!(
        now.iter().all(|(k, v)| *v > before[k]),
        "every node was asked again: {before:?} -> {now:?}"
    );
    assert!(
        value(&text, "hubble_noise_relay_reconnects_total", &[]) > reconnects_before,
        "the reconnect is counted:\n{text}"
    );
    // The resume asked for `since` (the last flow less relay.resume_overlap), so the nodes sent
    // flows again that were already counted: skipped as duplicates.
    assert!(
        value(&text, "hubble_noise_duplicate_flows_total", &[]) > 0.0,
        "the since back-fill overlapped:\n{text}"
    );
    let log = std::fs::read_to_string(s.dir.path().join("requests.ndjson")).expect("request log");
    assert!(
        log.lines().any(|l| l.contains("\"since\"")),
        "a request with since reached the nodes:\n{log}"
    );
}

/// Scenario 4: a node that never answers shows as down, and its drops go uncounted (blindness,
/// which the alert `HubbleNoiseNodesUnavailable` reports); once it answers it is connected
/// again and counted from then on.
#[test]
fn a_node_that_never_answers_shows_down_and_its_drops_go_uncounted() {
    let Some(tools) = tools() else { return };
    let victim = node_name(2);
    let lines = generate(6, 2);
    let s = Setup::start_with(tools, lines, Link::default(), |n| {
        n.post(&format!("/stop?node={victim}"));
    });
    wait("the others subscribed and the silent node reported", || {
        let req = s.nodes.requests();
        let behind: Vec<_> = req
            .iter()
            .filter(|(k, v)| **k != victim && **v == 0)
            .collect();
        let text = s.daemon.scrape();
        let (connected, down) = (
            nodes_in(&text, "connected"),
            nodes_in(&text, "unavailable") + nodes_in(&text, "error"),
        );
        if behind.is_empty() && connected == 5.0 && down == 1.0 {
            Ok(())
        } else {
            Err(format!(
                "not asked: {behind:?}; connected {connected}, unavailable or error {down}"
            ))
        }
    });
    let text = s.daemon.scrape();
    println!(
        "silent node: unavailable {}, error {}",
        nodes_in(&text, "unavailable"),
        nodes_in(&text, "error")
    );

    let half = s.lines.len() / 2;
    let victim_field = format!("\"node_name\":\"{victim}\"");
    let seen: Vec<String> = s.lines[..half]
        .iter()
        .filter(|l| !l.contains(&victim_field))
        .cloned()
        .collect();
    assert!(
        seen.len() < half,
        "the silent node has flows in the first half"
    );
    s.release(half);
    s.wait_counts(&s.expected_of("without-silent-node", &seen));

    let before = s.nodes.requests();
    s.nodes.post(&format!("/start?node={victim}"));
    wait("the relay to subscribe the node once it answers", || {
        let now = s.nodes.requests();
        if now[&victim] > before[&victim] {
            Ok(())
        } else {
            Err(format!("{victim}: {} requests", now[&victim]))
        }
    });
    s.release(s.lines.len() - half);
    let mut counted = seen;
    counted.extend_from_slice(&s.lines[half..]);
    let text = s.wait_counts(&s.expected_of("after-node-answers", &counted));
    assert_eq!(nodes_in(&text, "unavailable"), 0.0, "{text}");
    assert_eq!(nodes_in(&text, "error"), 0.0, "{text}");
    assert_eq!(nodes_in(&text, "connected"), 6.0, "{text}");
}

/// A CA and a certificate signed by it for `san`; PEM files in `dir`, named after `name`.
struct Pki {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    ca: PathBuf,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
                .expect("CA");
        let ca = dir.join(format!("{name}.crt"));
        std::fs::write(&ca, issuer.pem()).expect("write CA");
        Self { issuer, ca }
    }

    /// (certificate, key) files for `san`.
    fn leaf(&self, dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![san.to_owned()])
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("sign");
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }
}

/// The relay's TLS flags as the Helm chart sets them: a server certificate for
/// `*.hubble-relay.cilium.io`, and with `client_ca` client certificates required (mTLS).
fn relay_tls(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Vec<String> {
    let mut v = vec![
        format!("--tls-relay-server-cert-file={}", cert.display()),
        format!("--tls-relay-server-key-file={}", key.display()),
    ];
    if let Some(ca) = client_ca {
        v.push(format!("--tls-relay-client-ca-files={}", ca.display()));
    }
    v
}

/// Scenario 5: the relay serves mTLS with a certificate for `*.hubble-relay.cilium.io`; the
/// daemon verifies it with `relay.ca_file` and `relay.server_name`, presents its client
/// certificate, and counts exactly what replay counts.
#[test]
fn mtls_to_the_real_relay_counts_what_replay_counts() {
    let Some(tools) = tools() else { return };
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(pki_dir.path(), "hubble-ca");
    let (cert, key) = pki.leaf(pki_dir.path(), "relay", "*.hubble-relay.cilium.io");
    let (ccert, ckey) = pki.leaf(
        pki_dir.path(),
        "client",
        "hubble-noise.hubble-relay.cilium.io",
    );
    let link = Link {
        relay_tls: relay_tls(&cert, &key, Some(&pki.ca)),
        daemon_relay: format!(
            "server_name = \"ui.hubble-relay.cilium.io\"\nca_file = \"{}\"\n\
             cert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.ca.display(),
            ccert.display(),
            ckey.display()
        ),
    };
    let s = Setup::start_with(tools, generate(3, 2), link, |_| {});
    s.wait_subscribed(&BTreeMap::new());
    s.release(s.lines.len());
    s.wait_counts(&s.expected(s.lines.len()));
    // Without a client certificate the relay refuses the stream.
    let out = Command::new(&s.tools.hubble)
        .args(["observe", "--server"])
        .arg(s.relay_addr.to_string())
        .args(["--tls", "--tls-server-name", "ui.hubble-relay.cilium.io"])
        .arg("--tls-ca-cert-files")
        .arg(&pki.ca)
        .args(["--last", "1", "-o", "json"])
        .env("HOME", s.dir.path())
        .output()
        .expect("hubble observe runs");
    // TLS 1.3 sends the server's refusal of a missing client certificate after the client
    // finished its side of the handshake: the CLI sees either that alert ("certificate
    // required") or the connection the relay closed (broken pipe, reset, EOF), depending on
    // timing. Either way it must fail and print no flow.
    let err = String::from_utf8_lossy(&out.stderr);
    let refused = [
        "certificate",
        "broken pipe",
        "connection reset",
        "EOF",
        "Unavailable",
    ]
    .iter()
    .any(|w| err.contains(w));
    assert!(
        !out.status.success() && out.stdout.is_empty() && refused,
        "mTLS lets a client without a certificate in: {out:?}"
    );
    println!(
        "hubble observe without a client certificate: {}",
        err.trim()
    );
}

/// Scenario 5: a CA that did not sign the relay's certificate is a clear error, counted as
/// `reason="tls"`, retried, and nothing is counted.
#[test]
fn a_wrong_ca_for_the_real_relay_is_a_tls_error() {
    let Some(tools) = tools() else { return };
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(pki_dir.path(), "hubble-ca");
    let other = Pki::new(pki_dir.path(), "some-other-ca");
    let (cert, key) = pki.leaf(pki_dir.path(), "relay", "*.hubble-relay.cilium.io");
    let link = Link {
        relay_tls: relay_tls(&cert, &key, None),
        daemon_relay: format!(
            "server_name = \"ui.hubble-relay.cilium.io\"\nca_file = \"{}\"\n",
            other.ca.display()
        ),
    };
    let s = Setup::start_with(tools, generate(2, 1), link, |_| {});
    let text = wait("TLS failures, retried", || {
        let text = s.daemon.scrape();
        let tls = value(
            &text,
            "hubble_noise_relay_reconnects_total",
            &[("reason", "tls")],
        );
        if tls >= 2.0 {
            Ok(text)
        } else {
            Err(format!("reason=\"tls\" reconnects: {tls}"))
        }
    });
    assert_eq!(value(&text, "hubble_noise_relay_connected", &[]), 0.0);
    assert_eq!(
        s.nodes.requests().values().sum::<u64>(),
        0,
        "no request got through"
    );
    let log = std::fs::read_to_string(s.dir.path().join("daemon.log")).expect("daemon log");
    assert!(
        log.to_ascii_lowercase().contains("certificate"),
        "the log says what is wrong with the certificate:\n{log}"
    );
}

/// Whether every node matching `pattern` (a `cluster/node-N*` glob) has received a request whose
/// node filter is `pattern`, according to the nodes' request log.
fn asked_with(log: &Path, names: &[String], pattern: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let prefix = pattern.trim_end_matches('*');
    let quoted = format!("\"{pattern}\"");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with(prefix))
        .filter(|n| {
            !text
                .lines()
                .any(|l| l.contains(&format!("\"node\":\"{n}\"")) && l.contains(&quoted))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not yet asked with {pattern}: {missing:?}"))
    }
}

/// Scenario 6: two instances with disjoint `relay.nodes` patterns count together exactly what
/// replay counts for all nodes, and each exactly its own nodes' share.
#[test]
fn two_instances_split_by_relay_nodes_count_together_what_one_counts() {
    let Some(tools) = tools() else { return };
    let (a, b) = ("peers/node-0*", "peers/node-1*");
    let link = Link {
        daemon_relay: format!("nodes = [\"{a}\"]\n"),
        ..Link::default()
    };
    let s = Setup::start_with(tools, generate(14, 1), link, |_| {});
    let metrics_b = free_addr();
    let dir_b = s.dir.path().join("b");
    std::fs::create_dir_all(&dir_b).expect("dir b");
    let config_b = config(
        &dir_b,
        &format!("http://{}", s.relay_addr),
        &format!("nodes = [\"{b}\"]\n"),
        metrics_b,
    );
    let daemon_b = Daemon::start(&config_b, metrics_b, &dir_b.join("daemon.log"));
    let log = s.dir.path().join("requests.ndjson");
    wait("both instances' requests at their nodes", || {
        asked_with(&log, &s.nodes.names, a)?;
        asked_with(&log, &s.nodes.names, b)
    });
    s.release(s.lines.len());

    let share = |pattern: &str| -> Vec<String> {
        let field = format!("\"node_name\":\"{}", pattern.trim_end_matches('*'));
        s.lines
            .iter()
            .filter(|l| l.contains(&field))
            .cloned()
            .collect()
    };
    let (lines_a, lines_b) = (share(a), share(b));
    assert_eq!(
        lines_a.len() + lines_b.len(),
        s.lines.len(),
        "the split is disjoint and whole"
    );
    let want_a = s.expected_of("share-a", &lines_a);
    s.wait_counts(&want_a);
    let want_b = s.expected_of("share-b", &lines_b);
    let got_b = wait("instance b to count its share", || {
        let got = daemon_counts(&daemon_b.scrape());
        if total(&got) >= total(&want_b) {
            Ok(got)
        } else {
            Err(format!("{} of {}", total(&got), total(&want_b)))
        }
    });
    assert_eq!(
        got_b, want_b,
        "instance b (left) and replay of its nodes (right)"
    );

    // Together: what one instance following every node counts (replay of the whole recording).
    let mut together = daemon_counts(&s.daemon.scrape());
    for (k, v) in got_b {
        *together.entry(k).or_default() += v;
    }
    assert_eq!(together, s.expected(s.lines.len()));
}

/// Prometheus (Debian's, on PATH), scraping `targets` every second with the project's alert
/// rules, `for:` and rate windows shortened to seconds as in tests/e2e/run.sh; `None` (saying
/// so) when it is not installed.
struct Prometheus {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl Prometheus {
    fn start(targets: &[SocketAddr]) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/hubble-noise.rules.yml"),
        )
        .expect("rules");
        let short: String = rules
            .lines()
            .map(|l| {
                let l = l.replace("[5m]", "[10s]").replace("[10m]", "[10s]");
                match l.trim_start().strip_prefix("for: ") {
                    Some(_) => format!("{}for: 3s", &l[..l.len() - l.trim_start().len()]),
                    None => l,
                }
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(dir.path().join("rules.yml"), short).expect("write rules");
        let targets: Vec<_> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - rules.yml\n\
                 scrape_configs:\n  - job_name: hubble-noise\n    static_configs:\n      \
                 - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("write config");
        let addr = free_addr();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("HUBBLE_NOISE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                    "prometheus is required (HUBBLE_NOISE_REQUIRE_TOOLS=1) but not installed"
                );
                println!("skipped: prometheus not installed");
                return None;
            }
            Err(e) => panic!("prometheus: {e}"),
        };
        let p = Self {
            addr,
            _dir: dir,
            _proc: Proc(child),
        };
        wait("Prometheus ready", || match TcpStream::connect(addr) {
            Ok(_) if http(addr, "GET", "/-/ready").0 == 200 => Ok(()),
            Ok(_) => Err("not ready".into()),
            Err(e) => Err(e.to_string()),
        });
        Some(p)
    }

    /// The states (`pending`, `firing`) of the alerts named `name`.
    fn alert_states(&self, name: &str) -> Vec<String> {
        let (status, body) = http(self.addr, "GET", "/api/v1/alerts");
        assert_eq!(status, 200, "alerts: {body}");
        let v: Value = serde_json::from_str(&body).expect("alerts JSON");
        v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name)
            .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Scenario 4 in Prometheus: a node that stops answering fires `HubbleNoiseNodesUnavailable`
/// (rules as shipped, durations shortened), and the alert clears once the node sends again.
#[test]
fn the_nodes_unavailable_alert_fires_for_a_silent_node_and_clears_when_it_sends() {
    let Some(tools) = tools() else { return };
    let s = Setup::start(tools, generate(4, 2));
    let Some(prom) = Prometheus::start(&[s.daemon.metrics]) else {
        return;
    };
    let alert = "HubbleNoiseNodesUnavailable";
    let half = s.lines.len() / 2;
    s.release(half);
    s.wait_counts(&s.expected(half));
    assert!(
        prom.alert_states(alert).is_empty(),
        "fires with every node up"
    );

    let victim = s.nodes.names[1].clone();
    let before = s.nodes.requests();
    s.nodes.post(&format!("/stop?node={victim}"));
    wait("the alert to fire", || {
        let states = prom.alert_states(alert);
        if states == ["firing"] {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    });

    s.nodes.post(&format!("/start?node={victim}"));
    wait("the relay to re-subscribe the node", || {
        let now = s.nodes.requests();
        if now[&victim] > before[&victim] {
            Ok(())
        } else {
            Err(format!("{victim}: {} requests", now[&victim]))
        }
    });
    s.release(s.lines.len() - half);
    s.wait_counts(&s.expected(s.lines.len()));
    wait("the alert to clear", || {
        let states = prom.alert_states(alert);
        if states.is_empty() {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    });
}

/// Scenario 8: the real `hubble observe` reads the same flows from the test nodes through the
/// relay (the harness is faithful).
#[test]
fn the_real_hubble_cli_reads_the_same_flows_through_the_relay() {
    let Some(tools) = tools() else { return };
    let lines = generate(4, 1);
    let s = Setup::start(tools, lines);
    s.release(s.lines.len());
    s.wait_counts(&s.expected(s.lines.len()));
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = Command::new(&s.tools.hubble)
        .args(["observe", "--server"])
        .arg(s.relay_addr.to_string())
        .args(["--all", "-o", "json"])
        .env("HOME", &home)
        .env_remove("HUBBLE_SERVER")
        .output()
        .expect("hubble observe runs");
    assert!(out.status.success(), "hubble observe: {out:?}");
    let key = |v: &Value| {
        (
            v["flow"]["node_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            v["flow"]["uuid"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // The nodes' fillers (standing for a node's other traffic) are not in the recording.
    let mut got: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| key(&serde_json::from_str(l).expect("hubble json")))
        .filter(|(_, uuid)| !uuid.starts_with("filler-"))
        .collect();
    let mut want: Vec<_> = s
        .lines
        .iter()
        .map(|l| key(&serde_json::from_str(l).expect("recording")))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "hubble observe read every flow");
    assert_eq!(got, want);
}

/// Scenario 8, the other half: `hubble-noise observe` follows the real relay through the same
/// pipeline as `run` and prints each classified flow as it arrives: the same flows, classes and
/// reasons as `replay` of the recording. SIGINT ends it cleanly.
#[test]
fn observe_prints_through_the_real_relay_what_replay_classifies() {
    let Some(tools) = tools() else { return };
    let s = Setup::start(tools, generate(3, 1));
    let before = s.nodes.requests();
    let err = std::fs::File::create(s.dir.path().join("observe.log")).expect("observe log");
    let mut child = common::cli::bin()
        .args(["observe", "--class", "all", "-o", "jsonl", "-c"])
        .arg(&s.config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("observe starts");
    // Only flows that arrive after it subscribed reach it (follow mode, no `since`).
    s.wait_subscribed(&before);
    s.release(s.lines.len());
    let want = {
        let out = common::cli::bin()
            .args(["replay", "--format", "jsonl", "-c"])
            .arg(&s.config)
            .arg(s.dir.path().join("recording.ndjson"))
            .output()
            .expect("replay runs");
        assert!(out.status.success(), "replay: {out:?}");
        records(&String::from_utf8_lossy(&out.stdout))
    };
    assert!(want.len() > 10, "the recording has flows: {}", want.len());
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < want.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("observe ends");
    let log = std::fs::read_to_string(s.dir.path().join("observe.log")).unwrap_or_default();
    assert!(
        exit.success(),
        "observe ends cleanly on SIGINT: {exit}\n{log}"
    );
    let got = records(&got.join("\n"));
    assert_eq!(got.len(), want.len(), "observe printed every flow\n{log}");
    assert_eq!(got, want);
}

/// (uuid, class, reason) of each JSON line, sorted.
fn records(jsonl: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("uuid"), s("class"), s("reason"))
        })
        .collect();
    v.sort();
    v
}

/// The harness applies field masks as a node does (Cilium's own validation and copy) and logs
/// them: a valid mask trims the flows the relay forwards, an invalid one is refused by every
/// node, and the request log says which.
#[test]
fn the_nodes_validate_apply_and_log_field_masks() {
    let Some(tools) = tools() else { return };
    let s = Setup::start(tools, generate(2, 1));
    s.release(s.lines.len());
    s.wait_counts(&s.expected(s.lines.len()));
    let observe = |mask: &str| {
        Command::new(&s.tools.hubble)
            .args(["observe", "--server"])
            .arg(s.relay_addr.to_string())
            .args(["--all", "-o", "json", "--field-mask", mask])
            .env("HOME", s.dir.path())
            .output()
            .expect("hubble observe runs")
    };
    let out = observe("time,node_name,uuid,verdict");
    assert!(out.status.success(), "{out:?}");
    let flows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("hubble json"))
        .collect();
    assert!(flows.len() >= s.lines.len(), "{} flows", flows.len());
    for f in &flows {
        let keys: Vec<_> = f["flow"]
            .as_object()
            .expect("flow")
            .keys()
            .cloned()
            .collect();
        assert!(
            keys.iter()
                .all(|k| ["time", "node_name", "uuid", "verdict"].contains(&k.as_str())),
            "a field outside the mask: {keys:?}"
        );
    }
    // The hubble CLI checks a mask itself; our bare client sends it unchecked, and the relay
    // reports every node's refusal as a node_status error inside the stream.
    let refused = Command::new(&s.tools.nodes)
        .args(["get-flows", "-server"])
        .arg(s.relay_addr.to_string())
        .args(["-field-mask", "time,no_such_field"])
        .output()
        .expect("get-flows runs");
    assert!(refused.status.success(), "{refused:?}");
    let responses: Vec<Value> = String::from_utf8_lossy(&refused.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("get-flows JSON"))
        .collect();
    assert!(
        responses.iter().all(|r| r.get("flow").is_none()),
        "a node served an invalid mask: {responses:?}"
    );
    let errors: Vec<_> = responses
        .iter()
        .filter(|r| r["nodeStatus"]["stateChange"] == "NODE_ERROR")
        .collect();
    assert!(
        errors
            .iter()
            .any(|r| r.to_string().contains("invalid fieldmask")),
        "the refusal names the mask: {responses:?}"
    );

    let log = std::fs::read_to_string(s.dir.path().join("requests.ndjson")).expect("request log");
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("request log JSON"))
        .collect();
    // The daemon's own requests carry the mask of the fields it reads, and Cilium's validation
    // accepts it at every node (the counts above, equal to replay's, show classification is
    // unchanged with it).
    let daemon_mask = serde_json::json!(hubble_noise::source::relay::FIELD_MASK);
    for n in &s.nodes.names {
        let daemon: Vec<_> = entries
            .iter()
            .filter(|e| e["node"] == n.as_str() && e["field_mask"] == daemon_mask)
            .collect();
        assert!(
            !daemon.is_empty()
                && daemon
                    .iter()
                    .all(|e| e["field_mask_valid"] == Value::Bool(true)),
            "{n}: the daemon's mask reached the node and was accepted: {daemon:?}"
        );
    }
    for n in &s.nodes.names {
        let masks: Vec<_> = entries
            .iter()
            .filter(|e| e["node"] == n.as_str() && e.get("field_mask").is_some())
            .map(|e| (e["field_mask"].clone(), e["field_mask_valid"].clone()))
            .collect();
        assert!(
            masks.contains(&(
                serde_json::json!(["time", "node_name", "uuid", "verdict"]),
                Value::Bool(true)
            )),
            "{n}: the valid mask accepted and logged: {masks:?}"
        );
        assert!(
            masks.contains(&(
                serde_json::json!(["time", "no_such_field"]),
                Value::Bool(false)
            )),
            "{n}: the invalid mask refused and logged: {masks:?}"
        );
    }
}
