//! The route table: per host and per method radix routers from canonical path to route entry.

use std::collections::HashMap;

use http::HeaderName;

use super::catalog::{ActionIdx, Catalog};
use crate::config::{
    CallerRequirement, ConfigError, Located, Relation, RouteDef, RouteTarget, Source, METHODS,
};

/// Index of a route in its table.
pub type RouteIdx = u32;

/// Where a route's target tenant or project is read, resolved at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundSource {
    /// The caller's own tenant.
    Token,
    /// A path parameter, by its position-normalized router name.
    Param(Box<str>),
    /// A request header.
    Header(HeaderName),
    /// A query parameter.
    Query(Box<str>),
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// The route as written (`GET,HEAD /v1/clusters/{uid}`).
    pub template: Box<str>,
    /// The action it maps to; `None` for public routes.
    pub action: Option<ActionIdx>,
    /// Target tenant source.
    pub tenant: BoundSource,
    /// Target project source.
    pub project: Option<BoundSource>,
    /// Required tenant relation.
    pub relation: Relation,
    /// Required caller tenant kind.
    pub caller: CallerRequirement,
    /// Index into the policy's upstream names, when the route names or implies one.
    pub upstream: Option<u32>,
}

impl RouteEntry {
    /// True when the route needs no token.
    pub fn is_public(&self) -> bool {
        self.action.is_none()
    }
}

#[derive(Default, Clone)]
struct MethodRouters {
    by_method: [Option<matchit::Router<RouteIdx>>; METHODS.len()],
    any: Option<matchit::Router<RouteIdx>>,
}

impl MethodRouters {
    #[inline]
    fn at<'s, 'p>(
        &'s self,
        method: &str,
        path: &'p str,
    ) -> Option<matchit::Match<'s, 'p, &'s RouteIdx>> {
        if let Some(i) = method_index(method) {
            if let Some(r) = &self.by_method[i] {
                if let Ok(m) = r.at(path) {
                    return Some(m);
                }
            }
        }
        self.any.as_ref().and_then(|r| r.at(path).ok())
    }
}

/// A matched route with its path parameters (borrowing the table and the request path).
pub struct RouteMatch<'t, 'p> {
    /// Index of the matched route.
    pub idx: RouteIdx,
    /// The route.
    pub entry: &'t RouteEntry,
    /// Path parameters under their position-normalized names.
    pub params: matchit::Params<'t, 'p>,
}

/// All routes of a policy.
#[derive(Clone, Default)]
pub struct RouteTable {
    default: MethodRouters,
    hosts: Vec<(Box<str>, MethodRouters)>,
    entries: Vec<RouteEntry>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &self.entries.len())
            .field("hosts", &self.hosts.len())
            .finish()
    }
}

/// Index of a known method (GET, HEAD, ...), or `None`.
#[inline]
pub fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| *m == method)
}

/// A template rewritten for the router, plus where each original param name sits.
struct Normalized {
    router_path: String,
    params: Vec<(String, String)>, // (original name, router name)
}

fn normalize_template(path: &str, key: &Located<String>) -> Result<Normalized, ConfigError> {
    let mut router_path = String::with_capacity(path.len());
    let mut params = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        router_path.push('/');
        let bad = |what: &str| {
            ConfigError::new(key.origin.clone(), format!("route `{}`: {what}", key.value))
        };
        if seg.is_empty() && i + 1 < segments.len() {
            return Err(bad("empty path segment (`//`)")
                .with_help("paths are canonical: no empty segments"));
        }
        if *seg == "." || *seg == ".." {
            return Err(bad("dot segment in path"));
        }
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let (catch_all, name) = match inner.strip_prefix('*') {
                Some(n) => (true, n),
                None => (false, inner),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(&format!("bad parameter name `{name}`")));
            }
            if catch_all && i + 1 != segments.len() {
                return Err(bad("`{*name}` must be the last segment"));
            }
            if params.iter().any(|(n, _)| n == name) {
                return Err(bad(&format!("parameter `{name}` appears twice")));
            }
            let router_name = format!("p{i}");
            router_path.push('{');
            if catch_all {
                router_path.push('*');
            }
            router_path.push_str(&router_name);
            router_path.push('}');
            params.push((name.to_string(), router_name));
        } else if seg.contains(['{', '}']) {
            return Err(bad(&format!(
                "parameter must fill a whole segment in `{seg}`"
            )));
        } else if seg.contains(['?', '#', '%', ';', '\\'])
            || seg.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(bad(&format!(
                "segment `{seg}` has characters a canonical path never has"
            )));
        } else {
            router_path.push_str(seg);
        }
    }
    if router_path.len() > 1 && router_path.ends_with('/') {
        return Err(ConfigError::new(
            key.origin.clone(),
            format!("route `{}` ends with `/`", key.value),
        )
        .with_help("canonical paths have no trailing slash; drop it"));
    }
    Ok(Normalized {
        router_path,
        params,
    })
}

fn bind(
    source: &Source,
    norm: &Normalized,
    key: &Located<String>,
    what: &str,
) -> Result<BoundSource, ConfigError> {
    Ok(match source {
        Source::Token => BoundSource::Token,
        Source::Param(name) => {
            let router = norm
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r.clone())
                .ok_or_else(|| {
                    let known: Vec<&str> = norm.params.iter().map(|(n, _)| n.as_str()).collect();
                    ConfigError::new(
                        key.origin.clone(),
                        format!("route `{}` takes its {what} from path parameter `{name}`, which it does not have", key.value),
                    )
                    .with_help(if known.is_empty() {
                        "the route has no parameters".to_string()
                    } else {
                        format!("its parameters are: {}", known.join(", "))
                    })
                })?;
            BoundSource::Param(router.into())
        }
        Source::Header(name) => {
            BoundSource::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::new(
                    key.origin.clone(),
                    format!("`{name}` is not a valid header name"),
                )
            })?)
        }
        Source::Query(name) => BoundSource::Query(name.as_str().into()),
    })
}

