//! Where responses come from: JSON lines ([`file`](mod@file)), a recording fed as the daemon's source
//! ([`recording`]), or the hubble-relay stream ([`relay`]).

pub mod file;
pub mod recording;
pub mod relay;
