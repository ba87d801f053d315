//! The raw TOML shape of a rule document, deserialized with spans so that validation can point
//! at the offending value. Unknown keys and wrong types are rejected here by serde.

use serde::Deserialize;
use toml::Spanned;

/// A rule file: only `[[rule]]` tables are allowed at the top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

/// `config.toml`: only `[[rule]]` is read, every other top-level key is the config loader's.
#[derive(Debug, Deserialize)]
pub(crate) struct RawInline {
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

/// One `[[rule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Spanned<String>,
    pub class: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
    pub owner: Option<Spanned<String>>,
    pub comment: Option<Spanned<String>>,
    pub expires: Option<Spanned<toml::value::Datetime>>,
    #[serde(rename = "match")]
    pub matches: Option<Spanned<RawMatch>>,
}

/// `[rule.match]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub verdict: Option<Spanned<Vec<Spanned<String>>>>,
    pub direction: Option<Spanned<OneOrMany>>,
    pub drop_reason: Option<Spanned<Vec<Spanned<String>>>>,
    pub policy_log: Option<Spanned<Vec<Spanned<String>>>>,
    pub node: Option<Spanned<Vec<Spanned<String>>>>,
    pub source: Option<Spanned<RawSide>>,
    pub destination: Option<Spanned<RawSide>>,
}

/// `[rule.match.source]` and `[rule.match.destination]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSide {
    pub namespace: Option<Spanned<Vec<Spanned<String>>>>,
    pub pod: Option<Spanned<Vec<Spanned<String>>>>,
    pub workload: Option<Spanned<Vec<Spanned<String>>>>,
    pub labels: Option<Spanned<Vec<Spanned<String>>>>,
    pub entity: Option<Spanned<Vec<Spanned<String>>>>,
    pub cidr: Option<Spanned<Vec<Spanned<String>>>>,
    pub fqdn: Option<Spanned<Vec<Spanned<String>>>>,
    pub port: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `direction` accepts a string or a list of strings. (Not an untagged enum: that would lose
/// the spans of the surrounding value.)
#[derive(Debug)]
pub(crate) struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<String>()? {
                    v.push(s);
                }
                Ok(OneOrMany(v))
            }
        }
        d.deserialize_any(V)
    }
}
