//! A Cilium policy YAML file, then the sample flows classified with its policies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hubble_noise_fuzz::policy_yaml(data);
});
