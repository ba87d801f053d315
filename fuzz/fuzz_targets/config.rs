//! A config file (TOML): validation, and what the daemon builds from it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::config_file(data);
});
