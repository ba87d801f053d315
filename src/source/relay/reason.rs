//! Why a stream ended, found by the error's type (never by message text, so a dependency's
//! rewording cannot move a series of `hubble_noise_relay_reconnects_total`).

use tonic::{Code, Status};

/// Why a stream ended: the vocabulary of `hubble_noise_relay_reconnects_total`, owned by the
/// metrics; this file finds which one an error is.
pub use crate::metrics::ReconnectReason as Reason;

/// A failed attempt: why, and the message to log.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) reason: Reason,
    pub(super) message: String,
}

/// The full chain of an error as one line.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What an error's cause chain says, found by type (never by message text, so a
/// dependency's rewording cannot move a series of `hubble_noise_relay_reconnects_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cause {
    /// A `rustls::Error` is in the chain: certificate, name or handshake trouble, or an alert
    /// from the peer (a client certificate it refused).
    tls: bool,
    /// The connection or stream broke: an I/O error of a connection kind, an HTTP/2 error
    /// (reset, GOAWAY, protocol), a hyper connection error.
    transport: bool,
}

/// How deep a cause chain is followed (a cycle must not hang the follower).
const MAX_CHAIN: usize = 32;

/// I/O error kinds that mean the connection itself failed.
fn is_connection_kind(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::TimedOut
            | K::AddrNotAvailable
    )
}

/// Walks `e` and its causes. An `io::Error` that wraps another error is followed into that
/// error (its `source()` would skip it: rustls errors reach us wrapped that way).
fn cause(e: &(dyn std::error::Error + 'static)) -> Cause {
    let mut c = Cause::default();
    let mut cur = Some(e);
    for _ in 0..MAX_CHAIN {
        let Some(err) = cur else { break };
        let mut next = err.source();
        if err.is::<rustls::Error>() {
            c.tls = true;
        } else if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if is_connection_kind(io.kind()) {
                c.transport = true;
            }
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
            }
        } else if err.is::<h2::Error>() {
            c.transport = true;
        } else if let Some(h) = err.downcast_ref::<hyper::Error>() {
            // A user error is a misuse on our side, not the network's.
            if !h.is_user() {
                c.transport = true;
            }
        }
        cur = next;
    }
    c
}

/// Why a connection attempt failed.
pub(super) fn connect_reason(e: &(dyn std::error::Error + 'static)) -> Reason {
    if cause(e).tls {
        Reason::Tls
    } else {
        Reason::ConnectError
    }
}

/// Why a call or stream failed: the cause chain first (TLS, then a broken connection), then
/// the status code. tonic raises `INTERNAL` (undecodable message), `OUT_OF_RANGE` (message above
/// `relay.max_message_size`) and `RESOURCE_EXHAUSTED` (decompression limit) itself, without a
/// transport cause: those are `decode`.
pub(super) fn status_reason(s: &Status) -> Reason {
    let c = cause(s);
    if c.tls {
        return Reason::Tls;
    }
    if c.transport {
        return Reason::Unavailable;
    }
    match s.code() {
        Code::Unavailable | Code::Cancelled | Code::Aborted => Reason::Unavailable,
        Code::Internal | Code::OutOfRange | Code::ResourceExhausted => Reason::Decode,
        Code::DeadlineExceeded => Reason::ConnectError,
        _ => Reason::Other,
    }
}

pub(super) fn classify_status(s: &Status) -> Failure {
    let mut message = format!("{}: {}", s.code(), s.message());
    if let Some(src) = std::error::Error::source(s) {
        message.push_str(": ");
        message.push_str(&chain(src));
    }
    Failure {
        reason: status_reason(s),
        message,
    }
}
