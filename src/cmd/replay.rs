//! `hubble-noise replay`: classify recordings through the same path as `run`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::classify::{Classifier, Decision};
use crate::cli::{Format, ReplayArgs};
use crate::flow::FlowCtx;
use crate::load;
use crate::output;
use crate::pipeline::{Outcome, Pipeline};
use crate::record::Record;
use crate::rules::Class;
use crate::source::file;

/// What a replay counted.
#[derive(Debug, Default)]
pub struct Totals {
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be read.
    pub unreadable: u64,
    /// Counted flows by (class, reason).
    pub by_reason: HashMap<(Class, String), u64>,
    /// Hits per rule index.
    pub rule_hits: Vec<u64>,
    /// Drop-notification twins skipped.
    pub twins: u64,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Flows of other verdicts.
    pub not_counted: u64,
    /// Events lost upstream (sum of `num_events_lost`).
    pub lost: u64,
    /// Unexpected flows by (source workload, destination).
    pub unexpected_groups: HashMap<(String, String), u64>,
    /// DNS answers not learned because no trusted server gave them.
    pub dns_untrusted: u64,
    /// Flows whose class a name that did not count changed (`hubble_noise_names_ambiguous_total`).
    pub names_ambiguous: u64,
}

impl Totals {
    fn counted(&self, class: Class) -> u64 {
        self.by_reason
            .iter()
            .filter(|((c, _), _)| *c == class)
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
    }
}

