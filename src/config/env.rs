//! The environment layer: `HUBBLE_NOISE_<SECTION>__<KEY>` variables merged over the file with
//! figment, restricted to the known sections so that the variables Kubernetes injects for a
//! Service named `hubble-noise` (`HUBBLE_NOISE_PORT=tcp://…`, `HUBBLE_NOISE_SERVICE_HOST`)
//! cannot break start-up.

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};

use super::schema::Config;

/// The sections an environment variable may address.
pub const SECTIONS: [&str; 7] = [
    "relay", "metrics", "classify", "dns", "log", "triage", "export",
];

/// One variable that addresses a key of a known section.
#[derive(Debug, Clone)]
pub(super) struct EnvVar {
    /// The variable's name as set, for error messages.
    name: String,
    /// The key it sets, `section.key` in lower case.
    key: String,
    /// Its value.
    value: String,
}

/// The variables that address a key of a known section; every other variable is left out.
pub(super) fn section_vars(env: impl IntoIterator<Item = (String, String)>) -> Vec<EnvVar> {
    env.into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("HUBBLE_NOISE_")?;
            let (section, key) = rest.split_once("__")?;
            let section = section.to_ascii_lowercase();
            let key = format!("{section}.{}", key.to_ascii_lowercase());
            SECTIONS
                .contains(&section.as_str())
                .then_some(EnvVar { name, key, value })
        })
        .collect()
}

/// A variable as a figment provider, so that an error about its value names the variable
/// (`… in environment variable HUBBLE_NOISE_METRICS__MAX_SERIES`).
impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::default(&self.key, env_value(&self.value)).data()
    }
}

/// `config` with the variables of [`section_vars`] merged over it. Inline rules are not
/// serialized, so the result has none: the caller puts them back.
pub(super) fn merge_over(config: &Config, env: &[EnvVar]) -> Result<Config, String> {
    let fig = env
        .iter()
        .fold(Figment::from(Serialized::defaults(config)), |f, var| {
            f.merge(var.clone())
        });
    fig.extract::<Config>().map_err(|errors| {
        errors
            .into_iter()
            .map(|e| describe(&e))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// One error about the environment: the variable, the key and what is wrong with the value,
/// e.g. `HUBBLE_NOISE_METRICS__MAX_SERIES (metrics.max_series): invalid type: found string
/// "abc", expected usize`.
fn describe(e: &figment::Error) -> String {
    let var = e
        .metadata
        .as_ref()
        .map_or_else(|| "environment".to_owned(), |m| m.name.to_string());
    let key = e.path.join(".");
    let hint = match &e.kind {
        figment::error::Kind::InvalidType(_, expected) if expected.contains("sequence") => {
            " (write a list as TOML: [\"a\",\"b\"])"
        }
        _ => "",
    };
    format!("{var} ({key}): {}{hint}", e.kind)
}

/// Environment values are strings; a value that reads as a TOML value (a number, a boolean,
/// a list `["a","b"]`) is taken as that, anything else as a string.
fn env_value(v: &str) -> figment::value::Value {
    let t = v.trim();
    if let Ok(val) = toml::from_str::<toml::Table>(&format!("v = {t}")) {
        if let Some(x) = val.get("v") {
            if let Ok(fv) = figment::value::Value::serialize(x) {
                return fv;
            }
        }
    }
    figment::value::Value::from(v.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    fn load(env: &[(&str, &str)]) -> Result<Config, String> {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::from_text(Path::new("config.toml"), String::new(), env)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_error_names_the_variable_and_the_key() {
        let err = load(&[("HUBBLE_NOISE_METRICS__MAX_SERIES", "abc")]).unwrap_err();
        assert!(
            err.contains("HUBBLE_NOISE_METRICS__MAX_SERIES (metrics.max_series): invalid type"),
            "{err}"
        );
        assert!(!err.contains(".rs:"), "a source file in {err}");
        let err = load(&[("HUBBLE_NOISE_METRICS__LABELS", "node,source_pod")]).unwrap_err();
        assert!(err.contains(r#"write a list as TOML: ["a","b"]"#), "{err}");
    }

    #[test]
    fn values_read_as_toml_and_other_variables_are_left_alone() {
        let cfg = load(&[
            ("HUBBLE_NOISE_METRICS__MAX_SERIES", "77"),
            ("HUBBLE_NOISE_METRICS__LABELS", r#"["node"]"#),
            ("HUBBLE_NOISE_LOG__LEVEL", "info,hyper=warn"),
            ("HUBBLE_NOISE_PORT", "tcp://10.0.0.1:9967"),
            ("HUBBLE_NOISE_SERVICE_HOST", "10.0.0.1"),
        ])
        .unwrap();
        assert_eq!(cfg.metrics.max_series, 77);
        assert_eq!(cfg.metrics.labels, vec!["node".to_owned()]);
        assert_eq!(cfg.log.level, "info,hyper=warn");
    }
}
