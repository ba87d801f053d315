//! A rule file (TOML), then the sample flows classified with its rules.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::rule_file(data);
});
