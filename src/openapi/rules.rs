//! The import rules engine: an ordered list of rules, the first that matches an operation decides it.
//!
//! ```yaml
//! header: [lines written as comments at the top of the output]
//! verbs: {search: list, "POST validate": get}   # suffix verbs for every resource rule
//! groups:                                        # output route groups: the first whose `when` matches
//!   - name: tenant
//!     comment: routes whose path names the tenant
//!     when: {path: '\{tenantUid\}'}
//!     tenant: {param: tenantUid}
//!     project: {header: ProjectUid}
//!   - name: default                              # the last group takes every route no `when` claims
//!     project: {header: ProjectUid}
//! rules:
//!   - {method: POST, path: '^/v1/auth/authenticate$', public: true, why: login}
//!   - {prefix: /v1/spectroclusters/, resource: cluster, verbs: {import: import}}
//!   - {tag: system, method: GET, action: tag.get, why: no permission fits; every user holds tag.get}
//! ```
//!
//! A rule matches on any of `path` (regex), `prefix` (literal), `method` (one or a list), `tag` (one or a list),
//! `operation_id` (regex); all given conditions must hold. It gives exactly one of `action`, `public: true` or
//! `resource` (the verb is inferred, see [`infer_verb`]); `why` becomes a one-line comment above the route;
//! `group` pins the output group by name (a group without `when` takes only pinned routes, unless it is last).

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

pub use crate::config::Source;

use super::error::ImportError;
use super::spec::Operation;

/// `resource: "{segment}"` names the resource after the path's first segment past `api` and version
/// segments (`/v1/spectroclusters/{uid}` -> `spectroclusters`).
pub const PATH_RESOURCE: &str = "{segment}";

/// The resource a path names: its first static segment after `api` and version segments (`v1`, `v2beta`).
pub fn path_resource(path: &str) -> Option<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .find(|s| {
            let version =
                s.len() > 1 && s.starts_with('v') && s[1..2].chars().all(|c| c.is_ascii_digit());
            *s != "api" && !version
        })
        .filter(|s| !s.starts_with('{'))
        .map(str::to_string)
}

/// The rules used when none are given: every operation becomes `<first path segment>.<verb>`.
pub const DEFAULT_RULES: &str = "rules:\n  - {path: '.*', resource: '{segment}', why: \"resource from the path, verb from the method\"}\n";

/// What a route maps to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// An action id.
    Action(String),
    /// No token needed.
    Public,
}

impl Target {
    /// The value written in the routes file.
    pub fn as_str(&self) -> &str {
        match self {
            Target::Action(a) => a,
            Target::Public => "public",
        }
    }
}

