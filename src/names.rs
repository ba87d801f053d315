//! What is known about the names of one side of a flow, and which of them an `fqdn` key must
//! cover (PRODUCT.md §5, "A name is evidence only when it is unambiguous").
//!
//! A side's names come from three places: the names Hubble lists on the flow
//! (`destination_names`), on an L7 DNS flow the query (what the pod asked to reach), and the
//! names the pod on the other side *asked for* whose trusted answers contained this IP
//! ([`Learned`], kept by the name cache in [`crate::dns`]). A CNAME target is an alias of the
//! name that was asked, never a name of its own.
//!
//! An `fqdn` key covers a side when there is at least one name and every *required* name is
//! covered: every live asked name, the query, and every name listed on the flow except those
//! known to be aliases of a live asked name. When in doubt, unexpected.

use std::sync::Arc;

/// The longest name, in characters, without its trailing dot (DNS limit); a longer one is no
/// name a pattern can match.
pub const MAX_LEN: usize = 255;

/// Writes the normalized form of a name into `buf`: ASCII lower-case, with a trailing dot when
/// it has none (Cilium's `strings.ToLower(dns.FQDN(name))`). Returns false for a name that is
/// no name (empty) or can never match (longer than [`MAX_LEN`]).
pub fn normalize_into(name: &str, buf: &mut String) -> bool {
    buf.clear();
    let core = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || core.len() > MAX_LEN {
        return false;
    }
    buf.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    if !buf.ends_with('.') {
        buf.push('.');
    }
    true
}

/// The normalized form of a name ([`normalize_into`]), or `None` for an empty or too long one.
pub fn normalize(name: &str) -> Option<String> {
    let mut buf = String::new();
    normalize_into(name, &mut buf).then_some(buf)
}

/// Two names are the same name: any case, with or without the trailing dot.
pub fn same_name(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    a.eq_ignore_ascii_case(b)
}

/// A name as it is shown: lower-case, without its trailing dot (the root stays `.`).
pub fn display_name(name: &str) -> String {
    let core = name.strip_suffix('.').unwrap_or(name);
    if core.is_empty() && !name.is_empty() {
        return ".".into();
    }
    core.to_ascii_lowercase()
}

/// One name a pod asked for, with what the trusted answer said about it.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The asked name, normalized (lower-case, trailing dot).
    pub name: Arc<str>,
    /// The CNAME chain of the answer, normalized: aliases of `name`, not names of their own.
    pub aliases: Box<[Arc<str>]>,
    /// When it was (last) answered, Unix seconds.
    pub asked_at: f64,
    /// Until when the answer holds (answer time + TTL, floored at `dns.min_ttl`).
    pub expires: f64,
    /// Insertion sequence, for eviction.
    pub(crate) seq: u64,
}

impl Asked {
    /// Whether the answer still holds at `time`.
    pub fn live_at(&self, time: f64) -> bool {
        time <= self.expires
    }

    /// Whether `name` is one of this answer's CNAME targets (any case, trailing dot or not).
    pub fn has_alias(&self, name: &str) -> bool {
        self.aliases.iter().any(|a| same_name(a, name))
    }
}

/// The asked names of one (pod, IP): almost always one, kept inline so that an entry costs no
/// allocation of its own.
#[derive(Debug, Clone)]
pub struct Learned {
    pub(crate) first: Asked,
    pub(crate) more: Vec<Asked>,
}

impl Learned {
    /// A record holding one asked name.
    pub(crate) fn new(first: Asked) -> Self {
        Self {
            first,
            more: Vec::new(),
        }
    }

    /// Every asked name held, live or not.
    pub fn iter(&self) -> impl Iterator<Item = &Asked> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// The asked names whose answers hold at `time`.
    pub fn live(&self, time: f64) -> impl Iterator<Item = &Asked> {
        self.iter().filter(move |a| a.live_at(time))
    }

    pub(crate) fn find_mut(&mut self, name: &str) -> Option<&mut Asked> {
        std::iter::once(&mut self.first)
            .chain(&mut self.more)
            .find(|a| &*a.name == name)
    }

    /// How many asked names are held.
    pub fn len(&self) -> usize {
        1 + self.more.len()
    }

    /// Never empty: a record exists only with at least one name.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Removes the entry with this sequence number: `Some(true)` when names remain,
    /// `Some(false)` when it was the last one (the caller then drops the record), `None` when
    /// no entry has it.
    pub(crate) fn remove_seq(&mut self, seq: u64) -> Option<bool> {
        if self.first.seq == seq {
            return match self.more.pop() {
                Some(e) => {
                    self.first = e;
                    Some(true)
                }
                None => Some(false),
            };
        }
        let pos = self.more.iter().position(|e| e.seq == seq)?;
        self.more.swap_remove(pos);
        Some(true)
    }
}

