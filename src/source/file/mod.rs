//! JSON lines as `hubble observe -o json` prints them and Hubble's exporter writes them
//! (PRODUCT.md §2): one `GetFlowsResponse` per line, proto or lowerCamelCase names, enums by
//! name or number. `-` is standard input; `.gz` files are decompressed.
//!
//! A line that cannot be read is reported with its number and skipped; the rest is still read.
//! `line` holds the format of one line, `pool` the parallel decode of a whole input
//! ([`for_each_response`]).

mod line;
mod pool;

pub use line::{
    Line, LineError, LineErrorKind, MAX_LINE, MAX_MESSAGE, decode_line, decode_one, needs_decode,
    open, read_line, short_message,
};
pub use pool::for_each_response;
