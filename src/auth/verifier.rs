//! The verifier: trusted issuers, their keys, and the checks every token must pass.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::claims::principal_from_claims;
use super::error::{AuthLoadError, TokenError};
use super::fetch;
use super::keys::{hmac_key, jwks, parse_algorithms, pem_key, KeySet};
use super::token::parse;
use super::{DEV_ISSUER, DEV_SECRET_ENV};
use crate::config::{AuthSettings, ClaimMapping, IssuerSettings};
use crate::policy::Principal;

/// Least time between two refetches of one issuer's JWKS triggered by unknown key ids.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default time between scheduled refetches of a URL-backed JWKS.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// How long keys of a URL-backed JWKS stay usable after refreshes start failing (then: fail closed).
pub const MAX_STALE: Duration = Duration::from_secs(3600);

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The caller.
    pub principal: Principal,
    /// The issuer that vouched for it.
    pub issuer: String,
    /// `exp`, in Unix seconds.
    pub expires_at: u64,
}

struct Issuer {
    name: String,
    audiences: Vec<String>,
    allowed: Vec<Algorithm>,
    keys: ArcSwap<KeySet>,
    jwks_url: Option<String>,
    refresh_every: Duration,
    fetched_at: AtomicU64,
    last_attempt: AtomicU64,
    refreshing: AtomicBool,
    fetch_lock: tokio::sync::Mutex<()>,
}

/// Verifies bearer tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<Issuer>,
    claims: ClaimMapping,
    leeway: u64,
    max_bytes: usize,
    max_lifetime: Option<u64>,
    files: Vec<PathBuf>,
    generation: AtomicU64,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A registered time claim: absent, or a JSON number (strings, null, bools are refused).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                        .map(|f| f as u64)
                })
                .ok_or(TokenError::BadClaims("a time claim is out of range"))?;
            Ok(Some(v))
        }
        Some(_) => Err(TokenError::BadClaims("time claims must be numbers")),
    }
}

impl Verifier {
    /// Loads every issuer's keys (files now, URLs fetched now with a bounded wait).
    pub async fn load(
        settings: &AuthSettings,
        claims: &ClaimMapping,
        base_dir: &Path,
    ) -> Result<Self, AuthLoadError> {
        let mut issuers = Vec::new();
        let mut files = Vec::new();
        for s in &settings.issuers {
            issuers.push(
                load_issuer(s, base_dir, &mut files)
                    .await
                    .map_err(AuthLoadError)?,
            );
        }
        if settings.dev_issuer {
            if let Some(secret) = std::env::var(DEV_SECRET_ENV).ok().filter(|s| !s.is_empty()) {
                let key = hmac_key(secret.as_bytes(), &[Algorithm::HS256], None);
                issuers.push(issuer_with(
                    DEV_ISSUER,
                    Vec::new(),
                    vec![Algorithm::HS256],
                    KeySet { keys: vec![key] },
                    None,
                    None,
                ));
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for i in &issuers {
            if names.contains(&i.name.as_str()) {
                return Err(AuthLoadError(format!(
                    "issuer `{}` is configured twice",
                    i.name
                )));
            }
            names.push(&i.name);
        }
        Ok(Verifier {
            issuers,
            claims: claims.clone(),
            leeway: settings.leeway_seconds,
            max_bytes: settings.max_token_bytes,
            max_lifetime: settings.max_lifetime_seconds,
            files,
            generation: AtomicU64::new(1),
        })
    }

    /// Key files read at load (for the reload watcher).
    pub fn key_sources(&self) -> Vec<PathBuf> {
        self.files.clone()
    }

    /// True when every issuer has usable keys (the gateway is ready).
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.keys.load().is_usable())
    }

    /// Names of the trusted issuers.
    pub fn issuers(&self) -> Vec<&str> {
        self.issuers.iter().map(|i| i.name.as_str()).collect()
    }

