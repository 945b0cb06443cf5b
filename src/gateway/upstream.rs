//! Upstream pools: addresses resolved at load time, chosen round-robin per request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::UpstreamSettings;

/// One named upstream with its resolved addresses.
#[derive(Debug)]
pub struct UpstreamPool {
    /// Name from the config (`override` for --upstream).
    pub name: String,
    addrs: Vec<SocketAddr>,
    next: AtomicUsize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
}

impl UpstreamPool {
    /// Resolves every address now (DNS happens at load, never per request).
    pub fn resolve(name: &str, s: &UpstreamSettings) -> Result<Self, String> {
        let mut addrs = Vec::new();
        for hostport in s.host_ports(name)? {
            let resolved = hostport.to_socket_addrs().map_err(|e| {
                format!("upstream `{name}`: cannot resolve `{hostport}`: {e} (write host:port)")
            })?;
            addrs.extend(resolved);
        }
        if addrs.is_empty() {
            return Err(format!("upstream `{name}`: no address resolved"));
        }
        Ok(UpstreamPool {
            name: name.to_string(),
            addrs,
            next: AtomicUsize::new(0),
            connect_timeout: Duration::from_millis(s.connect_timeout_ms),
            read_timeout: Duration::from_millis(s.read_timeout_ms),
        })
    }

    /// The next address, round-robin.
    #[inline]
    pub fn pick(&self) -> SocketAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when the pool has no address (never, once resolved).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Parses `--upstream URL` (`http://host:port`) into upstream settings.
pub fn override_settings(url: &str) -> Result<UpstreamSettings, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--upstream `{url}` must be http://host:port"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    Ok(UpstreamSettings {
        addresses: vec![hostport.to_string()],
        connect_timeout_ms: 1000,
        read_timeout_ms: 30_000,
    })
}
