//! A strict reader of what `/metrics` serves, in both formats, for the harnesses' invariants:
//! every line is a well-formed comment or sample, label values are escaped, no series appears
//! twice, exemplars only in OpenMetrics and within its 128-character limit, OpenMetrics ends
//! with `# EOF`. It is a check of our output, not a general parser: it knows the subset that
//! `prometheus-client` writes (labels in a fixed order per series, no timestamps on samples).
//!
//! It runs on every fuzz input, instrumented like the code under test, so it works on bytes and
//! borrows from the text; label values are unescaped only when asked for ([`Sample::labels`]).

use std::collections::HashSet;

/// The two exposition formats `/metrics` serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (with exemplars).
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Text,
}

/// One sample line, borrowed from the exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'t> {
    /// Metric name (with its suffix, e.g. `_total`).
    pub name: &'t str,
    /// The label set as written, without the braces (`a="x",b="y"`); empty without labels.
    pub labels: &'t str,
    /// The value as written.
    pub value: &'t str,
    /// Whether it carries an exemplar.
    pub exemplar: bool,
}

impl Sample<'_> {
    /// The value as an integer counter, when it is one.
    pub fn count(&self) -> Option<u64> {
        self.value.parse().ok()
    }

    /// The label pairs, unescaped, in written order.
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = self.labels;
        while let Some(eq) = rest.find("=\"") {
            let name = &rest[..eq];
            let (value, end) = unescape(&rest[eq + 2..]);
            out.push((name.to_owned(), value));
            rest = rest[eq + 2 + end..].trim_start_matches(',');
        }
        out
    }
}

/// `value"...`: the unescaped value and the length up to and including the closing quote.
fn unescape(s: &str) -> (String, usize) {
    let mut v = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (v, i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => v.push('\n'),
                Some((_, c)) => v.push(c),
                None => break,
            },
            c => v.push(c),
        }
    }
    (v, s.len())
}

/// The longest exemplar label set OpenMetrics allows, in characters (names and values).
pub const MAX_EXEMPLAR_CHARS: usize = 128;

const OPENMETRICS_TYPES: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "stateset",
    "info",
    "summary",
    "unknown",
];
const TEXT_TYPES: [&str; 5] = ["counter", "gauge", "histogram", "summary", "untyped"];

/// Reads a whole exposition; an error says which line breaks which rule.
pub fn parse(text: &str, format: Format) -> Result<Vec<Sample<'_>>, String> {
    let Some(body) = text.strip_suffix('\n') else {
        return Err("does not end with a newline".into());
    };
    let mut samples = Vec::new();
    let mut seen: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
    let mut family: Option<&str> = None;
    let mut eof = false;
    for (i, line) in body.split('\n').enumerate() {
        let fail = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        if eof {
            return Err(fail("a line after # EOF"));
        }
        if line.is_empty() {
            return Err(fail("empty line"));
        }
        if let Some(comment) = line.strip_prefix("# ") {
            if comment == "EOF" {
                if format == Format::Text {
                    return Err(fail("# EOF in the classic format"));
                }
                eof = true;
                continue;
            }
            let (kind, rest) = comment
                .split_once(' ')
                .ok_or_else(|| fail("comment without keyword"))?;
            let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_metric_name(name) {
                return Err(fail("bad metric name in comment"));
            }
            match kind {
                "HELP" if !has_bad_escape(arg) => {}
                "TYPE" => {
                    let known: &[&str] = match format {
                        Format::OpenMetrics => &OPENMETRICS_TYPES,
                        Format::Text => &TEXT_TYPES,
                    };
                    if !known.contains(&arg) {
                        return Err(fail("unknown TYPE"));
                    }
                    family = Some(name);
                }
                "UNIT" if format == Format::OpenMetrics => {}
                _ => return Err(fail("unknown comment keyword or bad escape")),
            }
            continue;
        }
        let (sample, series) = sample(line, format).map_err(|e| fail(&e))?;
        if family.is_some_and(|f| !sample.name.starts_with(f)) {
            return Err(fail("sample outside its family"));
        }
        if !seen.insert(series) {
            return Err(fail("duplicate series"));
        }
        samples.push(sample);
    }
    if format == Format::OpenMetrics && !eof {
        return Err("OpenMetrics without # EOF at the end".into());
    }
    Ok(samples)
}

/// The sum of the integer values of every sample named `name`, and whether any of them
/// reached `u64::MAX` (a saturated counter). A non-integer value is an error.
pub fn sum(samples: &[Sample<'_>], name: &str) -> Result<(u128, bool), String> {
    let mut total = 0u128;
    let mut saturated = false;
    for s in samples.iter().filter(|s| s.name == name) {
        let v = s
            .count()
            .ok_or_else(|| format!("{name}: {:?} is not a count", s.value))?;
        saturated |= v == u64::MAX;
        total += u128::from(v);
    }
    Ok((total, saturated))
}

fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first()
        .is_some_and(|f| f.is_ascii_alphabetic() || matches!(f, b'_' | b':'))
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':'))
}

