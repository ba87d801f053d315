//! `*` globs, anchored at both ends.

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    pattern: String,
}

/// The longest glob, in characters.
pub const MAX_LEN: usize = 255;

/// The longest value a glob is matched against (see [`Glob::matches`]).
pub const MAX_SUBJECT: usize = 4096;

/// A bad glob: too long, or holding control characters.
#[derive(Debug, thiserror::Error)]
#[error("invalid glob {0:?}")]
pub struct GlobError(pub String);

impl Glob {
    /// Compiles a glob. `*` matches any run of characters (also none); everything else is
    /// literal. Globs longer than [`MAX_LEN`] bytes or with control characters are refused.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.len() > MAX_LEN || pattern.chars().any(char::is_control) {
            return Err(GlobError(pattern.to_owned()));
        }
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether this glob matches every non-empty string (it is made of `*` only).
    pub fn is_match_all(&self) -> bool {
        !self.pattern.is_empty() && self.pattern.bytes().all(|b| b == b'*')
    }

    /// Whether a flow value matches. An empty value (unknown namespace, no pod) only matches
    /// the empty glob: when in doubt, unexpected.
    pub fn matches_value(&self, s: &str) -> bool {
        if s.is_empty() {
            self.pattern.is_empty()
        } else {
            self.matches(s)
        }
    }

    /// Whether the whole of `s` matches. A value longer than [`MAX_SUBJECT`] bytes (no real
    /// label, name or tag is) is matched only by a match-all glob: matching costs up to the
    /// pattern's length times the value's, and values come from flows.
    pub fn matches(&self, s: &str) -> bool {
        if s.len() > MAX_SUBJECT {
            return self.is_match_all();
        }
        glob_match(self.pattern.as_bytes(), s.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single backtrack point: linear for `*` only patterns.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn anchored_star_globs() {
        assert!(g("my-app-*").matches("my-app-7d9f"));
        assert!(!g("my-app-*").matches("xmy-app-1"));
        assert!(g("prod/*").matches("prod/node-1"));
        assert!(!g("prod/*").matches("staging/prod/node-1"));
        assert!(g("*-db-*").matches("orders-db-0"));
        assert!(g("exact").matches("exact"));
        assert!(!g("exact").matches("exact2"));
        assert!(g("*").matches(""));
        assert!(!g("*").matches_value(""));
        assert!(g("").matches_value(""));
        assert!(g("**").is_match_all());
        assert!(!g("a*").is_match_all());
        assert!(Glob::new(&"a".repeat(256)).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(Glob::new("a\nb").is_err());
        assert!(Glob::new("a\u{0}").is_err());
        assert!(Glob::new("a b/c:d").is_ok());
    }

    /// The obvious recursive matcher.
    fn oracle(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| oracle(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && oracle(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_oracle(p in "[ab*]{0,6}", s in "[ab]{0,8}") {
            prop_assert_eq!(g(&p).matches(&s), oracle(p.as_bytes(), s.as_bytes()));
        }
    }
}
