//! Every cell of the five role matrices decides as the CSV says, by action and through a route.

mod common;

use common::{matrix, preset};
use http::{HeaderMap, HeaderValue};
use rolegate::policy::{BoundSource, CompiledPolicy, Principal, Request};

const TENANT: &str = "t1";
const PROJECT: &str = "p1";

fn tenant_principal(role: &str) -> Principal {
    Principal {
        subject: "u1".into(),
        tenant: Some(TENANT.into()),
        roles: vec![role.into()],
        project_roles: vec![],
    }
}

fn project_principal(role: &str) -> Principal {
    Principal {
        subject: "u1".into(),
        tenant: Some(TENANT.into()),
        roles: vec![],
        project_roles: vec![(PROJECT.into(), vec![role.into()])],
    }
}

/// Builds a concrete request for a route mapped to `action` (one reading the project when `project` is set), targeting the caller's tenant
/// and `project` (through whatever source the route reads them from).
fn request_for(
    policy: &CompiledPolicy,
    action: &str,
    project: Option<&str>,
) -> Option<(String, String, HeaderMap, Option<String>)> {
    let idx = policy.catalog().get(action)?;
    // A project-bound role can only act through a route that reads the target project.
    let mut routes = policy
        .routes()
        .entries()
        .iter()
        .filter(|e| e.action == Some(idx));
    let entry = match project {
        Some(_) => routes
            .clone()
            .find(|e| e.project.is_some())
            .or_else(|| routes.next())?,
        None => routes.next()?,
    };
    let (methods, template) = entry.template.split_once(' ')?;
    let method = if methods == "*" {
        "GET"
    } else {
        methods.split(',').next()?
    };
    let mut headers = HeaderMap::new();
    let mut query = None;
    let segments: Vec<String> = template
        .split('/')
        .enumerate()
        .map(|(i, seg)| {
            if !seg.starts_with('{') {
                return seg.to_string();
            }
            let router = format!("p{}", i - 1);
            let is =
                |s: &Option<BoundSource>| matches!(s, Some(BoundSource::Param(n)) if **n == router);
            if is(&Some(entry.tenant.clone())) {
                TENANT.to_string()
            } else if is(&entry.project) {
                project.unwrap_or("other").to_string()
            } else {
                "x1".to_string()
            }
        })
        .collect();
    for src in [Some(&entry.tenant), entry.project.as_ref()]
        .into_iter()
        .flatten()
    {
        let value = if std::ptr::eq(src, &entry.tenant) {
            Some(TENANT)
        } else {
            project
        };
        match (src, value) {
            (BoundSource::Header(h), Some(v)) => {
                headers.insert(h.clone(), HeaderValue::from_str(v).unwrap());
            }
            (BoundSource::Query(q), Some(v)) => query = Some(format!("{q}={v}")),
            _ => {}
        }
    }
    Some((method.to_string(), segments.join("/"), headers, query))
}

fn check_matrix(preset_name: &str, matrix_name: &str, project_scoped: bool, need_routes: bool) {
    let policy = preset(preset_name);
    let m = matrix(matrix_name);
    let mut failures = Vec::new();
    let mut routed = 0usize;
    for (ri, role) in m.roles.iter().enumerate() {
        assert!(
            policy.roles().get(role).is_some(),
            "{preset_name}: role `{role}` missing"
        );
        let principal = if project_scoped {
            project_principal(role)
        } else {
            tenant_principal(role)
        };
        let subject = policy.resolve(&principal);
        let project = project_scoped.then_some(PROJECT);
        for (action, cells) in &m.rows {
            let want = cells[ri];
            let idx = policy
                .catalog()
                .get(action)
                .unwrap_or_else(|| panic!("{preset_name}: action `{action}` missing"));
            let d = policy.decide_action(&subject, idx, None, project);
            if d.allowed != want {
                failures.push(format!(
                    "{role} x {action}: by action {} want {want}",
                    d.reason.as_str()
                ));
            }
            if project_scoped {
                // A project role never holds outside its project (implicit grants aside).
                let elsewhere = policy.decide_action(&subject, idx, None, Some("p2"));
                let implicit = policy.roles().implicit_grants().contains(idx);
                if elsewhere.allowed && !implicit {
                    failures.push(format!("{role} x {action}: allowed in another project"));
                }
            }
            match request_for(&policy, action, project) {
                Some((method, path, headers, query)) => {
                    routed += 1;
                    let req = Request {
                        method: &method,
                        host: None,
                        path: &path,
                        query: query.as_deref(),
                        headers: &headers,
                    };
                    let d = policy.decide(Some(&subject), &req);
                    if d.allowed != want || d.action != Some(idx) {
                        failures.push(format!(
                            "{role} x {action}: via {method} {path}: {} want {want}",
                            d.reason.as_str()
                        ));
                    }
                }
                None if need_routes => failures.push(format!("{action}: no route maps to it")),
                None => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        routed > 0,
        "{preset_name}: no cell was checked through a route"
    );
}

#[test]
fn taikun_matrix_holds() {
    check_matrix("taikun", "taikun", false, false);
}

#[test]
fn enterprise_matrix_holds() {
    check_matrix("enterprise", "enterprise", false, true);
}

#[test]
fn child_tenant_matrix_holds() {
    check_matrix("child-tenants", "child-tenants", false, true);
}

#[test]
fn palette_tenant_matrix_holds() {
    check_matrix("palette", "palette-tenant", false, false);
}

#[test]
fn palette_project_matrix_holds() {
    check_matrix("palette", "palette-project", true, false);
}
