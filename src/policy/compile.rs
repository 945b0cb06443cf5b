//! Compiling a [`Config`] into an immutable [`CompiledPolicy`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::bitset::ActionSet;
use super::catalog::Catalog;
use super::principal::{Principal, ProjectGrant, Subject};
use super::roles::{RoleIdx, RoleTable};
use super::route_table::RouteTable;
use crate::config::{
    CallerRequirement, Config, ConfigError, Located, Origin, Relation, RoleScope, RouteTarget,
};

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A policy ready to decide: catalog, flattened roles, route table and tenant directory.
/// Immutable; replaced whole on reload.
#[derive(Debug)]
pub struct CompiledPolicy {
    generation: u64,
    revision: String,
    pub(super) catalog: Catalog,
    pub(super) roles: RoleTable,
    pub(super) routes: RouteTable,
    pub(super) parents: HashMap<Box<str>, Box<str>>,
    pub(super) unmapped_status: u16,
    /// Per action: what its routes require of the target tenant and the caller.
    pub(super) action_scopes: Vec<ActionScope>,
    upstreams: Vec<String>,
    warnings: Vec<String>,
}

/// What the routes of one action require, so deciding the action directly (`rolegate check
/// --action`) answers as a request through any of its routes would.
#[derive(Debug, Clone, Copy)]
pub(super) struct ActionScope {
    /// Some route lets the caller act on its own tenant.
    pub own: bool,
    /// Some route lets the caller act on a child tenant.
    pub child: bool,
    /// Every route requires a root caller.
    pub root_only: bool,
}

impl ActionScope {
    fn of_routes(routes: &RouteTable, actions: usize) -> Vec<ActionScope> {
        let mut scopes: Vec<Option<ActionScope>> = vec![None; actions];
        for e in routes.entries() {
            let Some(a) = e.action else { continue };
            let own = matches!(e.relation, Relation::Own | Relation::OwnOrChild);
            let child = matches!(e.relation, Relation::Child | Relation::OwnOrChild);
            let root = e.caller == CallerRequirement::Root;
            let s = scopes[a as usize].get_or_insert(ActionScope {
                own,
                child,
                root_only: root,
            });
            s.own |= own;
            s.child |= child;
            s.root_only &= root;
        }
        // An action no route reaches is decided on roles alone: own tenant or a child.
        scopes
            .into_iter()
            .map(|s| {
                s.unwrap_or(ActionScope {
                    own: true,
                    child: true,
                    root_only: false,
                })
            })
            .collect()
    }

    /// The relation a direct decision of this action requires.
    pub fn relation(&self) -> Relation {
        match (self.own, self.child) {
            (true, false) => Relation::Own,
            (false, true) => Relation::Child,
            _ => Relation::OwnOrChild,
        }
    }

    /// The caller a direct decision of this action requires.
    pub fn caller(&self) -> CallerRequirement {
        if self.root_only {
            CallerRequirement::Root
        } else {
            CallerRequirement::Any
        }
    }
}

