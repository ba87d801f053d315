//! A connection wrapper that gives up on a peer that stops reading (PRODUCT.md §9: a slow or
//! stuck scraper must not hold a connection, its buffers and a task forever).
//!
//! When a write has been blocked for longer than the limit (the peer's receive window stayed
//! full), the write fails with `TimedOut` and the connection is closed by its server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// An I/O object whose writes fail once they have been blocked for `limit`.
#[derive(Debug)]
pub struct StallGuard<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is blocked.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }
}

/// Whether an error is the one [`StallGuard`] raises.
pub fn is_stall(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut && io.to_string().contains(STALL_MESSAGE) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

const STALL_MESSAGE: &str = "peer stopped reading";

impl<S: AsyncWrite + Unpin> StallGuard<S> {
    /// Progress (`progressed`) disarms the timer; a blocked call arms it and fails once it
    /// fires. A call that returns at once without progress (a flush of a TCP stream) leaves it
    /// as it is, so polling the connection again does not restart the clock.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
        progressed: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                if v.as_ref().is_ok_and(&progressed) {
                    self.stalled = None;
                }
                Poll::Ready(v)
            }
            Poll::Pending => {
                let limit = self.limit;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{STALL_MESSAGE} for {limit:?}"),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, r, |n| *n > 0)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, r, |()| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, r, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fails_the_write_after_the_limit() {
        // A pipe with a small buffer that nobody reads.
        let (a, _b) = tokio::io::duplex(64);
        let mut g = StallGuard::new(a, Duration::from_secs(10));
        let err = g
            .write_all(&[0u8; 4096])
            .await
            .expect_err("the write cannot finish");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(is_stall(&err));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_is_never_cut() {
        use tokio::io::AsyncReadExt;
        let (a, mut b) = tokio::io::duplex(64);
        let mut g = StallGuard::new(a, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while got.len() < 4096 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = b.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
            }
            got.len()
        });
        // Slow (16 bytes a second) but never blocked for 10 s in a row.
        g.write_all(&[1u8; 4096])
            .await
            .expect("a slow reader is still served");
        assert_eq!(reader.await.expect("reader"), 4096);
    }
}

#[cfg(test)]
mod tcp_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_tcp_peer_that_stops_reading_fails_the_write() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.set_recv_buffer_size(4096).expect("rcvbuf");
        let _client = sock.connect(addr).await.expect("connect");
        let (server, _) = l.accept().await.expect("accept");
        let mut g = StallGuard::new(server, Duration::from_millis(300));
        let data = vec![0u8; 32 << 20];
        let err = g.write_all(&data).await.expect_err("cannot finish");
        assert!(is_stall(&err), "{err}");
    }
}
