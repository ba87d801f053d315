//! A structure-aware relay stream: the bytes describe messages (`hubble_noise_fuzz::structured`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::grpc_structured(data);
});
