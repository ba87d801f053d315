//! `hubble-noise test`: rule unit tests (PRODUCT.md §7).
//!
//! ```toml
//! [[test]]
//! name = "vendor telemetry is expected"
//! # optional: lines fed first through the same pipeline, e.g. the DNS answer that names the IP
//! before = ['{"flow":{...L7 DNS response...}}']
//! flow = '{"flow":{...},"node_name":"..."}'
//! expect = { class = "expected", rule = "vendor-telemetry", reason = "app-explicit-traffic-blocked" }
//! ```

use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;

use crate::classify::Classifier;
use crate::cli::TestArgs;
use crate::load;
use crate::located::{LocatedError, from_toml, line_col};
use crate::pipeline::{Outcome, Pipeline};
use crate::source::file::decode_line;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    test: Vec<toml::Spanned<TestCase>>,
}

/// One `[[test]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    #[serde(default)]
    before: Vec<String>,
    flow: String,
    expect: Expect,
}

/// What a test expects; `rule` and `reason` are optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    class: String,
    rule: Option<String>,
    reason: Option<String>,
}

/// What a flow got.
#[derive(Debug, PartialEq)]
struct Got {
    class: String,
    rule: Option<String>,
    reason: String,
    explain: Vec<String>,
}

/// The result of one test.
#[derive(Debug)]
pub struct TestResult {
    /// `file:line name`.
    pub name: String,
    /// `None` when it passed, else what differed.
    pub failure: Option<String>,
    /// The decision path.
    pub explain: Vec<String>,
}

/// Runs `test`: each file, each test; a summary line; exit 1 when any test fails.
pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &args.files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", f.display()))?;
        let results = match run_file(f, &text, &loaded.config, &classifier) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        for r in results {
            match &r.failure {
                None => {
                    passed += 1;
                    println!("PASS {}", r.name);
                }
                Some(why) => {
                    failed += 1;
                    println!("FAIL {}: {why}", r.name);
                }
            }
            if args.explain || r.failure.is_some() {
                for l in &r.explain {
                    println!("    {l}");
                }
            }
        }
    }
    println!("test: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs every test of one file. A file that cannot be parsed is an error naming file, line,
/// column and key; a test whose flow cannot be decoded fails.
pub fn run_file(
    path: &Path,
    text: &str,
    cfg: &crate::config::Config,
    classifier: &Classifier,
) -> Result<Vec<TestResult>, LocatedError> {
    let file: TestFile = from_toml(path, text)?;
    let mut out = Vec::new();
    for spanned in &file.test {
        let (line, _) = line_col(text, spanned.span().start);
        let t = spanned.get_ref();
        let name = format!("{}:{line} {}", path.display(), t.name);
        let mut result = TestResult {
            name,
            failure: None,
            explain: Vec::new(),
        };
        match evaluate(t, cfg, classifier) {
            Err(why) => result.failure = Some(why),
            Ok(got) => {
                result.failure = compare(&t.expect, &got);
                result.explain = got.explain;
            }
        }
        out.push(result);
    }
    Ok(out)
}

fn evaluate(t: &TestCase, cfg: &crate::config::Config, c: &Classifier) -> Result<Got, String> {
    // A fresh pipeline per test: no state leaks from one test into the next.
    let mut pipeline = Pipeline::new(cfg);
    for (i, line) in t.before.iter().enumerate() {
        let resp = decode_line(line.as_bytes())
            .map_err(|e| format!("before[{i}] is not a Hubble JSON line: {e}"))?
            .ok_or_else(|| format!("before[{i}] is empty"))?;
        let _ = pipeline.process(&resp, c);
    }
    let resp = decode_line(t.flow.as_bytes())
        .map_err(|e| format!("flow is not a Hubble JSON line: {e}"))?
        .ok_or("flow is empty")?;
    match pipeline.process(&resp, c) {
        Outcome::Counted { ctx, decision } => Ok(Got {
            class: decision.class.as_str().to_string(),
            rule: decision.rule.map(|r| r.name.clone()),
            reason: decision.reason.to_string(),
            explain: crate::classify::explain::explain(c, &ctx, &decision),
        }),
        Outcome::Twin => {
            Err("flow is not counted: it is the drop-notification twin of a policy verdict".into())
        }
        Outcome::Duplicate => {
            Err("flow is not counted: a `before` line has the same node and uuid".into())
        }
        Outcome::NotCounted => {
            Err("flow is not counted: only DROPPED and AUDIT verdicts are".into())
        }
        _ => Err("the line holds no flow".into()),
    }
}

fn compare(want: &Expect, got: &Got) -> Option<String> {
    let mut diffs = Vec::new();
    if want.class != got.class {
        diffs.push(format!(
            "class: expected {:?}, got {:?}",
            want.class, got.class
        ));
    }
    if let Some(r) = &want.rule {
        if got.rule.as_deref() != Some(r.as_str()) {
            diffs.push(format!(
                "rule: expected {r:?}, got {}",
                got.rule
                    .as_deref()
                    .map_or("none".to_string(), |g| format!("{g:?}"))
            ));
        }
    }
    if let Some(r) = &want.reason {
        if *r != got.reason {
            diffs.push(format!("reason: expected {r:?}, got {:?}", got.reason));
        }
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}