    /// Changes whenever an issuer's key set changes; cached verifications from an older
    /// generation are not trusted.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Verifies a token now (no I/O).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        let parsed = parse(token, self.max_bytes)?;
        let iss = match parsed.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(TokenError::WrongIssuer),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.name == iss)
            .ok_or(TokenError::WrongIssuer)?;
        let alg = Algorithm::from_str(&parsed.alg).map_err(|_| TokenError::AlgNotAllowed)?;
        if !issuer.allowed.is_empty() && !issuer.allowed.contains(&alg) {
            return Err(TokenError::AlgNotAllowed);
        }
        if issuer.is_expired(now) {
            return Err(TokenError::UnknownKey);
        }
        let keys = issuer.keys.load();
        let key = keys.select(parsed.kid.as_deref(), alg)?;
        match jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.message.as_bytes(),
            &key.key,
            alg,
        ) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }
        let c = &parsed.claims;
        let exp = time_claim(c, "exp")?.ok_or(TokenError::BadClaims("`exp` is required"))?;
        let nbf = time_claim(c, "nbf")?;
        let iat = time_claim(c, "iat")?;
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if nbf.is_some_and(|n| n > now.saturating_add(self.leeway))
            || iat.is_some_and(|i| i > now.saturating_add(self.leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(max) = self.max_lifetime {
            if exp.saturating_sub(iat.unwrap_or(now)) > max {
                return Err(TokenError::BadClaims("the token lives longer than allowed"));
            }
        }
        if !issuer.audiences.is_empty() {
            let ok = match c.get("aud") {
                Some(Value::String(a)) => issuer.audiences.contains(a),
                Some(Value::Array(items)) => items.iter().any(|a| {
                    a.as_str()
                        .is_some_and(|a| issuer.audiences.iter().any(|x| x == a))
                }),
                _ => false,
            };
            if !ok {
                return Err(TokenError::WrongAudience);
            }
        }
        let principal = principal_from_claims(c, &self.claims)
            .map_err(|_| TokenError::BadClaims("a mapped claim has the wrong type"))?;
        Ok(VerifiedToken {
            principal,
            issuer: issuer.name.clone(),
            expires_at: exp,
        })
    }

    /// Holds a cached verification of a token from `issuer` to its issuer's key freshness: stale
    /// URL-backed keys fail closed, and keys due for their refresh are refetched in the
    /// background (a removed key then stops working). Free for file-backed issuers.
    pub fn check_cached(self: &Arc<Self>, issuer: &str, now: u64) -> Result<(), TokenError> {
        let Some(idx) = self
            .issuers
            .iter()
            .position(|i| i.jwks_url.is_some() && i.name == issuer)
        else {
            return Ok(());
        };
        let i = &self.issuers[idx];
        if i.is_expired(now) {
            return Err(TokenError::UnknownKey);
        }
        self.refresh_if_due(idx, now);
        Ok(())
    }

    /// Starts a background refetch of a URL-backed issuer's keys when its refresh period passed.
    fn refresh_if_due(self: &Arc<Self>, idx: usize, now: u64) {
        let issuer = &self.issuers[idx];
        if now.saturating_sub(issuer.fetched_at.load(Ordering::Relaxed))
            > issuer.refresh_every.as_secs()
            && !issuer.refreshing.swap(true, Ordering::AcqRel)
        {
            let me = self.clone();
            tokio::spawn(async move {
                me.refresh(idx).await;
                me.issuers[idx].refreshing.store(false, Ordering::Release);
            });
        }
    }

    /// Verifies a token; an unknown key id of a URL-backed issuer triggers one rate-limited
    /// JWKS refetch and a second try. Stale URL-backed keys are refreshed in the background.
    pub async fn verify_or_refresh(
        self: &Arc<Self>,
        token: &str,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let first = self.verify(token, now);
        let issuer_idx = match &first {
            Err(TokenError::UnknownKey) | Ok(_) => {
                let iss = parse(token, self.max_bytes).ok().and_then(|p| {
                    p.claims
                        .get("iss")
                        .and_then(|v| v.as_str().map(str::to_string))
                });
                iss.and_then(|iss| {
                    self.issuers
                        .iter()
                        .position(|i| i.name == iss && i.jwks_url.is_some())
                })
            }
            Err(_) => None,
        };
        let Some(idx) = issuer_idx else { return first };
        let issuer = &self.issuers[idx];
        match first {
            Ok(v) => {
                self.refresh_if_due(idx, now);
                Ok(v)
            }
            Err(e) => {
                let last = issuer.last_attempt.load(Ordering::Relaxed);
                if now.saturating_sub(last) < MIN_REFETCH_INTERVAL.as_secs() {
                    return Err(e);
                }
                self.refresh(idx).await;
                self.verify(token, now_secs())
            }
        }
    }

    /// Refetches one URL-backed issuer's JWKS (one fetch at a time per issuer).
    async fn refresh(&self, idx: usize) {
        let issuer = &self.issuers[idx];
        let Some(url) = issuer.jwks_url.clone() else {
            return;
        };
        let _one = issuer.fetch_lock.lock().await;
        let now = now_secs();
        if now.saturating_sub(issuer.last_attempt.load(Ordering::Relaxed))
            < MIN_REFETCH_INTERVAL.as_secs()
        {
            return;
        }
        issuer.last_attempt.store(now, Ordering::Relaxed);
        match fetch::get_async(url.clone())
            .await
            .and_then(|b| jwks(&b, &issuer.allowed, &url))
        {
            Ok(set) => {
                let changed = set.describe() != issuer.keys.load().describe();
                issuer.keys.store(Arc::new(set));
                issuer.fetched_at.store(now, Ordering::Relaxed);
                if changed {
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(target: "rolegate::auth", issuer = issuer.name.as_str(), "keys rotated");
                }
            }
            Err(e) => {
                tracing::warn!(target: "rolegate::auth", issuer = issuer.name.as_str(), error = e.as_str(), "JWKS refresh failed; keeping the last keys");
            }
        }
    }
}

