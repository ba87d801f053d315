//! Whether the pipeline still takes work, for `/healthz` (PRODUCT.md §8, §9).
//!
//! The pipeline task bumps a [`Heartbeat`] after every batch and, while it waits for input, at
//! least every [`beat_interval`]: an idle pipeline keeps reporting in. One that is stuck
//! inside a batch, or gone, stops beating; once it has been silent for
//! `metrics.pipeline_stall_timeout`, `/healthz` fails and says how long (and, with a
//! recording, how many responses wait in its queue). Liveness is not tied to the relay: a
//! relay that is down leaves the pipeline idle, not stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::observer::GetFlowsResponse;

/// When the pipeline last showed it was alive. Time is tokio's, so tests can pause it.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that beats now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The pipeline is alive now.
    pub fn beat(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub fn silent_for(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

/// How often an idle pipeline beats: a quarter of the stall timeout (at least 10 ms), so an
/// idle pipeline is never mistaken for a stuck one.
pub fn beat_interval(stall_timeout: Duration) -> Duration {
    (stall_timeout / 4).max(Duration::from_millis(10))
}

/// What `/healthz` checks about the pipeline.
#[derive(Debug)]
pub struct PipelineHealth {
    /// Bumped by the pipeline task.
    pub heartbeat: Arc<Heartbeat>,
    /// The pipeline's input queue (a recording's), to say how much waits; `None` when the
    /// pipeline follows the relay itself. Weak: `/healthz` must not keep the channel open.
    pub queue: Option<mpsc::WeakSender<GetFlowsResponse>>,
    /// Silence longer than this is a stall.
    pub stall_timeout: Duration,
}

impl PipelineHealth {
    /// Responses waiting in the pipeline's queue.
    pub fn queued(&self) -> usize {
        self.queue
            .as_ref()
            .and_then(mpsc::WeakSender::upgrade)
            .map_or(0, |tx| tx.max_capacity().saturating_sub(tx.capacity()))
    }

    /// `Err` (why, one line) when the pipeline has stopped taking work.
    pub fn check(&self) -> Result<(), String> {
        let silent = self.heartbeat.silent_for();
        if silent <= self.stall_timeout {
            return Ok(());
        }
        let mut why = format!(
            "pipeline stalled: no work taken for {:.1}s (limit {:?})",
            silent.as_secs_f64(),
            self.stall_timeout,
        );
        if self.queue.is_some() {
            why.push_str(&format!(", {} responses queued", self.queued()));
        }
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Queue = (
        mpsc::Sender<GetFlowsResponse>,
        mpsc::Receiver<GetFlowsResponse>,
    );

    fn health(stall: Duration) -> (PipelineHealth, Queue) {
        let (tx, rx) = mpsc::channel(8);
        let h = PipelineHealth {
            heartbeat: Arc::new(Heartbeat::new()),
            queue: Some(tx.downgrade()),
            stall_timeout: stall,
        };
        (h, (tx, rx))
    }

    #[tokio::test(start_paused = true)]
    async fn a_pipeline_that_beats_is_healthy_and_one_that_stops_is_not() {
        let (h, (tx, _rx)) = health(Duration::from_secs(30));
        tx.send(GetFlowsResponse::default()).await.expect("send");
        tx.send(GetFlowsResponse::default()).await.expect("send");
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(20)).await;
            h.heartbeat.beat();
            assert_eq!(h.check(), Ok(()));
        }
        // Silent from now on, with two responses waiting.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(h.check(), Ok(()), "exactly at the limit is still healthy");
        tokio::time::advance(Duration::from_secs(1)).await;
        let why = h.check().expect_err("stalled");
        assert!(why.contains("pipeline stalled"), "{why}");
        assert!(why.contains("2 responses queued"), "{why}");
        // It takes work again: healthy again.
        h.heartbeat.beat();
        assert_eq!(h.check(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pipeline_that_beats_on_its_interval_stays_healthy() {
        let stall = Duration::from_secs(30);
        let (h, _queue) = health(stall);
        for _ in 0..100 {
            tokio::time::advance(beat_interval(stall)).await;
            assert_eq!(h.check(), Ok(()));
            h.heartbeat.beat();
        }
        assert_eq!(h.queued(), 0);
    }

    #[test]
    fn the_beat_interval_is_well_inside_the_timeout() {
        assert_eq!(
            beat_interval(Duration::from_secs(30)),
            Duration::from_millis(7500)
        );
        assert_eq!(
            beat_interval(Duration::from_millis(1)),
            Duration::from_millis(10)
        );
    }
}
