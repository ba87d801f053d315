//! Port constraints: `443`, `443/TCP`, `8000-8100/UDP`.

use crate::flow::Proto;

/// A port range with an optional protocol (`None` = ANY of TCP, UDP, SCTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Lowest port, inclusive.
    pub lo: u16,
    /// Highest port, inclusive.
    pub hi: u16,
    /// The protocol, or `None` for any protocol that has ports.
    pub proto: Option<Proto>,
}

fn parse_port(s: &str, whole: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p >= 1 && !s.starts_with('+') => Ok(p),
        _ => Err(format!(
            "invalid port {whole:?}: {s:?} is not a port number in 1..=65535"
        )),
    }
}

impl PortSpec {
    /// Parses `PORT[-PORT][/PROTO]`; PROTO is TCP, UDP, SCTP or ANY (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ports, proto) = match s.split_once('/') {
            Some((p, proto)) => (p, Some(proto)),
            None => (s, None),
        };
        let proto = match proto.map(str::to_ascii_uppercase).as_deref() {
            None | Some("ANY") => None,
            Some("TCP") => Some(Proto::Tcp),
            Some("UDP") => Some(Proto::Udp),
            Some("SCTP") => Some(Proto::Sctp),
            Some(_) => {
                return Err(format!(
                    "invalid port {s:?}: protocol must be TCP, UDP, SCTP or ANY"
                ));
            }
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((lo, hi)) => (parse_port(lo, s)?, parse_port(hi, s)?),
            None => {
                let p = parse_port(ports, s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("invalid port {s:?}: range start is above its end"));
        }
        Ok(Self { lo, hi, proto })
    }

    /// Whether a flow's port and protocol fall in this spec. No port never matches.
    pub fn matches(&self, port: Option<u16>, proto: Proto) -> bool {
        let Some(port) = port else { return false };
        let proto_ok = match self.proto {
            None => matches!(proto, Proto::Tcp | Proto::Udp | Proto::Sctp),
            Some(p) => p == proto,
        };
        proto_ok && (self.lo..=self.hi).contains(&port)
    }

    /// Whether this spec covers every port of every protocol (`1-65535`, `1-65535/ANY`).
    pub fn is_match_all(&self) -> bool {
        self.lo == 1 && self.hi == u16::MAX && self.proto.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_form() {
        let p = PortSpec::parse("443").unwrap();
        assert_eq!((p.lo, p.hi, p.proto), (443, 443, None));
        let p = PortSpec::parse("443/TCP").unwrap();
        assert_eq!(p.proto, Some(Proto::Tcp));
        let p = PortSpec::parse("8000-8100/udp").unwrap();
        assert_eq!((p.lo, p.hi, p.proto), (8000, 8100, Some(Proto::Udp)));
        assert!(PortSpec::parse("1-65535/ANY").unwrap().is_match_all());
    }

    #[test]
    fn bad_ports_are_refused_with_reasons() {
        assert_eq!(
            PortSpec::parse("0").unwrap_err(),
            "invalid port \"0\": \"0\" is not a port number in 1..=65535"
        );
        assert_eq!(
            PortSpec::parse("70000/TCP").unwrap_err(),
            "invalid port \"70000/TCP\": \"70000\" is not a port number in 1..=65535"
        );
        assert_eq!(
            PortSpec::parse("443/ICMP").unwrap_err(),
            "invalid port \"443/ICMP\": protocol must be TCP, UDP, SCTP or ANY"
        );
        assert_eq!(
            PortSpec::parse("90-80").unwrap_err(),
            "invalid port \"90-80\": range start is above its end"
        );
        assert!(PortSpec::parse("").is_err());
        assert!(PortSpec::parse("http").is_err());
        assert!(PortSpec::parse("80-").is_err());
    }

    #[test]
    fn no_port_never_matches() {
        let p = PortSpec::parse("1-65535").unwrap();
        assert!(!p.matches(None, Proto::Icmpv4));
        assert!(!p.matches(Some(80), Proto::Icmpv4));
        assert!(!p.matches(Some(80), Proto::Unknown));
        assert!(p.matches(Some(80), Proto::Sctp));
    }

    fn proto() -> impl Strategy<Value = Proto> {
        prop_oneof![
            Just(Proto::Tcp),
            Just(Proto::Udp),
            Just(Proto::Sctp),
            Just(Proto::Icmpv4),
            Just(Proto::Unknown)
        ]
    }

    proptest! {
        #[test]
        fn matches_agrees_with_oracle(
            a in 1u16.., b in 1u16.., want in prop::option::of(proto()),
            port in prop::option::of(0u16..), flow_proto in proto(),
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let text = match want {
                None => format!("{lo}-{hi}"),
                Some(p) => format!("{lo}-{hi}/{}", p.as_str()),
            };
            let parsed = PortSpec::parse(&text);
            if matches!(want, Some(Proto::Icmpv4 | Proto::Unknown)) {
                prop_assert!(parsed.is_err());
                return Ok(());
            }
            let spec = parsed.unwrap();
            let has_ports = [Proto::Tcp, Proto::Udp, Proto::Sctp].contains(&flow_proto);
            let oracle = match port {
                Some(p) => p >= lo && p <= hi && has_ports && want.is_none_or(|w| w == flow_proto),
                None => false,
            };
            prop_assert_eq!(spec.matches(port, flow_proto), oracle);
        }
    }
}
