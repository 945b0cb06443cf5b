//! Shared by `check` and `test`: one request description in, one decision out, as JSON.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::canonical::canonicalize;
use crate::config::ClaimMapping;
use crate::policy::{CompiledPolicy, Decision, Principal, Reason, Request};

/// What to decide: an action directly, or a method and path through the route table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Claims of the caller (no signature needed).
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// Action id.
    #[serde(default)]
    pub action: Option<String>,
    /// Target tenant for an action (default: the caller's).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Target project for an action.
    #[serde(default)]
    pub project: Option<String>,
    /// Method for a route decision.
    #[serde(default)]
    pub method: Option<String>,
    /// Path (with optional query) for a route decision.
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Host for a route decision.
    #[serde(default)]
    pub host: Option<String>,
}

/// Decides `q` for `principal` (None = no token) and returns the decision with its JSON form.
pub fn explain(
    policy: &CompiledPolicy,
    principal: Option<&Principal>,
    q: &Query,
) -> Result<(Decision, Value), String> {
    let subject = principal.map(|p| policy.resolve(p));
    let decision = if let Some(action) = &q.action {
        if q.method.is_some() || q.path.is_some() {
            return Err("give either an action or a method and path, not both".into());
        }
        let idx = policy.catalog().get(action).ok_or_else(|| {
            let hint =
                crate::config::did_you_mean(action, policy.catalog().ids()).unwrap_or_default();
            format!("unknown action `{action}` {hint}")
                .trim()
                .to_string()
        })?;
        match &subject {
            Some(s) => policy.decide_action(s, idx, q.tenant.as_deref(), q.project.as_deref()),
            None => Decision::deny(401, Reason::MissingToken).on(Some(idx), None),
        }
    } else {
        let (Some(method), Some(target)) = (&q.method, &q.path) else {
            return Err("give an action, or a method and a path".into());
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &q.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("bad header name `{k}`"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
            headers.append(name, value);
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target.as_str(), None),
        };
        // Methods are case-sensitive (RFC 9110): `get` is not `GET`, at the gateway or here.
        match canonicalize(path) {
            Err(_) => Decision::deny(400, Reason::BadRequest),
            Ok(path) => {
                let req = Request {
                    method,
                    host: q.host.as_deref(),
                    path: &path,
                    query,
                    headers: &headers,
                };
                policy.decide(subject.as_ref(), &req)
            }
        }
    };
    Ok((decision, decision_json(policy, &decision, principal)))
}

/// The JSON object `check` prints for a decision.
pub fn decision_json(
    policy: &CompiledPolicy,
    d: &Decision,
    principal: Option<&Principal>,
) -> Value {
    json!({
        "decision": if d.allowed { "allow" } else { "deny" },
        "status": d.status,
        "action": d.action.map(|a| policy.catalog().id(a)),
        "route": d.route.map(|r| &*policy.routes().entry(r).template),
        "tenant": principal.and_then(|p| p.tenant.as_deref()),
        "roles": principal.map(|p| p.roles.clone()).unwrap_or_default(),
        "role": d.role.map(|r| policy.roles().name(r)),
        "reason": d.reason.as_str(),
    })
}

/// Claims to principal with the configuration's mapping, as a CLI error string on failure.
pub fn principal(claims: &Map<String, Value>, mapping: &ClaimMapping) -> Result<Principal, String> {
    crate::auth::principal_from_claims(claims, mapping).map_err(|e| e.to_string())
}
