//! Configuration (PRODUCT.md §6): defaults < `config.toml` < `HUBBLE_NOISE_<SECTION>__<KEY>`.
//!
//! The file is parsed with spans so that every error names file, line, column and key. One job
//! a file:
//!
//! - `schema`: the sections, their keys and defaults;
//! - `loaded`: [`Config::load`], layer by layer, to a [`Loaded`] or a [`ConfigError`];
//! - `env`: the environment layer, restricted to the known [`SECTIONS`];
//! - `validate`: the checks types alone do not make, and the bounds ([`MAX_DURATION`], …);
//! - [`duration_str`]: durations written `5s`, `500ms`, `1h30m`.

pub mod duration_str;
mod env;
mod loaded;
mod schema;
mod validate;

pub use env::SECTIONS;
pub use loaded::{ConfigError, Loaded};
pub use schema::{
    CONTEXT_LABELS, ClassifyConfig, Config, DnsConfig, DnsScope, ExportClass, ExportConfig,
    LogConfig, LogFormat, MetricsConfig, RelayConfig, TriageConfig,
};
pub use validate::{
    MAX_BACKOFF, MAX_COUNT, MAX_DURATION, MAX_EXPORT_FILES, MAX_EXPORT_QUEUE, MIN_EXPORT_SIZE,
};
