//! The bare-decode floor: a plain tonic client that asks the load generator for the same
//! stream as the daemon (the daemon's own request, field mask included), receives and decodes
//! every message and does nothing else. What it spends per message is the least any client can
//! spend on that stream; the daemon's CPU per message is compared with it.
//!
//! Run as a process of its own (`hubble-noise-bench --floor-client ADDR`), on a runtime built
//! the way the daemon builds its own, so that both pay the same for tonic, HTTP/2 and prost.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use hubble_noise::api::observer::observer_client::ObserverClient;
use hubble_noise::config::RelayConfig;
use hubble_noise::source::relay::request;

/// What the floor measured, over the stream from its first message to its last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floor {
    /// Messages received and decoded.
    pub messages: u64,
    /// CPU time of the whole process (user + system).
    pub cpu: Duration,
    /// Wall time.
    pub wall: Duration,
}

impl Floor {
    /// The line the floor process prints, and [`Floor::parse`] reads back.
    pub fn line(&self) -> String {
        format!(
            "floor messages={} cpu_us={} wall_us={}",
            self.messages,
            self.cpu.as_micros(),
            self.wall.as_micros()
        )
    }

    /// Reads a [`Floor::line`] back.
    pub fn parse(line: &str) -> Option<Floor> {
        let mut it = line.strip_prefix("floor ")?.split(' ');
        let mut field = |key: &str| -> Option<u64> { it.next()?.strip_prefix(key)?.parse().ok() };
        Some(Floor {
            messages: field("messages=")?,
            cpu: Duration::from_micros(field("cpu_us=")?),
            wall: Duration::from_micros(field("wall_us=")?),
        })
    }
}

/// Follows `addr` (`http://host:port`) with the daemon's request until `messages` responses
/// have been decoded.
pub async fn run(addr: String, messages: u64) -> anyhow::Result<Floor> {
    let cfg = RelayConfig {
        address: addr.clone(),
        ..RelayConfig::default()
    };
    let mut client = ObserverClient::connect(addr.clone())
        .await
        .with_context(|| format!("connecting to {addr}"))?
        .max_decoding_message_size(cfg.max_message_size);
    let mut stream = client
        .get_flows(request(&cfg, true, None))
        .await
        .context("GetFlows")?
        .into_inner();
    let me = std::process::id();
    let mut start = None;
    let mut n = 0u64;
    while n < messages {
        let Some(msg) = stream.message().await.context("receiving")? else {
            anyhow::bail!("the stream ended after {n} messages");
        };
        if start.is_none() {
            // From the first message: connecting is not part of the per-message cost.
            start = Some((Instant::now(), crate::cpu::cpu_time(me)?));
        }
        std::hint::black_box(&msg);
        n += 1;
    }
    let (t0, c0) = start.unwrap_or((Instant::now(), crate::cpu::cpu_time(me)?));
    Ok(Floor {
        messages: n,
        cpu: crate::cpu::cpu_time(me)?.saturating_sub(c0),
        wall: t0.elapsed(),
    })
}

/// How the load generator starts the floor process once the daemon's stream is done: this
/// same binary, in `--floor-client` mode.
#[derive(Clone, Debug)]
pub struct Spawn {
    /// The `hubble-noise-bench` binary.
    pub exe: std::path::PathBuf,
}

impl Spawn {
    /// Runs the floor against the generator on `listen` for `messages` messages and reads what
    /// it measured.
    pub async fn run(&self, listen: std::net::SocketAddr, messages: u64) -> anyhow::Result<Floor> {
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("--floor-client")
            .arg(format!("http://{listen}"))
            .arg("--flows")
            .arg(messages.to_string());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .context("waiting for the floor process")?
            .context("starting the floor process")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().find_map(Floor::parse).with_context(|| {
            format!(
                "the floor process reported nothing ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_reads_back() {
        let f = Floor {
            messages: 10,
            cpu: Duration::from_micros(1234),
            wall: Duration::from_micros(99),
        };
        assert_eq!(Floor::parse(&f.line()), Some(f));
        assert_eq!(Floor::parse("floor messages=x"), None);
    }
}