/// The outcome of the first rule that matched an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The target.
    pub target: Target,
    /// The rule's `why`.
    pub why: Option<String>,
    /// 0-based index of the rule.
    pub rule: usize,
    /// 0-based index of the output group.
    pub group: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchDef {
    path: Option<String>,
    prefix: Option<String>,
    method: Option<OneOrMany>,
    tag: Option<OneOrMany>,
    operation_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDef {
    name: String,
    comment: Option<String>,
    when: Option<MatchDef>,
    upstream: Option<String>,
    host: Option<String>,
    tenant: Option<Source>,
    relation: Option<String>,
    caller: Option<String>,
    project: Option<Source>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    path: Option<String>,
    prefix: Option<String>,
    method: Option<OneOrMany>,
    tag: Option<OneOrMany>,
    operation_id: Option<String>,
    action: Option<String>,
    public: Option<bool>,
    resource: Option<String>,
    verbs: Option<BTreeMap<String, String>>,
    why: Option<String>,
    group: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesDef {
    #[serde(default)]
    header: Vec<String>,
    #[serde(default)]
    verbs: BTreeMap<String, String>,
    #[serde(default)]
    groups: Vec<GroupDef>,
    rules: Vec<RuleDef>,
}

/// Conditions on an operation; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    path: Option<Regex>,
    prefix: Option<String>,
    methods: Vec<String>,
    tags: Vec<String>,
    operation_id: Option<Regex>,
}

impl Matcher {
    fn compile(def: MatchDef, place: &str) -> Result<Self, ImportError> {
        let regex = |field: &str, src: Option<String>| -> Result<Option<Regex>, ImportError> {
            src.map(|s| {
                Regex::new(&s).map_err(|e| ImportError::BadRule {
                    place: place.to_string(),
                    message: format!("`{field}` is not a valid regex: {e}"),
                })
            })
            .transpose()
        };
        let methods: Vec<String> = def
            .method
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if let Some(m) = methods
            .iter()
            .find(|m| !super::spec::SPEC_METHODS.contains(&m.to_ascii_lowercase().as_str()))
        {
            return Err(ImportError::BadRule {
                place: place.to_string(),
                message: format!(
                    "`{m}` is not a method a spec can hold (GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE)"
                ),
            });
        }
        Ok(Matcher {
            path: regex("path", def.path)?,
            prefix: def.prefix,
            methods,
            tags: def.tag.map(OneOrMany::into_vec).unwrap_or_default(),
            operation_id: regex("operation_id", def.operation_id)?,
        })
    }

    /// True when every given condition holds for `op`.
    pub fn matches(&self, op: &Operation) -> bool {
        self.path.as_ref().is_none_or(|r| r.is_match(&op.path))
            && self
                .prefix
                .as_ref()
                .is_none_or(|p| op.path.starts_with(p.as_str()))
            && (self.methods.is_empty() || self.methods.contains(&op.method))
            && (self.tags.is_empty() || self.tags.contains(&op.tag))
            && self
                .operation_id
                .as_ref()
                .is_none_or(|r| r.is_match(&op.operation_id))
    }
}

/// An output route group: shared settings and the condition that sends routes to it.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Name (for `group:` in rules and error messages).
    pub name: String,
    /// Comment written above the group.
    pub comment: Option<String>,
    /// Which routes go to it; `None` = only routes pinned to it (or every unclaimed route, for the last group).
    pub when: Option<Matcher>,
    /// `upstream:`.
    pub upstream: Option<String>,
    /// `host:`.
    pub host: Option<String>,
    /// `tenant:`.
    pub tenant: Option<Source>,
    /// `relation:`.
    pub relation: Option<String>,
    /// `caller:`.
    pub caller: Option<String>,
    /// `project:`.
    pub project: Option<Source>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Action(String),
    Public,
    Resource {
        name: String,
        verbs: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    outcome: Outcome,
    why: Option<String>,
    group: Option<usize>,
}

/// A compiled rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Comment lines for the top of the output.
    pub header: Vec<String>,
    /// Output groups in file order.
    pub groups: Vec<Group>,
    rules: Vec<Rule>,
}

/// Infers the verb of `method` on `path`: a last literal segment listed in `verbs` (as `"METHOD segment"` or
/// `"segment"`) gives its verb; otherwise GET/HEAD on an item (last segment a parameter) -> `get`, GET/HEAD on a
/// collection -> `list`, POST -> `create`, PUT/PATCH -> `update`, DELETE -> `delete`.
pub fn infer_verb(method: &str, path: &str, verbs: &BTreeMap<String, String>) -> Option<String> {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let is_param = last.starts_with('{') && last.ends_with('}');
    if !is_param && !last.is_empty() {
        if let Some(v) = verbs
            .get(&format!("{method} {last}"))
            .or_else(|| verbs.get(last))
        {
            return Some(v.clone());
        }
    }
    let verb = match method {
        "GET" | "HEAD" if is_param => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "DELETE" => "delete",
        _ => return None,
    };
    Some(verb.to_string())
}

