//! JSON lines as `hubble observe -o json` prints them and Hubble's exporter writes them
//! (PRODUCT.md §2): one `GetFlowsResponse` per line, proto or lowerCamelCase names, enums by
//! name or number. `-` is standard input; `.gz` files are decompressed.
//!
//! A line that cannot be read is reported with its number and skipped; the rest is still read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

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
    b.iter().position(|&c| c == b'\n')
}

/// Decodes one line. Blank lines give `Ok(None)`.
pub fn decode_line(line: &[u8]) -> Result<Option<GetFlowsResponse>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<GetFlowsResponse>(line)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Reads every response of one input, calling `on_item` with each decoded response or error,
/// until the input ends or `on_item` breaks. Returns the number of lines read.
pub fn for_each_response(
    path: &Path,
    reader: &mut dyn BufRead,
    mut on_item: impl FnMut(u64, Result<GetFlowsResponse, LineError>) -> ControlFlow<()>,
) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut n = 0u64;
    while let Some(fits) = read_line(reader, &mut buf, MAX_LINE)? {
        n += 1;
        let item = if !fits {
            Err(LineError {
                file: path.to_path_buf(),
                line: n,
                kind: LineErrorKind::TooLong,
                message: format!("line longer than {MAX_LINE} bytes, skipped"),
            })
        } else {
            match decode_line(&buf) {
                Ok(Some(r)) => Ok(r),
                Ok(None) => continue,
                Err(message) => Err(LineError {
                    file: path.to_path_buf(),
                    line: n,
                    kind: LineErrorKind::Json,
                    message,
                }),
            }
        };
        if on_item(n, item).is_break() {
            break;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn torn_line_is_an_error() {
        assert!(decode_line(br#"{"flow":{"verdict":"DROPPED""#).is_err());
        assert!(decode_line(b"   ").expect("blank").is_none());
    }
}
