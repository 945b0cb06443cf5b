//! Reload: read -> compile -> validate -> swap, off the request path; a bad config never takes effect.

use std::path::PathBuf;
use std::sync::Weak;

mod triggers;

pub use triggers::{triggers_service, Triggers, DEBOUNCE};

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

/// Rebuilds the runtime from the configuration file and swaps it in.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    shared: Weak<Shared>,
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for the configuration at `path`.
    pub fn new(path: PathBuf, overrides: Overrides, shared: Weak<Shared>) -> Self {
        Reloader {
            path,
            overrides,
            shared,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The root configuration file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reloads now. Concurrent calls run one after the other; requests in flight keep the
    /// runtime they started with.
    pub async fn reload(&self) -> Result<Outcome, String> {
        let _one_at_a_time = self.lock.lock().await;
        let shared = self
            .shared
            .upgrade()
            .ok_or("the gateway is shutting down")?;
        let current = shared.runtime.load_full();
        let path = self.path.clone();
        let built = match tokio::task::spawn_blocking(move || load_file(&path)).await {
            Ok(Ok(config)) => Runtime::build(&config, &self.overrides, Some(&current)).await,
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("reload task failed: {e}")),
        };
        match built {
            Ok(rt) if rt.fingerprint == current.fingerprint => {
                shared.metrics.reload(true);
                Ok(Outcome::Unchanged)
            }
            Ok(rt) => {
                let revision = rt.policy.revision().to_string();
                shared.runtime.store(std::sync::Arc::new(rt));
                shared.metrics.set_policy(&revision);
                shared.metrics.reload(true);
                tracing::info!(target: "rolegate::reload", revision = revision.as_str(), "policy swapped");
                Ok(Outcome::Swapped)
            }
            Err(e) => {
                shared.metrics.reload(false);
                tracing::error!(target: "rolegate::reload", error = e.as_str(), "configuration refused; the previous revision keeps serving");
                if let Ok(mut s) = shared.status.lock() {
                    s.last_error = Some(e.clone());
                    s.last_error_at = Some(crate::gateway::proxy::now_secs());
                }
                Err(e)
            }
        }
    }
}
