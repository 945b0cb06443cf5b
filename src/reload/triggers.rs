//! Reload triggers: SIGHUP and a debounced watch on every file the configuration read.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::{background_service, BackgroundService, GenBackgroundService};

use crate::gateway::Shared;

/// Quiet time after the last file event before a reload starts (bursts coalesce into one).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// The background service that turns SIGHUP and file changes into reloads.
pub struct Triggers {
    shared: Arc<Shared>,
}

/// The triggers as a pingora background service.
pub fn triggers_service(shared: Arc<Shared>) -> GenBackgroundService<Triggers> {
    background_service("reload triggers", Triggers { shared })
}

/// Directories holding the runtime's files: watching directories catches editors that write a
/// temporary file and rename it, and a Kubernetes ConfigMap's `..data` symlink flip.
fn watched_dirs(shared: &Shared) -> BTreeSet<PathBuf> {
    shared
        .runtime
        .load()
        .files
        .iter()
        .filter_map(|f| {
            let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
            abs.parent().map(|p| p.to_path_buf())
        })
        .collect()
}

#[async_trait]
impl BackgroundService for Triggers {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(reloader) = self.shared.reloader.as_ref() else {
            let _ = shutdown.changed().await;
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher = match notify::recommended_watcher(
            move |ev: notify::Result<notify::Event>| {
                if ev.is_ok() {
                    let _ = tx.send(());
                }
            },
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(target: "rolegate::reload", error = %e, "file watching unavailable; SIGHUP and POST /reload still work");
                None
            }
        };
        let mut dirs = BTreeSet::new();
        let rewatch = |watcher: &mut Option<notify::RecommendedWatcher>,
                       dirs: &mut BTreeSet<PathBuf>| {
            let Some(w) = watcher.as_mut() else { return };
            let want = watched_dirs(&self.shared);
            for d in dirs.difference(&want) {
                let _ = w.unwatch(d);
            }
            for d in want.difference(dirs) {
                if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                    tracing::warn!(target: "rolegate::reload", dir = %d.display(), error = %e, "cannot watch");
                }
            }
            *dirs = want;
        };
        rewatch(&mut watcher, &mut dirs);
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hup_recv => {}
                Some(()) = rx.recv() => {
                    // Coalesce a burst of events into one reload.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                }
            }
            let _ = reloader.reload().await;
            rewatch(&mut watcher, &mut dirs);
        }
    }
}
