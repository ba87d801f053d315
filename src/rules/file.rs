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

/// `direction` accepts a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub(crate) enum OneOrMany {
    One(Spanned<String>),
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// The values, in order.
    pub fn into_vec(self) -> Vec<Spanned<String>> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn spans_survive_path_tracking() {
        let t = "[[rule]]\nname = \"a\"\n[rule.match.destination]\ncidr = [\"10.0.0.0/8\"]\n";
        let f: RawFile = crate::located::from_toml(Path::new("r.toml"), t).unwrap();
        let r = &f.rule[0];
        eprintln!("rule span {:?} {:?}", r.span(), &t[r.span()]);
        let m = r.get_ref().matches.as_ref().unwrap();
        eprintln!("match span {:?}", &t[m.span()]);
        let c = m
            .get_ref()
            .destination
            .as_ref()
            .unwrap()
            .get_ref()
            .cidr
            .as_ref()
            .unwrap();
        eprintln!("cidr span {:?}", &t[c.get_ref()[0].span()]);
        let bad = "[[rule]]\nname = \"a\"\n[rule.match.destination]\ncidr = [1]\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let bad = "[[rule]]\nname = \"a\"\n[rule.match.destination]\ncidrs = [1]\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let bad = "[[rule]]\nname = \"a\"\n[rule.match]\ndirection = 3\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let bad = "[[rule]]\nname = \"a\"\n[[rule]]\nnme = \"b\"\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let bad = "[[rule]]\nname = \"a\"\n[[rule]]\nname = \"b\"\nexpires = \"x\"\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let bad = "rule = [{name = \"a\"}]\nx = 1\n";
        let e = crate::located::from_toml::<RawFile>(Path::new("r.toml"), bad).unwrap_err();
        eprintln!("{e}");
        let f: RawInline = crate::located::from_toml(Path::new("r.toml"), bad).unwrap();
        eprintln!("inline span {:?}", &bad[f.rule[0].span()]);
    }
}