/// Runs `replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut pipeline = Pipeline::new(&loaded.config);
    let mut totals = Totals {
        rule_hits: vec![0; classifier.rules.rules().len()],
        ..Totals::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let progress = progress_bar(&args.files);
    for path in &args.files {
        let write_err = replay_file(
            path,
            &mut pipeline,
            &classifier,
            args,
            &mut totals,
            &mut out,
            progress.as_ref(),
        )?;
        if let Some(e) = write_err {
            // A closed pipe (`| head`) ends the replay quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if args.format == Format::Table {
        print_table(&mut out, args.files.len(), &totals, &classifier)?;
    } else {
        eprintln!(
            "replay: {} lines, {} counted ({} expected, {} unexpected), {} unreadable",
            totals.lines,
            totals.counted(Class::Expected) + totals.counted(Class::Unexpected),
            totals.counted(Class::Expected),
            totals.counted(Class::Unexpected),
            totals.unreadable
        );
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one recording through the pipeline into `totals` (and `out`), reporting unreadable
/// lines on standard error. `Ok(Some(e))` when writing failed: the replay ends there.
fn replay_file(
    path: &Path,
    pipeline: &mut Pipeline,
    classifier: &Classifier,
    args: &ReplayArgs,
    totals: &mut Totals,
    out: &mut impl Write,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Option<std::io::Error>> {
    let mut reader = file::open(path).with_context(|| format!("{}", path.display()))?;
    let mut write_err = None;
    let lines = file::for_each_response(path, &mut reader, |_, item| {
        if let Some(pb) = progress {
            pb.inc(1);
        }
        if write_err.is_some() {
            return ControlFlow::Break(());
        }
        let resp = match item {
            Ok(file::Line::Response(r)) => r,
            Ok(file::Line::NotCounted) => {
                totals.not_counted += 1;
                return ControlFlow::Continue(());
            }
            Err(e) => {
                totals.unreadable += 1;
                if let Some(pb) = progress {
                    pb.suspend(|| eprintln!("{e}"));
                } else {
                    eprintln!("{e}");
                }
                return ControlFlow::Continue(());
            }
        };
        if let Err(e) = handle(pipeline, &resp, classifier, args, totals, out) {
            write_err.get_or_insert(e);
        }
        for (_, n) in pipeline.names.take_ignored() {
            totals.dns_untrusted = totals.dns_untrusted.saturating_add(n);
        }
        ControlFlow::Continue(())
    })
    .with_context(|| format!("{}: read error", path.display()))?;
    totals.lines += lines;
    Ok(write_err)
}

/// One response through the pipeline: counted in `totals`, and written as `jsonl` or with its
/// explanation when asked for.
fn handle(
    pipeline: &mut Pipeline,
    resp: &crate::api::observer::GetFlowsResponse,
    classifier: &Classifier,
    args: &ReplayArgs,
    totals: &mut Totals,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match pipeline.process(resp, classifier) {
        Outcome::Counted { ctx, decision } => {
            count(totals, &ctx, &decision, classifier);
            if args.format == Format::Jsonl || args.explain {
                let rec = Record::new(&ctx, &decision, classifier, args.explain);
                if args.format == Format::Jsonl {
                    serde_json::to_writer(&mut *out, &rec).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")?;
                } else {
                    write_explained(out, &rec)?;
                }
            }
        }
        Outcome::Twin => totals.twins += 1,
        Outcome::Duplicate => totals.duplicates += 1,
        Outcome::NotCounted => totals.not_counted += 1,
        Outcome::Lost(l) => totals.lost = totals.lost.saturating_add(l.num_events_lost),
        Outcome::NodeStatus(_) | Outcome::Empty => {}
    }
    Ok(())
}

/// One flow and its explanation, for `--explain` in table format.
fn write_explained(out: &mut impl Write, rec: &Record<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {} {} {} -> {}: {} ({})",
        rec.time.as_deref().unwrap_or("-"),
        rec.uuid,
        rec.verdict,
        rec.source,
        rec.destination,
        rec.class,
        rec.reason
    )?;
    for l in rec.explain.iter().flatten() {
        writeln!(out, "  {l}")?;
    }
    Ok(())
}

fn count(t: &mut Totals, ctx: &FlowCtx<'_>, d: &Decision<'_>, c: &Classifier) {
    // An aggregated flow counts the flows it stands for, like `hubble_noise_flows_total`.
    let n = ctx.flows;
    if d.ambiguous {
        t.names_ambiguous = t.names_ambiguous.saturating_add(n);
    }
    let total = t
        .by_reason
        .entry((d.class, d.reason.to_string()))
        .or_default();
    *total = total.saturating_add(n);
    if let Some(i) = d.rule.and_then(|r| c.rules.index_of(r)) {
        if let Some(h) = t.rule_hits.get_mut(i) {
            *h = h.saturating_add(n);
        }
    }
    if d.class == Class::Unexpected {
        let dst = output::names(&ctx.destination)
            .into_iter()
            .next()
            .map(|n| match ctx.destination.port {
                Some(p) => format!("{n}:{p}/{}", ctx.proto.as_str()),
                None => n,
            })
            .unwrap_or_else(|| output::destination(ctx));
        let group = t
            .unexpected_groups
            .entry((output::workload(&ctx.source), dst))
            .or_default();
        *group = group.saturating_add(n);
    }
}

fn progress_bar(files: &[std::path::PathBuf]) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || files.iter().any(|f| f.as_os_str() == "-") {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} lines ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(pb)
}

fn print_table(
    out: &mut impl Write,
    files: usize,
    t: &Totals,
    classifier: &Classifier,
) -> std::io::Result<()> {
    let expected = t.counted(Class::Expected);
    let unexpected = t.counted(Class::Unexpected);
    writeln!(
        out,
        "read {} line(s) from {files} file(s); {} could not be read",
        t.lines, t.unreadable
    )?;
    writeln!(
        out,
        "counted {} flow(s): {expected} expected, {unexpected} unexpected",
        expected + unexpected
    )?;
    writeln!(
        out,
        "not counted: {} drop-notification twin(s), {} duplicate(s), {} flow(s) of other verdicts; {} event(s) lost upstream",
        t.twins, t.duplicates, t.not_counted, t.lost
    )?;
    if t.dns_untrusted > 0 || t.names_ambiguous > 0 {
        writeln!(
            out,
            "names: {} DNS answer(s) from untrusted servers not learned; {} flow(s) left unexpected by a name that did not count alone (shared IP, CNAME target)",
            t.dns_untrusted, t.names_ambiguous
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<11} {:<40} {:>8}", "CLASS", "REASON", "FLOWS")?;
    let mut rows: Vec<_> = t.by_reason.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.1.cmp(&b.0.1)));
    for ((class, reason), n) in rows {
        writeln!(out, "{:<11} {:<40} {:>8}", class.as_str(), reason, n)?;
    }
    let rules = classifier.rules.rules();
    if !rules.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<40} {:>8}", "RULE", "HITS")?;
        for (r, n) in rules.iter().zip(&t.rule_hits) {
            writeln!(out, "{:<40} {:>8}", r.name, n)?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let expired: Vec<_> = rules
            .iter()
            .filter(|r| r.expires.is_some_and(|e| e < now))
            .collect();
        if !expired.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "expired rules (no longer match flows after their expiry):"
            )?;
            for r in expired {
                writeln!(out, "  {} ({}:{})", r.name, r.file.display(), r.line)?;
            }
        }
    }
    if !t.unexpected_groups.is_empty() {
        writeln!(out)?;
        writeln!(out, "top unexpected (source -> destination):")?;
        let mut groups: Vec<_> = t.unexpected_groups.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for ((src, dst), n) in groups.into_iter().take(20) {
            writeln!(out, "{n:>8}  {src} -> {dst}")?;
        }
    }
    Ok(())
}
