//! Reload: read -> compile -> validate -> swap, off the request path; a bad config never takes effect.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

mod stamp;
mod triggers;

pub use stamp::Stamp;
pub use triggers::{triggers_service, Triggers, DEBOUNCE, MAX_DELAY};

use crate::config::load_file;
use crate::gateway::{Overrides, Runtime, Shared};

/// What a successful reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new revision is serving.
    Swapped,
    /// The files compiled to the revision already serving; nothing was swapped.
    Unchanged,
}

impl Outcome {
    /// `swapped` or `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Swapped => "swapped",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// What asked for a reload (named in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /reload` on the admin listener.
    Admin,
    /// SIGHUP.
    Signal,
    /// A change to a file the configuration read.
    Files,
    /// A changed policy bundle (polled URL).
    Bundle,
    /// A direct call (embedding programs, tests).
    Api,
}

impl Trigger {
    /// `admin`, `signal`, `files`, `bundle` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Signal => "signal",
            Trigger::Files => "files",
            Trigger::Bundle => "bundle",
            Trigger::Api => "api",
        }
    }
}

/// What the blocking half of a reload produced.
enum Built {
    /// Every input file is as it was at the last good load: nothing to do.
    Same,
    /// A runtime (or the reason there is none and the files that attempt read), with the stamp
    /// taken before reading.
    Done(
        Stamp,
        Vec<PathBuf>,
        Result<Box<Runtime>, (String, Vec<PathBuf>)>,
    ),
}

/// Rebuilds the runtime from the configuration file and swaps it in.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    shared: Weak<Shared>,
    /// One reload at a time; holds the input stamp of the last good load (None: unknown).
    last_good: tokio::sync::Mutex<Option<Stamp>>,
    /// The last attempt was refused (a recheck would only refuse it again).
    last_refused: AtomicBool,
    watch_files: AtomicBool,
    swaps: tokio::sync::watch::Sender<u64>,
}

impl Reloader {
    /// A reloader for the configuration at `path`.
    pub fn new(path: PathBuf, overrides: Overrides, shared: Weak<Shared>) -> Self {
        Reloader {
            path,
            overrides,
            shared,
            last_good: tokio::sync::Mutex::new(None),
            last_refused: AtomicBool::new(false),
            watch_files: AtomicBool::new(true),
            swaps: tokio::sync::watch::channel(0).0,
        }
    }

    /// The root configuration file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Turns reloading on file changes on (the default) or off; SIGHUP and `POST /reload`
    /// reload either way. Off suits updates of several files that must take effect together.
    pub fn set_watch_files(&self, on: bool) {
        self.watch_files.store(on, Ordering::Relaxed);
    }

    /// True when file changes trigger reloads.
    pub fn watches_files(&self) -> bool {
        self.watch_files.load(Ordering::Relaxed)
    }

