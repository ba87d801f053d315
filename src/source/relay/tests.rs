//! Reconnect reasons by error type, the resume time, the request.

use super::reason::{connect_reason, status_reason};
use super::*;
use std::io;
use tonic::{Code, Status};

fn status_from(e: impl std::error::Error + Send + Sync + 'static) -> Status {
    Status::from_error(Box::new(e))
}

fn rustls_in_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[test]
fn status_codes_alone_decide_when_there_is_no_cause() {
    let cases = [
        (Status::unavailable("x"), Reason::Unavailable),
        (Status::cancelled("x"), Reason::Unavailable),
        (Status::aborted("x"), Reason::Unavailable),
        (Status::internal("x"), Reason::Decode),
        (Status::out_of_range("x"), Reason::Decode),
        (Status::resource_exhausted("x"), Reason::Decode),
        (Status::deadline_exceeded("x"), Reason::ConnectError),
        (Status::permission_denied("x"), Reason::Other),
        (Status::unknown("x"), Reason::Other),
        (Status::invalid_argument("x"), Reason::Other),
    ];
    for (s, want) in cases {
        assert_eq!(status_reason(&s), want, "{s:?}");
    }
}

#[test]
fn a_message_that_mentions_tls_or_resets_does_not_decide() {
    // Rewordings of an error message cannot move a series: only types and codes count.
    let s = Status::unavailable("tls handshake certificate alert");
    assert_eq!(status_reason(&s), Reason::Unavailable);
    let s = Status::unknown("connection reset by peer; h2 protocol error");
    assert_eq!(status_reason(&s), Reason::Other);
    let s = Status::internal("error reading a body from connection");
    assert_eq!(status_reason(&s), Reason::Decode);
}

#[test]
fn io_errors_of_a_connection_kind_are_unavailable() {
    for kind in [
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::NotConnected,
    ] {
        let s = status_from(io::Error::from(kind));
        assert_eq!(s.code(), Code::Unknown, "tonic cannot map a bare io error");
        assert_eq!(status_reason(&s), Reason::Unavailable, "{kind:?}");
    }
    let s = status_from(io::Error::from(io::ErrorKind::PermissionDenied));
    assert_eq!(status_reason(&s), Reason::Other);
}

#[test]
fn a_tls_connection_cut_without_close_notify_is_a_reset_not_tls() {
    // rustls reports that as an UnexpectedEof io error carrying a plain message.
    let e = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer closed connection without sending TLS close_notify",
    );
    assert_eq!(status_reason(&status_from(e)), Reason::Unavailable);
}

#[test]
fn h2_errors_are_unavailable_whatever_code_tonic_gives_them() {
    for r in [
        h2::Reason::PROTOCOL_ERROR,
        h2::Reason::INTERNAL_ERROR,
        h2::Reason::CANCEL,
        h2::Reason::REFUSED_STREAM,
        h2::Reason::NO_ERROR,
        h2::Reason::ENHANCE_YOUR_CALM,
    ] {
        let s = status_from(h2::Error::from(r));
        // INTERNAL, RESOURCE_EXHAUSTED... by code alone these would read as `decode`.
        assert_eq!(status_reason(&s), Reason::Unavailable, "{r:?}: {s:?}");
    }
}

#[test]
fn rustls_errors_are_tls_at_connect_and_mid_stream() {
    let bad_ca = || {
        rustls_in_io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    };
    assert_eq!(connect_reason(&bad_ca()), Reason::Tls);
    // Behind a wrapper that only has it as its source.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Wrapper(#[source] io::Error);
    assert_eq!(connect_reason(&Wrapper(bad_ca())), Reason::Tls);
    // The relay refusing our client certificate: an alert, read on the stream.
    let alert = rustls_in_io(rustls::Error::AlertReceived(
        rustls::AlertDescription::CertificateRequired,
    ));
    let s = status_from(Wrapper(alert));
    assert_eq!(status_reason(&s), Reason::Tls);
    // TLS wins over the code (the channel reconnecting under an UNAVAILABLE call).
    let mut s = Status::unavailable("x");
    assert_eq!(status_reason(&s), Reason::Unavailable);
    s = status_from(Wrapper(rustls_in_io(
        rustls::Error::NoCertificatesPresented,
    )));
    assert_eq!(status_reason(&s), Reason::Tls);
}

#[test]
fn other_connect_failures_are_connect_errors() {
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    assert_eq!(connect_reason(&refused), Reason::ConnectError);
    let dns = io::Error::other("failed to lookup address information");
    assert_eq!(connect_reason(&dns), Reason::ConnectError);
}

#[test]
fn since_is_before_the_last_flow() {
    let t = pbjson_types::Timestamp {
        seconds: 100,
        nanos: 200,
    };
    let s = minus(t, Duration::from_millis(5500));
    assert_eq!((s.seconds, s.nanos), (94, 500_000_200));
}

#[test]
fn request_asks_for_drops_and_dns() {
    let cfg = RelayConfig {
        nodes: vec!["prod/*".into()],
        ..Default::default()
    };
    let r = request(&cfg, true, None);
    assert!(r.follow);
    assert_eq!(r.whitelist.len(), 2);
    assert_eq!(r.whitelist[1].protocol, vec!["dns".to_string()]);
    assert_eq!(r.whitelist[0].node_name, vec!["prod/*".to_string()]);
    assert_eq!(request(&cfg, false, None).whitelist.len(), 1);
}

#[test]
fn request_masks_the_flow_to_the_fields_read_unless_turned_off() {
    let on = request(&RelayConfig::default(), true, None);
    let paths = on.field_mask.expect("a mask by default").paths;
    for kept in ["time", "node_name", "uuid", "policy_log", "source", "l7"] {
        assert!(paths.iter().any(|p| p == kept), "{kept} in {paths:?}");
    }
    assert!(!paths.iter().any(|p| p == "Summary" || p == "aggregate"));
    let off = RelayConfig {
        field_mask: false,
        ..Default::default()
    };
    assert!(request(&off, true, None).field_mask.is_none());
}
