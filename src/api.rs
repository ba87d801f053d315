//! Generated protobuf types (prost), gRPC client and server (tonic) and JSON (pbjson) for the
//! subset of Hubble's API in `proto/`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `flow`: the flow record and its parts.
pub mod flow {
    include!(concat!(env!("OUT_DIR"), "/flow.rs"));
    include!(concat!(env!("OUT_DIR"), "/flow.serde.rs"));
}

/// Package `relay`: node status events sent by hubble-relay.
pub mod relay {
    include!(concat!(env!("OUT_DIR"), "/relay.rs"));
    include!(concat!(env!("OUT_DIR"), "/relay.serde.rs"));
}

/// Package `observer`: the `GetFlows` service.
pub mod observer {
    include!(concat!(env!("OUT_DIR"), "/observer.rs"));
    include!(concat!(env!("OUT_DIR"), "/observer.serde.rs"));
}
