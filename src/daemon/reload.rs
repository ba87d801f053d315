//! Reloading: `POST /-/reload`, `SIGHUP` and changes of the watched files (debounced) all
//! re-read the config, rules and web config; a reload that fails keeps the previous ones (all
//! of them: nothing is half applied).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::classify::Classifier;
use crate::load;
use crate::metrics::Metrics;
use crate::server::ReloadRequest;
use crate::supervise::TaskResult;
use crate::watcher::{self, Targets};
use crate::web::{WebConfig, WebHandle};

/// Re-reads the config, rules and web config; on success swaps the classifier and the web
/// config, else keeps the old ones.
pub fn reload(
    path: Option<&Path>,
    metrics: &Metrics,
    cls_tx: &watch::Sender<Arc<Classifier>>,
    web: &WebHandle,
) -> Result<(), String> {
    let result = load::config(path).map_err(|e| e.to_string()).and_then(|l| {
        let c = load::classifier(&l).map_err(|e| e.to_string())?;
        let w = WebConfig::load(l.config.metrics.web_config_file.as_deref())
            .map_err(|e| e.to_string())?;
        Ok((c, w))
    });
    match result {
        Ok((c, w)) => {
            log_warnings(&c);
            metrics.set_rules(c.rules.rules());
            cls_tx.send_replace(Arc::new(c));
            web.set(w);
            metrics.record_reload(true);
            tracing::info!("configuration reloaded");
            Ok(())
        }
        Err(e) => {
            metrics.record_reload(false);
            tracing::error!(error = %e, "reload failed, previous rules kept");
            Err(e)
        }
    }
}

pub(super) fn log_warnings(c: &Classifier) {
    for w in c.policies.warnings() {
        tracing::warn!(warning = %w, "policy import");
    }
}

/// Starts watching `targets`; a watcher that cannot start is logged (reload still works by
/// SIGHUP and `POST /-/reload`).
fn start_watch(targets: Targets, tx: &mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    match watcher::watch(targets, tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config's files");
            None
        }
    }
}

/// Waits until no change has come for [`watcher::DEBOUNCE`].
async fn quiet(changes: &mut mpsc::Receiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(watcher::DEBOUNCE, changes.recv()).await {}
}

pub(super) async fn reloader(
    path: Option<PathBuf>,
    targets: Targets,
    metrics: Arc<Metrics>,
    cls_tx: watch::Sender<Arc<Classifier>>,
    web: Arc<WebHandle>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    stop: impl Future<Output = ()>,
) -> TaskResult {
    tokio::pin!(stop);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let (change_tx, mut changes) = mpsc::channel::<()>(1);
    let mut targets = targets;
    let mut _watcher = start_watch(targets.clone(), &change_tx);
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<()>();
        tokio::select! {
            // Stop first: at shutdown the server drops its end of `requests` too, and that
            // must not read as a failure.
            biased;
            () = &mut stop => return Ok(()),
            req = requests.recv() => {
                let Some(answer) = req else {
                    // The server drops its end when it stops; at shutdown that comes with the
                    // stop signal, possibly a moment before this task sees it.
                    return match tokio::time::timeout(std::time::Duration::from_secs(1), &mut stop).await {
                        Ok(()) => Ok(()),
                        Err(_) => Err("its request channel closed".into()),
                    };
                };
                let _ = answer.send(reload(path.as_deref(), &metrics, &cls_tx, &web));
            }
            () = sighup => {
                tracing::info!("SIGHUP: reloading");
                let _ = reload(path.as_deref(), &metrics, &cls_tx, &web);
            }
            Some(()) = changes.recv() => {
                quiet(&mut changes).await;
                tracing::info!("watched file changed: reloading");
                let _ = reload(path.as_deref(), &metrics, &cls_tx, &web);
            }
        }
        // The config may now name other files.
        if let Ok(l) = load::config(path.as_deref()) {
            let new = Targets::of(l.path.as_deref(), &l.config);
            if new != targets {
                targets = new;
                _watcher = start_watch(targets.clone(), &change_tx);
            }
        }
    }
}
