//! The environment layer: `HUBBLE_NOISE_<SECTION>__<KEY>` variables merged over the file with
//! figment, restricted to the known sections so that the variables Kubernetes injects for a
//! Service named `hubble-noise` (`HUBBLE_NOISE_PORT=tcp://…`, `HUBBLE_NOISE_SERVICE_HOST`)
//! cannot break start-up.

use figment::Figment;
use figment::providers::Serialized;

use super::schema::Config;

/// The sections an environment variable may address.
pub const SECTIONS: [&str; 5] = ["relay", "metrics", "classify", "dns", "log"];

/// The variables that address a key of a known section, as (`section__key` in lower case,
/// value); every other variable is left out.
pub(super) fn section_vars(
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    env.into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("HUBBLE_NOISE_")?;
            let (section, key) = rest.split_once("__")?;
            let section = section.to_ascii_lowercase();
            SECTIONS
                .contains(&section.as_str())
                .then(|| (format!("{section}__{}", key.to_ascii_lowercase()), v))
        })
        .collect()
}

/// `config` with the variables of [`section_vars`] merged over it. Inline rules are not
/// serialized, so the result has none: the caller puts them back.
pub(super) fn merge_over(config: &Config, env: &[(String, String)]) -> Result<Config, String> {
    let fig = env
        .iter()
        .fold(Figment::from(Serialized::defaults(config)), |f, (k, v)| {
            f.merge(Serialized::default(&k.replace("__", "."), env_value(v)))
        });
    fig.extract::<Config>().map_err(|e| e.to_string())
}

/// Environment values are strings; lists are written `a,b` or as TOML (`["a","b"]`).
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
