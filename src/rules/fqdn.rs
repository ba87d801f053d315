//! Cilium's `matchPattern` semantics (HUBBLE.md §6), exactly as a `toFQDNs` selector applies
//! them (Cilium's `matchpattern.ToAnchoredRegexp(matchpattern.Sanitize(p))` against
//! `strings.ToLower(dns.FQDN(name))`):
//!
//! - Patterns and names are lower-cased and get a trailing dot when they have none.
//! - `*` matches any run of `[-a-z0-9_]` within one label, never a dot; runs of `*` are one `*`.
//! - A leading `**.` (or `***.`, …) matches one or more whole non-empty labels of those
//!   characters.
//! - A pattern made of stars alone (`*`, `**`, `*.`, `***.`) matches the root name `.` and every
//!   name made of non-empty `[-a-z0-9_]` labels, and nothing else.
//! - Matching is anchored at both ends.
//!
//! Patterns are accepted as Cilium's CRD accepts `matchPattern` (`^([-a-zA-Z0-9_*]+[.]?)+$`, at
//! most 255 characters): no empty label, no leading dot. Two deliberate differences, both on the
//! side of "unexpected": an empty name is no name (Cilium would read it as the root `.`), and a
//! name longer than 255 characters never matches (DNS names cannot be). Names are lower-cased
//! byte-wise (ASCII); Cilium's Unicode lower-casing would also turn the Kelvin sign `K` into `k`.
//!
//! The table in `tests/fixtures/matchpattern/` holds Cilium's own answers for every pattern and
//! name of its test vectors and API examples; `tests/peers/matchpattern` recomputes it with
//! Cilium's Go code.

pub use crate::names::{MAX_LEN, normalize_into};

/// The characters one `*` may stand for, and that a label may hold, as a regex class.
const LABEL_CHARS: &str = "[-a-z0-9_]";

/// Whether `c` may appear in a DNS label matched by a wildcard.
fn is_label_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
}

/// A validated `matchPattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqdnPattern {
    /// Lower-case, with a trailing dot (`*`-only patterns are kept as written, lower-cased).
    normalized: String,
    /// The pattern is made of stars alone (with an optional trailing dot): Cilium's match-all.
    all: bool,
    /// The pattern starts with two or more stars and a dot: one or more whole labels.
    any_prefix: bool,
}

