//! Loading: defaults, then the file, then the environment, each layer validated, then the
//! file's relative paths made relative to its folder. [`Config::load`] is the entry point,
//! [`Loaded`] what it gives and [`ConfigError`] why it failed.

use std::path::{Path, PathBuf};

use super::env::{merge_over, section_vars};
use super::schema::Config;
use crate::located::{LocatedError, from_toml};
use crate::read::read_bounded;

/// A loaded configuration and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The merged, validated configuration, with paths made relative to the config's folder.
    pub config: Config,
    /// The config file, when one was read.
    pub path: Option<PathBuf>,
    /// Its text (for inline rules).
    pub text: String,
}

/// An error while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value in the file is wrong.
    #[error(transparent)]
    File(#[from] LocatedError),
    /// An environment variable is wrong.
    #[error("environment: {0}")]
    Env(String),
}

impl Config {
    /// Loads `path` (or only defaults and the environment when `path` is `None`), then the
    /// environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        match path {
            Some(p) => {
                let text = read_bounded(p, crate::rules::MAX_FILE_BYTES, "config file").map_err(
                    |source| ConfigError::Read {
                        path: p.to_path_buf(),
                        source,
                    },
                )?;
                Self::from_text(p, text, env)
            }
            None => Self::merge_env(Config::default(), None, String::new(), env),
        }
    }

    /// The configuration in `text`, read from the file `path` (named in errors; relative paths
    /// in it are made relative to its folder), then the environment, then validated: what
    /// [`Config::load_with_env`] does once the file is read.
    pub fn from_text(
        path: &Path,
        text: String,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let cfg: Config = from_toml(path, &text)?;
        cfg.validate(path, &text)?;
        Self::merge_env(cfg, Some(path), text, env)
    }

    fn merge_env(
        file_cfg: Config,
        path: Option<&Path>,
        text: String,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let rule = file_cfg.rule.clone();
        let env = section_vars(env);
        let mut config = file_cfg;
        if !env.is_empty() {
            config = merge_over(&config, &env).map_err(ConfigError::Env)?;
            config.rule = rule;
            let p = path.unwrap_or(Path::new("environment"));
            config
                .validate(p, "")
                .map_err(|e| ConfigError::Env(format!("{}: {}", e.key, e.message)))?;
        }
        if let Some(dir) = path.and_then(Path::parent) {
            config.resolve_paths(dir);
        }
        Ok(Loaded {
            config,
            path: path.map(Path::to_path_buf),
            text,
        })
    }

    /// Makes relative paths relative to the config file's folder.
    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        self.classify.rule_files.iter_mut().for_each(fix);
        self.classify.policy_files.iter_mut().for_each(fix);
        if !self.export.to_stdout() {
            fix(&mut self.export.path);
        }
        for p in [
            &mut self.relay.ca_file,
            &mut self.relay.cert_file,
            &mut self.relay.key_file,
            &mut self.metrics.web_config_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }
}
