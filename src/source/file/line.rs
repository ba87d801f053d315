//! The line format: one `GetFlowsResponse` per line as `hubble observe -o json` prints them
//! and Hubble's exporter writes them (PRODUCT.md §2), proto or lowerCamelCase names, enums by
//! name or number: opening an input (`-`, `.gz`), reading a line without holding more than
//! [`MAX_LINE`], the cheap test for lines that cannot count, the decode, and the short error
//! about a line that cannot be read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::api::observer::GetFlowsResponse;

/// The longest line accepted; a longer one is skipped (and reported) without being held.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineErrorKind {
    /// Not valid JSON, or not a Hubble response.
    Json,
    /// Longer than [`MAX_LINE`].
    TooLong,
}

impl LineErrorKind {
    /// A bounded label value for `hubble_noise_decode_errors_total{kind}`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LineErrorKind::Json => "json",
            LineErrorKind::TooLong => "line_too_long",
        }
    }
}

/// A line that was skipped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct LineError {
    /// The input's name (`-` for stdin).
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// The kind.
    pub kind: LineErrorKind,
    /// What was wrong.
    pub message: String,
}

/// Opens an input: `-` is stdin, `*.gz` is decompressed.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path)?)
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(BufReader::with_capacity(256 * 1024, raw))
    })
}

/// Reads one line into `buf` (without the newline). Returns `Ok(None)` at the end, and
/// `Ok(Some(false))` when the line was longer than `max` (it was consumed, not kept).
pub fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if any { Some(!too_long) } else { None });
        }
        any = true;
        let (part, done) = match memchr(chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(!too_long));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// The longest error message about one line, in bytes: the JSON reader quotes offending
/// strings, which a hostile line can make as long as itself.
pub const MAX_MESSAGE: usize = 200;

