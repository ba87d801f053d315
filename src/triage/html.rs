//! HTML for the triage page: escaping and the frame every page shares. Every string that can
//! come from a flow goes through [`esc`]; the frame links the stylesheet and script served by
//! the daemon itself, so the Content-Security-Policy can forbid everything else.

use std::fmt::Write as _;

/// The page's Content-Security-Policy: only the daemon's own stylesheet and script, no inline
/// script or style, no frames, forms only to the daemon.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `s` as HTML text or a quoted attribute value.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one URL path segment or query value: everything but unreserved characters
/// percent-encoded.
pub(crate) fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: `title` (text), `refresh` seconds when asked, `body` (HTML).
pub(crate) fn frame(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh.map_or(String::new(), |s| {
        format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n")
    });
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{refresh}\
<title>{} · hubble-noise</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
<script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n\
<header><a class=\"brand\" href=\"/\">hubble-noise</a><span class=\"sub\">triage</span>\
<nav><a href=\"/\">Groups</a><a href=\"/?class=expected&amp;view=flows\">Expected</a>\
<a href=\"/api/v1/groups\">API</a><a href=\"/metrics\">Metrics</a></nav></header>\n\
<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// A time for a table: the RFC 3339 text shortened to seconds, or a dash.
pub(crate) fn when(t: Option<&str>) -> String {
    match t {
        Some(t) => {
            let short = t.get(..19).unwrap_or(t).replace('T', " ");
            format!("<time datetime=\"{}\">{}</time>", esc(t), esc(&short))
        }
        None => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn encodes_url_parts() {
        assert_eq!(url("a b/<c>&d"), "a%20b%2F%3Cc%3E%26d");
        assert_eq!(url("ns-1_x.y~"), "ns-1_x.y~");
    }
}
