//! Label selectors (`key=value`, `k8s:key=value`, `key`) and reserved entities (`world`, ...).

use crate::flow::Side;

/// One label selector. Flow labels look like `source:key=value`; the source is the text before
/// the first `:`, and the value the text after the first `=` of the rest (empty when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector {
    /// `Some("k8s")` for `k8s:key=value`; `None` matches any source.
    pub source: Option<String>,
    /// The label key.
    pub key: String,
    /// `None` for `key` alone: the label is present with any value.
    pub value: Option<String>,
}

/// Splits a flow label into `(source, key, value)`.
fn split_label(label: &str) -> (&str, &str, &str) {
    let (source, rest) = label.split_once(':').unwrap_or(("", label));
    let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
    (source, key, value)
}

impl LabelSelector {
    /// Parses a selector. A `:` before the first `=` separates an explicit source.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "invalid label selector {s:?}: whitespace is not allowed"
            ));
        }
        let (sel, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (s, None),
        };
        let (source, key) = match sel.split_once(':') {
            Some((src, key)) => (Some(src), key),
            None => (None, sel),
        };
        if source.is_some_and(str::is_empty) {
            return Err(format!(
                "invalid label selector {s:?}: empty source before ':'"
            ));
        }
        if key.is_empty() {
            return Err(format!("invalid label selector {s:?}: empty key"));
        }
        Ok(Self {
            source: source.map(str::to_owned),
            key: key.to_owned(),
            value,
        })
    }

    /// Whether one of `labels` satisfies this selector.
    pub fn matches(&self, labels: &[String]) -> bool {
        labels.iter().any(|l| {
            let (source, key, value) = split_label(l);
            key == self.key
                && self.source.as_deref().is_none_or(|s| s == source)
                && self.value.as_deref().is_none_or(|v| v == value)
        })
    }
}

/// A reserved identity, as written in `entity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entity {
    name: &'static str,
    /// Reserved identity numbers that stand for this entity.
    ids: &'static [u32],
    /// `reserved:` label names that stand for this entity.
    labels: &'static [&'static str],
}

/// Every entity a rule may name, with Cilium's reserved identity numbers.
const ENTITIES: &[Entity] = &[
    Entity {
        name: "world",
        ids: &[2, 9, 10],
        labels: &["world", "world-ipv4", "world-ipv6"],
    },
    Entity {
        name: "world-ipv4",
        ids: &[9],
        labels: &["world-ipv4"],
    },
    Entity {
        name: "world-ipv6",
        ids: &[10],
        labels: &["world-ipv6"],
    },
    Entity {
        name: "host",
        ids: &[1],
        labels: &["host"],
    },
    Entity {
        name: "remote-node",
        ids: &[6],
        labels: &["remote-node"],
    },
    Entity {
        name: "kube-apiserver",
        ids: &[7],
        labels: &["kube-apiserver"],
    },
    Entity {
        name: "health",
        ids: &[4],
        labels: &["health"],
    },
    Entity {
        name: "init",
        ids: &[5],
        labels: &["init"],
    },
    Entity {
        name: "unmanaged",
        ids: &[3],
        labels: &["unmanaged"],
    },
    Entity {
        name: "ingress",
        ids: &[8],
        labels: &["ingress"],
    },
];

