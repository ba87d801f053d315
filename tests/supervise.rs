//! Supervision (PRODUCT.md §9, issue "Never blind, never lost"): a core task that dies ends
//! the PROCESS with a non-zero status and a log line naming it; `/healthz` fails while the
//! pipeline is stalled with input queued, and recovers when it takes work again.
//!
//! The faults come from the debug-only test hook `HUBBLE_NOISE_TEST_HOOK` (see
//! `src/supervise.rs`): release builds have no such switch, so under `cargo test --release`
//! the process tests say they were skipped.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cli::bin;
use common::{http, sum};
use hubble_noise::daemon::{Input, run_daemon};
use hubble_noise::supervise::{EXIT_TASK_STOPPED, Task, TaskStopped};
use hubble_noise_testkit::fake_relay::{self, FakeRelay, T0};

/// `n` distinct DROPPED flows, one JSON line each.
fn recording(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            r#"{{"flow":{{"uuid":"s{i}","verdict":"DROPPED","traffic_direction":"EGRESS","source":{{"namespace":"a"}}}},"node_name":"n1","time":"2026-05-01T10:00:00Z"}}"#
        ));
        text.push('\n');
    }
    let p = dir.join("rec.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!("[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}\n[log]\nformat = \"text\"\n"),
    )
    .unwrap();
    p
}

/// A daemon process and its standard error, line by line.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Daemon {
    fn start(config: &Path, replay: &Path, hook: Option<&str>) -> Self {
        Self::start_with(
            config,
            &[OsStr::new("--replay"), replay.as_os_str()],
            hook,
            &[],
        )
    }

    /// Starts `run -c config` with `args` after it, the test hook `hook` and `env`.
    fn start_with(
        config: &Path,
        args: &[&OsStr],
        hook: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = bin();
        cmd.args(["run", "-c"])
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match hook {
            Some(h) => cmd.env("HUBBLE_NOISE_TEST_HOOK", h),
            None => cmd.env_remove("HUBBLE_NOISE_TEST_HOOK"),
        };
        let mut child = cmd.spawn().expect("binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("daemon: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (up to 30 s) for a log line containing every part.
    fn wait_line(&mut self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self
                .log
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.log.push(l),
                Err(_) => panic!("no log line with {parts:?}; log:\n{}", self.log.join("\n")),
            }
        }
    }

    /// The address it serves on, from its "serving /metrics" line.
    fn addr(&mut self) -> SocketAddr {
        let line = self.wait_line(&["serving /metrics", "listen="]);
        let at = line.find("listen=").unwrap() + "listen=".len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits (up to 30 s) for the process to exit; kills it and fails if it does not.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Collect the rest of its log.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.log.push(l);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not exit; log:\n{}", self.log.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.wait_exit()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hooks_compiled_in() -> bool {
    if cfg!(debug_assertions) {
        return true;
    }
    eprintln!("skipped: the test hooks exist in debug builds only");
    false
}

/// Polls `/healthz` until its status is `want`; returns the body.
async fn healthz_until(addr: SocketAddr, want: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = http(addr, "GET", "/healthz", None).await;
        if status == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never answered {want}; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fake relay that streams `n` distinct DROPPED flows on its first call, then holds the
/// stream open, and a config (with `extra`) that follows it.
async fn relay_with_flows(dir: &Path, n: usize, extra: &str) -> (fake_relay::Running, PathBuf) {
    let script = (0..n)
        .map(|i| {
            fake_relay::Step::Send(Box::new(fake_relay::flow(&format!("r{i}"), "n1", "a", T0)))
        })
        .collect();
    let relay = fake_relay::start_relay(FakeRelay::new(vec![script])).await;
    let extra = format!("{extra}\n[relay]\naddress = \"http://{}\"\n", relay.addr);
    (relay, config(dir, &extra))
}

/// Runs the daemon with the test hook `hook` (and `extra` config) and checks that it exits
/// with [`EXIT_TASK_STOPPED`] and an ERROR line naming `task` and carrying `message`.
fn a_panic_ends_the_process(hook: &str, extra: &str, task: &str, message: &str) {
    if !hooks_compiled_in() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = recording(dir.path(), 10);
    let d = Daemon::start(&config(dir.path(), extra), &rec, Some(hook));
    exits_naming(d, task, message);
}

/// Waits for `d` to exit with [`EXIT_TASK_STOPPED`] and an ERROR line naming `task` and
/// carrying `message`.
fn exits_naming(mut d: Daemon, task: &str, message: &str) {
    let status = d.wait_exit();
    assert_eq!(
        status.code(),
        Some(i32::from(EXIT_TASK_STOPPED)),
        "{status}; log:\n{}",
        d.log.join("\n")
    );
    let line = d.wait_line(&["core task stopped", task, "panicked"]);
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(message), "{line}");
}

#[test]
fn a_panic_in_the_pipeline_ends_the_process_with_a_log_line_naming_it() {
    a_panic_ends_the_process(
        "panic-pipeline",
        "",
        "pipeline",
        "test hook: pipeline panic",
    );
}

