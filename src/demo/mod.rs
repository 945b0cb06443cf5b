//! `rolegate demo`: the gateway on an embedded preset in front of a mock API, with ready tokens.

pub mod mock;

use std::path::{Path, PathBuf};

use crate::auth::{install_crypto_provider, mint_dev_token, DEV_SECRET_ENV};
use crate::config::{load_with, MemorySource};
use crate::gateway::server::{block_on, Listeners, RunningGateway};
use crate::gateway::{Overrides, Runtime, Shared};

/// The embedded default preset (enterprise portal roles), file by file.
pub const PRESET: [(&str, &str); 4] = [
    (
        "config/enterprise.yaml",
        include_str!("../../config/enterprise.yaml"),
    ),
    (
        "config/enterprise/actions.yaml",
        include_str!("../../config/enterprise/actions.yaml"),
    ),
    (
        "config/enterprise/roles.yaml",
        include_str!("../../config/enterprise/roles.yaml"),
    ),
    (
        "config/enterprise/routes.yaml",
        include_str!("../../config/enterprise/routes.yaml"),
    ),
];

/// The embedded preset as a configuration source.
pub fn preset_source() -> MemorySource {
    MemorySource(
        PRESET
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect(),
    )
}

/// Ports the demo listens on.
pub struct DemoPorts {
    /// Gateway.
    pub proxy: u16,
    /// Admin (metrics).
    pub admin: u16,
    /// Mock upstream.
    pub upstream: u16,
}

impl Default for DemoPorts {
    fn default() -> Self {
        DemoPorts {
            proxy: 8080,
            admin: 9090,
            upstream: 8081,
        }
    }
}

/// Runs the demo until Ctrl-C.
pub fn run(ports: DemoPorts) -> Result<(), String> {
    install_crypto_provider();
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    set_secret(&secret);
    let config = load_with(&preset_source(), Path::new("config/enterprise.yaml"))
        .map_err(|e| e.to_string())?;
    let overrides = Overrides {
        listen: Some(format!("127.0.0.1:{}", ports.proxy)),
        admin: Some(format!("127.0.0.1:{}", ports.admin)),
        upstream: Some(format!("http://127.0.0.1:{}", ports.upstream)),
    };
    let runtime = block_on(Runtime::build(&config, &overrides, None))?;
    let listeners = Listeners::from_runtime(&runtime, &overrides);
    let shared = Shared::new(runtime, None, overrides);
    let mock = mock::mock_service(&format!("127.0.0.1:{}", ports.upstream));
    let running = RunningGateway::start(shared.clone(), listeners, vec![Box::new(mock)])?;
    print_guide(&running, &secret, &ports)?;
    wait_for_ctrl_c();
    println!("\nstopping");
    running.stop();
    Ok(())
}

/// Sets the development secret; called before any other thread starts.
fn set_secret(secret: &str) {
    std::env::set_var(DEV_SECRET_ENV, secret);
}

fn wait_for_ctrl_c() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
}

fn print_guide(g: &RunningGateway, secret: &str, ports: &DemoPorts) -> Result<(), String> {
    let now = crate::gateway::proxy::now_secs();
    let token = |sub: &str, role: &str| {
        mint_dev_token(
            secret.as_bytes(),
            sub,
            "acme",
            &[role.to_string()],
            &[],
            3600,
            now,
        )
    };
    let admin = token("alice", "Company Admin")?;
    let reader = token("rita", "Read Only")?;
    let base = format!("http://{}", g.proxy);
    println!(
        r#"rolegate demo: enterprise portal roles in front of a mock cloud API

  gateway   {base}
  upstream  http://127.0.0.1:{up} (mock: echoes method, path and the X-Auth-* headers it receives)
  metrics   http://{admin_addr}/metrics   (also /healthz /readyz /policy)

Tokens (HS256, issuer rolegate-dev, tenant acme, valid 1 h):
  ADMIN={admin}
  READER={reader}

Allowed: a Company Admin deletes a service (200, forwarded):
  curl -i -X DELETE -H "Authorization: Bearer $ADMIN" {base}/api/tenants/acme/services/42

Denied: Read Only may view but not delete (403, answered by the gateway):
  curl -i -H "Authorization: Bearer $READER" {base}/api/tenants/acme/services/42
  curl -i -X DELETE -H "Authorization: Bearer $READER" {base}/api/tenants/acme/services/42

Denied: another tenant's services (403 tenant_mismatch):
  curl -i -H "Authorization: Bearer $ADMIN" {base}/api/tenants/globex/services

Unauthenticated: no token (401):
  curl -i {base}/api/tenants/acme/services

Metrics:
  curl -s http://{admin_addr}/metrics | grep rolegate_requests_total

Ctrl-C stops the demo."#,
        up = ports.upstream,
        admin_addr = g.admin,
    );
    Ok(())
}
