//! A time-boxed mutation fuzzer for the harnesses of `hubble_noise_fuzz`, on stable Rust.
//!
//! ```text
//! cargo run --release -p hubble-noise-fuzz -- <target> <seconds> [seed dir ...]
//! ```
//!
//! Targets are those of `fuzz/` (`json_line`, `grpc_bytes`, `grpc_structured`, `rules`,
//! `policy`, `config`), `grpc_message` (one message, unframed), and the short names `json`
//! and `grpc`. Seeds are the committed libFuzzer corpus (`fuzz/corpus/<target>`), the files
//! under `tests/fixtures`, `examples` and the directories given (JSON lines are split into
//! lines; for the gRPC targets each decoded line is re-encoded as protobuf, and framed for
//! `grpc_bytes`). Each round picks a seed or an earlier accepted input, mutates it (byte flips,
//! inserts, deletes, duplicated ranges, splices, tokens that stress parsers: deep nesting, NUL,
//! invalid UTF-8, long runs, glob and regex metacharacters) and runs the harness under
//! `catch_unwind`. A panic is a finding: the input is written to `target/fuzz-findings/` and
//! the run goes on. The last line printed is a summary.
//!
//! `cargo run -p hubble-noise-fuzz -- --write-seeds` writes the binary seeds of the committed corpus
//! (`grpc_bytes`: the recordings as framed streams; `grpc_structured`: fixed pseudo-random
//! bytes); `fuzz/seeds.py` writes the text ones.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hubble_noise_fuzz::{ALIASES, TARGETS, Verdict, frames, harness};
use prost::Message as _;

const TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff\xfe",
    b"\xc3",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"*",
    b"**",
    b"*.*.",
    b"?",
    b"(a+)+$",
    b"[[rule]]\n",
    b"[rule.match]\n",
    b"fqdn = [\"*.*.*.*.*.*.*\"]\n",
    b"cidr = [\"::/0\"]\n",
    b"- ",
    b"&a ",
    b"*a ",
    b"---\n",
    b"!!binary ",
    b"\n",
    b"\t",
    b"\"verdict\":\"DROPPED\"",
    b"\"verdict\":4",
    b"\"dns\":{\"query\":\"a.\",\"ips\":[\"1.2.3.4\"],\"ttl\":1}",
    b"\"time\":\"9999-12-31T23:59:59.999999999Z\"",
    b"[relay]\n",
    b"[metrics]\n",
    b"backoff_max = \"18446744073709551615d\"\n",
    b"idle_timeout = \"999999999999h\"\n",
    b"max_series = 9223372036854775807\n",
    b"\x00\x00\x00\x00\x05",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write-seeds") {
        write_seeds();
        return;
    }
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let (Some(name), Some(secs)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fuzz <{}> <seconds> [seed dir ...]", names.join("|"));
        std::process::exit(2);
    };
    let name = ALIASES
        .iter()
        .find(|(a, _)| a == name)
        .map_or(name.as_str(), |(_, t)| t);
    let Some(harness) = harness(name) else {
        eprintln!("unknown target {name}; known: {}", names.join(", "));
        std::process::exit(2);
    };
    let secs: u64 = secs.parse().unwrap_or(10);
    let mut dirs: Vec<PathBuf> = vec![root("tests/fixtures"), root("examples")];
    dirs.extend(args[2..].iter().map(PathBuf::from));
    let mut corpus = seeds(name, &dirs);
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let seeds_n = corpus.len();
    // Panics are findings, reported by the summary; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rng = fastrand::Rng::with_seed(secs ^ 0x5eed);
    let (mut runs, mut accepted, mut panics, mut longest) = (0u64, 0u64, 0u64, 0usize);
    let mut slowest = Duration::ZERO;
    let findings = &root("target/fuzz-findings");
    while Instant::now() < deadline {
        let base = &corpus[rng.usize(..corpus.len())];
        let other = &corpus[rng.usize(..corpus.len())];
        let input = mutate(&mut rng, base, other);
        let started = Instant::now();
        let out = catch_unwind(AssertUnwindSafe(|| harness(&input)));
        slowest = slowest.max(started.elapsed());
        runs += 1;
        longest = longest.max(input.len());
        match out {
            Ok(Verdict::Accepted) => {
                accepted += 1;
                if corpus.len() < 20_000 && input.len() < 1 << 20 && rng.u8(..) < 16 {
                    corpus.push(input);
                }
            }
            Ok(Verdict::Refused) => {}
            Err(_) => {
                panics += 1;
                let _ = std::fs::create_dir_all(findings);
                let p = findings.join(format!("{name}-{panics}.bin"));
                let _ = std::fs::write(&p, &input);
                eprintln!("PANIC on input written to {}", p.display());
            }
        }
        if runs % 100_000 == 0 {
            eprintln!("{name}: {runs} runs, {accepted} accepted, {panics} panics");
        }
    }
    println!(
        "fuzz {name}: {secs} s, {runs} runs, {accepted} accepted, {} refused, {panics} panics, \
         {seeds_n} seeds, corpus {}, longest input {longest} bytes, slowest input {slowest:?}",
        runs - accepted - panics,
        corpus.len()
    );
    if panics > 0 {
        std::process::exit(1);
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A path of the repository, wherever the runner is started from.
fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn seeds(target: &str, dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut corpus = Vec::new();
    files(&root("fuzz/corpus").join(target), &mut corpus);
    corpus.sort();
    out.extend(corpus.iter().filter_map(|p| std::fs::read(p).ok()));
    let mut paths = Vec::new();
    for d in dirs {
        files(d, &mut paths);
    }
    paths.sort();
    let ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_owned()
    };
    for p in paths {
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        let e = ext(&p);
        match target {
            "json_line" | "grpc_message" | "grpc_bytes" if e == "ndjson" || e == "json" => {
                let mut stream = Vec::new();
                for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if target == "json_line" {
                        out.push(line.to_vec());
                    } else if let Ok(Some(r)) = hubble_noise::source::file::decode_line(line) {
                        if target == "grpc_message" {
                            out.push(r.encode_to_vec());
                        } else {
                            out.push(frames(std::slice::from_ref(&r)));
                            stream.push(r);
                        }
                    }
                }
                if target == "grpc_bytes" {
                    stream.truncate(64);
                    out.push(frames(&stream));
                }
            }
            "rules" | "config" if e == "toml" => out.push(data),
            "policy" if e == "yaml" || e == "yml" => out.push(data),
            _ => {}
        }
    }
    out.truncate(5_000);
    out
}

