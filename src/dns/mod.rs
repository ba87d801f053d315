//! Names learned from observed DNS answers (PRODUCT.md §6 `[dns]`).
//!
//! L7 DNS response records carry `query`, `ips`, `ttl` and `cnames`; in a response the pod that
//! asked is the destination. Each answer maps (pod, IP) → name until the answer's time plus its
//! TTL (floored at `min_ttl`), judged against the flow's time. Bounded: the oldest entries go
//! first. When in doubt (no entry, expired, another pod) the name is unknown.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::api::flow::{Flow, L7FlowType, layer7};
use crate::config::{DnsConfig, DnsScope};
use crate::flow::{Side, is_reply, l4_ports, unix_seconds};

/// Who a learned name belongs to: a 128-bit hash of (namespace, pod), or 0 for cluster scope.
/// Fixed-size, so a lookup allocates nothing; two pods would have to collide on 128 bits to
/// share names.
type Owner = u128;

fn owner_hash(namespace: &str, pod: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        namespace.hash(&mut h);
        pod.hash(&mut h);
        h.finish()
    };
    u128::from(half(1)) << 64 | u128::from(half(2))
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    expires: f64,
    seq: u64,
}

/// The names of one (owner, IP): almost always one, kept inline so that an entry costs no
/// allocation of its own.
#[derive(Debug)]
struct Names {
    first: Entry,
    more: Vec<Entry>,
}

