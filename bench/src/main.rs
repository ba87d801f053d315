//! `hubble-noise-bench`: drive a running daemon with the load generator and print what it
//! measured (BENCHMARKS.md). Exit 0 when the daemon counted every flow sent, 1 when not, 2 on
//! an error.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;

use hubble_noise_bench::floor::{self, Floor};
use hubble_noise_bench::loadgen::{self, Load, Report};

/// `hubble-noise-bench` arguments.
#[derive(Debug, clap::Parser)]
#[command(
    name = "hubble-noise-bench",
    version,
    about = "Load generator for hubble-noise: a stand-in hubble-relay on loopback that streams synthetic\nflows to a running daemon and measures its throughput and latency through /metrics\n(BENCHMARKS.md)."
)]
struct Args {
    /// Where the stand-in relay listens (point the daemon's `relay.address` here).
    #[arg(long, default_value = "127.0.0.1:4245")]
    listen: std::net::SocketAddr,
    /// The daemon's metrics address.
    #[arg(long, default_value = "127.0.0.1:9967")]
    metrics: std::net::SocketAddr,
    /// Flows to send.
    #[arg(long, default_value_t = 3_000_000)]
    flows: u64,
    /// Flows per second (0 = as fast as the daemon takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Distinct source namespaces (series of `hubble_noise_flows_total`).
    #[arg(long, default_value_t = 100)]
    namespaces: u64,
    /// Latency probes spread over the run (each is polled for in `/metrics` every 2 ms, which
    /// loads the daemon a little).
    #[arg(long, default_value_t = 100)]
    probes: u64,
    /// DNS answers sent before the flows, each teaching the daemon one name.
    #[arg(long, default_value_t = 0)]
    dns_names: u64,
    /// Print a synthetic rule file of this many rules (half fqdn, 30 % CIDR, the rest
    /// namespace/label/port) and exit, for the daemon's `classify.rule_files`.
    #[arg(long, value_name = "N")]
    emit_rules: Option<usize>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Poll the daemon's `/metrics` for the count every this many milliseconds (a scrape costs
    /// the daemon CPU: raise it when measuring CPU at many series).
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// The daemon's process id: report its CPU time per message over the stream.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// After the daemon's stream, serve the same stream to a bare tonic client that only
    /// decodes (the floor) and report its CPU per message and the daemon's ratio to it.
    #[arg(long)]
    floor: bool,
    /// Be the floor client: follow this generator (`http://host:port`) for `--flows` messages
    /// and print what it spent.
    #[arg(long, value_name = "URL", hide = true)]
    floor_client: Option<String>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hubble-noise-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.emit_rules {
        print!("{}", hubble_noise_bench::synth::rules(n));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(addr) = &args.floor_client {
        // Built as the daemon builds its runtime (`hubble-noise run`).
        let rt = hubble_noise::cmd::run::runtime_builder()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        let floor = rt.block_on(floor::run(addr.clone(), args.flows))?;
        println!("{}", floor.line());
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
        poll: Duration::from_millis(args.poll_ms.max(1)),
        daemon_pid: args.daemon_pid,
    };
    let spawn = if args.floor {
        Some(floor::Spawn {
            exe: std::env::current_exe().context("locating this binary")?,
        })
    } else {
        None
    };
    eprintln!(
        "bench-relay: serving {} flows on {} (daemon metrics at {})",
        args.flows, args.listen, args.metrics
    );
    let (report, floor) = rt.block_on(loadgen::run(
        args.listen,
        args.metrics,
        load,
        Duration::from_secs(args.timeout),
        spawn,
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
    print_cost(&report, floor.as_ref());
    Ok(if report.counted >= report.sent as f64 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// CPU per message of the daemon and of the floor, their ratio, and millicores.
fn print_cost(report: &Report, floor: Option<&Floor>) {
    let per = |cpu: Duration, n: u64| cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
    let millicores =
        |cpu: Duration, wall: Duration| cpu.as_secs_f64() * 1e3 / wall.as_secs_f64().max(1e-9);
    println!("messages    {}", report.messages);
    let Some(daemon) = report.daemon_cpu else {
        return;
    };
    let d = per(daemon, report.messages);
    println!(
        "daemon cpu  {:.2} s = {d:.2} us/message, {:.0} millicores over {:.1} s",
        daemon.as_secs_f64(),
        millicores(daemon, report.elapsed),
        report.elapsed.as_secs_f64()
    );
    if let Some(f) = floor {
        let fl = per(f.cpu, f.messages);
        println!(
            "floor cpu   {:.2} s = {fl:.2} us/message, {:.0} millicores over {:.1} s",
            f.cpu.as_secs_f64(),
            millicores(f.cpu, f.wall),
            f.wall.as_secs_f64()
        );
        println!(
            "ratio       {:.2} (daemon / floor, CPU per message)",
            d / fl.max(1e-9)
        );
    }
}