fn mutate(rng: &mut fastrand::Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.usize(..4) {
        let len = v.len();
        let at = rng.usize(..=len);
        match rng.u8(..10) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                v[i] ^= 1 << rng.u8(..8);
            }
            1 if len > 0 => {
                let i = rng.usize(..len);
                v[i] = rng.u8(..);
            }
            2 => v.insert(at, rng.u8(..)),
            3 if len > 0 => {
                let end = (at + rng.usize(..=16)).min(len);
                v.drain(at..end);
            }
            4 if len > 0 => {
                // Duplicate a range, sometimes many times (long runs, deep nesting).
                let s = rng.usize(..len);
                let e = (s + 1 + rng.usize(..32)).min(len);
                let piece = v[s..e].to_vec();
                let times = if rng.u8(..8) == 0 {
                    rng.usize(..2000)
                } else {
                    1
                };
                for _ in 0..times {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                // Splice: the head of this one, the tail of the other.
                let cut = rng.usize(..other.len());
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            6 | 7 => {
                let t = TOKENS[rng.usize(..TOKENS.len())];
                let times = if rng.u8(..16) == 0 {
                    rng.usize(..5000)
                } else {
                    1
                };
                for _ in 0..times {
                    v.splice(at..at, t.iter().copied());
                }
            }
            8 => v.truncate(at),
            _ => {
                // Numbers: the same spot gets an extreme value.
                let n: &[u8] = match rng.u8(..4) {
                    0 => b"0",
                    1 => b"4294967295",
                    2 => b"-9223372036854775808",
                    _ => b"65536",
                };
                v.splice(at..at, n.iter().copied());
            }
        }
    }
    v
}

/// Writes the binary seeds of `fuzz/corpus` (see the module's documentation).
fn write_seeds() {
    let recordings = [
        "examples/recording.ndjson",
        "tests/fixtures/dns/recording.ndjson",
        "tests/fixtures/policies/recording.ndjson",
        "tests/fixtures/peers/cf2cnp-dns-world.ndjson",
        "fuzz/src/samples.ndjson",
    ];
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = root("fuzz/corpus").join(target);
        let written =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), data));
        if let Err(e) = written {
            eprintln!("{}: {e}", dir.join(name).display());
            std::process::exit(1);
        }
    };
    for path in recordings {
        let Ok(text) = std::fs::read(root(path)) else {
            eprintln!("{path}: cannot read");
            std::process::exit(1);
        };
        let responses: Vec<_> = text
            .split(|b| *b == b'\n')
            .filter_map(|l| hubble_noise::source::file::decode_line(l).ok().flatten())
            .collect();
        let stem = Path::new(path)
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("x");
        write(
            "grpc_bytes",
            &format!("{stem}-stream.bin"),
            &frames(&responses),
        );
        if path.starts_with("src/") {
            for (i, r) in responses.iter().enumerate() {
                write(
                    "grpc_bytes",
                    &format!("sample-{i}.bin"),
                    &frames(std::slice::from_ref(r)),
                );
            }
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for (i, len) in [16, 64, 128, 256, 512, 1024, 2048, 4096].iter().enumerate() {
        let data: Vec<u8> = (0..*len).map(|_| rng.u8(..)).collect();
        write("grpc_structured", &format!("random-{i}.bin"), &data);
    }
}
