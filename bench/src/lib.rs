//! Tooling for hubble-noise's benchmarks (BENCHMARKS.md), never shipped: synthetic rules and
//! flows of a realistic shape ([`synth`]) and the end-to-end load generator ([`loadgen`]), a
//! stand-in hubble-relay on loopback driven by the `hubble-noise-bench` binary.

pub mod loadgen;
pub mod synth;
