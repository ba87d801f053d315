//! Names learned from observed DNS answers (PRODUCT.md §5 and §6 `[dns]`).
//!
//! L7 DNS response records carry `query`, `ips`, `ttl` and `cnames`. An answer is learned only
//! when a trusted server gave it (`dns.servers`): the server is the side on port 53, the pod
//! that asked the other. Per (pod, IP) the cache keeps the names the pod *asked for* whose
//! answers held the IP, each with the answer's CNAME chain as aliases, its time and its expiry
//! (answer time plus TTL, floored at `min_ttl`), judged against the flow's time. Asking the
//! same name again (any case, trailing dot or not) refreshes that one name. Bounded: the oldest
//! entries go first. Answers from other servers are not learned; the last one per (pod, IP) is
//! kept in a small side table so that `--explain` can say who answered.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::api::flow::{Endpoint, Flow, L7FlowType, Verdict, layer7};
use crate::config::{DnsConfig, DnsScope};
use crate::flow::{Side, is_reply, l4_ports, unix_seconds};
use crate::names::store::{self, Answered};
use crate::names::{Ignored, Learned, Store, normalize};
use crate::rules::endpoint::EndpointSelector;

/// Who a learned name belongs to: a 128-bit hash of (namespace, pod), or 0 for cluster scope.
/// Fixed-size, so a lookup allocates nothing; two pods would have to collide on 128 bits to
/// share names.
type Owner = u128;

/// The 128-bit owner of a pod: two independently seeded hashes of its namespace and name
/// (seeded per cache, so nobody outside can aim at a collision; by chance one is out of reach).
#[derive(Clone, Debug, Default)]
struct OwnerHasher([foldhash::quality::RandomState; 2]);

impl OwnerHasher {
    fn hash(&self, namespace: &str, pod: &str) -> Owner {
        use std::hash::BuildHasher;
        let [hi, lo] = &self.0;
        u128::from(hi.hash_one((namespace, pod))) << 64 | u128::from(lo.hash_one((namespace, pod)))
    }
}

/// The most CNAME targets kept per asked name (real chains have one to three).
pub const MAX_ALIASES: usize = 8;

/// The most ignored answers kept for `--explain` (a flood from an untrusted server only
/// rotates this table; it never evicts learned names).
pub const MAX_IGNORED: usize = 4096;

/// Why an answer was not learned (the `reason` label of
/// `hubble_noise_dns_answers_ignored_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// The server that answered is not among `dns.servers`.
    UntrustedServer,
}

impl IgnoreReason {
    /// Every reason, for registering the label values up front.
    pub const ALL: [IgnoreReason; 1] = [IgnoreReason::UntrustedServer];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UntrustedServer => "untrusted_server",
        }
    }
}

/// What [`NameCache::learn`] made of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// Not a DNS answer with addresses (or learning is off).
    NotAnAnswer,
    /// Learned: this many (pod, IP, name) entries added or refreshed.
    Learned(usize),
    /// An answer that was not learned, and why.
    Ignored(IgnoreReason),
}

/// Caches up to this many entries are allocated whole when made (a table that grows holds
/// the old and the new one at the same time: the peak, not the steady size, is what a memory
/// limit sees).
const PRESIZE: usize = 1 << 20;

/// The cache of learned names.
#[derive(Debug)]
pub struct NameCache {
    scope: DnsScope,
    max_entries: usize,
    min_ttl: f64,
    enabled: bool,
    servers: Vec<EndpointSelector>,
    /// The learned names, oldest first out.
    store: Store,
    ignored: HashMap<(Owner, IpAddr), Ignored, foldhash::fast::RandomState>,
    ignored_order: VecDeque<(Owner, IpAddr)>,
    /// Ignored answers not yet handed to the metrics, per reason.
    ignored_pending: [u64; IgnoreReason::ALL.len()],
    owners: OwnerHasher,
}

impl Default for NameCache {
    fn default() -> Self {
        Self::new(&DnsConfig::default())
    }
}

