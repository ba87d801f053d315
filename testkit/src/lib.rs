//! Test support for hubble-noise, never shipped: the gRPC server stub of hubble-relay's
//! `observer.Observer/GetFlows` ([`observer_server`]) and a scripted fake relay built on it
//! ([`fake_relay`]). The product crate generates the client only; tests reach the server side
//! through this dev-dependency.

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/observer.Observer.rs"));
}

/// The generated server of `observer.Observer` (`GetFlows` only), on the product's types.
pub use generated::observer_server;

pub mod fake_relay;
