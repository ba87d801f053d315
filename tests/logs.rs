//! Logs as a pod shows them: `kubectl logs` reads a file, not a terminal.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    use hubble_noise::logging::log_colour;
    use std::ffi::OsStr;
    assert!(log_colour(true, None));
    // no-color.org: an empty NO_COLOR does not count.
    assert!(log_colour(true, Some(OsStr::new(""))));
    assert!(!log_colour(true, Some(OsStr::new("1"))));
    assert!(!log_colour(false, None));
    assert!(!log_colour(false, Some(OsStr::new("1"))));
}

/// Regression: the text log written to a file was full of terminal colour escapes.
#[test]
fn text_log_to_a_file_has_no_escape_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    // A relay nobody listens on: the daemon logs that it serves /metrics, then the failed
    // connects (warnings, which are coloured on a terminal).
    std::fs::write(
        &config,
        "[relay]\naddress = \"http://127.0.0.1:1\"\nbackoff_initial = \"50ms\"\nbackoff_max = \"50ms\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"text\"\nlevel = \"debug\"\n",
    )
    .expect("write config");
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = common::cli::bin()
        .args(["run", "-c"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read(&log_path).expect("read log");
        let lines = text.iter().filter(|b| **b == b'\n').count();
        if lines >= 3 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let shown = String::from_utf8_lossy(&text);
    assert!(
        shown.contains("serving /metrics"),
        "the daemon logged nothing:\n{shown}"
    );
    assert!(
        !text.contains(&0x1b),
        "escape bytes in a log written to a file:\n{shown:?}"
    );
}