impl NameCache {
    /// An empty cache with the given settings. A server selector that does not compile (the
    /// config loader refuses such configs first) trusts nothing.
    pub fn new(cfg: &DnsConfig) -> Self {
        let presize = if cfg.learn {
            cfg.max_entries.clamp(1, PRESIZE)
        } else {
            0
        };
        Self {
            scope: cfg.scope,
            max_entries: cfg.max_entries.max(1),
            min_ttl: cfg.min_ttl.as_secs_f64(),
            enabled: cfg.learn,
            servers: cfg
                .servers
                .iter()
                .filter_map(|s| s.compile().ok())
                .collect(),
            store: Store::with_room(presize),
            ignored: HashMap::default(),
            ignored_order: VecDeque::new(),
            ignored_pending: [0; IgnoreReason::ALL.len()],
            owners: OwnerHasher::default(),
        }
    }

    /// How many (owner, IP, asked name) entries are held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the cache holds nothing (learned or ignored).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty() && self.ignored.is_empty()
    }

    /// The answers ignored since the last call, per reason (for the metrics).
    pub fn take_ignored(&mut self) -> impl Iterator<Item = (IgnoreReason, u64)> + use<> {
        let pending = std::mem::take(&mut self.ignored_pending);
        IgnoreReason::ALL
            .into_iter()
            .zip(pending)
            .filter(|(_, n)| *n > 0)
    }

    fn owner(&self, namespace: &str, pod: &str) -> Option<Owner> {
        match self.scope {
            DnsScope::Cluster => Some(0),
            DnsScope::Endpoint if pod.is_empty() => None,
            DnsScope::Endpoint => Some(self.owners.hash(namespace, pod)),
        }
    }

    /// Learns from one flow if it is an L7 DNS response with addresses that reached the pod
    /// (not DROPPED, not ERROR) from a trusted server.
    pub fn learn(&mut self, flow: &Flow, response_time: Option<&pbjson_types::Timestamp>) -> Learn {
        if !self.enabled {
            return Learn::NotAnAnswer;
        }
        let Some(l7) = flow.l7.as_ref() else {
            return Learn::NotAnAnswer;
        };
        let Some(layer7::Record::Dns(dns)) = l7.record.as_ref() else {
            return Learn::NotAnAnswer;
        };
        if l7.r#type != L7FlowType::Response as i32
            || dns.ips.is_empty()
            || dns.query.is_empty()
            || flow.verdict == Verdict::Dropped as i32
            || flow.verdict == Verdict::Error as i32
        {
            return Learn::NotAnAnswer;
        }
        let Some(time) = flow.time.as_ref().or(response_time).map(unix_seconds) else {
            return Learn::NotAnAnswer;
        };
        let Some(query) = normalize(&dns.query).map(Arc::<str>::from) else {
            return Learn::NotAnAnswer;
        };
        let Some((asker, server)) = asker_and_server(flow) else {
            return Learn::NotAnAnswer;
        };
        let Some(owner) = self.owner(&asker.namespace, &asker.pod_name) else {
            return Learn::NotAnAnswer;
        };
        let ips = dns.ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok());
        if !self.servers.iter().any(|s| s.matches(&server)) {
            let who: Box<str> = crate::output::endpoint(&server).into();
            for ip in ips {
                self.remember_ignored(
                    owner,
                    ip,
                    Ignored {
                        name: query.clone(),
                        server: who.clone(),
                        at: time,
                    },
                );
            }
            let r = IgnoreReason::UntrustedServer;
            self.ignored_pending[r as usize] = self.ignored_pending[r as usize].saturating_add(1);
            return Learn::Ignored(r);
        }
        let expires = time + f64::from(dns.ttl).max(self.min_ttl);
        let aliases: Vec<Arc<str>> = dns
            .cnames
            .iter()
            .filter_map(|c| normalize(c))
            .filter(|c| **c != *query)
            .take(MAX_ALIASES)
            .map(Arc::from)
            .collect();
        // One chain, shared by every IP of the answer.
        let aliases: Option<Arc<[Arc<str>]>> = (!aliases.is_empty()).then(|| aliases.into());
        let mut added = 0;
        for ip in ips {
            self.insert(owner, ip, &query, &aliases, time, expires);
            added += 1;
        }
        Learn::Learned(added)
    }

    fn insert(
        &mut self,
        owner: Owner,
        ip: IpAddr,
        name: &Arc<str>,
        aliases: &Option<Arc<[Arc<str>]>>,
        time: f64,
        expires: f64,
    ) {
        let key = store::key(owner, ip);
        if self.store.answer(key, name, aliases, (time, expires)) == Answered::Added {
            while self.store.len() > self.max_entries {
                self.store.evict_oldest();
            }
        }
    }

    fn remember_ignored(&mut self, owner: Owner, ip: IpAddr, answer: Ignored) {
        if self.ignored.insert((owner, ip), answer).is_none() {
            self.ignored_order.push_back((owner, ip));
            while self.ignored.len() > MAX_IGNORED {
                match self.ignored_order.pop_front() {
                    Some(k) => {
                        self.ignored.remove(&k);
                    }
                    None => break,
                }
            }
        }
    }

    /// What the pod `namespace/pod` asked for that resolved to `ip` (live or not: the caller
    /// judges against the flow's time).
    pub fn learned(&self, namespace: &str, pod: &str, ip: IpAddr) -> Option<Learned<'_>> {
        self.learned_by(self.owner(namespace, pod)?, ip)
    }

    /// The last answer naming `ip` for the pod that was not learned, if one is kept.
    pub fn ignored(&self, namespace: &str, pod: &str, ip: IpAddr) -> Option<&Ignored> {
        self.ignored_by(self.owner(namespace, pod)?, ip)
    }

    fn learned_by(&self, owner: Owner, ip: IpAddr) -> Option<Learned<'_>> {
        if self.store.is_empty() {
            return None;
        }
        Learned::of(&self.store, store::key(owner, ip))
    }

    fn ignored_by(&self, owner: Owner, ip: IpAddr) -> Option<&Ignored> {
        if self.ignored.is_empty() {
            return None;
        }
        self.ignored.get(&(owner, ip))
    }

    /// Fills in what the cache knows of each side's IP for the pod on the other side.
    pub fn annotate<'a>(&'a self, source: &mut Side<'a>, destination: &mut Side<'a>) {
        if self.is_empty() {
            return;
        }
        self.annotate_side(destination, source.endpoint);
        self.annotate_side(source, destination.endpoint);
    }

    /// What `other`, the pod on the other side, asked for that resolved to `side`'s IP (its
    /// owner hashed once for both look-ups).
    fn annotate_side<'a>(&'a self, side: &mut Side<'a>, other: Option<&Endpoint>) {
        let (Some(ip), Some(other)) = (side.ip, other) else {
            return;
        };
        let Some(owner) = self.owner(&other.namespace, &other.pod_name) else {
            return;
        };
        side.names.learned = self.learned_by(owner, ip);
        side.names.ignored = self.ignored_by(owner, ip);
    }
}

/// The pod that asked and the server that answered, in a DNS response record. The server is
/// the side on port 53: some records are written the other way round (Cilium's DNS proxy
/// writes the pod as the source), so ports decide first, then `is_reply`.
fn asker_and_server(flow: &Flow) -> Option<(&Endpoint, Side<'_>)> {
    let (sport, dport) = l4_ports(flow);
    let server_is_source = if sport == 53 && dport != 53 {
        true
    } else if dport == 53 && sport != 53 {
        false
    } else {
        is_reply(flow)
    };
    let (sip, dip) = match flow.ip.as_ref() {
        Some(ip) => (ip.source.parse().ok(), ip.destination.parse().ok()),
        None => (None, None),
    };
    let (asker, server, server_ip) = if server_is_source {
        (flow.destination.as_ref(), flow.source.as_ref(), sip)
    } else {
        (flow.source.as_ref(), flow.destination.as_ref(), dip)
    };
    let server = Side {
        endpoint: server,
        ip: server_ip,
        ..Side::default()
    };
    Some((asker?, server))
}

#[cfg(test)]
mod tests;
