//! One loaded revision of everything a request needs: policy, keys, upstreams and settings.
//! Built at load/reload time (all I/O happens here) and swapped whole.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use http::HeaderName;
use sha2::{Digest, Sha256};

use super::metrics::RequestCounters;
use super::upstream::{override_settings, UpstreamPool};
use crate::auth::{TokenCache, Verifier};
use crate::config::bundle::BundleState;
use crate::config::{ClaimMapping, Config, GatewaySettings};
use crate::policy::{CompiledPolicy, Principal, Subject};

/// Command-line overrides of the configuration, for scripts and tests.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--admin ADDR`.
    pub admin: Option<String>,
    /// `--upstream URL`: every route goes there.
    pub upstream: Option<String>,
}

/// A verified caller kept in the token cache: the principal, and its resolution against the
/// policy generation that last used it.
pub struct CachedCaller {
    /// Who the token says the caller is.
    pub principal: Principal,
    /// The issuer that signed the token (its key freshness is checked on every cache hit).
    pub issuer: Box<str>,
    /// Subject resolved against one policy generation.
    pub subject: ArcSwapOption<Subject>,
}

impl CachedCaller {
    /// Wraps a principal verified with `issuer`'s keys.
    pub fn new(principal: Principal, issuer: &str) -> Self {
        CachedCaller {
            issuer: issuer.into(),
            principal,
            subject: ArcSwapOption::empty(),
        }
    }

    /// The subject for `policy`, resolved once per policy generation.
    #[inline]
    pub fn subject_for(&self, policy: &CompiledPolicy) -> Arc<Subject> {
        if let Some(s) = self.subject.load_full() {
            if s.generation == policy.generation() {
                return s;
            }
        }
        let s = Arc::new(policy.resolve(&self.principal));
        self.subject.store(Some(s.clone()));
        s
    }
}

/// Token verification state shared across reloads while the auth configuration is unchanged.
pub struct AuthRuntime {
    /// The verifier.
    pub verifier: Arc<Verifier>,
    /// Verified tokens.
    pub cache: TokenCache<CachedCaller>,
    /// Hash of the auth settings, claim mapping and key material.
    pub fingerprint: String,
}

/// Everything one request is decided and forwarded with.
pub struct Runtime {
    /// The compiled policy.
    pub policy: CompiledPolicy,
    /// Metric handles for the policy's catalog.
    pub counters: RequestCounters,
    /// Upstreams, aligned with `policy.upstreams()`, or the single `--upstream` override.
    pub upstreams: Vec<UpstreamPool>,
    /// True when every route goes to `upstreams[0]`.
    pub override_upstream: bool,
    /// Gateway settings.
    pub settings: GatewaySettings,
    /// Token verification.
    pub auth: Arc<AuthRuntime>,
    /// Claim mapping.
    pub claims: ClaimMapping,
    /// Extra headers to strip.
    pub strip: Vec<HeaderName>,
    /// Trusted proxy addresses.
    pub trusted_proxies: Vec<IpAddr>,
    /// Files read to build this runtime (config and keys), for the watcher.
    pub files: Vec<PathBuf>,
    /// Policy bundles included by URL, as fetched, for the poller.
    pub bundles: Vec<BundleState>,
    /// When it was built.
    pub loaded_at: SystemTime,
    /// Identity of this runtime: policy revision plus key material.
    pub fingerprint: String,
}

impl Runtime {
    /// Builds a runtime from a loaded config. Reuses `previous` auth state when unchanged.
    pub async fn build(
        config: &Config,
        overrides: &Overrides,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, String> {
        let policy = CompiledPolicy::compile(config).map_err(|e| e.to_string())?;
        let auth_fp = auth_fingerprint(config)?;
        let auth = match previous {
            Some(p) if p.auth.fingerprint == auth_fp => p.auth.clone(),
            _ => {
                let verifier = Verifier::load(&config.auth, &config.claims, &config.base_dir)
                    .await
                    .map_err(|e| e.to_string())?;
                Arc::new(AuthRuntime {
                    verifier: Arc::new(verifier),
                    cache: TokenCache::new(config.auth.cache_capacity),
                    fingerprint: auth_fp.clone(),
                })
            }
        };
        let (upstreams, override_upstream) = match &overrides.upstream {
            Some(url) => (
                vec![UpstreamPool::resolve("override", &override_settings(url)?)?],
                true,
            ),
            None => {
                let pools = config
                    .upstreams
                    .iter()
                    .map(|(name, s)| UpstreamPool::resolve(&name.value, s))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(e) = policy
                    .routes()
                    .entries()
                    .iter()
                    .find(|e| e.upstream.is_none())
                {
                    return Err(format!(
                        "route `{}` has no upstream: define one under `upstreams:` or pass --upstream URL",
                        e.template
                    ));
                }
                (pools, false)
            }
        };
        let strip = config
            .gateway
            .strip_headers
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| format!("gateway.strip_headers: `{h}` is not a header name"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let level = config.gateway.decision_log.level.as_str();
        if !super::decision_log::LEVELS.contains(&level) {
            return Err(format!(
                "gateway.decision_log.level: `{level}` is not one of {}",
                super::decision_log::LEVELS.join(", ")
            ));
        }
        let trusted_proxies = config
            .gateway
            .trusted_proxies
            .iter()
            .map(|a| {
                a.parse::<IpAddr>()
                    .map_err(|_| format!("gateway.trusted_proxies: `{a}` is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut files = config.files.clone();
        files.extend(auth.verifier.key_sources());
        let fingerprint = hex::encode(Sha256::digest(format!(
            "{}|{}|{:?}",
            policy.revision(),
            auth.fingerprint,
            overrides.upstream
        )));
        Ok(Runtime {
            counters: RequestCounters::new(&policy),
            policy,
            upstreams,
            override_upstream,
            settings: config.gateway.clone(),
            auth,
            claims: config.claims.clone(),
            strip,
            trusted_proxies,
            files,
            bundles: config.bundles.clone(),
            loaded_at: SystemTime::now(),
            fingerprint,
        })
    }

    /// The upstream for a route's upstream index.
    #[inline]
    pub fn upstream(&self, idx: Option<u32>) -> Option<&UpstreamPool> {
        if self.override_upstream {
            return self.upstreams.first();
        }
        idx.and_then(|i| self.upstreams.get(i as usize))
    }
}

/// Hash of what token verification depends on: settings, claim mapping, key files and secrets.
fn auth_fingerprint(config: &Config) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&config.auth).unwrap_or_default());
    h.update(serde_json::to_vec(&config.claims).unwrap_or_default());
    for issuer in &config.auth.issuers {
        let mut files: Vec<PathBuf> = issuer
            .pem_files
            .iter()
            .map(|p| config.base_dir.join(p))
            .collect();
        files.extend(issuer.jwks_file.iter().map(|p| config.base_dir.join(p)));
        files.extend(
            issuer
                .hmac_secret_file
                .iter()
                .map(|p| config.base_dir.join(p)),
        );
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| {
                format!(
                    "issuer `{}`: cannot read `{}`: {e}",
                    issuer.issuer,
                    f.display()
                )
            })?;
            h.update(&bytes);
        }
        if let Some(var) = &issuer.hmac_secret_env {
            h.update(std::env::var(var).unwrap_or_default().as_bytes());
        }
    }
    h.update(
        std::env::var(crate::auth::DEV_SECRET_ENV)
            .unwrap_or_default()
            .as_bytes(),
    );
    Ok(hex::encode(h.finalize()))
}