/// With the relay the pipeline step runs inside the task that follows the stream; a panic
/// there ends the process the same way, naming the pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_pipeline_fed_by_the_relay_ends_the_process_naming_it() {
    if !hooks_compiled_in() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_relay, cfg) = relay_with_flows(dir.path(), 10, "").await;
    let d = Daemon::start_with(&cfg, &[], Some("panic-pipeline"), &[]);
    tokio::task::spawn_blocking(move || {
        exits_naming(d, "pipeline", "test hook: pipeline panic");
    })
    .await
    .unwrap();
}

/// The flow log's writer is a core task: if it dies, the daemon does not count on with the
/// flow log silently gone.
#[test]
fn a_panic_in_the_flow_log_writer_ends_the_process_with_a_log_line_naming_it() {
    a_panic_ends_the_process(
        "panic-flow-log-writer",
        "\n[export]\nenabled = true\npath = \"flows.jsonl\"\n",
        "flow_log_writer",
        "test hook: flow log writer panic",
    );
}

#[tokio::test]
async fn healthz_fails_while_the_pipeline_is_stalled_and_recovers_when_it_goes_on() {
    if !hooks_compiled_in() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // More than one batch (256), so input is left queued behind the stalled batch.
    let rec = recording(dir.path(), 1000);
    let stall = dir.path().join("stall");
    std::fs::write(&stall, "").unwrap();
    let cfg = config(dir.path(), "pipeline_stall_timeout = \"300ms\"\n");
    let hook = format!("stall-pipeline-while={}", stall.display());
    let mut d = Daemon::start(&cfg, &rec, Some(&hook));
    let addr = d.addr();

    let why = healthz_until(addr, 503).await;
    assert!(why.contains("pipeline stalled"), "{why}");
    let queued: usize = why
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queue length in {why:?}"));
    assert!(queued > 0, "input waits behind the stalled batch: {why}");
    // /metrics keeps serving, and shows that nothing was counted.
    let text = common::scrape(addr).await;
    assert_eq!(sum(&text, "hubble_noise_flows_total", &[]), 0.0);

    // The pipeline goes on: healthy again, and every flow is counted.
    std::fs::remove_file(&stall).unwrap();
    common::wait_for(addr, "every flow counted", |t| {
        sum(t, "hubble_noise_flows_total", &[]) == 1000.0
    })
    .await;
    assert_eq!(healthz_until(addr, 200).await, "ok\n");

    // The recording is done (no --loop): the daemon keeps serving until SIGTERM, then exits 0.
    d.wait_line(&["recording done; serving its counts until stopped"]);
    assert_eq!(http(addr, "GET", "/healthz", None).await.0, 200);
    let status = d.terminate();
    assert!(status.success(), "{status}; log:\n{}", d.log.join("\n"));
}

/// With the relay the step runs on the task that follows the stream, on the daemon's single
/// worker: a step stuck on its thread stops every answer, so the shipped liveness probe (3 s
/// timeout) fails just as on a 503, and the daemon answers and counts again when it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_the_pipeline_fed_by_the_relay_is_stuck_and_recovers() {
    if !hooks_compiled_in() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_relay, cfg) =
        relay_with_flows(dir.path(), 1000, "pipeline_stall_timeout = \"300ms\"\n").await;
    let stall = dir.path().join("stall");
    std::fs::write(&stall, "").unwrap();
    let hook = format!("stall-pipeline-while={}", stall.display());
    let mut d = Daemon::start_with(&cfg, &[], Some(&hook), &[]);
    let addr = tokio::task::block_in_place(|| d.addr());
    tokio::task::block_in_place(|| d.wait_line(&["test hook: pipeline stuck on its thread"]));

    let probe =
        tokio::time::timeout(Duration::from_secs(3), http(addr, "GET", "/healthz", None)).await;
    match probe {
        Err(_) => {}
        Ok((status, _, body)) => {
            assert_eq!(status, 503, "a stuck step must fail the probe: {body}")
        }
    }

    std::fs::remove_file(&stall).unwrap();
    common::wait_for(addr, "every flow counted", |t| {
        sum(t, "hubble_noise_flows_total", &[]) == 1000.0
    })
    .await;
    assert_eq!(healthz_until(addr, 200).await, "ok\n");
    let status = tokio::task::block_in_place(|| d.terminate());
    assert!(status.success(), "{status}; log:\n{}", d.log.join("\n"));
}

#[tokio::test]
async fn a_recording_that_cannot_be_opened_stops_the_daemon_naming_the_replay_task() {
    let loaded = hubble_noise::load::config(None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = run_daemon(
        loaded,
        Input::Replay {
            path: "/nonexistent/recording.ndjson".into(),
            looped: false,
            rate: None,
        },
        listener,
        std::future::pending(),
    );
    let err = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the daemon stops by itself")
        .expect_err("a failure");
    let stopped = err.downcast_ref::<TaskStopped>().expect("a TaskStopped");
    assert_eq!(stopped.task, Task::Replay);
    assert!(
        stopped.reason.contains("/nonexistent/recording.ndjson"),
        "{stopped}"
    );
}