impl CompiledPolicy {
    /// Compiles `config`; the first error found is returned with its location.
    pub fn compile(config: &Config) -> Result<Self, ConfigError> {
        let root = config
            .files
            .first()
            .map(|f| Origin::file(&f.display().to_string().into()))
            .unwrap_or_else(|| Origin::file(&"<config>".into()));
        if config.actions.is_empty() {
            return Err(
                ConfigError::new(root, "the configuration defines no actions")
                    .with_help("list the documented actions under `actions:`"),
            );
        }
        let status = config.gateway.unmapped_status;
        if status != 403 && status != 404 {
            return Err(ConfigError::new(
                root,
                format!("gateway.unmapped_status is {status}; it must be 403 or 404"),
            ));
        }
        let catalog = Catalog::build(&config.actions)?;
        let roles = RoleTable::build(&config.roles, &catalog)?;
        let mut names: Vec<&Located<String>> = Vec::new();
        for (name, settings) in &config.upstreams {
            if let Some(prev) = names.iter().find(|n| n.value == name.value) {
                return Err(ConfigError::new(
                    name.origin.clone(),
                    format!(
                        "upstream `{}` is defined twice (first at {})",
                        name.value, prev.origin
                    ),
                ));
            }
            names.push(name);
            // Checked here, with the file and line, so `validate` refuses what `serve` would.
            settings
                .host_ports(&name.value)
                .map_err(|msg| ConfigError::new(name.origin.clone(), msg))?;
        }
        let upstream_names: Vec<Located<String>> = names.into_iter().cloned().collect();
        let routes = RouteTable::build(&config.routes, &catalog, &upstream_names)?;
        let parents = tenant_directory(config)?;
        let warnings = warnings(config, &catalog, &roles);
        let revision = revision(config, &catalog, &roles);
        let action_scopes = ActionScope::of_routes(&routes, catalog.len());
        Ok(CompiledPolicy {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            revision,
            catalog,
            roles,
            routes,
            parents,
            unmapped_status: status,
            action_scopes,
            upstreams: upstream_names.into_iter().map(|l| l.value).collect(),
            warnings,
        })
    }

    /// A process-unique number for this compiled instance (subjects carry it).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Stable content hash (hex SHA-256): same input, same revision.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The first 12 hex digits of the revision.
    pub fn short_revision(&self) -> &str {
        &self.revision[..12]
    }

