//! `*` globs, anchored at both ends.

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    pattern: String,
}

/// A bad glob.
#[derive(Debug, thiserror::Error)]
#[error("invalid glob {0:?}")]
pub struct GlobError(pub String);

impl Glob {
    /// Compiles a glob.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
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
