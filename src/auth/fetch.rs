//! Fetching JWKS documents and OIDC discovery over HTTP(S), bounded in time and size.

use super::keys::MAX_JWKS_BYTES;

/// GETs `url` (blocking; call from a blocking task) and returns at most 1 MiB of body.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    crate::fetch::get(url, MAX_JWKS_BYTES)
}

/// GETs `url` on a blocking thread.
pub async fn get_async(url: String) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || get(&url))
        .await
        .map_err(|e| format!("fetch task failed: {e}"))?
}

/// Reads `jwks_uri` from an OpenID provider's discovery document.
pub async fn discover_jwks_uri(issuer_url: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    );
    let body = get_async(url.clone()).await?;
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{url}: not a discovery document ({e})"))?;
    doc.get("jwks_uri")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{url}: the discovery document has no `jwks_uri`"))
}