impl Names {
    fn iter(&self) -> impl Iterator<Item = &Entry> {
        std::iter::once(&self.first).chain(&self.more)
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut Entry> {
        std::iter::once(&mut self.first)
            .chain(&mut self.more)
            .find(|e| &*e.name == name)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        1 + self.more.len()
    }

    /// Removes the entry with this sequence number; `false` when it was the last one (the
    /// caller then removes the whole key).
    fn remove_seq(&mut self, seq: u64) -> Option<bool> {
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

/// The cache of learned names.
#[derive(Debug)]
pub struct NameCache {
    scope: DnsScope,
    max_entries: usize,
    min_ttl: f64,
    enabled: bool,
    map: HashMap<(Owner, IpAddr), Names, foldhash::fast::RandomState>,
    /// Insertion order for eviction: (owner, ip, seq).
    order: VecDeque<(Owner, IpAddr, u64)>,
    entries: usize,
    seq: u64,
}

impl Default for NameCache {
    fn default() -> Self {
        Self::new(&DnsConfig::default())
    }
}

impl NameCache {
    /// An empty cache with the given settings.
    pub fn new(cfg: &DnsConfig) -> Self {
        Self {
            scope: cfg.scope,
            max_entries: cfg.max_entries.max(1),
            min_ttl: cfg.min_ttl.as_secs_f64(),
            enabled: cfg.learn,
            map: HashMap::default(),
            order: VecDeque::new(),
            entries: 0,
            seq: 0,
        }
    }

    /// How many (owner, IP, name) entries are held.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn owner(&self, namespace: &str, pod: &str) -> Option<Owner> {
        match self.scope {
            DnsScope::Cluster => Some(0),
            DnsScope::Endpoint if pod.is_empty() => None,
            DnsScope::Endpoint => Some(owner_hash(namespace, pod)),
        }
    }

    /// Learns from one flow if it is an L7 DNS response with answers. Returns how many
    /// entries were added or refreshed.
    pub fn learn(&mut self, flow: &Flow, response_time: Option<&pbjson_types::Timestamp>) -> usize {
        if !self.enabled {
            return 0;
        }
        let Some(l7) = flow.l7.as_ref() else { return 0 };
        let Some(layer7::Record::Dns(dns)) = l7.record.as_ref() else {
            return 0;
        };
        if l7.r#type != L7FlowType::Response as i32 || dns.ips.is_empty() || dns.query.is_empty() {
            return 0;
        }
        let Some(time) = flow.time.as_ref().or(response_time).map(unix_seconds) else {
            return 0;
        };
        // In a response record the DNS server is the source (port 53) and the pod that asked is
        // the destination. Judge by the port first, since some records are written the other
        // way round, then by `is_reply`.
        let (sport, dport) = l4_ports(flow);
        let asker = if sport == 53 && dport != 53 {
            flow.destination.as_ref()
        } else if dport == 53 && sport != 53 {
            flow.source.as_ref()
        } else if is_reply(flow) {
            flow.destination.as_ref()
        } else {
            flow.source.as_ref()
        };
        let Some(asker) = asker else { return 0 };
        let Some(owner) = self.owner(&asker.namespace, &asker.pod_name) else {
            return 0;
        };
        let ttl = f64::from(dns.ttl).max(self.min_ttl);
        let expires = time + ttl;
        let mut names: Vec<Arc<str>> = Vec::with_capacity(1 + dns.cnames.len());
        names.push(normalize(&dns.query).into());
        for c in &dns.cnames {
            if !c.is_empty() {
                names.push(normalize(c).into());
            }
        }
        let mut added = 0;
        for ip in &dns.ips {
            let Ok(ip) = ip.parse::<IpAddr>() else {
                continue;
            };
            for name in &names {
                self.insert(owner, ip, name.clone(), expires);
                added += 1;
            }
        }
        added
    }

    fn insert(&mut self, owner: Owner, ip: IpAddr, name: Arc<str>, expires: f64) {
        self.seq += 1;
        let seq = self.seq;
        match self.map.entry((owner, ip)) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let names = o.get_mut();
                if let Some(e) = names.find_mut(&name) {
                    e.expires = e.expires.max(expires);
                    e.seq = seq;
                    self.order.push_back((owner, ip, seq));
                    self.compact_order();
                    return;
                }
                names.more.push(Entry { name, expires, seq });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Names {
                    first: Entry { name, expires, seq },
                    more: Vec::new(),
                });
            }
        }
        self.entries += 1;
        self.order.push_back((owner, ip, seq));
        while self.entries > self.max_entries {
            self.evict_oldest();
        }
        self.compact_order();
    }

    /// Removes the entry with the oldest insertion that is still current.
    fn evict_oldest(&mut self) {
        while let Some((owner, ip, seq)) = self.order.pop_front() {
            let key = (owner, ip);
            if let Some(names) = self.map.get_mut(&key) {
                if let Some(kept) = names.remove_seq(seq) {
                    self.entries -= 1;
                    if !kept {
                        self.map.remove(&key);
                    }
                    return;
                }
            }
        }
    }

    /// Keeps the order queue from growing past a small multiple of the entries when the same
    /// names are refreshed again and again.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.max_entries + 1024 {
            let map = &self.map;
            self.order.retain(|(o, ip, seq)| {
                map.get(&(*o, *ip))
                    .is_some_and(|l| l.iter().any(|e| e.seq == *seq))
            });
        }
    }

    /// Adds to `side` the names the pod `namespace/pod` learned for `ip`, still valid at
    /// `time`, with their expiry.
    pub fn lookup<'s>(
        &'s self,
        namespace: &str,
        pod: &str,
        ip: IpAddr,
        time: Option<f64>,
        side: &mut Side<'s>,
    ) {
        let Some(time) = time else { return };
        if self.entries == 0 {
            return;
        }
        let Some(owner) = self.owner(namespace, pod) else {
            return;
        };
        if let Some(list) = self.map.get(&(owner, ip)) {
            for e in list.iter().filter(|e| time <= e.expires) {
                side.names.push(&e.name);
                side.learned_expiry.push(e.expires);
            }
        }
    }
}

