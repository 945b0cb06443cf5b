//! Reading configuration files (with includes) and merging them into one [`Config`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::bundle::{self, BundleState};
use super::error::{ConfigError, Located, Origin};
use super::model::*;

/// Where configuration text comes from: the file system, or files embedded in the binary.
pub trait ConfigSource: Send + Sync {
    /// Reads one file.
    fn read(&self, path: &Path) -> std::io::Result<String>;

    /// Fetches a document included by URL (a policy bundle); sources without network refuse.
    fn fetch(&self, url: &str) -> Result<(String, BundleState), String> {
        Err(format!("`{url}`: this source does not fetch URLs"))
    }
}

/// Reads configuration from disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskSource;

impl ConfigSource for DiskSource {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn fetch(&self, url: &str) -> Result<(String, BundleState), String> {
        bundle::fetch(url)
    }
}

/// Serves configuration files from memory (embedded presets, tests).
#[derive(Debug, Default, Clone)]
pub struct MemorySource(pub HashMap<PathBuf, String>);

impl ConfigSource for MemorySource {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0.get(&normalize(path)).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such embedded file")
        })
    }
}

/// One action of the catalog.
#[derive(Debug, Clone)]
pub struct ActionDef {
    /// Action id.
    pub id: Located<String>,
    /// Documented label.
    pub label: String,
    /// Section it was listed under.
    pub section: Option<String>,
}

/// One role.
#[derive(Debug, Clone)]
pub struct RoleDef {
    /// Role name.
    pub name: Located<String>,
    /// Free text.
    pub description: Option<String>,
    /// Where it holds.
    pub scope: RoleScope,
    /// Held by every authenticated caller.
    pub implicit: bool,
    /// Inherited roles.
    pub inherits: Vec<Located<String>>,
    /// Granted action ids or globs.
    pub grants: Vec<Located<String>>,
}

/// What a route leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A documented action.
    Action(Located<String>),
    /// No token needed.
    Public,
}

/// One route after group defaults are applied.
#[derive(Debug, Clone)]
pub struct RouteDef {
    /// The route key as written (`GET,HEAD /v1/x/{uid}`), located.
    pub key: Located<String>,
    /// Methods (upper-case); empty means any.
    pub methods: Vec<String>,
    /// Path template.
    pub path: String,
    /// Action or public.
    pub target: RouteTarget,
    /// Upstream name, if given.
    pub upstream: Option<Located<String>>,
    /// Host, lower-cased, if given.
    pub host: Option<String>,
    /// Target tenant source.
    pub tenant: Source,
    /// Required relation.
    pub relation: Relation,
    /// Required caller tenant kind.
    pub caller: CallerRequirement,
    /// Target project source.
    pub project: Option<Source>,
}

/// A whole configuration, merged from the root file and its includes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every file read, root first.
    pub files: Vec<PathBuf>,
    /// Every document included by URL, in the order read.
    pub bundles: Vec<BundleState>,
    /// Directory of the root file (base for relative key paths).
    pub base_dir: PathBuf,
    /// Gateway settings.
    pub gateway: GatewaySettings,
    /// Upstreams in order.
    pub upstreams: Vec<(Located<String>, UpstreamSettings)>,
    /// Auth settings.
    pub auth: AuthSettings,
    /// Claim mapping.
    pub claims: ClaimMapping,
    /// Tenant directory, child -> parent.
    pub tenants: BTreeMap<String, Located<String>>,
    /// Action catalog in order.
    pub actions: Vec<ActionDef>,
    /// Roles in order.
    pub roles: Vec<RoleDef>,
    /// Routes in order.
    pub routes: Vec<RouteDef>,
}

/// The most files one configuration may read (guards against include explosions).
const MAX_FILES: usize = 256;
/// YAML nodes (mappings, sequences, scalars) one configuration file may hold.
pub const MAX_YAML_NODES: usize = 2_000_000;

/// Loads a configuration from disk.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_with(&DiskSource, path)
}

/// Loads a configuration through `source`, starting at `root`.
pub fn load_with(source: &dyn ConfigSource, root: &Path) -> Result<Config, ConfigError> {
    let mut loader = Loader {
        source,
        files: Vec::new(),
        bundles: Vec::new(),
        stack: Vec::new(),
        merged: Merged::default(),
    };
    let root_name: Arc<str> = Arc::from(root.display().to_string());
    loader.read(root, Origin::file(&root_name))?;
    let base_dir = root.parent().map(Path::to_path_buf).unwrap_or_default();
    loader.finish(base_dir)
}

