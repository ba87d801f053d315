//! hubble-noise: classifies Hubble's DROPPED and AUDIT flows as expected or unexpected and
//! counts them for Prometheus.
//!
//! The data path, one way: [`source`] (relay stream or JSON lines) → [`pipeline`] (decode,
//! [`dedup`], skip the drop-notification twin, learn names in [`dns`], [`classify`] with
//! [`rules`]) → [`metrics`] (served by [`server`] in `run`) or replay output.
//!
//! - [`api`]: generated protobuf / gRPC / JSON types of Hubble's API (`proto/`).
//! - [`config`]: defaults < `config.toml` < environment.
//! - [`flow`]: the matcher's view of one flow.
//! - [`names`]: the names of a flow's side and which an `fqdn` key must cover.
//! - [`enums`]: enum values the schema may not know (newer Cilium): read, counted, labelled.
//! - [`located`]: errors that name file, line, column and key.
//! - [`metrics`]: every Prometheus metric, the cardinality guard.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`, `/-/reload`.
//! - [`policy`]: imported Cilium policies (steps 2 and 3 of classification).
//! - [`watcher`]: file watching for reloads.
//! - [`supervise`]: named tasks; one that stops ends the process.
//! - [`health`]: the pipeline heartbeat behind `/healthz`.
//! - [`backoff`]: jittered exponential reconnect delays.
//! - [`cmd::run`]: the daemon wiring (`run_daemon`).

pub mod api;
pub mod backoff;
pub mod calendar;
pub mod classify;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod dns;
pub mod enums;
pub mod flow;
pub mod health;
pub mod load;
pub mod located;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod read;
pub mod rules;
pub mod server;
pub mod source;
pub mod stall;
pub mod suggest;
pub mod supervise;
pub mod watcher;
