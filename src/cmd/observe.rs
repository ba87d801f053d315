//! `hubble-noise observe`: live classified flows (PRODUCT.md §7).
//!
//! The same source and pipeline as `run` (the relay stream with its reconnects and `since`
//! resume, or a recording), but instead of counting, each classified DROPPED or AUDIT flow of
//! the chosen class is printed as it arrives: a compact line like `hubble observe`'s plus the
//! class and reason, or a JSON object with the fields of `replay --format jsonl`. Ctrl-C (or
//! SIGTERM) stops it cleanly; a closed standard output (`| head`) too. It serves no port.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use crate::api::observer::GetFlowsResponse;
use crate::classify::{Classifier, Decision};
use crate::cli::{ClassFilter, ObserveArgs, ObserveFormat};
use crate::config::Config;
use crate::flow::FlowCtx;
use crate::load;
use crate::metrics::Metrics;
use crate::output;
use crate::pipeline::{Outcome, Pipeline};
use crate::record::Record;
use crate::rules::Class;
use crate::source::relay;
use crate::supervise::TaskResult;

/// Runs `observe` until the input ends (a recording), a signal, or a closed output.
pub fn run(args: &ObserveArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    crate::logging::init_logging(&loaded.config.log);
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = loaded.config;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // The relay follower reports its connection through metrics; nobody scrapes these.
    let metrics = Arc::new(Metrics::new(&cfg.metrics, env!("CARGO_PKG_VERSION")));
    let (tx, mut rx) = mpsc::channel(crate::daemon::CHANNEL_CAPACITY);
    let (stop_tx, stop_rx) = watch::channel(false);
    let source = spawn_source(&rt, args, &cfg, Arc::clone(&metrics), tx, stop_rx);
    let mut pipeline = Pipeline::new(&cfg);
    let mut printer = Printer {
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        args,
        classifier: &classifier,
    };
    let ended = rt.block_on(print_flows(
        &mut rx,
        &mut pipeline,
        &classifier,
        &mut printer,
    ));
    let _ = stop_tx.send(true);
    let _ = printer.out.flush();
    drop(printer);
    let source =
        rt.block_on(async { tokio::time::timeout(crate::daemon::SHUTDOWN_GRACE, source).await });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match ended {
        Ended::Output(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        Ended::Input => match source {
            Ok(Ok(Err(e))) => Err(anyhow::anyhow!(e)),
            _ => Ok(ExitCode::SUCCESS),
        },
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Starts the source on `rt`: the recording of `--replay`, else the relay stream, until
/// `stop` turns true. Its result is the recording reader's.
fn spawn_source(
    rt: &tokio::runtime::Runtime,
    args: &ObserveArgs,
    cfg: &Config,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<GetFlowsResponse>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<TaskResult> {
    let replay = args.replay.clone();
    let relay_cfg = cfg.relay.clone();
    let learn = cfg.dns.learn;
    rt.spawn(async move {
        match replay {
            Some(path) => tokio::task::spawn_blocking(move || {
                crate::source::recording::replay(&path, false, None, &metrics, &tx, &stop)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the recording reader failed: {e}"))),
            None => {
                let stopped = async move {
                    let mut stop = stop;
                    let _ = stop.wait_for(|s| *s).await;
                };
                let mut tx = tx;
                relay::follow(relay_cfg, learn, metrics, &mut tx, stopped).await;
                Ok(())
            }
        }
    })
}

/// Takes each response through the pipeline and prints the counted flows, until a signal,
/// the end of the input or a failed write.
async fn print_flows<W: std::io::Write>(
    rx: &mut mpsc::Receiver<GetFlowsResponse>,
    pipeline: &mut Pipeline,
    classifier: &Classifier,
    printer: &mut Printer<'_, W>,
) -> Ended {
    let shutdown = crate::daemon::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ended::Signal,
            msg = rx.recv() => {
                let Some(resp) = msg else { return Ended::Input };
                if let Outcome::Counted { ctx, decision } = pipeline.process(&resp, classifier) {
                    if let Err(e) = printer.flow(&ctx, &decision) {
                        return Ended::Output(e);
                    }
                }
                // Flush when the stream pauses: a live view shows each flow at once.
                if rx.is_empty() {
                    if let Err(e) = printer.out.flush() {
                        return Ended::Output(e);
                    }
                }
            }
        }
    }
}

/// Why the loop ended.
enum Ended {
    /// SIGINT or SIGTERM.
    Signal,
    /// The source ended (a recording was read to its end, or could not be read).
    Input,
    /// Standard output failed (a closed pipe is a normal end).
    Output(std::io::Error),
}

struct Printer<'a, W: std::io::Write> {
    out: W,
    args: &'a ObserveArgs,
    classifier: &'a Classifier,
}

impl<W: std::io::Write> Printer<'_, W> {
    fn flow(&mut self, ctx: &FlowCtx<'_>, d: &Decision<'_>) -> std::io::Result<()> {
        let wanted = match self.args.class {
            ClassFilter::All => true,
            ClassFilter::Expected => d.class == Class::Expected,
            ClassFilter::Unexpected => d.class == Class::Unexpected,
        };
        if !wanted {
            return Ok(());
        }
        match self.args.output {
            ObserveFormat::Jsonl => {
                let rec = Record::new(ctx, d, self.classifier, self.args.explain);
                serde_json::to_writer(&mut self.out, &rec).map_err(std::io::Error::other)?;
                self.out.write_all(b"\n")
            }
            ObserveFormat::Compact => {
                writeln!(self.out, "{}", compact(ctx, d))?;
                if self.args.explain {
                    for l in crate::classify::explain::explain(self.classifier, ctx, d) {
                        writeln!(self.out, "    {l}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// `Nov 20 10:00:02.000 [prod/worker-1]: shop/checkout-…:50001 -> 203.0.113.10:443
/// (collector.telemetry.example.com) DROPPED POLICY_DENIED EGRESS => expected
/// (app-explicit-traffic-blocked, rule vendor-telemetry)`: `hubble observe -o compact`'s order
/// (time, node, source, destination, verdict), then the class and why.
pub fn compact(ctx: &FlowCtx<'_>, d: &Decision<'_>) -> String {
    let time = ctx
        .flow
        .time
        .as_ref()
        .map_or_else(|| "-".to_string(), output::compact_time);
    let side = |s: &crate::flow::Side<'_>| match s.port {
        Some(p) => format!("{}:{p}", output::endpoint(s)),
        None => output::endpoint(s),
    };
    let mut line = format!(
        "{time} [{}]: {} -> {}",
        ctx.node,
        side(&ctx.source),
        side(&ctx.destination)
    );
    if let Some(name) = output::names(&ctx.destination).first() {
        line.push_str(&format!(" ({name})"));
    }
    line.push(' ');
    line.push_str(output::verdict_name(ctx.verdict));
    if let Some(r) = output::drop_reason_name(ctx.drop_reason) {
        line.push(' ');
        line.push_str(&r);
    }
    line.push(' ');
    line.push_str(&crate::enums::direction_label(ctx.direction_value).to_uppercase());
    line.push_str(&format!(" => {} ({}", d.class.as_str(), d.reason));
    if let Some(r) = d.rule {
        line.push_str(&format!(", rule {}", r.name));
    }
    if ctx.flows > 1 {
        line.push_str(&format!(", {} flows", ctx.flows));
    }
    line.push(')');
    line
}