impl Entity {
    /// Looks an entity up by name.
    pub fn parse(s: &str) -> Result<Self, String> {
        ENTITIES
            .iter()
            .find(|e| e.name == s)
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = ENTITIES.iter().map(|e| e.name).collect();
                format!("unknown entity {s:?}: expected one of {}", names.join(", "))
            })
    }

    /// The name as written.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the side is this entity: by a `reserved:` label or by identity number.
    pub fn matches(&self, side: &Side<'_>) -> bool {
        let id = side.identity();
        if id != 0 && self.ids.contains(&id) {
            return true;
        }
        side.labels().iter().any(|l| {
            let (source, key, _) = split_label(l);
            source == "reserved" && self.labels.contains(&key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::flow::Endpoint;
    use proptest::prelude::*;

    fn labels(ls: &[&str]) -> Vec<String> {
        ls.iter().map(|s| s.to_string()).collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn selectors_with_and_without_source() {
        let l = labels(&[
            "k8s:app=web",
            "k8s:io.kubernetes.pod.namespace=shop",
            "reserved:world",
        ]);
        assert!(sel("app=web").matches(&l));
        assert!(sel("k8s:app=web").matches(&l));
        assert!(!sel("container:app=web").matches(&l));
        assert!(!sel("app=api").matches(&l));
        assert!(sel("app").matches(&l));
        assert!(sel("k8s:app").matches(&l));
        assert!(!sel("tier").matches(&l));
        assert!(sel("io.kubernetes.pod.namespace=shop").matches(&l));
        assert!(sel("reserved:world").matches(&l));
        assert!(sel("world").matches(&l));
        assert!(!sel("world=x").matches(&l));
        assert!(!sel("app=web").matches(&[]));
    }

    #[test]
    fn values_may_contain_colons_and_equals() {
        let l = labels(&["k8s:url=http://x=y"]);
        assert!(sel("url=http://x=y").matches(&l));
        assert!(sel("k8s:url=http://x=y").matches(&l));
    }

    #[test]
    fn bad_selectors_are_refused() {
        assert_eq!(
            LabelSelector::parse(":app=x").unwrap_err(),
            "invalid label selector \":app=x\": empty source before ':'"
        );
        assert_eq!(
            LabelSelector::parse("=x").unwrap_err(),
            "invalid label selector \"=x\": empty key"
        );
        assert!(LabelSelector::parse("a b").is_err());
    }

    fn side(ep: &Endpoint) -> Side<'_> {
        Side {
            endpoint: Some(ep),
            ..Side::default()
        }
    }

    #[test]
    fn entities_match_by_label_or_identity() {
        let world = Entity::parse("world").unwrap();
        let w4 = Entity::parse("world-ipv4").unwrap();
        let host = Entity::parse("host").unwrap();
        let by_label = Endpoint {
            labels: labels(&["reserved:world-ipv4"]),
            ..Default::default()
        };
        let by_id = Endpoint {
            identity: 9,
            ..Default::default()
        };
        let plain_world = Endpoint {
            identity: 2,
            ..Default::default()
        };
        let pod = Endpoint {
            identity: 12345,
            labels: labels(&["k8s:world=1"]),
            ..Default::default()
        };
        assert!(world.matches(&side(&by_label)));
        assert!(world.matches(&side(&by_id)));
        assert!(world.matches(&side(&plain_world)));
        assert!(w4.matches(&side(&by_label)));
        assert!(w4.matches(&side(&by_id)));
        assert!(!w4.matches(&side(&plain_world)));
        assert!(!world.matches(&side(&pod)));
        assert!(!host.matches(&side(&by_id)));
        assert!(host.matches(&side(&Endpoint {
            identity: 1,
            ..Default::default()
        })));
        assert!(!world.matches(&Side::default()));
        assert_eq!(
            Entity::parse("cluster").unwrap_err(),
            "unknown entity \"cluster\": expected one of world, world-ipv4, world-ipv6, host, \
             remote-node, kube-apiserver, health, init, unmanaged, ingress"
        );
    }

    proptest! {
        /// A selector without a source matches exactly when some label, minus its source,
        /// equals `key=value`.
        #[test]
        fn selector_agrees_with_oracle(
            ls in prop::collection::vec("(k8s|reserved|cidr):[ab]{1,2}(=[ab:]{0,2})?", 0..4),
            key in "[ab]{1,2}", value in prop::option::of("[ab:]{0,2}"),
            source in prop::option::of("(k8s|reserved)"),
        ) {
            let mut text = String::new();
            if let Some(s) = &source { text.push_str(s); text.push(':'); }
            text.push_str(&key);
            if let Some(v) = &value { text.push('='); text.push_str(v); }
            let s = LabelSelector::parse(&text).unwrap();
            let oracle = ls.iter().any(|l| {
                let (src, rest) = l.split_once(':').unwrap();
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                k == key
                    && source.as_deref().is_none_or(|s| s == src)
                    && value.as_deref().is_none_or(|want| want == v)
            });
            prop_assert_eq!(s.matches(&ls), oracle);
        }
    }
}