impl FqdnPattern {
    /// Validates a pattern. The error says what is wrong.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty fqdn pattern".into());
        }
        if pattern.len() > MAX_LEN {
            return Err(format!("fqdn pattern longer than {MAX_LEN} characters"));
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*')))
        {
            return Err(format!(
                "invalid character {c:?} in fqdn pattern {pattern:?}: use letters, digits, '-', '_', '.' and '*'"
            ));
        }
        let core = pattern.strip_suffix('.').unwrap_or(pattern);
        if core.is_empty() || core.split('.').any(str::is_empty) {
            return Err(format!("invalid fqdn pattern {pattern:?}: empty label"));
        }
        let lower = pattern.to_ascii_lowercase();
        let all = core.bytes().all(|c| c == b'*');
        let stars = lower.bytes().take_while(|c| *c == b'*').count();
        let any_prefix = !all && stars >= 2 && lower.as_bytes().get(stars) == Some(&b'.');
        let mut normalized = lower;
        if !all && !normalized.ends_with('.') {
            normalized.push('.');
        }
        Ok(Self {
            normalized,
            all,
            any_prefix,
        })
    }

    /// The normalized pattern (lower-case, trailing dot unless it is stars alone).
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The pattern as users write it: lower-case, without the trailing dot.
    pub fn display(&self) -> &str {
        self.normalized
            .strip_suffix('.')
            .unwrap_or(&self.normalized)
    }

    /// Whether this is the lone `*` (or `**`, `*.`): every well-formed name and the root.
    pub fn is_match_all(&self) -> bool {
        self.all
    }

    /// The labels after the `**.` prefix (or all of them), without the final dot.
    fn body(&self) -> &str {
        let p = self
            .normalized
            .strip_suffix('.')
            .unwrap_or(&self.normalized);
        if self.any_prefix {
            let stars = p.bytes().take_while(|c| *c == b'*').count();
            p.get(stars + 1..).unwrap_or("")
        } else {
            p
        }
    }

    /// Matches one name directly, in time linear in the name and pattern, without a regex:
    /// what `--explain` and the tests use. The hot path uses the compiled [`Self::to_regex`];
    /// a property test holds the two together.
    pub fn matches(&self, name: &str) -> bool {
        let mut buf = String::new();
        normalize_into(name, &mut buf) && self.matches_normalized(&buf)
    }

    /// [`Self::matches`] for a name already normalized by [`normalize_into`].
    pub fn matches_normalized(&self, name: &str) -> bool {
        // The name ends with its one added or kept dot; the labels are what lies before it.
        let Some(core) = name.strip_suffix('.') else {
            return false;
        };
        if self.all {
            return core.is_empty() || core.split('.').all(|l| is_label(l.as_bytes()));
        }
        let body: Vec<&str> = self.body().split('.').collect();
        let labels: Vec<&str> = core.split('.').collect();
        let tail_at = if self.any_prefix {
            // One or more whole labels, then exactly as many labels as the body has.
            match labels.len().checked_sub(body.len()) {
                Some(n) if n >= 1 => n,
                _ => return false,
            }
        } else if labels.len() == body.len() {
            0
        } else {
            return false;
        };
        let (head, tail) = labels.split_at(tail_at);
        head.iter().all(|l| is_label(l.as_bytes()))
            && body
                .iter()
                .zip(tail)
                .all(|(p, l)| label_matches(p.as_bytes(), l.as_bytes()))
    }

    /// The anchored regular expression for names normalized by [`normalize_into`]: Cilium's,
    /// written for the `regex` crate.
    pub fn to_regex(&self) -> String {
        if self.all {
            return format!(r"^(?:(?:{LABEL_CHARS}+\.)+|\.)$");
        }
        let mut re = String::with_capacity(self.normalized.len() * 2 + 32);
        re.push('^');
        if self.any_prefix {
            re.push_str(&format!(r"(?:{LABEL_CHARS}+\.)+"));
        }
        let mut last_star = false;
        for c in self.body().chars() {
            match c {
                '*' if last_star => {}
                '*' => {
                    re.push_str(LABEL_CHARS);
                    re.push('*');
                }
                '.' => re.push_str(r"\."),
                c => re.push(c),
            }
            last_star = c == '*';
        }
        re.push_str(r"\.$");
        re
    }
}

/// A whole label of `[-a-z0-9_]`, at least one character (what `**.` and the lone `*` take).
fn is_label(l: &[u8]) -> bool {
    !l.is_empty() && l.iter().all(|c| is_label_char(*c))
}

/// One label of a pattern against one label of a name. Linear: the pattern's literal pieces
/// between stars are found left to right, each at its first place (for `*` alone, the first
/// place is always a right one), so nothing is tried twice.
fn label_matches(p: &[u8], l: &[u8]) -> bool {
    if !p.contains(&b'*') {
        return p == l;
    }
    // Literal pieces are label characters and stars stand for label characters: a label
    // with any other character cannot match.
    if !l.iter().all(|c| is_label_char(*c)) {
        return false;
    }
    let mut pieces = p.split(|c| *c == b'*');
    let first = pieces.next().unwrap_or_default();
    let Some(rest) = l.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&[u8]> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return false;
    };
    let Some(mut window) = rest.len().checked_sub(last.len()).map(|n| &rest[..n]) else {
        return false;
    };
    if !rest.ends_with(last) {
        return false;
    }
    for piece in middle.iter().filter(|m| !m.is_empty()) {
        match memchr::memmem::find(window, piece) {
            Some(at) => window = &window[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
