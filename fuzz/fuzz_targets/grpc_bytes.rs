//! A relay stream: gRPC frames of GetFlowsResponse messages, each through the whole path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::grpc_stream(data);
});
