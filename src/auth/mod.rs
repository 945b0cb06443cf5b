//! Authentication: bearer tokens verified against trusted issuers, and claims mapped to a principal.

mod cache;
mod claims;
mod error;
mod fetch;
mod keys;
mod mint;
pub mod token;
mod verifier;

pub use cache::TokenCache;
pub use claims::{claim_at, principal_from_claims, ClaimError};
pub use error::{AuthLoadError, TokenError};
pub use mint::mint_dev_token;
pub use verifier::{VerifiedToken, Verifier, MIN_REFETCH_INTERVAL};

/// The development issuer's `iss`.
pub const DEV_ISSUER: &str = "rolegate-dev";
/// The environment variable holding the development issuer's secret.
pub const DEV_SECRET_ENV: &str = "ROLEGATE_DEV_SECRET";

/// Installs jsonwebtoken's aws-lc-rs provider (idempotent).
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Verifies `token` with the configuration's issuers (keys loaded now) and returns its claims'
/// principal as JSON claims, for `rolegate check --token`.
pub fn verify_offline(
    config: &crate::config::Config,
    token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let verifier = rt
        .block_on(Verifier::load(
            &config.auth,
            &config.claims,
            &config.base_dir,
        ))
        .map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    verifier.verify(token, now).map_err(|e| e.to_string())?;
    let parsed = token::parse(token, usize::MAX).map_err(|e| e.to_string())?;
    Ok(parsed.claims)
}
