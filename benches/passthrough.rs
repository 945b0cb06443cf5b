//! A bare pingora reverse proxy (no decision, no header rewrite, no metrics) with the same pingora
//! version and server settings as rolegate: the ceiling rolegate's proxying can reach, run by
//! benches/load.sh beside rolegate. Without PASSTHROUGH_LISTEN it does nothing, so a plain
//! `cargo bench` passes over it.
//!
//! PASSTHROUGH_LISTEN=127.0.0.1:18088 PASSTHROUGH_UPSTREAM=127.0.0.1:18081 PASSTHROUGH_THREADS=2 \
//!   target/release/deps/passthrough-* (built by `cargo bench --bench passthrough --no-run`)

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

/// The same allocator as the rolegate binary, so the two differ only by what rolegate does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Passthrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let Ok(listen) = std::env::var("PASSTHROUGH_LISTEN") else {
        eprintln!("passthrough: set PASSTHROUGH_LISTEN to run (benches/load.sh does)");
        return;
    };
    let upstream: SocketAddr = std::env::var("PASSTHROUGH_UPSTREAM")
        .expect("PASSTHROUGH_UPSTREAM=host:port")
        .parse()
        .expect("PASSTHROUGH_UPSTREAM is an IP:port");
    let threads: usize = std::env::var("PASSTHROUGH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let conf = ServerConf {
        threads,
        // Same default as rolegate's `gateway.work_stealing` (off); PASSTHROUGH_WORK_STEALING=1 turns it on.
        work_stealing: std::env::var("PASSTHROUGH_WORK_STEALING").is_ok_and(|v| v == "1"),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf = server.configuration.clone();
    let mut proxy = pingora::proxy::http_proxy_service(&conf, Passthrough { upstream });
    proxy.add_tcp(&listen);
    proxy.threads = Some(threads);
    server.add_service(proxy);
    server.run(RunArgs::default());
}
