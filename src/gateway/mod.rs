//! The gateway: a pingora reverse proxy that decides every request, plus its admin service.

pub mod admin;
pub mod decision_log;
pub mod headers;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod respond;
pub mod runtime;
pub mod server;
pub mod upstream;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use metrics::Metrics;
pub use runtime::{Overrides, Runtime};
pub use server::{serve, RunningGateway};

/// What the last reload attempt left behind, for `/policy`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// The last refused configuration's error.
    pub last_error: Option<String>,
    /// Unix time of that error.
    pub last_error_at: Option<u64>,
    /// Files the refused configuration read (or the one its error is in): watched too, so
    /// fixing a file that only the refused configuration names reloads.
    pub refused_files: Vec<std::path::PathBuf>,
}

/// State shared by the proxy, the admin service and the reloader.
pub struct Shared {
    /// The runtime serving requests; replaced whole on reload.
    pub runtime: ArcSwap<Runtime>,
    /// Metrics.
    pub metrics: Metrics,
    /// Reload bookkeeping.
    pub status: Mutex<ReloadStatus>,
    /// Where the configuration was read from (None for embedded configs: no reload).
    pub reloader: Option<crate::reload::Reloader>,
}

impl Shared {
    /// Shared state serving `runtime`; `reloader` enables reloads.
    pub fn new(runtime: Runtime, config_path: Option<PathBuf>, overrides: Overrides) -> Arc<Self> {
        let metrics = Metrics::new();
        metrics.set_policy(runtime.policy.revision());
        metrics.reload(true);
        Arc::new_cyclic(|weak| Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            status: Mutex::new(ReloadStatus::default()),
            reloader: config_path.map(|p| crate::reload::Reloader::new(p, overrides, weak.clone())),
        })
    }
}