#[derive(Default)]
struct Merged {
    gateway: Option<(GatewaySettings, Origin)>,
    auth: Option<(AuthSettings, Origin)>,
    claims: Option<(ClaimMapping, Origin)>,
    issuers: Vec<IssuerSettings>,
    upstreams: Vec<(Located<String>, UpstreamSettings)>,
    tenants: Vec<(Located<String>, Located<String>)>,
    actions: Vec<ActionDef>,
    roles: Vec<RoleDef>,
    routes: Vec<RouteDef>,
}

struct Loader<'a> {
    source: &'a dyn ConfigSource,
    files: Vec<PathBuf>,
    bundles: Vec<BundleState>,
    stack: Vec<PathBuf>,
    merged: Merged,
}

/// Converts a span to an origin in `file`, falling back to `fallback` when the parser lost it.
fn origin_of<T>(s: &Spanned<T>, file: &Arc<str>, fallback: &Origin) -> Origin {
    let line = s.referenced.line();
    if line == 0 {
        return fallback.clone();
    }
    Origin {
        file: file.clone(),
        line: line as u32,
        column: s.referenced.column() as u32,
    }
}

fn located(s: &Spanned<String>, file: &Arc<str>, fallback: &Origin) -> Located<String> {
    Located::new(s.value.clone(), origin_of(s, file, fallback))
}

/// Lexically normalizes a path (`a/./b/../c` -> `a/c`), for include cycle checks and embedded lookups.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Loader<'_> {
    fn read(&mut self, path: &Path, included_at: Origin) -> Result<(), ConfigError> {
        let path = normalize(path);
        let name: Arc<str> = Arc::from(path.display().to_string());
        if self.stack.contains(&path) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain(std::iter::once(&path))
                .map(|p| p.display().to_string())
                .collect();
            return Err(ConfigError::new(
                included_at,
                format!("include cycle: {}", chain.join(" -> ")),
            ));
        }
        if self.files.contains(&path) {
            return Err(ConfigError::new(
                included_at,
                format!("`{}` is included twice", path.display()),
            )
            .with_help("include each file once"));
        }
        self.check_room(&included_at)?;
        let text = self.source.read(&path).map_err(|e| {
            ConfigError::new(
                included_at.clone(),
                format!("cannot read `{}`: {e}", path.display()),
            )
            .with_help("check the path (includes are relative to the including file)")
        })?;
        self.files.push(path.clone());
        let file: FileModel = parse_yaml(&text, &name)?;
        self.stack.push(path.clone());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let whole = Origin::file(&name);
        for inc in &file.include {
            let at = origin_of(inc, &name, &whole);
            if bundle::is_url(&inc.value) {
                self.read_url(&inc.value, at)?;
            } else {
                self.read(&dir.join(&inc.value), at)?;
            }
        }
        self.stack.pop();
        self.merge(file, &name)
    }

    /// Refuses one more document once [`MAX_FILES`] were read.
    fn check_room(&self, at: &Origin) -> Result<(), ConfigError> {
        if self.files.len() + self.bundles.len() >= MAX_FILES {
            return Err(ConfigError::new(
                at.clone(),
                format!("more than {MAX_FILES} configuration files"),
            ));
        }
        Ok(())
    }

    /// Reads a policy bundle: a document included by URL, holding policy sections only.
    fn read_url(&mut self, url: &str, included_at: Origin) -> Result<(), ConfigError> {
        let refuse = |message: String| {
            ConfigError::new(included_at.clone(), message).with_help(
                "check the URL, and that the bundle server answers 200 with the document",
            )
        };
        bundle::check_url(url).map_err(&refuse)?;
        if self.bundles.iter().any(|b| b.url == url) {
            return Err(
                ConfigError::new(included_at, format!("`{url}` is included twice"))
                    .with_help("include each bundle once"),
            );
        }
        self.check_room(&included_at)?;
        let (text, state) = self.source.fetch(url).map_err(&refuse)?;
        let name: Arc<str> = Arc::from(url);
        let file: FileModel = parse_yaml(&text, &name)?;
        if let Some(section) = bundle::forbidden_section(&file) {
            return Err(ConfigError::new(
                Origin::file(&name),
                format!("a policy bundle cannot set `{section}`"),
            )
            .with_help("a bundle holds actions, roles, routes, tenants and claims; keep `gateway`, `auth`, `upstreams` and includes in local files"));
        }
        self.bundles.push(state);
        self.merge(file, &name)
    }

    fn merge(&mut self, file: FileModel, name: &Arc<str>) -> Result<(), ConfigError> {
        let whole = Origin::file(name);
        let m = &mut self.merged;
        if let Some(g) = file.gateway {
            let at = origin_of(&g, name, &whole);
            once("gateway", &m.gateway, &at)?;
            m.gateway = Some((g.value, at));
        }
        if let Some(a) = file.auth {
            let at = origin_of(&a, name, &whole);
            let mut settings = a.value;
            m.issuers.append(&mut settings.issuers);
            once("auth", &m.auth, &at)?;
            m.auth = Some((settings, at));
        }
        if let Some(c) = file.claims {
            let at = origin_of(&c, name, &whole);
            once("claims", &m.claims, &at)?;
            m.claims = Some((c.value, at));
        }
        for (k, v) in file.upstreams.0 {
            m.upstreams.push((located(&k, name, &whole), v));
        }
        for (k, v) in file.tenants.0 {
            m.tenants
                .push((located(&k, name, &whole), located(&v, name, &whole)));
        }
        for (k, entry) in file.actions.0 {
            match entry {
                ActionEntry::Label(label) => m.actions.push(ActionDef {
                    id: located(&k, name, &whole),
                    label,
                    section: None,
                }),
                ActionEntry::Section(items) => {
                    for (id, label) in items.0 {
                        m.actions.push(ActionDef {
                            id: located(&id, name, &whole),
                            label,
                            section: Some(k.value.clone()),
                        });
                    }
                }
            }
        }
        for (k, role) in file.roles.0 {
            let at = origin_of(&k, name, &whole);
            m.roles.push(RoleDef {
                name: Located::new(k.value.clone(), at.clone()),
                description: role.description,
                scope: role.scope,
                implicit: role.implicit,
                inherits: role
                    .inherits
                    .0
                    .iter()
                    .map(|s| located(s, name, &at))
                    .collect(),
                grants: role
                    .grants
                    .0
                    .iter()
                    .map(|s| located(s, name, &at))
                    .collect(),
            });
        }
        for mut group in file.routes {
            let map = std::mem::take(&mut group.map.0);
            for (key, value) in map {
                let key = located(&key, name, &whole);
                m.routes.push(route_def(&group, key, value, name)?);
            }
        }
        Ok(())
    }

    fn finish(self, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let m = self.merged;
        let mut auth = m.auth.map(|(a, _)| a).unwrap_or_default();
        auth.issuers = m.issuers;
        let mut tenants = BTreeMap::new();
        for (child, parent) in m.tenants {
            if let Some(prev) = tenants.get(&child.value) {
                let prev: &Located<String> = prev;
                return Err(ConfigError::new(
                    child.origin.clone(),
                    format!(
                        "tenant `{}` is given a parent twice (first at {})",
                        child.value, prev.origin
                    ),
                ));
            }
            tenants.insert(child.value, parent);
        }
        Ok(Config {
            files: self.files,
            bundles: self.bundles,
            base_dir,
            gateway: m.gateway.map(|(g, _)| g).unwrap_or_default(),
            upstreams: m.upstreams,
            auth,
            claims: m.claims.map(|(c, _)| c).unwrap_or_default(),
            tenants,
            actions: m.actions,
            roles: m.roles,
            routes: m.routes,
        })
    }
}

