//! CIDR prefixes and an index from an IP to the rules whose prefixes contain it.
//!
//! IPv4 and IPv6 are separate families: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is an
//! IPv6 address and is not contained in `10.0.0.0/8` (Hubble reports IPv4 flows as IPv4).

use std::collections::HashMap;
use std::net::IpAddr;

/// A prefix: network address (host bits zero) and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    v6: bool,
    /// The address as a 128-bit number (IPv4 in the low 32 bits).
    bits: u128,
    len: u8,
}

fn family_width(v6: bool) -> u8 {
    if v6 { 128 } else { 32 }
}

fn mask(width: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if width == 128 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        all & !((1u128 << (width - len)) - 1)
    }
}

fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). Host bits set
    /// below the prefix are an error: `10.0.0.1/8` is refused, it is almost always a typo.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}: {addr:?} is not an IP address"))?;
        let (v6, bits) = ip_bits(ip);
        let width = family_width(v6);
        let len = match len {
            None => width,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= width && !l.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "invalid CIDR {s:?}: prefix length must be 0..={width}"
                    ));
                }
            },
        };
        let net = bits & mask(width, len);
        if net != bits {
            let fixed = Cidr { v6, bits: net, len };
            return Err(format!(
                "invalid CIDR {s:?}: host bits set (did you mean {fixed}?)"
            ));
        }
        Ok(Cidr { v6, bits, len })
    }

    /// Whether `ip` lies in this prefix (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = ip_bits(ip);
        v6 == self.v6 && bits & mask(family_width(v6), self.len) == self.bits
    }

    /// Whether this is `0.0.0.0/0` or `::/0`.
    pub fn is_default_route(&self) -> bool {
        self.len == 0
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_v6(&self) -> bool {
        self.v6
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip: IpAddr = if self.v6 {
            IpAddr::V6(self.bits.into())
        } else {
            IpAddr::V4((self.bits as u32).into())
        };
        write!(f, "{ip}/{}", self.len)
    }
}

/// `(is IPv6, prefix length)`.
type Family = (bool, u8);
/// Masked network → rule indices.
type Networks = HashMap<u128, Vec<u32>, foldhash::fast::RandomState>;

/// Every prefix of one side of every rule, grouped by family and prefix length, so a lookup
/// costs one hash probe per distinct prefix length instead of one test per rule.
#[derive(Debug, Default)]
pub struct CidrIndex {
    /// `(v6, len)` → masked network → rule indices.
    by_len: Vec<(Family, Networks)>,
}

impl CidrIndex {
    /// Adds a prefix of rule `rule`.
    pub fn insert(&mut self, cidr: Cidr, rule: u32) {
        let k = (cidr.v6, cidr.len);
        let pos = match self.by_len.iter().position(|(key, _)| *key == k) {
            Some(p) => p,
            None => {
                self.by_len.push((k, HashMap::default()));
                self.by_len.len() - 1
            }
        };
        let rules = self.by_len[pos].1.entry(cidr.bits).or_default();
        if rules.last() != Some(&rule) {
            rules.push(rule);
        }
    }

    /// Calls `hit` with every rule that has a prefix containing `ip` (a rule may repeat).
    pub fn lookup(&self, ip: IpAddr, mut hit: impl FnMut(u32)) {
        let (v6, bits) = ip_bits(ip);
        let width = family_width(v6);
        for ((fv6, len), nets) in &self.by_len {
            if *fv6 != v6 {
                continue;
            }
            if let Some(rules) = nets.get(&(bits & mask(width, *len))) {
                rules.iter().for_each(|r| hit(*r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parse_and_contains() {
        assert!(c("10.0.0.0/8").contains("10.255.1.2".parse().unwrap()));
        assert!(!c("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(c("203.0.113.7").contains("203.0.113.7".parse().unwrap()));
        assert!(!c("203.0.113.7").contains("203.0.113.8".parse().unwrap()));
        assert!(c("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
        assert!(!c("2001:db8::/32").contains("2001:db9::1".parse().unwrap()));
        assert!(c("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert!(!c("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(c("::/0").contains("::1".parse().unwrap()));
        assert_eq!(c("10.1.0.0/16").to_string(), "10.1.0.0/16");
    }

    #[test]
    fn v4_mapped_v6_is_not_v4() {
        assert!(!c("10.0.0.0/8").contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!c("::ffff:10.0.0.0/104").contains("10.0.0.1".parse().unwrap()));
        assert!(c("::ffff:10.0.0.0/104").contains("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_cidrs_are_refused_with_reasons() {
        assert_eq!(
            Cidr::parse("10.0.0.1/8").unwrap_err(),
            "invalid CIDR \"10.0.0.1/8\": host bits set (did you mean 10.0.0.0/8?)"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/33").unwrap_err(),
            "invalid CIDR \"10.0.0.0/33\": prefix length must be 0..=32"
        );
        assert_eq!(
            Cidr::parse("10.0.0/8").unwrap_err(),
            "invalid CIDR \"10.0.0/8\": \"10.0.0\" is not an IP address"
        );
        assert!(Cidr::parse("2001:db8::/129").is_err());
        assert!(Cidr::parse("10.0.0.0/").is_err());
        assert!(Cidr::parse("10.0.0.0/+8").is_err());
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|b| IpAddr::V4(b.into())),
            any::<u128>().prop_map(|b| IpAddr::V6(b.into())),
            // Concentrate on a small space so hits are common.
            (0u32..16).prop_map(|b| IpAddr::V4((0x0a00_0000 | b).into())),
        ]
    }

    /// Bit-by-bit containment, the obvious way.
    fn oracle(net: IpAddr, len: u8, ip: IpAddr) -> bool {
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let (n, i) = (bytes(net), bytes(ip));
        n.len() == i.len()
            && (0..usize::from(len))
                .all(|b| (n[b / 8] >> (7 - b % 8)) & 1 == (i[b / 8] >> (7 - b % 8)) & 1)
    }

    proptest! {
        #[test]
        fn contains_and_index_agree_with_oracle(
            nets in prop::collection::vec((any_ip(), 0u8..=128), 1..8),
            ip in any_ip(),
        ) {
            let mut idx = CidrIndex::default();
            let mut expected = Vec::new();
            for (r, (net, len)) in nets.iter().enumerate() {
                let width = if net.is_ipv4() { 32 } else { 128 };
                let len = (*len).min(width);
                let (v6, bits) = ip_bits(*net);
                let cidr = Cidr { v6, bits: bits & mask(width, len), len };
                let want = oracle(*net, len, ip);
                prop_assert_eq!(cidr.contains(ip), want);
                prop_assert_eq!(Cidr::parse(&cidr.to_string()).unwrap(), cidr);
                idx.insert(cidr, r as u32);
                if want { expected.push(r as u32); }
            }
            let mut got = Vec::new();
            idx.lookup(ip, |r| got.push(r));
            got.sort_unstable();
            got.dedup();
            prop_assert_eq!(got, expected);
        }
    }
}
