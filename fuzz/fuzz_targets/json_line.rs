//! A recording of JSON lines, as `replay` and `run --replay` read it, through the whole path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::json_line(data);
});
