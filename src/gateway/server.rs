//! Building and running the pingora server: the proxy service, the admin service and the
//! background services (reload triggers, key refresh).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;

use super::admin::Admin;
use super::proxy::Gateway;
use super::runtime::{Overrides, Runtime};
use super::Shared;
use crate::config::load_file;

/// Addresses and process settings of one server.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// Proxy listener.
    pub proxy: String,
    /// Admin listener.
    pub admin: String,
    /// Proxy worker threads.
    pub threads: usize,
    /// One work-stealing runtime for all threads instead of one runtime per thread.
    pub work_stealing: bool,
    /// Seconds to keep serving after SIGTERM.
    pub grace_period_seconds: u64,
}

impl Listeners {
    /// Checks that both addresses can be listened on, so a port in use is a clear error at start
    /// rather than pingora's retries and a panic on its service thread.
    pub fn ensure_free(&self) -> Result<(), String> {
        if self.proxy == self.admin {
            return Err(format!(
                "the proxy and the admin listener are both {}: give them different addresses",
                self.proxy
            ));
        }
        for (what, addr, flag) in [
            ("proxy", &self.proxy, "--listen or gateway.listen"),
            ("admin", &self.admin, "--admin or gateway.admin"),
        ] {
            if let Err(e) = std::net::TcpListener::bind(addr.as_str()) {
                return Err(format!(
                    "cannot listen on {addr} ({what}): {e}; stop what holds it or pick another address with {flag}"
                ));
            }
        }
        Ok(())
    }

    /// The listeners a runtime's settings ask for, with command-line overrides applied.
    pub fn from_runtime(rt: &Runtime, o: &Overrides) -> Self {
        Listeners {
            proxy: o
                .listen
                .clone()
                .unwrap_or_else(|| rt.settings.listen.clone()),
            admin: o.admin.clone().unwrap_or_else(|| rt.settings.admin.clone()),
            threads: rt.settings.threads.max(1),
            work_stealing: rt.settings.work_stealing,
            grace_period_seconds: rt.settings.grace_period_seconds,
        }
    }
}

/// Extra services to run beside the gateway (the demo's mock upstream, for instance).
pub type ExtraServices = Vec<Box<dyn pingora::services::ServiceWithDependents>>;

/// Builds the pingora server with the proxy and admin services.
pub fn build_server(shared: Arc<Shared>, l: &Listeners, extra: ExtraServices) -> Server {
    let conf = ServerConf {
        threads: l.threads,
        work_stealing: l.work_stealing,
        grace_period_seconds: Some(l.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(l.grace_period_seconds.min(5)),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf = server.configuration.clone();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &conf,
        Gateway::new(shared.clone()),
        "rolegate proxy",
    );
    proxy.add_tcp(&l.proxy);
    proxy.threads = Some(l.threads);
    let mut admin = Service::new("rolegate admin".to_string(), Admin::new(shared.clone()));
    admin.add_tcp(&l.admin);
    admin.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(crate::reload::triggers_service(shared));
    for s in extra {
        server.add_boxed_service(s);
    }
    server
}

/// Loads the configuration and builds the first runtime (all load-time I/O happens here).
pub fn load_runtime(path: &Path, overrides: &Overrides) -> Result<Runtime, String> {
    let config = load_file(path).map_err(|e| e.to_string())?;
    build_runtime(path, &config, overrides)
}

/// Builds the first runtime from a configuration loaded from `path`: keys, upstreams, settings.
pub fn build_runtime(
    path: &Path,
    config: &crate::config::Config,
    overrides: &Overrides,
) -> Result<Runtime, String> {
    // Settings and key errors name the configuration they came from.
    block_on(Runtime::build(config, overrides, None))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a future to completion on a short-lived runtime (load time only).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    }
}

/// `rolegate serve`: load, then run until SIGTERM (graceful) or SIGINT (fast).
pub fn serve(path: &Path, overrides: Overrides) -> Result<(), String> {
    crate::auth::install_crypto_provider();
    let runtime = load_runtime(path, &overrides)?;
    let listeners = Listeners::from_runtime(&runtime, &overrides);
    listeners.ensure_free()?;
    tracing::info!(
        target: "rolegate",
        proxy = listeners.proxy.as_str(),
        admin = listeners.admin.as_str(),
        revision = runtime.policy.short_revision(),
        "serving"
    );
    let shared = Shared::new(runtime, Some(path.to_path_buf()), overrides);
    let server = build_server(shared, &listeners, Vec::new());
    server.run(RunArgs::default());
    Ok(())
}

/// Stops a server started by [`RunningGateway::start`].
struct StopWatch(Arc<tokio::sync::Notify>);

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::GracefulTerminate
    }
}

/// A gateway running on its own thread (tests, the demo); stopped on drop.
pub struct RunningGateway {
    /// State shared with the running services.
    pub shared: Arc<Shared>,
    /// Proxy address.
    pub proxy: String,
    /// Admin address.
    pub admin: String,
    stop: Arc<tokio::sync::Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningGateway {
    /// Starts the server on a thread and waits until both listeners accept connections.
    pub fn start(
        shared: Arc<Shared>,
        listeners: Listeners,
        extra: ExtraServices,
    ) -> Result<Self, String> {
        listeners.ensure_free()?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let server = build_server(shared.clone(), &listeners, extra);
        let watch = StopWatch(stop.clone());
        let thread = std::thread::Builder::new()
            .name("rolegate-server".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(watch),
                })
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        let running = RunningGateway {
            shared,
            proxy: listeners.proxy,
            admin: listeners.admin,
            stop,
            thread: Some(thread),
        };
        for addr in [&running.proxy, &running.admin] {
            wait_listening(addr)?;
        }
        Ok(running)
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Waits (up to 10 s) until `addr` accepts TCP connections.
pub fn wait_listening(addr: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("nothing listens on {addr} after 10 s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