/// One short line: control characters (a newline would forge a log line) become spaces and the
/// text is cut at [`MAX_MESSAGE`] bytes with `…`.
pub fn short_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(MAX_MESSAGE + 3));
    for c in m.chars() {
        if out.len() + c.len_utf8() > MAX_MESSAGE {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Decodes one line. Blank lines give `Ok(None)`. The error is one short line
/// ([`short_message`]).
pub fn decode_line(line: &[u8]) -> Result<Option<GetFlowsResponse>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<GetFlowsResponse>(line)
        .map(Some)
        .map_err(|e| short_message(&e.to_string()))
}

/// Whether a line must be decoded in full: it may hold a DROPPED or AUDIT flow (a `verdict`
/// key whose value is one of those names, or a number), an L7 DNS record (names are learned
/// from it), or a `lost_events` / `node_status` message. A line without any of these can only
/// be a flow that is not counted, so it is merely checked to be JSON, which is several times
/// cheaper. The test leans to decoding: anything it does not recognise is decoded, and so is
/// any line with a `\u` escape (a key could be spelt `"verd\u0069ct"`).
///
/// An unknown verdict *name* is skipped: it is never counted (PRODUCT.md §3). A verdict written
/// as a string of digits (`"2"`) reads as unknown too (protobuf's JSON takes numbers only as
/// numbers), so skipping it agrees with the full decoder.
pub fn needs_decode(line: &[u8]) -> bool {
    static FINDERS: LazyLock<(Vec<Finder<'static>>, Finder<'static>)> = LazyLock::new(|| {
        let always = [
            &b"\"dns\""[..],
            b"\"lost_events\"",
            b"\"lostEvents\"",
            b"\"node_status\"",
            b"\"nodeStatus\"",
        ];
        (
            always.iter().map(|k| Finder::new(*k)).collect(),
            Finder::new(b"\"verdict\""),
        )
    });
    let (always, verdict) = &*FINDERS;
    if memchr::memmem::find(line, b"\\u").is_some() {
        return true;
    }
    // The verdict comes early in a flow line: look at it first.
    let key = verdict.needle();
    let mut rest = line;
    while let Some(i) = verdict.find(rest) {
        rest = &rest[i + key.len()..];
        let after = skip_ws(rest);
        let Some(after) = after.strip_prefix(b":") else {
            continue; // a string value that happens to read "verdict"
        };
        let value = skip_ws(after);
        match value.first() {
            Some(b'"') => {
                let name = &value[1..];
                if name.starts_with(b"DROPPED\"") || name.starts_with(b"AUDIT\"") {
                    return true;
                }
                // Any other name (FORWARDED, ...) is not counted; an escape is not understood.
                if name.iter().take_while(|&&c| c != b'"').any(|&c| c == b'\\') {
                    return true;
                }
            }
            _ => return true, // a number, or something unexpected
        }
    }
    always.iter().any(|f| f.find(line).is_some())
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// One line of input.
#[derive(Debug)]
pub enum Line {
    /// A decoded response.
    Response(Box<GetFlowsResponse>),
    /// Valid JSON that cannot hold a counted flow, a DNS record or an event: not decoded.
    NotCounted,
}

/// What becomes of line `n` of `path` (`None`: longer than [`MAX_LINE`]): nothing for a blank
/// line, else a response, a line that cannot count, or the error to report.
pub fn decode_one(path: &Path, n: u64, line: Option<&[u8]>) -> Option<Result<Line, LineError>> {
    let err = |kind, message| LineError {
        file: path.to_path_buf(),
        line: n,
        kind,
        message,
    };
    let Some(buf) = line else {
        return Some(Err(err(
            LineErrorKind::TooLong,
            format!("line longer than {MAX_LINE} bytes, skipped"),
        )));
    };
    if buf.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if !needs_decode(buf) {
        return Some(match serde_json::from_slice::<serde::de::IgnoredAny>(buf) {
            Ok(_) => Ok(Line::NotCounted),
            Err(e) => Err(err(LineErrorKind::Json, short_message(&e.to_string()))),
        });
    }
    match decode_line(buf) {
        Ok(Some(r)) => Some(Ok(Line::Response(Box::new(r)))),
        Ok(None) => None,
        Err(message) => Some(Err(err(LineErrorKind::Json, message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn lines(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut r = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(ok) = read_line(&mut r, &mut buf, max).expect("read") {
            out.push(ok.then(|| buf.clone()));
        }
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        let got = lines(b"abcdef\r\nxy\nlast", 100);
        assert_eq!(
            got,
            vec![
                Some(b"abcdef".to_vec()),
                Some(b"xy".to_vec()),
                Some(b"last".to_vec())
            ]
        );
    }

    #[test]
    fn a_too_long_line_is_skipped_and_the_next_is_read() {
        let got = lines(b"0123456789\nok\n", 5);
        assert_eq!(got, vec![None, Some(b"ok".to_vec())]);
    }

    #[test]
    fn accepts_camel_case_and_numbers() {
        let r = decode_line(
            br#"{"flow":{"verdict":4,"dropReasonDesc":"POLICY_DENY","policyLog":["a"]},"nodeName":"n"}"#,
        )
        .expect("decodes")
        .expect("not blank");
        assert_eq!(r.node_name, "n");
    }

    #[test]
    fn lines_that_may_count_are_decoded_and_others_only_checked() {
        for (line, decode) in [
            (&br#"{"flow":{"verdict":"DROPPED"}}"#[..], true),
            (br#"{"flow":{"verdict" : "AUDIT"}}"#, true),
            (br#"{"flow":{"verdict":2}}"#, true),
            (
                br#"{"flow":{"verdict":"FORWARDED","l7":{"dns":{"query":"a."}}}}"#,
                true,
            ),
            (br#"{"lost_events":{"num_events_lost":"3"}}"#, true),
            (br#"{"nodeStatus":{}}"#, true),
            (
                br#"{"flow":{"verdict":"FORWARDED","Summary":"\"verdict\":\"DROPPED\""}}"#,
                false,
            ),
            (br#"{"flow":{"verdict":"FORWARDED"}}"#, false),
            (
                br#"{"flow":{"verdict":"TRACED","Summary":"verdict"}}"#,
                false,
            ),
            (br#"{"flow":{"uuid":"x"}}"#, false),
        ] {
            assert_eq!(
                needs_decode(line),
                decode,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    proptest::proptest! {
        /// Whatever a flow holds, a line that can count or teach a name is never skipped.
        #[test]
        fn no_line_that_may_count_is_skipped(
            verdict in 0i32..8,
            dns in proptest::bool::ANY,
            summary in ".{0,40}",
            names in proptest::collection::vec("[a-z\"\\\\:,{} ]{0,12}", 0..3),
        ) {
            use crate::api::flow::{Dns, Flow, Layer7, layer7};
            use crate::api::observer::get_flows_response::ResponseTypes;
            let flow = Flow {
                verdict,
                summary,
                destination_names: names,
                l7: dns.then(|| Layer7 {
                    record: Some(layer7::Record::Dns(Dns { query: "a.example.".into(), ..Dns::default() })),
                    ..Layer7::default()
                }),
                ..Flow::default()
            };
            let resp = GetFlowsResponse { response_types: Some(ResponseTypes::Flow(flow)), ..GetFlowsResponse::default() };
            let line = serde_json::to_string(&resp).expect("serialises");
            if verdict == 2 || verdict == 4 || dns {
                proptest::prop_assert!(needs_decode(line.as_bytes()), "{}", line);
            }
        }
    }

    proptest::proptest! {
        /// The skip test and the full decoder agree on every way of writing a verdict: a line
        /// skipped as uncountable never decodes to a DROPPED or AUDIT flow.
        #[test]
        fn a_skipped_line_is_never_a_counted_one(
            value in proptest::prop_oneof![
                proptest::sample::select(vec![
                    "\"DROPPED\"", "\"AUDIT\"", "\"FORWARDED\"", "\"dropped\"", "\" DROPPED\"",
                    "\"2\"", "\"4\"", "2", "4", "2.0", "4e0", "-2", "4294967298", "null",
                    "\"D\\u0052OPPED\"", "\"NEW_VERDICT_99\"", "true", "\"\"",
                ]).prop_map(str::to_owned),
                "\"[A-Z_]{1,10}\"",
                (0i64..10).prop_map(|n| n.to_string()),
            ],
            key in proptest::sample::select(vec!["verdict", "verd\\u0069ct", "Verdict"]),
            space in proptest::sample::select(vec!["", " ", "\t"]),
        ) {
            let line = format!(r#"{{"flow":{{"{key}"{space}:{space}{value},"uuid":"u"}}}}"#);
            if let Ok(Some(resp)) = decode_line(line.as_bytes()) {
                if let Some(crate::api::observer::get_flows_response::ResponseTypes::Flow(f)) =
                    resp.response_types
                {
                    if crate::pipeline::is_counted_verdict(&f) {
                        proptest::prop_assert!(needs_decode(line.as_bytes()), "{}", line);
                    }
                }
            }
        }
    }

    #[test]
    fn errors_about_a_line_are_one_short_line() {
        let long = "x".repeat(10_000);
        let line = format!(r#"{{"flow":{{"verdict":"DROPPED","l4":"{long}\n"}}}}"#);
        let err = decode_line(line.as_bytes()).expect_err("l4 is no string");
        assert!(err.len() <= MAX_MESSAGE + 3, "{} bytes", err.len());
        assert!(!err.contains('\n'));
        // An unknown enum value is no error at all, and a wrong type for an enum a short one.
        let err = decode_line(br#"{"flow":{"verdict":"DROPPED","drop_reason_desc":{}}}"#)
            .expect_err("an object is no enum");
        assert!(err.len() < 120, "{err}");
    }

    #[test]
    fn unknown_enum_values_do_not_make_a_line_unreadable() {
        for line in [
            &br#"{"flow":{"verdict":"DROPPED","drop_reason_desc":"IGMP_HANDLED"}}"#[..],
            br#"{"flow":{"verdict":"DROPPED","drop_reason_desc":250,"traffic_direction":9}}"#,
            br#"{"flow":{"verdict":"DROPPED","drop_reason_desc":"DROP_NEW_IN_1_99","Type":"L9"}}"#,
            br#"{"flow":{"verdict":"AUDIT","traffic_direction":"SIDEWAYS","l4":{"IGMP":{"type":17}}}}"#,
            br#"{"flow":{"verdict":"NEW_VERDICT"}}"#,
            br#"{"lost_events":{"source":"NEW_SOURCE","num_events_lost":"18446744073709551615"}}"#,
            br#"{"node_status":{"state_change":77}}"#,
        ] {
            let r = decode_line(line);
            assert!(matches!(r, Ok(Some(_))), "{}: {r:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn times_at_the_ends_of_their_range_are_no_panic() {
        for t in [
            "9999-12-31T23:59:59.999999999Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "1970-01-01T00:00:00.9999999999Z",
            "-000001-01-01T00:00:00Z",
            "+275760-09-13T00:00:00Z",
            "2026-13-45T99:99:99Z",
            "2026-01-01T00:00:00+99:99",
            "2026-01-01T00:00:00-23:59",
            "",
        ] {
            let line = format!(r#"{{"flow":{{"verdict":"DROPPED","time":"{t}"}},"time":"{t}"}}"#);
            // Read or refused, never a panic.
            let _ = decode_line(line.as_bytes());
        }
    }

    #[test]
    fn torn_line_is_an_error() {
        assert!(decode_line(br#"{"flow":{"verdict":"DROPPED""#).is_err());
        assert!(decode_line(b"   ").expect("blank").is_none());
    }
}
