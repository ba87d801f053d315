//! `hubble-noise bench-relay`: drive a running daemon with the load generator and print what
//! it measured.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::BenchRelayArgs;
use crate::loadgen::{self, Load};

/// Runs the load generator; exit 1 when the daemon did not count every flow sent.
pub fn run(args: &BenchRelayArgs) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.emit_rules {
        print!("{}", crate::synth::rules(n));
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let load = Load {
        flows: args.flows,
        rate: args.rate,
        namespaces: args.namespaces,
        probes: args.probes,
        dns_names: args.dns_names,
    };
    eprintln!(
        "bench-relay: serving {} flows on {} (daemon metrics at {})",
        args.flows, args.listen, args.metrics
    );
    let report = rt.block_on(loadgen::run(
        args.listen,
        args.metrics,
        load,
        Duration::from_secs(args.timeout),
    ))?;
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        })
    };
    println!("sent        {}", report.sent);
    println!("counted     {}", report.counted);
    println!("elapsed     {:.2} s", report.elapsed.as_secs_f64());
    println!("throughput  {:.0} flows/s", report.rate());
    println!(
        "latency     p50 {}  p99 {}  max {}  ({} probes)",
        ms(report.latency(0.5)),
        ms(report.latency(0.99)),
        ms(report.latency(1.0)),
        report.latencies.len()
    );
    Ok(if report.counted >= report.sent as f64 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
