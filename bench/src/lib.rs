//! Tooling for hubble-noise's benchmarks (BENCHMARKS.md), never shipped: synthetic rules and
//! flows of a realistic shape ([`synth`]), the end-to-end load generator ([`loadgen`]), a
//! stand-in hubble-relay on loopback that applies the request's field mask as a node does
//! ([`mask`]), driven by the `hubble-noise-bench` binary, the bare-decode floor it compares the
//! daemon's CPU with ([`floor`]), and what a process costs ([`cpu`]).

pub mod cpu;
pub mod floor;
pub mod loadgen;
pub mod mask;
pub mod synth;