fn once<T>(section: &str, prev: &Option<(T, Origin)>, at: &Origin) -> Result<(), ConfigError> {
    match prev {
        Some((_, first)) => Err(ConfigError::new(
            at.clone(),
            format!("`{section}` is set twice (first at {first})"),
        )
        .with_help(format!("keep `{section}` in one file"))),
        None => Ok(()),
    }
}

/// Parses one YAML document into `T`, turning parser errors into located errors.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &Arc<str>,
) -> Result<T, ConfigError> {
    parse_yaml_capped(text, file, MAX_YAML_NODES)
}

fn parse_yaml_capped<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &Arc<str>,
    max_nodes: usize,
) -> Result<T, ConfigError> {
    // The parser's default budget (250,000 nodes) refuses a generated policy of 10,000 roles;
    // configuration files are the operator's own, so the node and event caps are raised while
    // the alias, anchor and depth limits against expansion bombs stay as they are.
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_nodes: max_nodes,
            max_events: 4 * max_nodes,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((0, 0));
        let raw = e.to_string();
        let msg = yaml_message(&raw);
        let wanted_type = type_error(&msg).map(type_words);
        let err = ConfigError::new(
            Origin {
                file: file.clone(),
                line,
                column,
            },
            msg,
        );
        if let Some(words) = wanted_type {
            err.with_help(format!(
                "the value here must be {words} (see the configuration reference in README.md)"
            ))
        } else if raw.contains("duplicate mapping key") {
            err.with_help("a key may appear once per mapping; remove or merge the other one")
        } else if raw.contains("budget breached") {
            err.with_help(format!(
                "one file may hold at most {max_nodes} YAML nodes; split it with `include`"
            ))
        } else {
            err
        }
    })
}

