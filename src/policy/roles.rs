//! The role table: inheritance flattened and grants turned into action sets at compile time.

use std::collections::HashMap;

use super::bitset::ActionSet;
use super::catalog::Catalog;
use crate::config::{did_you_mean, ConfigError, RoleDef, RoleScope};

/// Index of a role in its table.
pub type RoleIdx = u32;

/// Roles of one policy with their effective (inherited and expanded) grants.
#[derive(Debug, Clone)]
pub struct RoleTable {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, RoleIdx>,
    scopes: Vec<RoleScope>,
    grants: Vec<ActionSet>,
    implicit: Vec<RoleIdx>,
    implicit_grants: ActionSet,
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

impl RoleTable {
    /// Builds the table: unknown roles or actions, cycles and repeated names are errors.
    pub fn build(defs: &[RoleDef], catalog: &Catalog) -> Result<Self, ConfigError> {
        let mut index: HashMap<Box<str>, RoleIdx> = HashMap::with_capacity(defs.len());
        for (i, d) in defs.iter().enumerate() {
            let name = d.name.value.as_str();
            if name.trim().is_empty() || name.trim() != name {
                return Err(ConfigError::new(
                    d.name.origin.clone(),
                    format!("role name `{name}` is empty or has surrounding spaces"),
                ));
            }
            if name.contains(',') || name.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    d.name.origin.clone(),
                    format!("role name `{name}` holds a comma or a control character"),
                )
                .with_help("X-Auth-Roles lists roles comma-joined; rename the role"));
            }
            if let Some(&prev) = index.get(name) {
                return Err(ConfigError::new(
                    d.name.origin.clone(),
                    format!(
                        "role `{name}` is defined twice (first at {})",
                        defs[prev as usize].name.origin
                    ),
                ));
            }
            if d.implicit && d.scope == RoleScope::Project {
                return Err(ConfigError::new(
                    d.name.origin.clone(),
                    format!("role `{name}` is implicit and project-scoped"),
                )
                .with_help("implicit roles hold in the caller's tenant; drop `scope: project`"));
            }
            index.insert(name.into(), i as RoleIdx);
        }
        // Direct grants and resolved parents.
        let mut direct = Vec::with_capacity(defs.len());
        let mut parents: Vec<Vec<RoleIdx>> = Vec::with_capacity(defs.len());
        for d in defs {
            let ctx = format!("in grants of role `{}`", d.name.value);
            let mut set = ActionSet::empty(catalog.len());
            for g in &d.grants {
                catalog.expand_grant(g, &ctx, &mut set)?;
            }
            direct.push(set);
            let mut ps = Vec::with_capacity(d.inherits.len());
            for p in &d.inherits {
                let idx = index.get(p.value.as_str()).copied().ok_or_else(|| {
                    let err = ConfigError::new(
                        p.origin.clone(),
                        format!(
                            "role `{}` inherits unknown role `{}`",
                            d.name.value, p.value
                        ),
                    );
                    match did_you_mean(&p.value, index.keys().map(|k| &**k)) {
                        Some(h) => err.with_help(h),
                        None => err.with_help("define the role under `roles:` or fix the name"),
                    }
                })?;
                ps.push(idx);
            }
            parents.push(ps);
        }
        // Flatten with a depth-first walk; an edge back to an active role is a cycle.
        let mut marks = vec![Mark::New; defs.len()];
        let mut flat: Vec<Option<ActionSet>> = vec![None; defs.len()];
        for start in 0..defs.len() {
            flatten(
                start,
                defs,
                &parents,
                &direct,
                &mut marks,
                &mut flat,
                &mut Vec::new(),
            )?;
        }
        let grants: Vec<ActionSet> = flat.into_iter().map(|s| s.unwrap_or_default()).collect();
        let mut implicit = Vec::new();
        let mut implicit_grants = ActionSet::empty(catalog.len());
        for (i, d) in defs.iter().enumerate() {
            if d.implicit {
                implicit.push(i as RoleIdx);
                implicit_grants.union_with(&grants[i]);
            }
        }
        Ok(RoleTable {
            names: defs.iter().map(|d| d.name.value.as_str().into()).collect(),
            index,
            scopes: defs.iter().map(|d| d.scope).collect(),
            grants,
            implicit,
            implicit_grants,
        })
    }

    /// Number of roles.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there is no role.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of role `name` (exact, case-sensitive).
    pub fn get(&self, name: &str) -> Option<RoleIdx> {
        self.index.get(name).copied()
    }

    /// The name of role `idx`.
    pub fn name(&self, idx: RoleIdx) -> &str {
        &self.names[idx as usize]
    }

    /// Where role `idx` holds.
    pub fn scope(&self, idx: RoleIdx) -> RoleScope {
        self.scopes[idx as usize]
    }

    /// The effective grants of role `idx` (inheritance included).
    pub fn grants(&self, idx: RoleIdx) -> &ActionSet {
        &self.grants[idx as usize]
    }

    /// Roles every authenticated caller holds.
    pub fn implicit(&self) -> &[RoleIdx] {
        &self.implicit
    }

    /// Union of the implicit roles' grants.
    pub fn implicit_grants(&self) -> &ActionSet {
        &self.implicit_grants
    }

    /// Role names in table order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|s| &**s)
    }
}

fn flatten(
    i: usize,
    defs: &[RoleDef],
    parents: &[Vec<RoleIdx>],
    direct: &[ActionSet],
    marks: &mut [Mark],
    flat: &mut [Option<ActionSet>],
    path: &mut Vec<usize>,
) -> Result<(), ConfigError> {
    match marks[i] {
        Mark::Done => return Ok(()),
        Mark::Active => {
            let from = path.iter().position(|&p| p == i).unwrap_or(0);
            let mut names: Vec<&str> = path[from..]
                .iter()
                .map(|&p| defs[p].name.value.as_str())
                .collect();
            names.push(&defs[i].name.value);
            return Err(ConfigError::new(
                defs[i].name.origin.clone(),
                format!("inheritance cycle: {}", names.join(" -> ")),
            )
            .with_help("remove one of the `inherits` entries in the cycle"));
        }
        Mark::New => {}
    }
    marks[i] = Mark::Active;
    path.push(i);
    let mut set = direct[i].clone();
    for &p in &parents[i] {
        flatten(p as usize, defs, parents, direct, marks, flat, path)?;
        if let Some(ps) = &flat[p as usize] {
            set.union_with(ps);
        }
    }
    path.pop();
    marks[i] = Mark::Done;
    flat[i] = Some(set);
    Ok(())
}