impl Rules {
    /// Parses and compiles a rules file.
    pub fn from_yaml(text: &str) -> Result<Self, ImportError> {
        let def: RulesDef = serde_saphyr::from_str(text).map_err(|e| ImportError::Yaml {
            what: "rules file",
            message: e.to_string(),
        })?;
        let mut groups = Vec::with_capacity(def.groups.len());
        for g in def.groups {
            let place = format!("group `{}`", g.name);
            if groups.iter().any(|x: &Group| x.name == g.name) {
                return Err(ImportError::BadRule {
                    place,
                    message: "defined twice".into(),
                });
            }
            for (field, value, allowed) in [
                (
                    "relation",
                    &g.relation,
                    &["own", "child", "own_or_child"][..],
                ),
                ("caller", &g.caller, &["any", "root"][..]),
            ] {
                if let Some(v) = value {
                    if !allowed.contains(&v.as_str()) {
                        return Err(ImportError::BadRule {
                            place,
                            message: format!("`{field}: {v}` is not one of {}", allowed.join(", ")),
                        });
                    }
                }
            }
            groups.push(Group {
                when: g.when.map(|w| Matcher::compile(w, &place)).transpose()?,
                name: g.name,
                comment: g.comment,
                upstream: g.upstream,
                host: g.host,
                tenant: g.tenant,
                relation: g.relation,
                caller: g.caller,
                project: g.project,
            });
        }
        if groups.is_empty() {
            groups.push(Group {
                name: "default".into(),
                ..Group::default()
            });
        }
        let mut rules = Vec::with_capacity(def.rules.len());
        for (i, r) in def.rules.into_iter().enumerate() {
            let place = format!("rule {}", i + 1);
            let bad = |message: String| ImportError::BadRule {
                place: place.clone(),
                message,
            };
            if r.verbs.is_some() && r.resource.is_none() {
                return Err(bad("`verbs` only applies to a `resource` rule".into()));
            }
            let outcome = match (r.action, r.public, r.resource) {
                (Some(a), None | Some(false), None) => {
                    if !crate::policy::is_valid_action_id(&a) || a.chars().any(char::is_control) {
                        return Err(bad(format!(
                            "`{a}` is not a valid action id (non-empty, no spaces or `*`; `public` is written `public: true`)"
                        )));
                    }
                    Outcome::Action(a)
                }
                (None, Some(true), None) => Outcome::Public,
                (None, None | Some(false), Some(name)) => {
                    let mut verbs = def.verbs.clone();
                    verbs.extend(r.verbs.unwrap_or_default());
                    Outcome::Resource { name, verbs }
                }
                _ => {
                    return Err(bad(
                        "give exactly one of `action`, `public: true` or `resource`".into(),
                    ))
                }
            };
            if let Some(w) = &r.why {
                if w.contains('\n') {
                    return Err(bad("`why` must be one line".into()));
                }
            }
            let group = match &r.group {
                Some(name) => Some(
                    groups
                        .iter()
                        .position(|g| g.name == *name)
                        .ok_or_else(|| bad(format!("unknown group `{name}`")))?,
                ),
                None => None,
            };
            let matcher = Matcher::compile(
                MatchDef {
                    path: r.path,
                    prefix: r.prefix,
                    method: r.method,
                    tag: r.tag,
                    operation_id: r.operation_id,
                },
                &place,
            )?;
            rules.push(Rule {
                matcher,
                outcome,
                why: r.why,
                group,
            });
        }
        Ok(Rules {
            header: def.header,
            groups,
            rules,
        })
    }

    /// The decision of the first rule matching `op`, or `None` when no rule covers it.
    pub fn classify(&self, op: &Operation) -> Result<Option<Decision>, ImportError> {
        let Some((i, rule)) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matcher.matches(op))
        else {
            return Ok(None);
        };
        let target = match &rule.outcome {
            Outcome::Action(a) => Target::Action(a.clone()),
            Outcome::Public => Target::Public,
            Outcome::Resource { name, verbs } => {
                let name = if name == PATH_RESOURCE {
                    match path_resource(&op.path) {
                        Some(n) => n,
                        None => return Ok(None),
                    }
                } else {
                    name.clone()
                };
                let verb =
                    infer_verb(&op.method, &op.path, verbs).ok_or_else(|| ImportError::NoVerb {
                        rule: i + 1,
                        resource: name.clone(),
                        method: op.method.clone(),
                        path: op.path.clone(),
                    })?;
                Target::Action(format!("{name}.{verb}"))
            }
        };
        let group = match rule.group {
            Some(g) => g,
            None => self
                .groups
                .iter()
                // Groups without `when` take only routes pinned to them; the last group is the default.
                .position(|g| g.when.as_ref().is_some_and(|m| m.matches(op)))
                .unwrap_or(self.groups.len() - 1),
        };
        Ok(Some(Decision {
            target,
            why: rule.why.clone(),
            rule: i,
            group,
        }))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