fn is_label_name(s: &[u8]) -> bool {
    s.first()
        .is_some_and(|f| f.is_ascii_alphabetic() || *f == b'_')
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn has_bad_escape(s: &str) -> bool {
    let mut b = s.bytes();
    while let Some(c) = b.next() {
        if c == b'\\' && !matches!(b.next(), Some(b'\\' | b'n')) {
            return true;
        }
    }
    false
}

fn is_value(s: &str) -> bool {
    matches!(s, "+Inf" | "-Inf" | "NaN")
        || (!s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            && s.parse::<f64>().is_ok())
}

/// `name{l="v",...} value [# {l="v"} value [timestamp]]` → the sample and its series (the
/// text before the value).
fn sample(line: &str, format: Format) -> Result<(Sample<'_>, &str), String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if rest.starts_with('{') {
        let (set, _, after) = label_set(rest)?;
        labels = set;
        rest = after;
    }
    let series = &line[..line.len() - rest.len()];
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let (value, exemplar) = match rest.split_once(" # ") {
        Some((v, e)) => (v, Some(e)),
        None => (rest, None),
    };
    if !is_value(value) {
        return Err(format!("bad value {value:?}"));
    }
    if let Some(e) = exemplar {
        if format == Format::Text {
            return Err("an exemplar in the classic format".into());
        }
        let (_, chars, after) = label_set(e)?;
        if chars > MAX_EXEMPLAR_CHARS {
            return Err(format!("exemplar labels of {chars} characters"));
        }
        let after = after.strip_prefix(' ').ok_or("no exemplar value")?;
        let mut p = after.split(' ');
        if !p.next().is_some_and(is_value) || !p.next().is_none_or(is_value) {
            return Err("bad exemplar value or timestamp".into());
        }
        if p.next().is_some() {
            return Err("trailing text after the exemplar".into());
        }
    }
    let sample = Sample {
        name,
        labels,
        value,
        exemplar: exemplar.is_some(),
    };
    Ok((sample, series))
}

/// `{a="x",b="y"}` at the start of `s` → the text inside the braces, the characters of its
/// names and values, and what follows. Refuses a name twice and any escape but `\\`, `\"`,
/// `\n`.
fn label_set(s: &str) -> Result<(&str, usize, &str), String> {
    let b = s.as_bytes();
    if b.first() != Some(&b'{') {
        return Err("no label set".into());
    }
    let mut i = 1;
    let mut chars = 0;
    let mut names: Vec<&[u8]> = Vec::new();
    if b.get(1) == Some(&b'}') {
        return Ok(("", 0, &s[2..]));
    }
    loop {
        let eq = b[i..]
            .iter()
            .position(|c| *c == b'=')
            .ok_or("label without =")?;
        let name = &b[i..i + eq];
        if !is_label_name(name) {
            return Err(format!(
                "bad label name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        if names.contains(&name) {
            return Err(format!("label {:?} twice", String::from_utf8_lossy(name)));
        }
        names.push(name);
        chars += name.len();
        i += eq + 1;
        if b.get(i) != Some(&b'"') {
            return Err("label value without quotes".into());
        }
        i += 1;
        loop {
            match b.get(i) {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    if !matches!(b.get(i + 1), Some(b'\\' | b'"' | b'n')) {
                        return Err("bad escape in a label value".into());
                    }
                    chars += 1;
                    i += 2;
                }
                Some(c) => {
                    // Count characters: every byte but UTF-8 continuation bytes.
                    chars += usize::from(*c & 0xc0 != 0x80);
                    i += 1;
                }
            }
        }
        i += 1;
        match b.get(i) {
            Some(b'}') => return Ok((&s[1..i], chars, &s[i + 1..])),
            Some(b',') => i += 1,
            _ => return Err("no comma between labels".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats_and_refuses_what_breaks_them() {
        let om = "# HELP a_total A.\n# TYPE a counter\n\
                  a_total{x=\"q\\\"\\\\\\n\",y=\"é\"} 3 # {uuid=\"u\"} 1 1.5\n# EOF\n";
        let s = parse(om, Format::OpenMetrics).expect("valid");
        assert_eq!(
            s[0].labels(),
            vec![
                ("x".to_owned(), "q\"\\\n".to_owned()),
                ("y".to_owned(), "é".to_owned())
            ]
        );
        assert!(s[0].exemplar);
        assert_eq!(sum(&s, "a_total"), Ok((3, false)));
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
        assert!(parse(text, Format::Text).is_ok());
        for (bad, f) in [
            ("a_total 1\n", Format::OpenMetrics),
            ("a_total 1\n# EOF\nb 1\n", Format::OpenMetrics),
            ("a_total 1 # {u=\"1\"} 1\n", Format::Text),
            ("a{x=\"\\t\"} 1\n", Format::Text),
            ("a{x=\"1\"} 1\na{x=\"1\"} 2\n", Format::Text),
            ("a{x=\"1\",x=\"2\"} 1\n", Format::Text),
            ("a{x=\"1\"y=\"2\"} 1\n", Format::Text),
            ("a{x=\"1} 1\n", Format::Text),
            ("a 1", Format::Text),
            ("a one\n", Format::Text),
            ("\n", Format::Text),
            ("# TYPE a frobnicator\n", Format::Text),
            ("# TYPE a counter\nb 1\n", Format::Text),
        ] {
            assert!(parse(bad, f).is_err(), "{bad:?} accepted");
        }
        let exemplar = |n: usize| format!("a_total 1 # {{u=\"{}\"}} 1\n# EOF\n", "é".repeat(n));
        assert!(parse(&exemplar(MAX_EXEMPLAR_CHARS - 1), Format::OpenMetrics).is_ok());
        assert!(parse(&exemplar(MAX_EXEMPLAR_CHARS), Format::OpenMetrics).is_err());
    }
}
