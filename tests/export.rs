//! The flow log (`[export]`, PRODUCT.md §12): the binary `run -c … --replay …` on 127.0.0.1:0
//! writes classified flows as JSON lines; they equal what `replay --format jsonl` prints for
//! the same flows, plus the namespace, workload and port fields. The file rotates at its size,
//! and a stalled reader drops lines (counted) without slowing counting.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cli::{bin, replay_jsonl, run};
use common::sum;
use hubble_noise::config::Config;
use serde_json::Value;

/// The fields the flow log adds to `replay --format jsonl`'s.
const EXTRA: [&str; 5] = [
    "source_namespace",
    "source_workload",
    "destination_namespace",
    "destination_workload",
    "destination_port",
];

/// A daemon process, its address and its log.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(config: &Path, replay: &Path) -> Self {
        let mut child = bin()
            .args(["run", "-c"])
            .arg(config)
            .arg("--replay")
            .arg(replay)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("daemon: {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("a 'serving /metrics' log line");
            if let Some(at) = line.find("listen=") {
                let rest = &line[at + "listen=".len()..];
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Self { child, addr }
    }

    fn scrape(&self) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// Polls `/metrics` until `ok` holds; panics with the last scrape after 30 s.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.scrape();
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last scrape:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM, then the exit status must be 0 within 10 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "daemon exit status {st:?}");
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_total(t: &str) -> f64 {
    sum(t, "hubble_noise_export_lines_total", &[])
}

fn dropped_total(t: &str) -> f64 {
    sum(t, "hubble_noise_export_dropped_total", &[])
}

/// A folder with the example's rules and a config that exports with `export` (TOML lines).
fn example_dir(export: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("examples/rules.toml"),
        dir.path().join("rules.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[classify]\n\
             expected_log_tags = [\"app-explicit-traffic-blocked\"]\nrule_files = [\"rules.toml\"]\n\n\
             [export]\nenabled = true\n{export}\n"
        ),
    )
    .unwrap();
    dir
}

/// The JSON lines of `path`.
fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A line without the added fields, which must be there.
fn without_extra(mut v: Value) -> Value {
    let obj = v.as_object_mut().unwrap();
    for k in EXTRA {
        assert!(obj.contains_key(k), "{k} missing in {obj:?}");
        obj.remove(k);
    }
    assert!(!obj.contains_key("explain"));
    v
}

/// Runs the example recording with `class` and compares the file to `replay`'s records of
/// that class.
fn example_log_equals_replay(class: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    let dir = example_dir(&format!("class = \"{class}\"\npath = \"logs/flows.jsonl\""));
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let config = dir.path().join("config.toml");
    let recording = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/recording.ndjson");
    let expected: Vec<Value> = replay_jsonl(&config, &recording)
        .into_iter()
        .filter(|r| want(r))
        .collect();
    assert!(!expected.is_empty());
    let d = Daemon::start(&config, &recording);
    let n = expected.len() as f64;
    let text = d.wait_for("every line written", |t| lines_total(t) == n);
    assert_eq!(dropped_total(&text), 0.0);
    d.stop();
    let got = read_lines(&dir.path().join("logs/flows.jsonl"));
    let stripped: Vec<Value> = got.iter().cloned().map(without_extra).collect();
    assert_eq!(stripped, expected);
    got
}

#[test]
fn the_flow_log_holds_the_unexpected_flows_replay_prints() {
    let got = example_log_equals_replay("unexpected", |r| r["class"] == "unexpected");
    assert_eq!(got.len(), 2);
    // The flow to 198.51.100.7:4444 from shop/checkout.
    let l = got
        .iter()
        .find(|l| {
            l["destination"]
                .as_str()
                .unwrap()
                .starts_with("198.51.100.7")
        })
        .unwrap();
    assert_eq!(l["source_namespace"], "shop");
    assert_eq!(l["destination_namespace"], "");
    assert_eq!(l["destination_port"], 4444);
    assert!(l["source_workload"].is_string());
}

#[test]
fn class_all_writes_every_counted_flow() {
    let got = example_log_equals_replay("all", |_| true);
    assert!(got.iter().any(|l| l["class"] == "expected"));
    assert!(got.iter().any(|l| l["class"] == "unexpected"));
}

/// `n` distinct unexpected DROPPED flows, one JSON line each.
fn recording(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            concat!(
                r#"{{"flow":{{"uuid":"u{i}","verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","#,
                r#""traffic_direction":"EGRESS","IP":{{"source":"10.0.0.1","destination":"198.51.100.{b}"}},"#,
                r#""l4":{{"TCP":{{"source_port":40000,"destination_port":{p}}}}},"#,
                r#""source":{{"namespace":"shop","pod_name":"checkout-1","workloads":[{{"name":"checkout","kind":"Deployment"}}]}},"#,
                r#""destination":{{"identity":2,"labels":["reserved:world"]}}}},"#,
                r#""node_name":"n1","time":"2026-05-01T10:00:00Z"}}"#
            ),
            i = i,
            b = i % 250,
            p = 1000 + i % 5000,
        ));
        text.push('\n');
    }
    let p = dir.join("rec.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

fn plain_config(dir: &Path, export: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!("[metrics]\nlisten = \"127.0.0.1:0\"\n\n[export]\nenabled = true\n{export}\n"),
    )
    .unwrap();
    p
}

