//! Logging for the daemon and `observe`: text (colour only on a terminal, never with
//! `NO_COLOR`) or JSON lines, on standard error.

use crate::config::{LogConfig, LogFormat};

/// Sets up logging: text or JSON lines; `RUST_LOG` wins over `log.level`. A second call (tests)
/// is a no-op.
pub fn init_logging(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => {
            // A pod's log is a file: colour escapes there make `kubectl logs` unreadable.
            use std::io::IsTerminal as _;
            let ansi = log_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(ansi).try_init()
        }
    };
}

/// Whether the text log may use colour: only on a terminal, and never with `NO_COLOR` set to a
/// non-empty value (no-color.org).
pub fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}
