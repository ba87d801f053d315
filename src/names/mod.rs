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

pub mod store;

use std::sync::Arc;

pub use store::{Asked, Store};

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

impl Asked<'_> {
    /// Whether `name` is one of this answer's CNAME targets (any case, trailing dot or not).
    pub fn has_alias(&self, name: &str) -> bool {
        self.aliases.iter().any(|a| same_name(a, name))
    }
}

/// The asked names of one (pod, IP) in the name cache: a view, as cheap to copy as a
/// reference.
#[derive(Debug, Clone, Copy)]
pub struct Learned<'a> {
    store: &'a Store,
    key: store::Key,
    /// Where its names start in the store's index.
    from: crate::postable::Probe<'a>,
}

impl<'a> Learned<'a> {
    /// The names of `key` in `store`, or `None` when it holds none.
    pub fn of(store: &'a Store, key: store::Key) -> Option<Self> {
        let from = store.first(key, store.hash(key))?;
        Some(Self { store, key, from })
    }

    /// Every asked name held, live or not.
    pub fn iter(self) -> impl Iterator<Item = Asked<'a>> + 'a {
        self.store.names_from(self.key, self.from)
    }

    /// The asked names whose answers hold at `time`.
    pub fn live(self, time: f64) -> impl Iterator<Item = Asked<'a>> + 'a {
        self.iter().filter(move |a| a.live_at(time))
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
    pub learned: Option<Learned<'a>>,
    /// An answer naming this IP from a server that is not trusted.
    pub ignored: Option<&'a Ignored>,
    /// The flow's time (learned names are judged against it).
    pub time: Option<f64>,
}

impl<'a> SideNames<'a> {
    /// The asked names whose answers hold at the flow's time (none when it has no time).
    pub fn asked(&self) -> impl Iterator<Item = Asked<'a>> + 'a {
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
        self.asked().map(|a| a.name).chain(self.query).chain(
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
            .flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().map(|x| &**x)))
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
            .or_else(|| self.asked().map(|a| a.name).next())
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

    #[test]
    fn required_names_are_live_asked_names_the_query_and_flow_names_that_are_not_aliases() {
        let mut store = Store::with_room(4);
        let key = store::key(1, "192.0.2.1".parse().expect("ip"));
        let cdn: Arc<[Arc<str>]> = [Arc::from("cdn.example.net.")].into();
        store.answer(
            key,
            &Arc::from("ingest.telemetry.example.com."),
            &Some(cdn),
            (0.0, 100.0),
        );
        store.answer(key, &Arc::from("old.example.org."), &None, (0.0, 10.0));
        let l = Learned::of(&store, key).expect("held");
        assert_eq!(l.iter().count(), 2);
        assert_eq!(l.live(50.0).count(), 1);
        let flow = vec![
            "CDN.example.net".to_string(),
            "other.example.org".to_string(),
            String::new(),
        ];
        let s = SideNames {
            flow: &flow,
            query: None,
            learned: Some(l),
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