#[test]
fn the_file_rotates_at_its_size_and_loses_nothing_under_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording(dir.path(), 300);
    let max = 4096;
    let config = plain_config(
        dir.path(),
        &format!("path = \"flows.jsonl\"\nmax_size = {max}\nmax_files = 100"),
    );
    let d = Daemon::start(&config, &rec);
    d.wait_for("300 lines", |t| lines_total(t) == 300.0);
    d.stop();
    let f = dir.path().join("flows.jsonl");
    let mut files = vec![f.clone()];
    let mut i = 1;
    while hubble_noise::export::sink::numbered(&f, i).exists() {
        files.push(hubble_noise::export::sink::numbered(&f, i));
        i += 1;
    }
    assert!(files.len() > 5, "{} files", files.len());
    for p in &files {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= max, "{}: {len} bytes", p.display());
    }
    // Oldest (highest number) first: every flow once, in order.
    let uuids: Vec<String> = files
        .iter()
        .rev()
        .flat_map(|p| read_lines(p))
        .map(|l| l["uuid"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
    assert_eq!(uuids, want);
}

#[test]
fn a_stalled_reader_drops_lines_and_never_slows_counting() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let rec = recording(dir.path(), n);
    let fifo = dir.path().join("flows.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let config = plain_config(dir.path(), "path = \"flows.fifo\"\nqueue = 100");
    // The reader opens the FIFO (once the daemon opens it to write) and reads nothing yet.
    let (open_tx, open_rx) = mpsc::channel();
    let f2 = fifo.clone();
    std::thread::spawn(move || {
        let _ = open_tx.send(std::fs::File::open(f2).unwrap());
    });
    let d = Daemon::start(&config, &rec);
    let text = d.wait_for("every flow counted while the reader stalls", |t| {
        sum(t, "hubble_noise_flows_total", &[]) == n as f64
    });
    let stalled_dropped = dropped_total(&text);
    eprintln!(
        "stalled: {n} flows counted, {} lines written, {stalled_dropped} dropped",
        lines_total(&text)
    );
    assert!(stalled_dropped > 0.0, "{text}");
    // Lines in the pipe and the queue are not written yet: at most a pipe and a queue's worth.
    assert!(lines_total(&text) + stalled_dropped < n as f64, "{text}");
    // Now read: the queue drains, and lines + dropped = every flow offered.
    let reader = open_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let read = std::thread::spawn(move || BufReader::new(reader).lines().count());
    let text = d.wait_for("lines + dropped = offered", |t| {
        lines_total(t) + dropped_total(t) == n as f64
    });
    assert!(dropped_total(&text) >= stalled_dropped);
    let written = lines_total(&text) as usize;
    d.stop();
    // The daemon closed its end: the reader sees every written line, and only those.
    assert_eq!(read.join().unwrap(), written);
}

#[test]
fn config_errors_name_the_file_line_and_key() {
    let path = Path::new("/etc/hn/config.toml");
    for (text, key, line) in [
        ("[export]\nmax_size = 10\n", "export.max_size", 2),
        ("[export]\nqueue = 0\n", "export.queue", 2),
        ("[export]\n\nqueue = 1000001\n", "export.queue", 3),
        ("[export]\nmax_files = 100000\n", "export.max_files", 2),
        ("[export]\nclass = \"dropped\"\n", "export.class", 2),
        ("[export]\npath = \"\"\n", "export.path", 2),
        ("[export]\nenabled = \"yes\"\n", "export.enabled", 2),
        ("[export]\nrotate = 1\n", "export.rotate", 2),
    ] {
        let e = Config::from_text(path, text.into(), Vec::new()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("/etc/hn/config.toml:{line}:")) && msg.contains(key),
            "{text:?}: {msg}"
        );
    }
    let ok = Config::from_text(
        path,
        "[export]\nenabled = true\npath = \"log/flows.jsonl\"\nclass = \"all\"\n".into(),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(ok.config.export.path, Path::new("/etc/hn/log/flows.jsonl"));
    let stdout = Config::from_text(
        path,
        String::new(),
        vec![("HUBBLE_NOISE_EXPORT__ENABLED".into(), "true".into())],
    )
    .unwrap();
    assert!(stdout.config.export.enabled);
    assert!(stdout.config.export.to_stdout());
    assert_eq!(stdout.config.export.queue, 10_000);
    assert_eq!(stdout.config.export.max_size, 100 << 20);
}

#[test]
fn check_says_where_the_flow_log_goes() {
    let dir = tempfile::tempdir().unwrap();
    let config = plain_config(
        dir.path(),
        "class = \"all\"\npath = \"f.jsonl\"\nmax_size = 4096",
    );
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!(
        "flow log: all flows to {} (rotated at 4096 bytes, 3 kept), queue 10000",
        dir.path().join("f.jsonl").display()
    );
    assert!(text.contains(&want), "{text}");
}

/// The root config.toml documents every key of `[export]` with its default.
#[test]
fn the_root_config_documents_the_defaults() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let loaded = Config::load_with_env(Some(&root), Vec::new()).unwrap();
    assert_eq!(loaded.config.export, Config::default().export);
    let text = std::fs::read_to_string(&root).unwrap();
    for key in [
        "enabled =",
        "class =",
        "path =",
        "max_size =",
        "max_files =",
        "queue =",
    ] {
        let section = &text[text.find("[export]").unwrap()..];
        assert!(section.contains(key), "[export] {key} missing");
    }
}

#[test]
fn a_missing_folder_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording(dir.path(), 1);
    let config = plain_config(dir.path(), "path = \"nope/flows.jsonl\"");
    let out = bin()
        .args(["run", "-c"])
        .arg(&config)
        .arg("--replay")
        .arg(&rec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("export.path") && err.contains("nope"), "{err}");
}
