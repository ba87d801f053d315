//! Where responses come from: JSON lines ([`file`]) or the relay stream.

pub mod file;
