//! hubble-noise: classifies Hubble's DROPPED and AUDIT flows as expected or unexpected and
//! counts them for Prometheus. This crate is all that ships; benchmarks (`bench/`), fuzzing
//! (`fuzz/`) and test support (`testkit/`) are crates of their own.
//!
//! The data path, one way:
//!
//! 1. [`source`]: where responses come from — hubble-relay's `GetFlows` stream
//!    ([`source::relay`], reconnecting with [`backoff`]), JSON lines ([`source::file`]) or a
//!    recording fed as the daemon's source ([`source::recording`]); decoded into [`api`] types,
//!    enum values the schema lacks kept by [`enums`].
//! 2. [`pipeline`]: de-duplicate ([`dedup`]), skip the drop-notification twin, learn names from
//!    DNS answers ([`dns`], [`names`]), then classify.
//! 3. [`classify`]: pure — a [`flow`] view + [`rules`] + imported [`policy`] + names → class,
//!    reason, rule; built from the config by [`load`].
//! 4. [`metrics`]: every Prometheus metric, one group per file, behind the cardinality guard;
//!    served by [`server`] (with [`stall`] guarding slow clients, [`web`] its TLS and basic
//!    auth, [`triage`] the page and API of recent flows) — or printed by [`cmd`].
//! 5. [`export`]: the flow log, classified flows as JSON lines, off the pipeline's thread
//!    through a bounded queue (a slow reader drops lines, never counts).
//!
//! Around it: [`cli`] and [`cmd`] (one file per command); [`config`] (defaults < file <
//! environment, files read through [`read`]); [`daemon`] (`run`'s tasks, each under
//! [`supervise`], the pipeline heartbeat in [`health`], reloads on [`watcher`] events,
//! [`logging`]); [`suggest`] (draft rules); [`output`], [`calendar`] and [`located`] (text
//! forms, dates, errors that name file, line and key).

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
pub mod export;
pub mod flow;
pub mod health;
pub mod load;
pub mod located;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod postable;
pub mod read;
pub mod record;
pub mod rules;
pub mod server;
pub mod source;
pub mod stall;
pub mod suggest;
pub mod supervise;
pub mod triage;
pub mod watcher;
pub mod web;
