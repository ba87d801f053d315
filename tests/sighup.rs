//! SIGHUP reloads the configuration. In its own test binary (its own process), so the signal
//! reaches no other test's daemon.

// Tests unwrap freely: a failure is the test failing (the lint is for the product).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{BAD_CONFIG, FileDaemon, GOOD_CONFIG, scrape, sum};

/// Sends SIGHUP to this process until the reload gauge reads `want` (the reloader may not
/// listen yet when the first signal arrives).
async fn hup_until(d: &FileDaemon, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = scrape(d.addr).await;
        if sum(&t, "hubble_noise_config_last_reload_successful", &[]) == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP never reloaded:\n{t}"
        );
    }
}

#[tokio::test]
async fn sighup_reloads_and_a_failed_reload_keeps_serving() {
    // Own the process-wide SIGHUP handler first, so an early signal cannot kill the process.
    let _guard = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let d = FileDaemon::start().await;
    // A broken config: SIGHUP makes the reload fail.
    d.write_config(BAD_CONFIG);
    hup_until(&d, 0.0).await;
    // Fixed again: the next SIGHUP succeeds.
    d.write_config(GOOD_CONFIG);
    hup_until(&d, 1.0).await;
    d.stop().await;
}
