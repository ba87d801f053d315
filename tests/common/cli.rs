//! Running the `hubble-noise` binary from tests, and finding the real recordings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary, run from the repository root, with no config from the environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubble-noise"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("HUBBLE_NOISE_CONFIG");
    c
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

/// Runs the binary with `args` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("binary runs")
}

/// `replay --format jsonl` of `recording` with `config`: one JSON value per counted flow.
pub fn replay_jsonl(config: &Path, recording: &Path) -> Vec<serde_json::Value> {
    let out = run(&[
        "replay",
        "--format",
        "jsonl",
        "-c",
        config.to_str().expect("utf-8 path"),
        recording.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The real recordings copied into the repository (`tests/fixtures/real`, see its SOURCES.md).
/// They are part of the repository: a missing folder is a failure, never a skip.
pub fn fixtures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    assert!(
        p.join("SOURCES.md").is_file(),
        "{} is missing: the real recordings are part of the repository",
        p.display()
    );
    Some(p)
}

/// Every recording (`*.json`, `*.ndjson`) below `dir`, sorted.
pub fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable fixture dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "ndjson")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
