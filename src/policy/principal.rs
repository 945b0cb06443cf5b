//! Principals (who the token says the caller is) and subjects (a principal resolved against one policy).

use super::bitset::ActionSet;
use super::roles::RoleIdx;

/// Who the caller is, as read from a verified token's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// Subject (`sub`).
    pub subject: String,
    /// The caller's tenant, if the token names one.
    pub tenant: Option<String>,
    /// Roles held across the tenant.
    pub roles: Vec<String>,
    /// Roles bound to projects: (project, roles).
    pub project_roles: Vec<(String, Vec<String>)>,
}

/// Roles bound to one project, resolved.
#[derive(Debug, Clone)]
pub struct ProjectGrant {
    /// Project id.
    pub project: Box<str>,
    /// Known roles bound to it.
    pub roles: Vec<RoleIdx>,
    /// Union of their grants.
    pub grants: ActionSet,
}

/// A principal resolved against one compiled policy: role names became indices and grants one bitset.
/// Built once per token and policy revision; the decision reads it without allocating.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Generation of the policy it was resolved against.
    pub generation: u64,
    /// The caller's tenant.
    pub tenant: Option<Box<str>>,
    /// Known tenant-scope roles held (in the token's order).
    pub tenant_roles: Vec<RoleIdx>,
    /// Their names, comma-joined: what the upstream is told the caller holds tenant-wide
    /// (roles the policy does not know, or project roles given tenant-wide, are left out).
    pub tenant_roles_joined: Box<str>,
    /// Union of tenant-scope and implicit roles' grants.
    pub tenant_grants: ActionSet,
    /// Project bindings.
    pub projects: Vec<ProjectGrant>,
    /// Role names in the token that the policy does not know (ignored, never widened).
    pub unknown_roles: usize,
    /// Project-scope roles given tenant-wide (ignored: they need a project binding).
    pub unbound_project_roles: usize,
}

impl Subject {
    /// True when the caller holds at least one role the policy knows (implicit roles aside).
    pub fn has_known_role(&self) -> bool {
        !self.tenant_roles.is_empty() || self.projects.iter().any(|p| !p.roles.is_empty())
    }

    /// The grants bound to `project`, if the caller has any there.
    #[inline]
    pub fn project(&self, project: &str) -> Option<&ProjectGrant> {
        self.projects.iter().find(|p| &*p.project == project)
    }
}