    /// The action catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The role table.
    pub fn roles(&self) -> &RoleTable {
        &self.roles
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Upstream names in config order (routes refer to them by index).
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// Status for unmapped routes (403 or 404).
    pub fn unmapped_status(&self) -> u16 {
        self.unmapped_status
    }

    /// Compile-time warnings: actions no role grants, roles that grant nothing.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The parent of `tenant` in the tenant directory.
    pub fn parent_of(&self, tenant: &str) -> Option<&str> {
        self.parents.get(tenant).map(|p| &**p)
    }

    /// Resolves a principal's role names against this policy, once per token and revision.
    /// Unknown names are counted and ignored; they never widen access.
    pub fn resolve(&self, p: &Principal) -> Subject {
        let mut tenant_grants = self.roles.implicit_grants().clone();
        let mut tenant_roles: Vec<RoleIdx> = Vec::with_capacity(p.roles.len());
        let (mut unknown, mut unbound) = (0usize, 0usize);
        for name in &p.roles {
            match self.roles.get(name) {
                Some(r) if self.roles.scope(r) == RoleScope::Tenant => {
                    if !tenant_roles.contains(&r) {
                        tenant_roles.push(r);
                        tenant_grants.union_with(self.roles.grants(r));
                    }
                }
                Some(_) => unbound += 1,
                None => unknown += 1,
            }
        }
        let mut projects: Vec<ProjectGrant> = Vec::with_capacity(p.project_roles.len());
        for (project, names) in &p.project_roles {
            let mut grants = ActionSet::empty(self.catalog.len());
            let mut roles = Vec::with_capacity(names.len());
            for name in names {
                match self.roles.get(name) {
                    Some(r) => {
                        if !roles.contains(&r) {
                            roles.push(r);
                            grants.union_with(self.roles.grants(r));
                        }
                    }
                    None => unknown += 1,
                }
            }
            match projects.iter_mut().find(|g| *g.project == **project) {
                Some(existing) => {
                    existing.grants.union_with(&grants);
                    existing.roles.extend(roles);
                }
                None => projects.push(ProjectGrant {
                    project: project.as_str().into(),
                    roles,
                    grants,
                }),
            }
        }
        let tenant_roles_joined = tenant_roles
            .iter()
            .map(|&r| self.roles.name(r))
            .collect::<Vec<_>>()
            .join(",")
            .into();
        Subject {
            generation: self.generation,
            tenant_roles_joined,
            tenant: p
                .tenant
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(Into::into),
            tenant_roles,
            tenant_grants,
            projects,
            unknown_roles: unknown,
            unbound_project_roles: unbound,
        }
    }
}

fn tenant_directory(config: &Config) -> Result<HashMap<Box<str>, Box<str>>, ConfigError> {
    let mut parents: HashMap<Box<str>, Box<str>> = HashMap::new();
    for (child, parent) in &config.tenants {
        if child == &parent.value {
            return Err(ConfigError::new(
                parent.origin.clone(),
                format!("tenant `{child}` is its own parent"),
            ));
        }
        parents.insert(child.as_str().into(), parent.value.as_str().into());
    }
    // A chain that loops would make every tenant in it a child of another: refuse it.
    for child in config.tenants.keys() {
        let mut at = child.as_str();
        let mut steps = 0;
        while let Some(p) = parents.get(at) {
            steps += 1;
            if steps > parents.len() {
                return Err(ConfigError::new(
                    config.tenants[child].origin.clone(),
                    format!("tenant directory has a cycle through `{child}`"),
                ));
            }
            at = p;
        }
    }
    Ok(parents)
}

fn warnings(config: &Config, catalog: &Catalog, roles: &RoleTable) -> Vec<String> {
    let mut out = Vec::new();
    let mut granted = ActionSet::empty(catalog.len());
    for r in 0..roles.len() as RoleIdx {
        granted.union_with(roles.grants(r));
        if roles.grants(r).is_empty() {
            out.push(format!(
                "{}: role `{}` grants nothing",
                config.roles[r as usize].name.origin,
                roles.name(r)
            ));
        }
    }
    for (i, def) in config.actions.iter().enumerate() {
        if !granted.contains(i as u32) {
            out.push(format!(
                "{}: no role grants action `{}`",
                def.id.origin, def.id.value
            ));
        }
    }
    let mut routed = ActionSet::empty(catalog.len());
    for r in &config.routes {
        if let RouteTarget::Action(a) = &r.target {
            if let Some(i) = catalog.get(&a.value) {
                routed.insert(i);
            }
        }
    }
    if !config.routes.is_empty() {
        for (i, def) in config.actions.iter().enumerate() {
            if !routed.contains(i as u32) {
                out.push(format!(
                    "{}: no route maps to action `{}`",
                    def.id.origin, def.id.value
                ));
            }
        }
    }
    out
}

/// Hashes what the policy means (not how it is laid out): comments, whitespace and line moves
/// leave the revision unchanged. Actions, roles, routes, tenants and upstreams are hashed as
/// sorted sets, since their order in the files decides nothing.
fn revision(config: &Config, catalog: &Catalog, roles: &RoleTable) -> String {
    use serde_json::{json, Value};
    fn set(rows: impl Iterator<Item = Value>) -> Vec<String> {
        let mut rows: Vec<String> = rows.map(|v| v.to_string()).collect();
        rows.sort_unstable();
        rows
    }
    let actions = set(config
        .actions
        .iter()
        .map(|a| json!([a.id.value, a.label, a.section])));
    let role_rows = set((0..roles.len() as RoleIdx).map(|r| {
        let mut grants: Vec<&str> = roles.grants(r).iter().map(|i| catalog.id(i)).collect();
        grants.sort_unstable();
        let def = &config.roles[r as usize];
        json!([roles.name(r), def.scope, def.implicit, grants])
    }));
    let routes = set(config.routes.iter().map(|r| {
        let target = match &r.target {
            RouteTarget::Action(a) => a.value.as_str(),
            RouteTarget::Public => "public",
        };
        let mut methods = r.methods.clone();
        methods.sort_unstable();
        json!([
            methods,
            r.path,
            target,
            r.upstream.as_ref().map(|u| &u.value),
            r.host,
            r.tenant,
            r.relation,
            r.caller,
            r.project
        ])
    }));
    let tenants = set(config.tenants.iter().map(|(c, p)| json!([c, p.value])));
    let upstreams = set(config.upstreams.iter().map(|(n, u)| json!([n.value, u])));
    let doc = json!({
        "actions": actions,
        "roles": role_rows,
        "routes": routes,
        "tenants": tenants,
        "upstreams": upstreams,
        "gateway": config.gateway,
        "auth": config.auth,
        "claims": config.claims,
    });
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}