/// An answer naming an IP that was not learned, kept so that `--explain` can say why.
#[derive(Debug, Clone)]
pub struct Ignored {
    /// The asked name, normalized.
    pub name: Arc<str>,
    /// Who answered (`namespace/pod`, or the IP), as shown to users.
    pub server: Box<str>,
    /// When, Unix seconds.
    pub at: f64,
}

/// The names of one side, as the matchers and `--explain` see them.
#[derive(Debug, Default, Clone, Copy)]
pub struct SideNames<'a> {
    /// The names Hubble lists for this side on the flow (`source_names` / `destination_names`).
    pub flow: &'a [String],
    /// On the destination of an L7 DNS flow: the query.
    pub query: Option<&'a str>,
    /// What the pod on the other side asked for that resolved to this IP.
    pub learned: Option<&'a Learned>,
    /// An answer naming this IP from a server that is not trusted.
    pub ignored: Option<&'a Ignored>,
    /// The flow's time (learned names are judged against it).
    pub time: Option<f64>,
}

impl<'a> SideNames<'a> {
    /// The asked names whose answers hold at the flow's time (none when it has no time).
    pub fn asked(&self) -> impl Iterator<Item = &'a Asked> + 'a {
        let time = self.time;
        self.learned
            .into_iter()
            .flat_map(Learned::iter)
            .filter(move |a| time.is_some_and(|t| a.live_at(t)))
    }

    /// Whether a name on the flow is a CNAME target of a live asked name.
    pub fn is_alias(&self, name: &str) -> bool {
        self.asked().any(|a| a.has_alias(name))
    }

    /// The names an `fqdn` key must all cover: live asked names, the query, and the flow's
    /// names that are not aliases of a live asked name. A name may come twice (harmless).
    pub fn required(&self) -> impl Iterator<Item = &'a str> + 'a {
        let this = *self;
        self.asked().map(|a| &*a.name).chain(self.query).chain(
            self.flow
                .iter()
                .map(String::as_str)
                .filter(move |n| !n.is_empty() && !this.is_alias(n)),
        )
    }

    /// Every name known for the side, aliases included: what a key matching on any one name
    /// would look at (for `hubble_noise_names_ambiguous_total`).
    pub fn any(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.asked()
            .flat_map(|a| std::iter::once(&*a.name).chain(a.aliases.iter().map(|x| &**x)))
            .chain(self.query)
            .chain(self.flow.iter().map(String::as_str))
            .filter(|n| !n.is_empty())
    }

    /// Whether the side has any name at all.
    pub fn is_empty(&self) -> bool {
        self.required().next().is_none()
    }

    /// The name shown for the side: the first name on the flow, else the query, else the first
    /// live asked name.
    pub fn first(&self) -> Option<&'a str> {
        self.flow
            .iter()
            .map(String::as_str)
            .find(|n| !n.is_empty())
            .or(self.query)
            .or_else(|| self.asked().map(|a| &*a.name).next())
    }

    /// Whether every required name is matched by `covers`, and there is at least one.
    pub fn all_covered(&self, mut covers: impl FnMut(&str) -> bool) -> bool {
        let mut any = false;
        for n in self.required() {
            any = true;
            if !covers(n) {
                return false;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(name: &str, aliases: &[&str], expires: f64) -> Asked {
        Asked {
            name: name.into(),
            aliases: aliases.iter().map(|a| Arc::from(*a)).collect(),
            asked_at: 0.0,
            expires,
            seq: 0,
        }
    }

    #[test]
    fn required_names_are_live_asked_names_the_query_and_flow_names_that_are_not_aliases() {
        let mut l = Learned::new(asked(
            "ingest.telemetry.example.com.",
            &["cdn.example.net."],
            100.0,
        ));
        l.more.push(asked("old.example.org.", &[], 10.0));
        let flow = vec![
            "CDN.example.net".to_string(),
            "other.example.org".to_string(),
            String::new(),
        ];
        let s = SideNames {
            flow: &flow,
            query: None,
            learned: Some(&l),
            ignored: None,
            time: Some(50.0),
        };
        let req: Vec<&str> = s.required().collect();
        assert_eq!(req, ["ingest.telemetry.example.com.", "other.example.org"]);
        let any: Vec<&str> = s.any().collect();
        assert_eq!(any.len(), 4, "{any:?}");
        assert!(s.all_covered(|_| true));
        assert!(!s.all_covered(|n| n.contains("telemetry")));
        let none = SideNames::default();
        assert!(!none.all_covered(|_| true), "no name covers nothing");
        let no_time = SideNames { time: None, ..s };
        assert_eq!(
            no_time.asked().count(),
            0,
            "no time: nothing learned is live"
        );
    }
}