    /// Changes (to a swap count) after every swap, whatever triggered it.
    pub fn swaps(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// Reloads now (trigger `api`). See [`Reloader::reload_by`].
    pub async fn reload(&self) -> Result<Outcome, String> {
        self.reload_by(Trigger::Api).await
    }

    /// Reloads now: reads and compiles every file again, swaps when the result differs from
    /// the serving runtime. Concurrent calls run one after the other; requests in flight keep
    /// the runtime they started with.
    pub async fn reload_by(&self, trigger: Trigger) -> Result<Outcome, String> {
        match self.run(trigger, false).await {
            Some(r) => r,
            None => Ok(Outcome::Unchanged),
        }
    }

    /// Reloads when a file the serving runtime was built from changed since the last good
    /// load (trigger `files`); `None` when none did (nothing is read, compiled or counted).
    pub async fn reload_if_changed(&self) -> Option<Result<Outcome, String>> {
        self.run(Trigger::Files, true).await
    }

    /// After the watch gained a directory: reloads if an input changed since the last good load,
    /// which an edit between that load and the new watch would otherwise leave unseen. Nothing
    /// happens after a refused attempt (it is not retried until a file changes).
    pub async fn recheck_after_new_watch(&self) -> Option<Result<Outcome, String>> {
        if self.last_refused.load(Ordering::Relaxed) {
            return None;
        }
        self.run(Trigger::Files, true).await
    }

    async fn run(
        &self,
        trigger: Trigger,
        only_if_changed: bool,
    ) -> Option<Result<Outcome, String>> {
        let mut last_good = self.last_good.lock().await;
        let Some(shared) = self.shared.upgrade() else {
            return Some(Err("the gateway is shutting down".into()));
        };
        let current = shared.runtime.load_full();
        let built = self
            .build(current.clone(), (*last_good).filter(|_| only_if_changed))
            .await;
        let (before, read, built) = match built {
            Built::Same => return None,
            Built::Done(before, read, built) => (before, read, built),
        };
        let result = match built {
            Ok(rt) => {
                self.last_refused.store(false, Ordering::Relaxed);
                // The stamp was taken before reading, so it can only be older than what was
                // compiled: a later event then reloads once more, never too few times.
                *last_good = (stamp::inputs(&self.path, &rt.files) == read).then_some(before);
                if let Ok(mut s) = shared.status.lock() {
                    s.refused_files.clear();
                }
                Ok(self.swap(&shared, &current, *rt, trigger))
            }
            Err((e, files)) => {
                *last_good = None;
                self.last_refused.store(true, Ordering::Relaxed);
                shared.metrics.reload(false);
                tracing::error!(target: "rolegate::reload", trigger = trigger.as_str(), error = e.as_str(), "configuration refused; the previous revision keeps serving");
                if let Ok(mut s) = shared.status.lock() {
                    s.last_error = Some(e.clone());
                    s.last_error_at = Some(crate::gateway::proxy::now_secs());
                    s.refused_files = files;
                }
                Err(e)
            }
        };
        Some(result)
    }

    /// Reads, compiles and validates on a blocking thread, away from every request.
    async fn build(&self, current: Arc<Runtime>, skip_if: Option<Stamp>) -> Built {
        let path = self.path.clone();
        let overrides = self.overrides.clone();
        let handle = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            let read = stamp::inputs(&path, &current.files);
            let before = Stamp::of(&read);
            if skip_if == Some(before) {
                return Built::Same;
            }
            let rt = match load_file(&path) {
                Err(e) => Err((e.to_string(), vec![PathBuf::from(&*e.origin.file)])),
                Ok(config) => handle
                    .block_on(Runtime::build(&config, &overrides, Some(&current)))
                    .map_err(|e| (e, config.files.clone())),
            };
            Built::Done(before, read, rt.map(Box::new))
        });
        match task.await {
            Ok(b) => b,
            Err(e) => Built::Done(
                Stamp::of(&[]),
                Vec::new(),
                Err((format!("the reload task failed: {e}"), Vec::new())),
            ),
        }
    }

    /// Swaps `rt` in unless it is what `current` already is; counts and logs either way.
    fn swap(&self, shared: &Shared, current: &Runtime, rt: Runtime, trigger: Trigger) -> Outcome {
        if rt.fingerprint == current.fingerprint {
            shared.metrics.reload(true);
            tracing::info!(target: "rolegate::reload", trigger = trigger.as_str(), revision = current.policy.short_revision(), "configuration unchanged");
            return Outcome::Unchanged;
        }
        let revision = rt.policy.revision().to_string();
        shared.runtime.store(Arc::new(rt));
        shared.metrics.set_policy(&revision);
        shared.metrics.reload(true);
        self.swaps.send_modify(|n| *n += 1);
        tracing::info!(target: "rolegate::reload", trigger = trigger.as_str(), revision = revision.as_str(), "policy swapped");
        Outcome::Swapped
    }
}
