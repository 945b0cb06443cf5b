//! The decision: a canonical request and a subject against a compiled policy.
//!
//! This is the hot path. It runs synchronously, takes no locks, does no I/O and allocates
//! nothing except when a tenant or project is read from a percent-encoded query parameter.

use std::borrow::Cow;

use http::HeaderMap;

use super::catalog::ActionIdx;
use super::compile::CompiledPolicy;
use super::decision::{Decision, Reason};
use super::principal::Subject;
use super::roles::RoleIdx;
use super::route_table::{BoundSource, RouteMatch};
use crate::config::{CallerRequirement, Relation};

/// A request as the decision sees it: the path is already canonical.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method, upper-case.
    pub method: &'a str,
    /// Host without port, if known.
    pub host: Option<&'a str>,
    /// Canonical path.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// A value read from the request: absent, present, or ambiguous (given more than once).
enum Read<'a> {
    Absent,
    Value(Cow<'a, str>),
    Ambiguous,
}

impl CompiledPolicy {
    /// Finds the route for a request (no allocation).
    #[inline]
    pub fn match_route<'t, 'p>(&'t self, req: &Request<'p>) -> Option<RouteMatch<'t, 'p>> {
        self.routes.find(req.method, req.host, req.path)
    }

    /// The denial for a request no route maps.
    pub fn unmapped(&self) -> Decision {
        Decision::deny(self.unmapped_status, Reason::UnmappedRoute)
    }

    /// Decides a whole request: route, public routes, then the subject (None = no valid token).
    pub fn decide(&self, subject: Option<&Subject>, req: &Request) -> Decision {
        match self.match_route(req) {
            None => match subject {
                None => Decision::deny(401, Reason::MissingToken),
                Some(_) => self.unmapped(),
            },
            Some(m) if m.entry.is_public() => {
                Decision::allow(Reason::PublicRoute, None).on(None, Some(m.idx))
            }
            Some(m) => match subject {
                None => Decision::deny(401, Reason::MissingToken).on(m.entry.action, Some(m.idx)),
                Some(s) => self.decide_route(&m, s, req),
            },
        }
    }

    /// Decides a matched, non-public route for an authenticated subject.
    #[inline]
    pub fn decide_route(&self, m: &RouteMatch, s: &Subject, req: &Request) -> Decision {
        let e = m.entry;
        let Some(action) = e.action else {
            return Decision::allow(Reason::PublicRoute, None).on(None, Some(m.idx));
        };
        let tenant = match read(&e.tenant, m, s, req) {
            Read::Value(v) => Some(v),
            Read::Absent | Read::Ambiguous => None,
        };
        let project = match e.project.as_ref().map(|p| read(p, m, s, req)) {
            None | Some(Read::Absent) => None,
            Some(Read::Value(v)) => Some(v),
            Some(Read::Ambiguous) => {
                return Decision::deny(403, Reason::MissingTarget).on(Some(action), Some(m.idx))
            }
        };
        self.grant(
            s,
            action,
            tenant.as_deref(),
            project.as_deref(),
            e.relation,
            e.caller,
        )
        .on(Some(action), Some(m.idx))
    }

    /// Decides an action directly (no route): `tenant` defaults to the caller's own; the target
    /// tenant and the caller are held to what the action's routes require (relation, root caller).
    pub fn decide_action(
        &self,
        s: &Subject,
        action: ActionIdx,
        tenant: Option<&str>,
        project: Option<&str>,
    ) -> Decision {
        let tenant = tenant.or(s.tenant.as_deref());
        let scope = self.action_scopes[action as usize];
        self.grant(s, action, tenant, project, scope.relation(), scope.caller())
            .on(Some(action), None)
    }

    /// The role check proper, once the target tenant and project are known.
    fn grant(
        &self,
        s: &Subject,
        action: ActionIdx,
        target: Option<&str>,
        project: Option<&str>,
        relation: Relation,
        caller_req: CallerRequirement,
    ) -> Decision {
        let Some(caller) = s.tenant.as_deref() else {
            return Decision::deny(403, Reason::MissingTenant);
        };
        let Some(target) = target else {
            return Decision::deny(403, Reason::MissingTarget);
        };
        if caller_req == CallerRequirement::Root && self.parent_of(caller).is_some() {
            return Decision::deny(403, Reason::NotRootTenant);
        }
        let own = target == caller;
        let child = || self.parent_of(target) == Some(caller);
        let related = match relation {
            Relation::Own => own,
            Relation::Child => child(),
            Relation::OwnOrChild => own || child(),
        };
        if !related {
            return Decision::deny(403, Reason::TenantMismatch);
        }
        if s.tenant_grants.contains(action) {
            return Decision::allow(Reason::Granted, self.tenant_role_for(s, action));
        }
        if let Some(p) = project.and_then(|p| s.project(p)) {
            if p.grants.contains(action) {
                let role = p
                    .roles
                    .iter()
                    .copied()
                    .find(|&r| self.roles.grants(r).contains(action));
                return Decision::allow(Reason::Granted, role);
            }
        }
        if !s.has_known_role() {
            return Decision::deny(403, Reason::NoKnownRole);
        }
        if s.projects.iter().any(|p| p.grants.contains(action)) {
            return Decision::deny(403, Reason::ProjectMismatch);
        }
        Decision::deny(403, Reason::NotGranted)
    }

    /// The first tenant-scope (or implicit) role of `s` that grants `action`.
    fn tenant_role_for(&self, s: &Subject, action: ActionIdx) -> Option<RoleIdx> {
        s.tenant_roles
            .iter()
            .chain(self.roles.implicit())
            .copied()
            .find(|&r| self.roles.grants(r).contains(action))
    }
}

fn read<'a>(src: &BoundSource, m: &'a RouteMatch, s: &'a Subject, req: &'a Request) -> Read<'a> {
    match src {
        BoundSource::Token => match s.tenant.as_deref() {
            Some(t) => Read::Value(Cow::Borrowed(t)),
            None => Read::Absent,
        },
        BoundSource::Param(name) => match m.params.get(name) {
            Some(v) if !v.is_empty() => Read::Value(Cow::Borrowed(v)),
            _ => Read::Absent,
        },
        BoundSource::Header(name) => {
            let mut values = req.headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Read::Absent,
                (Some(_), Some(_)) => Read::Ambiguous,
                (Some(v), None) => match v.to_str() {
                    Ok(s) if !s.trim().is_empty() && !s.contains(',') => {
                        Read::Value(Cow::Borrowed(s.trim()))
                    }
                    Ok(s) if s.trim().is_empty() => Read::Absent,
                    _ => Read::Ambiguous,
                },
            }
        }
        BoundSource::Query(name) => read_query(req.query, name),
    }
}

/// Reads one query parameter; a repeated key is ambiguous, a bad escape counts as ambiguous too.
fn read_query<'a>(query: Option<&'a str>, name: &str) -> Read<'a> {
    let Some(q) = query else { return Read::Absent };
    let mut found: Option<&'a str> = None;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_encoding::percent_decode_str(k).decode_utf8();
        if key.as_deref().ok() == Some(name) {
            if found.is_some() {
                return Read::Ambiguous;
            }
            found = Some(v);
        }
    }
    match found {
        None => Read::Absent,
        Some("") => Read::Absent,
        Some(v) => {
            let plus_free = !v.contains('+');
            match percent_encoding::percent_decode_str(v).decode_utf8() {
                Ok(d) if plus_free => Read::Value(d),
                Ok(d) => Read::Value(Cow::Owned(d.replace('+', " "))),
                Err(_) => Read::Ambiguous,
            }
        }
    }
}
