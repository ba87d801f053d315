//! Jittered exponential backoff for reconnecting to hubble-relay (PRODUCT.md §9).
//!
//! Delays start at `initial`, grow by [`FACTOR`] per failure up to `max`, and each delay is
//! jittered by ±[`JITTER`] so that many replicas restarting together do not reconnect in step.
//! [`Backoff::reset`] after a healthy stream starts over from `initial`.

use std::time::Duration;

/// Growth per failed attempt.
pub const FACTOR: f64 = 1.8;
/// Relative jitter applied to each delay (±20 %).
pub const JITTER: f64 = 0.2;

/// The state of one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff from `initial` to at most `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Self {
            initial,
            max,
            current: initial,
        }
    }

    /// The delay before the next attempt; grows the following one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        // Checked: `mul_f64` panics when the product leaves Duration's range, and the bounds
        // come from the config.
        let times = |d: Duration, f: f64| {
            Duration::try_from_secs_f64(d.as_secs_f64() * f)
                .unwrap_or(self.max)
                .min(self.max)
        };
        self.current = times(self.current, FACTOR);
        let jitter = 1.0 + JITTER * (fastrand::f64() * 2.0 - 1.0);
        times(base, jitter)
    }

    /// Waits for [`Backoff::next_delay`] and returns the delay waited.
    pub async fn wait(&mut self) -> Duration {
        let d = self.next_delay();
        tokio::time::sleep(d).await;
        d
    }

    /// Starts over from the initial delay (after a healthy stream).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<f64> = (0..12).map(|_| b.next_delay().as_secs_f64()).collect();
        assert!((0.8..=1.2).contains(&delays[0]), "{delays:?}");
        assert!((1.44..=2.16).contains(&delays[1]), "{delays:?}");
        for d in &delays {
            assert!(*d <= 30.0, "{delays:?}");
        }
        assert!(delays[11] >= 24.0, "capped near max: {delays:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_in_virtual_time() {
        let start = tokio::time::Instant::now();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut total = Duration::ZERO;
        for _ in 0..10 {
            total += b.wait().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= total && elapsed < total + Duration::from_secs(1));
        assert!(total > Duration::from_secs(60), "{total:?}");
    }

    /// `relay.backoff_initial` of 1e19 s once reached `Duration::mul_f64`, which panics when
    /// the product leaves Duration's range.
    #[test]
    fn backoff_at_the_end_of_duration_is_no_panic() {
        for initial in [
            Duration::MAX,
            Duration::from_secs(10_000_000_000_000_000_000),
        ] {
            let mut b = Backoff::new(initial, Duration::MAX);
            for _ in 0..5 {
                assert!(b.next_delay() <= Duration::MAX);
            }
        }
    }
}
