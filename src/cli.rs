//! The command line (PRODUCT.md §7).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Classifies Cilium Hubble DROPPED and AUDIT flows as expected or unexpected and exports
/// Prometheus counters labelled by class.
#[derive(Debug, Parser)]
#[command(name = "hubble-noise", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify recorded flows (JSON lines, `-` for stdin, `.gz` ok) and print a summary.
    Replay(ReplayArgs),
    /// The daemon: follow hubble-relay (or replay a recording), serve /metrics.
    Run(RunArgs),
    /// Validate the config, rules and policies; print a summary. Exit 1 when invalid.
    Check(ConfigArg),
    /// Follow hubble-relay (or a recording) and print classified flows as they arrive, like
    /// `hubble observe` without the noise (default: the unexpected ones). Serves no port.
    Observe(ObserveArgs),
    /// Run rule unit tests (`[[test]]` tables); exit 1 when one fails.
    Test(TestArgs),
    /// Propose rules for the unexpected flows of recordings (prints a rule file).
    Suggest(SuggestArgs),
}

/// `-c/--config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file [default: config.toml when it exists, else built-in defaults].
    #[arg(short, long, env = "HUBBLE_NOISE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `replay` arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Config.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Say, per flow, which step decided and why.
    #[arg(long)]
    pub explain: bool,
    /// Recordings to read, in order, as one stream (`-` = stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Output formats of `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Totals by class and reason, rule hits, unreadable lines, top unexpected groups.
    Table,
    /// One JSON object per counted flow, in input order.
    Jsonl,
}

/// `run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Feed this recording (JSON lines, `-` = stdin, `.gz` ok) instead of the relay, then keep
    /// serving `/metrics`.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// With `--replay`: replay forever, with fresh uuids and current times.
    #[arg(long = "loop", requires = "replay")]
    pub r#loop: bool,
    /// With `--replay`: flows per second (default: as fast as possible), 0.001 to 1e9.
    #[arg(long, value_name = "N", requires = "replay", value_parser = parse_rate)]
    pub rate: Option<f64>,
}

/// `observe` arguments.
#[derive(Debug, clap::Args)]
pub struct ObserveArgs {
    /// Config (the relay to follow, the rules that classify).
    #[command(flatten)]
    pub config: ConfigArg,
    /// Which flows to print.
    #[arg(long, value_enum, default_value_t = ClassFilter::Unexpected)]
    pub class: ClassFilter,
    /// Output: `compact` lines like `hubble observe`'s plus class and reason, or one JSON object
    /// per flow (the fields of `replay --format jsonl`).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ObserveFormat::Compact)]
    pub output: ObserveFormat,
    /// Add, per flow, which step decided and why.
    #[arg(long)]
    pub explain: bool,
    /// Read this recording (JSON lines, `-` = stdin, `.gz` ok) instead of the relay; stop at
    /// its end.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

/// Which classified flows `observe` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassFilter {
    /// Only the expected ones.
    Expected,
    /// Only the unexpected ones.
    Unexpected,
    /// Both.
    All,
}

/// Output formats of `observe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObserveFormat {
    /// One line per flow, like `hubble observe -o compact`, with class and reason.
    Compact,
    /// One JSON object per flow.
    Jsonl,
}

/// `test` arguments.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Config (its rules and tags are the ones tested).
    #[command(flatten)]
    pub config: ConfigArg,
    /// Show the decision path of every test, not only of failures.
    #[arg(long)]
    pub explain: bool,
    /// Test files (TOML with `[[test]]` tables).
    #[arg(required = true, value_name = "TESTFILE")]
    pub files: Vec<PathBuf>,
}

/// `suggest` arguments.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    /// Config (flows its rules already decide are not suggested again).
    #[command(flatten)]
    pub config: ConfigArg,
    /// Days from now until the suggested rules expire.
    #[arg(long, default_value_t = 30)]
    pub expires_in_days: u32,
    /// Recordings to read, in order, as one stream (`-` = stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `--rate`: a finite number of flows per second from 0.001 to 1e9; anything else would make
/// the pacing arithmetic (seconds = flows / rate) overflow or never send.
fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.001..=1e9).contains(&r) {
        return Err(format!("{s}: must be from 0.001 to 1e9 flows per second"));
    }
    Ok(r)
}
