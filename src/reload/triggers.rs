//! Reload triggers: SIGHUP, a debounced watch on every file the configuration read, and polls of
//! the policy bundles it included by URL.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::{background_service, BackgroundService, GenBackgroundService};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::{Reloader, Trigger};
use crate::config::bundle::{self, BundleState, Poll};
use crate::gateway::Shared;

/// Quiet time after the last file event before a reload starts (bursts coalesce into one).
pub const DEBOUNCE: Duration = Duration::from_millis(250);
/// Longest a stream of file events may hold a reload back.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// The background service that turns SIGHUP and file changes into reloads.
pub struct Triggers {
    shared: Arc<Shared>,
}

/// The triggers as a pingora background service.
pub fn triggers_service(shared: Arc<Shared>) -> GenBackgroundService<Triggers> {
    background_service("reload triggers", Triggers { shared })
}

/// Directories holding the runtime's files. Watching directories catches editors that write a
/// temporary file and rename it, and a Kubernetes ConfigMap's `..data` symlink flip (seen in
/// the directory the path names); the directory a symlinked file resolves to is watched too,
/// so editing the target in place is seen.
fn wanted_dirs(shared: &Shared) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    let refused = shared
        .status
        .lock()
        .map(|s| s.refused_files.clone())
        .unwrap_or_default();
    for f in shared.runtime.load().files.iter().chain(refused.iter()) {
        let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        dirs.extend(abs.parent().map(Path::to_path_buf));
        if let Ok(real) = std::fs::canonicalize(&abs) {
            dirs.extend(real.parent().map(Path::to_path_buf));
        }
    }
    dirs
}

/// The directory watch: what is watched now, and the watcher (None when unavailable).
struct Watch {
    watcher: Option<RecommendedWatcher>,
    dirs: BTreeSet<PathBuf>,
}

impl Watch {
    /// Watches what the serving runtime read; a directory that cannot be watched now is tried
    /// again at the next call. True when a directory was added.
    fn update(&mut self, shared: &Shared) -> bool {
        let Some(w) = self.watcher.as_mut() else {
            return false;
        };
        let mut added = false;
        let want = wanted_dirs(shared);
        for d in self.dirs.difference(&want) {
            // A directory that is gone (an old ConfigMap revision) is no longer watched anyway.
            let _ = w.unwatch(d);
        }
        self.dirs.retain(|d| want.contains(d));
        for d in want {
            if self.dirs.contains(&d) {
                continue;
            }
            match w.watch(&d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(d);
                    added = true;
                }
                Err(e) => {
                    tracing::warn!(target: "rolegate::reload", dir = %d.display(), error = %e, "cannot watch")
                }
            }
        }
        added
    }
}

/// Waits until events stop for [`DEBOUNCE`], or [`MAX_DELAY`] at most.
async fn settle(rx: &mut UnboundedReceiver<()>) {
    let deadline = Instant::now() + MAX_DELAY;
    loop {
        let wait = DEBOUNCE.min(deadline.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            return;
        }
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(())) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

#[async_trait]
impl BackgroundService for Triggers {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(reloader) = self.shared.reloader.as_ref() else {
            let _ = shutdown.changed().await;
            return;
        };
        // First of all: from here on SIGHUP reloads instead of ending the process.
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(target: "rolegate::reload", error = %e, "SIGHUP unavailable; file changes and POST /reload still reload");
                None
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            // Opening and reading a file is no change; reading the configuration (a reload
            // itself) must not trigger another reload.
            if ev.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                let _ = tx.send(());
            }
        });
        let mut watch = Watch {
            watcher: watcher
                .map_err(|e| tracing::warn!(target: "rolegate::reload", error = %e, "file watching unavailable; SIGHUP and POST /reload still reload"))
                .ok(),
            dirs: BTreeSet::new(),
        };
        let _ = watch.update(&self.shared);
        let mut swaps = reloader.swaps();
        let mut bundles = BundlePoller::default();
        tracing::info!(target: "rolegate::reload", dirs = ?watch.dirs, sighup = hup.is_some(), "reload triggers ready");
        loop {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let poll_at = bundles.next_at(&self.shared);
            let poll_due = async {
                match poll_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = poll_due => bundles.poll(&self.shared, reloader).await,
                _ = hup_recv => {
                    let _ = reloader.reload_by(Trigger::Signal).await;
                }
                Ok(()) = swaps.changed() => bundles.seen.clear(),
                Some(()) = rx.recv() => {
                    settle(&mut rx).await;
                    on_files_changed(reloader).await;
                }
            }
            // Whatever reloaded, watch what the serving runtime reads now. A file in a directory
            // watched only from now on may have changed before the watch began: look once.
            swaps.mark_unchanged();
            if watch.update(&self.shared) && reloader.watches_files() {
                let _ = reloader.recheck_after_new_watch().await;
            }
        }
    }
}

/// A settled burst of file events: reload if watching is on and an input file changed.
async fn on_files_changed(reloader: &Reloader) {
    if reloader.watches_files() {
        let _ = reloader.reload_if_changed().await;
    }
}

/// Polls the serving runtime's policy bundles with `If-None-Match`; a changed one reloads.
#[derive(Default)]
struct BundlePoller {
    /// Bundles seen changed since the last swap (a reload that swapped nothing leaves the
    /// runtime's state behind, and must not be repeated at every poll).
    seen: HashMap<String, BundleState>,
    /// When the next poll is due (None: nothing to poll).
    next: Option<Instant>,
}

impl BundlePoller {
    /// The next poll's time, or None when the runtime has no bundle or polling is off.
    fn next_at(&mut self, shared: &Shared) -> Option<Instant> {
        let Some(period) = poll_period(shared) else {
            self.next = None;
            return None;
        };
        Some(*self.next.get_or_insert_with(|| Instant::now() + period))
    }

    /// Polls every bundle once; reloads when one changed.
    async fn poll(&mut self, shared: &Shared, reloader: &Reloader) {
        let states: Vec<BundleState> = shared
            .runtime
            .load()
            .bundles
            .iter()
            .map(|b| self.seen.get(&b.url).unwrap_or(b).clone())
            .collect();
        let polled = tokio::task::spawn_blocking(move || {
            states
                .into_iter()
                .map(|s| (s.url.clone(), bundle::poll(&s)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut changed = Vec::new();
        for (url, result) in polled {
            match result {
                Ok(Poll::Unchanged) => shared.metrics.bundle_poll("unchanged"),
                Ok(Poll::Changed(state)) => {
                    shared.metrics.bundle_poll("changed");
                    changed.push(state);
                }
                Err(e) => {
                    shared.metrics.bundle_poll("error");
                    tracing::warn!(target: "rolegate::reload", url = url.as_str(), error = e.as_str(), "policy bundle poll failed; the serving revision stays");
                }
            }
        }
        // A failed reload leaves `seen` as it was, so the next poll tries again.
        if !changed.is_empty() && reloader.reload_by(Trigger::Bundle).await.is_ok() {
            self.seen
                .extend(changed.into_iter().map(|s| (s.url.clone(), s)));
        }
        self.next = poll_period(shared).map(|p| Instant::now() + p);
    }
}

/// `gateway.bundle_poll_seconds` with ±10% jitter, so a fleet's polls spread out; None when
/// the runtime includes no bundle or polling is off.
fn poll_period(shared: &Shared) -> Option<Duration> {
    let rt = shared.runtime.load();
    let secs = rt.settings.bundle_poll_seconds;
    if rt.bundles.is_empty() || secs == 0 {
        return None;
    }
    Some(Duration::from_secs(secs).mul_f64(rand::random_range(0.9..1.1)))
}
