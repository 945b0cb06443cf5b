//! Development tokens: HS256 from issuer `rolegate-dev` (for demos and scripts only).

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};

use super::DEV_ISSUER;

/// Mints an HS256 token from the development issuer.
pub fn mint_dev_token(
    secret: &[u8],
    sub: &str,
    tenant: &str,
    roles: &[String],
    project_roles: &[(String, String)],
    ttl_seconds: u64,
    now: u64,
) -> Result<String, String> {
    let mut projects: Map<String, Value> = Map::new();
    for (project, role) in project_roles {
        let entry = projects
            .entry(project.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(Value::String(role.clone()));
        }
    }
    let claims = json!({
        "iss": DEV_ISSUER,
        "sub": sub,
        "tenant": tenant,
        "roles": roles,
        "project_roles": projects,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
    });
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| format!("cannot sign the token: {e}"))
}