/// Lower-case, no trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::flow::{Dns, Endpoint, Layer4, Layer7, Udp, layer4};
    use proptest::prelude::*;

    fn answer(pod: &str, query: &str, ips: &[&str], ttl: u32, at: i64) -> Flow {
        Flow {
            time: Some(pbjson_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            l4: Some(Layer4 {
                protocol: Some(layer4::Protocol::Udp(Udp {
                    source_port: 53,
                    destination_port: 40000,
                })),
            }),
            source: Some(Endpoint {
                namespace: "kube-system".into(),
                pod_name: "coredns-1".into(),
                ..Endpoint::default()
            }),
            destination: Some(Endpoint {
                namespace: "shop".into(),
                pod_name: pod.into(),
                ..Endpoint::default()
            }),
            l7: Some(Layer7 {
                r#type: L7FlowType::Response as i32,
                latency_ns: 0,
                record: Some(layer7::Record::Dns(Dns {
                    query: query.into(),
                    ips: ips.iter().map(|s| s.to_string()).collect(),
                    ttl,
                    cnames: vec!["Edge.Example.COM.".into()],
                    ..Dns::default()
                })),
            }),
            is_reply: Some(pbjson_types::BoolValue { value: true }),
            ..Flow::default()
        }
    }

    fn names(c: &NameCache, pod: &str, ip: &str, at: f64) -> Vec<String> {
        let mut side = Side::default();
        c.lookup("shop", pod, ip.parse().expect("ip"), Some(at), &mut side);
        assert_eq!(side.names.len(), side.learned_expiry.len());
        let mut v: Vec<String> = side.names.into_iter().map(str::to_string).collect();
        v.sort();
        v
    }

    #[test]
    fn learns_per_pod_until_the_ttl() {
        let mut c = NameCache::default();
        let f = answer(
            "app-1",
            "collector.example.com.",
            &["203.0.113.10"],
            300,
            1000,
        );
        assert_eq!(c.learn(&f, None), 2, "query and cname");
        assert_eq!(
            names(&c, "app-1", "203.0.113.10", 1200.0),
            ["collector.example.com", "edge.example.com"]
        );
        assert!(
            names(&c, "app-2", "203.0.113.10", 1200.0).is_empty(),
            "another pod"
        );
        assert!(
            names(&c, "app-1", "203.0.113.11", 1200.0).is_empty(),
            "another IP"
        );
        assert!(
            names(&c, "app-1", "203.0.113.10", 1301.0).is_empty(),
            "after the TTL"
        );
    }

    #[test]
    fn cluster_scope_shares_names_and_min_ttl_floors() {
        let cfg = DnsConfig {
            scope: DnsScope::Cluster,
            min_ttl: std::time::Duration::from_secs(600),
            ..DnsConfig::default()
        };
        let mut c = NameCache::new(&cfg);
        c.learn(
            &answer("app-1", "a.example.com.", &["192.0.2.1"], 5, 0),
            None,
        );
        assert_eq!(names(&c, "other", "192.0.2.1", 500.0)[0], "a.example.com");
    }

    #[test]
    fn learning_can_be_turned_off() {
        let cfg = DnsConfig {
            learn: false,
            ..DnsConfig::default()
        };
        let mut c = NameCache::new(&cfg);
        assert_eq!(
            c.learn(&answer("p", "a.example.com.", &["192.0.2.1"], 5, 0), None),
            0
        );
        assert!(c.is_empty());
    }

    proptest! {
        #[test]
        fn never_holds_more_than_max_entries(
            max in 1usize..50,
            answers in proptest::collection::vec((0u8..8, 0u8..20, 0u8..6, 0u32..100), 0..300),
        ) {
            let cfg = DnsConfig { max_entries: max, ..DnsConfig::default() };
            let mut c = NameCache::new(&cfg);
            for (pod, ip, name, ttl) in answers {
                let f = answer(
                    &format!("p{pod}"),
                    &format!("n{name}.example.com."),
                    &[&format!("10.0.0.{ip}")],
                    ttl,
                    0,
                );
                c.learn(&f, None);
                prop_assert!(c.len() <= max, "{} > {}", c.len(), max);
                let held: usize = c.map.values().map(Names::len).sum();
                prop_assert_eq!(held, c.len());
            }
        }
    }
}
