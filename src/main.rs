//! `hubble-noise`: parse the command line, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use hubble_noise::cli::{Cli, Command};
use hubble_noise::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => cmd::replay::run(&args),
        Command::Check(args) => cmd::check::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Observe(args) => cmd::observe::run(&args),
        Command::Test(args) => cmd::test::run(&args),
        Command::Suggest(args) => cmd::suggest::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hubble-noise: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