/// The type a bare `invalid u64` style message names (the parser says only what it wanted).
fn type_error(msg: &str) -> Option<&str> {
    msg.strip_prefix("invalid ")
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The type a bare type error names, in words.
fn type_words(ty: &str) -> &'static str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        _ => "of another type",
    }
}

/// Strips the parser's own location prefix/suffix so the message reads once.
fn yaml_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let msg = first
        .split_once(" at line ")
        .map(|(m, _)| m)
        .unwrap_or(first);
    let msg = msg.trim_start_matches("error: ");
    // The parser suggests an option of its own API, which a configuration author cannot set.
    let msg = msg
        .split_once(", set DuplicateKeyPolicy")
        .map_or(msg, |(m, _)| m);
    let mut msg = msg.to_string();
    if let Some(c) = msg.get(..1) {
        let lower = c.to_lowercase();
        msg.replace_range(..1, &lower);
    }
    msg.trim_end_matches('.').to_string()
}

/// Known HTTP methods a route may name.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

fn route_def(
    group: &RouteGroup,
    key: Located<String>,
    value: RouteValue,
    file: &Arc<str>,
) -> Result<RouteDef, ConfigError> {
    let (methods, path) = parse_route_key(&key)?;
    let whole = key.origin.clone();
    let over = match value {
        RouteValue::Action(a) => RouteOverride {
            action: Some(a),
            ..RouteOverride::default()
        },
        RouteValue::Detailed(o) => *o,
    };
    let public = over.public.or(group.public).unwrap_or(false);
    let target = match over.action {
        Some(a) if a.value == "public" => RouteTarget::Public,
        Some(_) if public => {
            return Err(ConfigError::new(
                whole,
                format!("route `{}` is public and also names an action", key.value),
            )
            .with_help("write `public` as the route's value, or drop `public: true`"))
        }
        Some(a) => RouteTarget::Action(located(&a, file, &whole)),
        None if public => RouteTarget::Public,
        None => {
            return Err(
                ConfigError::new(whole, format!("route `{}` names no action", key.value))
                    .with_help("give an action id, or `public` for routes that need no token"),
            )
        }
    };
    let host = over
        .host
        .as_ref()
        .or(group.host.as_ref())
        .map(|h| h.value.to_ascii_lowercase());
    let upstream = over
        .upstream
        .as_ref()
        .or(group.upstream.as_ref())
        .map(|u| located(u, file, &whole));
    Ok(RouteDef {
        methods,
        path,
        target,
        upstream,
        host,
        tenant: over
            .tenant
            .or_else(|| group.tenant.clone())
            .unwrap_or(Source::Token),
        relation: over.relation.or(group.relation).unwrap_or_default(),
        caller: over.caller.or(group.caller).unwrap_or_default(),
        project: over.project.or_else(|| group.project.clone()),
        key,
    })
}

/// Splits `GET,HEAD /path` into methods and path, checking both.
pub fn parse_route_key(key: &Located<String>) -> Result<(Vec<String>, String), ConfigError> {
    let bad = |msg: String| {
        ConfigError::new(key.origin.clone(), msg)
            .with_help("write routes as `METHOD /path/{param}`, e.g. `GET,HEAD /v1/clusters/{uid}` or `* /health`")
    };
    let (methods, path) = key
        .value
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad(format!("route `{}` has no method", key.value)))?;
    let path = path.trim();
    let mut out = Vec::new();
    if methods != "*" {
        for m in methods.split(',') {
            let m = m.trim();
            if !METHODS.contains(&m) {
                return Err(bad(format!(
                    "unknown method `{m}` in route `{}`",
                    key.value
                )));
            }
            if out.iter().any(|x| x == m) {
                return Err(bad(format!(
                    "method `{m}` repeated in route `{}`",
                    key.value
                )));
            }
            out.push(m.to_string());
        }
    }
    if !path.starts_with('/') {
        return Err(bad(format!("route path `{path}` must start with `/`")));
    }
    Ok((out, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow_sequence(n: usize) -> String {
        let mut s = String::with_capacity(2 * n + 2);
        s.push('[');
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push('0');
        }
        s.push(']');
        s
    }

    #[test]
    fn a_file_above_the_parsers_default_node_budget_loads() {
        let v: Vec<u8> = parse_yaml(&flow_sequence(300_000), &"big.yaml".into()).unwrap();
        assert_eq!(v.len(), 300_000);
    }

    #[test]
    fn a_file_above_the_node_cap_is_refused_with_a_way_out() {
        let err = parse_yaml_capped::<Vec<u8>>(&flow_sequence(1_001), &"huge.yaml".into(), 1_000)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("huge.yaml:"), "{text}");
        assert!(
            text.contains("at most 1000 YAML nodes; split it with `include`"),
            "{text}"
        );
    }
}
