//! Watches the files the configuration names (the config itself, rule files, policy files and
//! directories, TLS files, the web config and the TLS files it names) and reports changes
//! (PRODUCT.md §6: "Files named by the config are watched").
//!
//! The parent directories are watched, not the files: an editor that saves by rename, or
//! Kubernetes swapping a ConfigMap's `..data` symlink, replaces the file itself, and a watch on
//! the old inode would go silent. Events are filtered to the named files (and hidden `..*`
//! entries beside them, which is how the symlink swap shows), then debounced by the caller.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;

/// How long the files must be quiet before a change is acted on.
pub const DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

/// What to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Files: their parent directories are watched, events on the file count.
    pub files: Vec<PathBuf>,
    /// Directories (policy directories): watched recursively, any event under them counts.
    pub dirs: Vec<PathBuf>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Targets {
    /// The config file (when there is one) and every file the config names.
    pub fn of(config_path: Option<&Path>, cfg: &Config) -> Self {
        let mut t = Targets::default();
        let add_file = |p: &Path, t: &mut Targets| t.files.push(absolute(p));
        if let Some(p) = config_path {
            add_file(p, &mut t);
        }
        for p in &cfg.classify.rule_files {
            add_file(p, &mut t);
        }
        for p in [
            &cfg.relay.ca_file,
            &cfg.relay.cert_file,
            &cfg.relay.key_file,
        ]
        .into_iter()
        .flatten()
        {
            add_file(p, &mut t);
        }
        if let Some(web) = &cfg.metrics.web_config_file {
            for p in crate::web::watched_files(web) {
                add_file(&p, &mut t);
            }
        }
        for p in &cfg.classify.policy_files {
            if p.is_dir() {
                t.dirs.push(absolute(p));
            } else {
                add_file(p, &mut t);
            }
        }
        t
    }

    /// Whether a change at `path` concerns one of the targets.
    pub fn concerns(&self, path: &Path) -> bool {
        if self.dirs.iter().any(|d| path.starts_with(d)) {
            return true;
        }
        self.files.iter().any(|f| {
            path == f
                || (path.parent() == f.parent()
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("..")))
        })
    }
}

/// Starts watching; every relevant change sends `()` on `tx` (dropped when one is pending).
/// The watcher stops when the returned value is dropped.
pub fn watch(targets: Targets, tx: mpsc::Sender<()>) -> notify::Result<RecommendedWatcher> {
    let filter = targets.clone();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        // Opening and reading (our own reload reads every file) are not changes.
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        if ev.paths.iter().any(|p| filter.concerns(p)) {
            let _ = tx.try_send(());
        }
    })?;
    let mut parents: Vec<PathBuf> = targets
        .files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    parents.sort();
    parents.dedup();
    for p in &parents {
        if let Err(e) = w.watch(p, RecursiveMode::NonRecursive) {
            tracing::warn!(path = %p.display(), error = %e, "cannot watch");
        }
    }
    for d in &targets.dirs {
        if let Err(e) = w.watch(d, RecursiveMode::Recursive) {
            tracing::warn!(path = %d.display(), error = %e, "cannot watch");
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concerns_named_files_symlink_swaps_and_policy_dirs() {
        let t = Targets {
            files: vec!["/etc/hn/config.toml".into(), "/etc/hn/rules.toml".into()],
            dirs: vec!["/etc/policies".into()],
        };
        assert!(t.concerns(Path::new("/etc/hn/rules.toml")));
        assert!(t.concerns(Path::new("/etc/hn/..data")));
        assert!(t.concerns(Path::new("/etc/hn/..2026_11_29_19_00_00.123")));
        assert!(t.concerns(Path::new("/etc/policies/a/b.yaml")));
        assert!(!t.concerns(Path::new("/etc/hn/other.toml")));
        assert!(!t.concerns(Path::new("/etc/other/rules.toml")));
    }
}
