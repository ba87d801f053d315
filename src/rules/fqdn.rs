//! Cilium `matchPattern` semantics (HUBBLE.md §6), compiled to regular expressions.
//!
//! Patterns and names are lower-cased and get a trailing dot. `*` matches any run of
//! `[-a-z0-9_]` within one label (never a dot); a lone `*` matches every name; a leading `**.`
//! matches one or more whole labels. Matching is anchored at both ends.

/// The longest pattern or name, in characters (DNS limit).
pub const MAX_LEN: usize = 255;

/// The characters one `*` may stand for, as a regex class.
const LABEL_RUN: &str = "[-a-z0-9_]*";

/// A validated `matchPattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqdnPattern {
    /// Lower-case, with a trailing dot.
    normalized: String,
}

impl FqdnPattern {
    /// Validates a pattern. The error says what is wrong, without the pattern itself.
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
        let mut normalized = pattern.to_ascii_lowercase();
        if !normalized.ends_with('.') {
            normalized.push('.');
        }
        let body = normalized.strip_prefix("**.").unwrap_or(&normalized);
        if body.contains("**") {
            return Err(format!(
                "invalid fqdn pattern {pattern:?}: '**' is only allowed as a leading '**.'"
            ));
        }
        if normalized != "*." && (body.starts_with('.') || body.contains("..")) {
            return Err(format!("invalid fqdn pattern {pattern:?}: empty label"));
        }
        if normalized.starts_with("**.") && body.is_empty() {
            return Err(format!(
                "invalid fqdn pattern {pattern:?}: '**.' needs a suffix"
            ));
        }
        Ok(Self { normalized })
    }

    /// The normalized pattern (lower-case, trailing dot).
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// Whether this is the lone `*`, which matches every name.
    pub fn is_match_all(&self) -> bool {
        self.normalized == "*."
    }

    /// Matches one name directly, label by label, without a regex: the slow reference that
    /// `--explain` and the tests use. The hot path uses the compiled [`Self::to_regex`].
    pub fn matches(&self, name: &str) -> bool {
        fn label(p: &[u8], s: &[u8]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((b'*', rest)) => (0..=s.len()).any(|i| label(rest, &s[i..])),
                Some((c, rest)) => s.first() == Some(c) && label(rest, &s[1..]),
            }
        }
        fn label_chars(s: &str) -> bool {
            s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        }
        let n = name.to_ascii_lowercase();
        let n = n.strip_suffix('.').unwrap_or(&n);
        if n.is_empty() || n.len() > MAX_LEN {
            return false;
        }
        let p = self.normalized.trim_end_matches('.');
        if p == "*" {
            return true;
        }
        let nl: Vec<&str> = n.split('.').collect();
        let (any_prefix, p) = match p.strip_prefix("**.") {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let pl: Vec<&str> = p.split('.').collect();
        let fixed = |pl: &[&str], nl: &[&str]| {
            pl.len() == nl.len()
                && pl
                    .iter()
                    .zip(nl)
                    .all(|(p, s)| label_chars(s) && label(p.as_bytes(), s.as_bytes()))
        };
        if any_prefix {
            if nl.len() <= pl.len() {
                return false;
            }
            let (head, tail) = nl.split_at(nl.len() - pl.len());
            head.iter().all(|l| !l.is_empty() && label_chars(l)) && fixed(&pl, tail)
        } else {
            fixed(&pl, &nl)
        }
    }

    /// The anchored regular expression for normalized names.
    pub fn to_regex(&self) -> String {
        if self.is_match_all() {
            return "^.+$".into();
        }
        let mut re = String::with_capacity(self.normalized.len() * 2 + 16);
        re.push('^');
        let body = match self.normalized.strip_prefix("**.") {
            Some(rest) => {
                re.push_str("(?:[-a-z0-9_]+\\.)+");
                rest
            }
            None => self.normalized.as_str(),
        };
        for c in body.chars() {
            match c {
                '*' => re.push_str(LABEL_RUN),
                '.' => re.push_str("\\."),
                c => re.push(c),
            }
        }
        re.push('$');
        re
    }
}

/// Writes the normalized form of a flow name (ASCII lower-case, trailing dot) into `buf`.
/// Returns false for names that can never match (empty or too long).
pub fn normalize_into(name: &str, buf: &mut String) -> bool {
    buf.clear();
    let core = name.strip_suffix('.').unwrap_or(name);
    if core.is_empty() || core.len() > MAX_LEN {
        return false;
    }
    buf.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    if !buf.ends_with('.') {
        buf.push('.');
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn oracle(pattern: &str, name: &str) -> bool {
        FqdnPattern::new(pattern).unwrap().matches(name)
    }

    fn m(pattern: &str, name: &str) -> bool {
        let p = FqdnPattern::new(pattern).unwrap();
        let re = Regex::new(&p.to_regex()).unwrap();
        let mut buf = String::new();
        normalize_into(name, &mut buf) && re.is_match(&buf)
    }

    #[test]
    fn hubble_md_examples() {
        assert!(m("*.example.com", "a.example.com"));
        assert!(!m("*.example.com", "example.com"));
        assert!(!m("*.example.com", "a.b.example.com"));
        assert!(m("*example.com", "example.com"));
        assert!(m("*example.com", "subexample.com"));
        assert!(m("*example.com", "evil-example.com"));
        assert!(m("*", "anything.at.all"));
        assert!(m("*", "x"));
        assert!(m("**.example.com", "a.example.com"));
        assert!(m("**.example.com", "a.b.example.com"));
        assert!(!m("**.example.com", "example.com"));
        assert!(m("api.vendor.io", "api.vendor.io"));
    }

    #[test]
    fn case_and_trailing_dot_are_ignored() {
        assert!(m("API.Vendor.IO", "api.vendor.io."));
        assert!(m("api.vendor.io.", "API.VENDOR.IO"));
        assert!(m("*.Example.com", "WWW.example.COM."));
    }

    #[test]
    fn look_alikes_do_not_match() {
        assert!(!m("*.example.com", "x.example.com.evil.io"));
        assert!(!m("*.example.com", "example.com.evil.io"));
        assert!(!m("example.com", "example.com.evil.io"));
        assert!(!m("example.com", "xexample.com"));
        assert!(!m("**.example.com", "a.example.com.evil.io"));
        assert!(!m("**.example.com", "evilexample.com"));
        assert!(!m("api.vendor.io", "api-vendor.io"));
        assert!(!m("*", ""));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "",
            "a b.com",
            "exa$mple.com",
            "a..b",
            ".a.com",
            "a.**.com",
            "***.a",
            "**.",
        ] {
            assert!(FqdnPattern::new(p).is_err(), "{p:?}");
        }
        assert!(FqdnPattern::new(&"a".repeat(256)).is_err());
        assert!(FqdnPattern::new(&"a".repeat(255)).is_ok());
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        let label =
            prop::collection::vec(prop_oneof!["[abx*]", "[-_1]"], 1..4).prop_map(|v| v.concat());
        (any::<bool>(), prop::collection::vec(label, 1..4)).prop_map(|(ss, ls)| {
            let body = ls.join(".");
            if ss { format!("**.{body}") } else { body }
        })
    }

    proptest! {
        #[test]
        fn regex_agrees_with_oracle(
            p in pattern_strategy(),
            n in "[abxAB1_-]{0,3}(\\.[abxAB1_-]{0,3}){0,4}\\.?",
        ) {
            prop_assume!(FqdnPattern::new(&p).is_ok());
            prop_assert_eq!(m(&p, &n), oracle(&p, &n), "pattern {} name {}", p, n);
        }
    }
}
