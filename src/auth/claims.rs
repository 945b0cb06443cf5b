//! Claims to principal: reading subject, tenant, roles and project roles out of verified claims.

use serde_json::{Map, Value};

use crate::config::ClaimMapping;
use crate::policy::Principal;

/// Why claims do not describe a principal (the token is then treated as invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// A claim has the wrong JSON type.
    #[error("claim `{0}` has the wrong type: {1}")]
    WrongType(String, &'static str),
}

/// Walks a dotted path (`realm_access.roles`) through nested objects.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn role_list(v: &Value, claim: &str) -> Result<Vec<String>, ClaimError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ClaimError::WrongType(claim.into(), "roles must be strings")),
            })
            .collect(),
        Value::String(s) => Ok(s.split_whitespace().map(str::to_string).collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err(ClaimError::WrongType(
            claim.into(),
            "expected an array of strings or a space-separated string",
        )),
    }
}

/// Maps claims to a principal. Role names are kept exactly as given: a case or whitespace
/// variant of a role simply matches no role.
pub fn principal_from_claims(
    claims: &Map<String, Value>,
    m: &ClaimMapping,
) -> Result<Principal, ClaimError> {
    let subject = match claim_at(claims, &m.subject) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ClaimError::WrongType(
                m.subject.clone(),
                "expected a string",
            ))
        }
    };
    let tenant = match claim_at(claims, &m.tenant) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ClaimError::WrongType(m.tenant.clone(), "expected a string")),
    };
    let roles = match claim_at(claims, &m.roles) {
        None => Vec::new(),
        Some(v) => role_list(v, &m.roles)?,
    };
    let project_roles = match claim_at(claims, &m.project_roles) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(project, v)| Ok((project.clone(), role_list(v, &m.project_roles)?)))
            .collect::<Result<_, ClaimError>>()?,
        Some(_) => {
            return Err(ClaimError::WrongType(
                m.project_roles.clone(),
                "expected an object of project to roles",
            ))
        }
    };
    Ok(Principal {
        subject,
        tenant,
        roles,
        project_roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reads_defaults_nested_paths_and_space_separated_roles() {
        let m = ClaimMapping {
            roles: "realm_access.roles".into(),
            ..ClaimMapping::default()
        };
        let p = principal_from_claims(
            &map(
                json!({"sub": "u1", "tenant": "t1", "realm_access": {"roles": ["A", "B"]},
                        "project_roles": {"p1": "X Y"}}),
            ),
            &m,
        )
        .unwrap();
        assert_eq!(p.subject, "u1");
        assert_eq!(p.tenant.as_deref(), Some("t1"));
        assert_eq!(p.roles, vec!["A", "B"]);
        assert_eq!(
            p.project_roles,
            vec![("p1".to_string(), vec!["X".to_string(), "Y".to_string()])]
        );
    }

    #[test]
    fn wrong_types_are_errors_and_empty_tenant_is_none() {
        let m = ClaimMapping::default();
        assert!(principal_from_claims(&map(json!({"tenant": ["a"]})), &m).is_err());
        assert!(principal_from_claims(&map(json!({"tenant": 5})), &m).is_err());
        assert!(principal_from_claims(&map(json!({"roles": [1]})), &m).is_err());
        assert!(principal_from_claims(&map(json!({"roles": {"a": 1}})), &m).is_err());
        let p = principal_from_claims(&map(json!({"tenant": ""})), &m).unwrap();
        assert_eq!(p.tenant, None);
    }
}
