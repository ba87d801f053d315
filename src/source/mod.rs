//! Where responses come from: JSON lines ([`file`]) or the hubble-relay stream ([`relay`]).

pub mod file;
pub mod relay;