impl Issuer {
    /// True when URL-backed keys are older than the stale limit (verification fails closed).
    fn is_expired(&self, now: u64) -> bool {
        self.jwks_url.is_some()
            && now.saturating_sub(self.fetched_at.load(Ordering::Relaxed))
                > self.refresh_every.as_secs() + MAX_STALE.as_secs()
    }
}

fn issuer_with(
    name: &str,
    audiences: Vec<String>,
    allowed: Vec<Algorithm>,
    keys: KeySet,
    jwks_url: Option<String>,
    refresh: Option<u64>,
) -> Issuer {
    Issuer {
        name: name.to_string(),
        audiences,
        allowed,
        keys: ArcSwap::from_pointee(keys),
        jwks_url,
        refresh_every: refresh.map(Duration::from_secs).unwrap_or(DEFAULT_REFRESH),
        fetched_at: AtomicU64::new(now_secs()),
        last_attempt: AtomicU64::new(0),
        refreshing: AtomicBool::new(false),
        fetch_lock: tokio::sync::Mutex::new(()),
    }
}

/// An issuer's accepted algorithms, once its settings name exactly one key source.
fn issuer_algorithms(s: &IssuerSettings) -> Result<Vec<Algorithm>, String> {
    let name = &s.issuer;
    if name.is_empty() {
        return Err("an issuer has an empty `issuer`".into());
    }
    let allowed = parse_algorithms(&s.algorithms, name)?;
    if allowed.is_empty() {
        return Err(format!("issuer `{name}`: list its `algorithms` (e.g. [RS256]); they are never taken from tokens"));
    }
    let sources = [
        s.jwks_url.is_some(),
        s.jwks_file.is_some(),
        !s.pem_files.is_empty(),
        s.oidc_discovery.is_some(),
        s.hmac_secret_env.is_some(),
        s.hmac_secret_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if sources != 1 {
        return Err(format!(
            "issuer `{name}`: give exactly one key source (jwks_url, jwks_file, pem_files, oidc_discovery, hmac_secret_env or hmac_secret_file)"
        ));
    }
    Ok(allowed)
}

async fn load_issuer(
    s: &IssuerSettings,
    base: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Issuer, String> {
    let name = &s.issuer;
    let allowed = issuer_algorithms(s)?;
    let mut url = s.jwks_url.clone();
    if let Some(d) = &s.oidc_discovery {
        url = Some(
            fetch::discover_jwks_uri(d)
                .await
                .map_err(|e| format!("issuer `{name}`: {e}"))?,
        );
    }
    let keys = if let Some(u) = &url {
        let body = fetch::get_async(u.clone())
            .await
            .map_err(|e| format!("issuer `{name}`: {e}"))?;
        jwks(&body, &allowed, &format!("issuer `{name}`: {u}"))?
    } else if let Some(f) = &s.jwks_file {
        let path = base.join(f);
        let body = std::fs::read(&path)
            .map_err(|e| format!("issuer `{name}`: cannot read `{}`: {e}", path.display()))?;
        files.push(path.clone());
        jwks(
            &body,
            &allowed,
            &format!("issuer `{name}`: {}", path.display()),
        )?
    } else if !s.pem_files.is_empty() {
        let mut keys = Vec::new();
        for f in &s.pem_files {
            let path = base.join(f);
            keys.push(pem_key(&path, &allowed, name)?);
            files.push(path);
        }
        KeySet { keys }
    } else if let Some(var) = &s.hmac_secret_env {
        let secret = std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("issuer `{name}`: environment variable `{var}` is not set"))?;
        KeySet {
            keys: vec![hmac_key(secret.as_bytes(), &allowed, None)],
        }
    } else if let Some(f) = &s.hmac_secret_file {
        let path = base.join(f);
        let secret = std::fs::read(&path)
            .map_err(|e| format!("issuer `{name}`: cannot read `{}`: {e}", path.display()))?;
        files.push(path);
        let secret = secret.trim_ascii_end().to_vec();
        if secret.is_empty() {
            return Err(format!("issuer `{name}`: the secret file is empty"));
        }
        KeySet {
            keys: vec![hmac_key(&secret, &allowed, None)],
        }
    } else {
        KeySet::default()
    };
    if keys.keys.iter().all(|k| k.algs.is_empty()) {
        return Err(format!(
            "issuer `{name}`: no key allows the configured algorithms"
        ));
    }
    Ok(issuer_with(
        name,
        s.audiences.clone(),
        allowed,
        keys,
        url,
        s.jwks_refresh_seconds,
    ))
}