impl RouteTable {
    /// Compiles routes; conflicts, unknown actions and unknown upstreams are errors.
    pub fn build(
        defs: &[RouteDef],
        catalog: &Catalog,
        upstreams: &[Located<String>],
    ) -> Result<Self, ConfigError> {
        let mut table = RouteTable::default();
        let mut seen: HashMap<(Option<String>, Option<usize>, String), Located<String>> =
            HashMap::new();
        for def in defs {
            let norm = normalize_template(&def.path, &def.key)?;
            let action = match &def.target {
                RouteTarget::Public => None,
                RouteTarget::Action(a) => {
                    Some(catalog.resolve(a, &format!("in route `{}`", def.key.value))?)
                }
            };
            if let Some(Source::Token) = def.project {
                return Err(ConfigError::new(
                    def.key.origin.clone(),
                    format!(
                        "route `{}`: the project cannot come from the token",
                        def.key.value
                    ),
                )
                .with_help("use {param: ..}, {header: ..} or {query: ..}"));
            }
            let upstream = match &def.upstream {
                Some(name) => Some(
                    upstreams
                        .iter()
                        .position(|u| u.value == name.value)
                        .ok_or_else(|| {
                            ConfigError::new(
                                name.origin.clone(),
                                format!("unknown upstream `{}`", name.value),
                            )
                            .with_help("define it under `upstreams:`")
                        })? as u32,
                ),
                None if upstreams.len() == 1 => Some(0),
                None if upstreams.is_empty() => None,
                None => {
                    return Err(ConfigError::new(
                        def.key.origin.clone(),
                        format!(
                            "route `{}` names no upstream and there are several",
                            def.key.value
                        ),
                    )
                    .with_help("add `upstream: NAME` to the route or its group"))
                }
            };
            let entry = RouteEntry {
                template: def.key.value.trim().into(),
                action,
                tenant: bind(&def.tenant, &norm, &def.key, "tenant")?,
                project: def
                    .project
                    .as_ref()
                    .map(|p| bind(p, &norm, &def.key, "project"))
                    .transpose()?,
                relation: def.relation,
                caller: def.caller,
                upstream,
            };
            let idx = table.entries.len() as RouteIdx;
            table.entries.push(entry);
            let routers = match &def.host {
                None => &mut table.default,
                Some(h) => match table.hosts.iter().position(|(name, _)| **name == **h) {
                    Some(i) => &mut table.hosts[i].1,
                    None => {
                        table
                            .hosts
                            .push((h.as_str().into(), MethodRouters::default()));
                        &mut table.hosts.last_mut().expect("just pushed").1
                    }
                },
            };
            let methods: Vec<Option<usize>> = if def.methods.is_empty() {
                vec![None]
            } else {
                def.methods.iter().map(|m| method_index(m)).collect()
            };
            for m in methods {
                let slot = (def.host.clone(), m, norm.router_path.clone());
                if let Some(prev) = seen.get(&slot) {
                    return Err(conflict(def, prev));
                }
                let router = match m {
                    Some(i) => routers.by_method[i].get_or_insert_with(matchit::Router::new),
                    None => routers.any.get_or_insert_with(matchit::Router::new),
                };
                if let Err(e) = router.insert(norm.router_path.clone(), idx) {
                    let other = match &e {
                        matchit::InsertError::Conflict { with } => seen
                            .iter()
                            .find(|((h, mm, p), _)| *h == def.host && *mm == m && p == with)
                            .map(|(_, v)| v.clone()),
                        _ => None,
                    };
                    return Err(match other {
                        Some(prev) => conflict(def, &prev),
                        None => ConfigError::new(
                            def.key.origin.clone(),
                            format!("route `{}` cannot be added: {e}", def.key.value),
                        ),
                    });
                }
                seen.insert(slot, def.key.clone());
            }
        }
        Ok(table)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no route.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Route `idx`.
    pub fn entry(&self, idx: RouteIdx) -> &RouteEntry {
        &self.entries[idx as usize]
    }

    /// All routes in order.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// Finds the route for a canonical path. Hot path: no allocation; host routes before host-less ones.
    #[inline]
    pub fn find<'t, 'p>(
        &'t self,
        method: &str,
        host: Option<&str>,
        path: &'p str,
    ) -> Option<RouteMatch<'t, 'p>> {
        let hit = host
            .and_then(|h| {
                self.hosts
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(h))
            })
            .and_then(|(_, r)| r.at(method, path))
            .or_else(|| self.default.at(method, path))?;
        let idx = *hit.value;
        Some(RouteMatch {
            idx,
            entry: &self.entries[idx as usize],
            params: hit.params,
        })
    }
}

fn conflict(def: &RouteDef, prev: &Located<String>) -> ConfigError {
    ConfigError::new(
        def.key.origin.clone(),
        format!(
            "route `{}` conflicts with route `{}` at {}",
            def.key.value, prev.value, prev.origin
        ),
    )
    .with_help(
        "two routes with the same method and path shape would be ambiguous; remove or merge one",
    )
}
