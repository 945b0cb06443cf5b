//! The YAML file model: what one configuration file may contain, with source spans for later errors.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

/// An ordered YAML mapping kept as a list of entries, so keys keep their spans and their order.
#[derive(Debug, Clone)]
pub struct Entries<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// One or many strings (`[a, b]` or `a`).
#[derive(Debug, Clone, Default)]
pub struct OneOrMany(pub Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Untagged enums lose spans, so the visitor reads a sequence or a string itself.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![Spanned::new(
                    v.to_string(),
                    Location::UNKNOWN,
                    Location::UNKNOWN,
                )]))
            }
        }
        d.deserialize_any(V)
    }
}

/// One configuration file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileModel {
    /// Other files to read, relative to this one.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// Listener and process settings.
    pub gateway: Option<Spanned<GatewaySettings>>,
    /// Named upstreams.
    #[serde(default)]
    pub upstreams: Entries<Spanned<String>, UpstreamSettings>,
    /// Token verification settings.
    pub auth: Option<Spanned<AuthSettings>>,
    /// Where the principal comes from in the token.
    pub claims: Option<Spanned<ClaimMapping>>,
    /// Tenant directory: child -> parent.
    #[serde(default)]
    pub tenants: Entries<Spanned<String>, Spanned<String>>,
    /// The action catalog: id -> label, or section -> {id -> label}.
    #[serde(default)]
    pub actions: Entries<Spanned<String>, ActionEntry>,
    /// The role table.
    #[serde(default)]
    pub roles: Entries<Spanned<String>, RoleModel>,
    /// Route groups.
    #[serde(default)]
    pub routes: Vec<RouteGroup>,
}

/// An entry under `actions`: an action's label, or a section of actions.
#[derive(Debug, Clone)]
pub enum ActionEntry {
    /// `id: label`.
    Label(String),
    /// `section: {id: label, ...}`.
    Section(Entries<Spanned<String>, String>),
}

impl<'de> Deserialize<'de> for ActionEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action label (string) or a section (mapping of action id to label)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ActionEntry::Label(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Entries::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ActionEntry::Section)
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a role holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleScope {
    /// Across the caller's whole tenant.
    #[default]
    Tenant,
    /// Only in the projects the role is bound to.
    Project,
}

/// One role as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleModel {
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the role holds.
    #[serde(default)]
    pub scope: RoleScope,
    /// Held by every authenticated caller, in their own tenant.
    #[serde(default)]
    pub implicit: bool,
    /// Roles whose grants this one includes.
    #[serde(default)]
    pub inherits: OneOrMany,
    /// Action ids or globs.
    #[serde(default)]
    pub grants: OneOrMany,
}

/// Where a route's target tenant or project comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// The caller's own (from the token); only meaningful for the tenant.
    Token,
    /// A path parameter of the route template.
    Param(String),
    /// A request header.
    Header(String),
    /// A query parameter.
    Query(String),
}

impl Source {
    /// Flow-style YAML as a routes file writes it (`{param: tenantUid}` or `token`).
    pub fn to_yaml(&self) -> String {
        match self {
            Source::Token => "token".into(),
            Source::Param(n) => format!("{{param: {n}}}"),
            Source::Header(n) => format!("{{header: {n}}}"),
            Source::Query(n) => format!("{{query: {n}}}"),
        }
    }
}

/// The tenant relation a route requires between the caller and the target tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Target tenant is the caller's tenant.
    #[default]
    Own,
    /// Target tenant is a direct child of the caller's tenant.
    Child,
    /// Either of the above.
    OwnOrChild,
}

/// What the route requires of the caller's tenant itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerRequirement {
    /// Any tenant.
    #[default]
    Any,
    /// A root tenant: one with no parent in the tenant directory.
    Root,
}

/// Settings shared by a group of routes; each route may override them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Upstream name.
    pub upstream: Option<Spanned<String>>,
    /// Host the routes answer on (case-insensitive); all hosts when absent.
    pub host: Option<Spanned<String>>,
    /// Target tenant source.
    pub tenant: Option<Source>,
    /// Required tenant relation.
    pub relation: Option<Relation>,
    /// Required caller tenant kind.
    pub caller: Option<CallerRequirement>,
    /// Target project source.
    pub project: Option<Source>,
    /// No token needed.
    pub public: Option<bool>,
}

/// A route group as written: shared settings plus `METHOD /path: action` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteGroup {
    /// Upstream name.
    pub upstream: Option<Spanned<String>>,
    /// Host the routes answer on.
    pub host: Option<Spanned<String>>,
    /// Target tenant source.
    pub tenant: Option<Source>,
    /// Required tenant relation.
    pub relation: Option<Relation>,
    /// Required caller tenant kind.
    pub caller: Option<CallerRequirement>,
    /// Target project source.
    pub project: Option<Source>,
    /// No token needed for any route of the group.
    pub public: Option<bool>,
    /// The routes.
    pub map: Entries<Spanned<String>, RouteValue>,
}

/// The value of one route entry.
#[derive(Debug, Clone)]
pub enum RouteValue {
    /// An action id, or `public`.
    Action(Spanned<String>),
    /// An action with per-route overrides.
    Detailed(Box<RouteOverride>),
}

/// A route entry written as a mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteOverride {
    /// Action id (absent only for public routes).
    pub action: Option<Spanned<String>>,
    /// Upstream name.
    pub upstream: Option<Spanned<String>>,
    /// Host.
    pub host: Option<Spanned<String>>,
    /// Target tenant source.
    pub tenant: Option<Source>,
    /// Required tenant relation.
    pub relation: Option<Relation>,
    /// Required caller tenant kind.
    pub caller: Option<CallerRequirement>,
    /// Target project source.
    pub project: Option<Source>,
    /// No token needed.
    pub public: Option<bool>,
}

impl<'de> Deserialize<'de> for RouteValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RouteValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action id, `public`, or a mapping with `action` and overrides")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RouteValue::Action(Spanned::new(
                    v.to_string(),
                    Location::UNKNOWN,
                    Location::UNKNOWN,
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RouteOverride::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|o| RouteValue::Detailed(Box::new(o)))
            }
        }
        d.deserialize_any(V)
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin() -> String {
    "127.0.0.1:9090".into()
}
fn default_threads() -> usize {
    2
}
fn default_grace() -> u64 {
    5
}
fn default_unmapped() -> u16 {
    403
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_uri_bytes() -> usize {
    8 * 1024
}

/// Listener, process and request-handling settings (`gateway:`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Proxy listener address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Admin listener address (metrics, health, policy, reload).
    #[serde(default = "default_admin")]
    pub admin: String,
    /// Worker threads of the proxy service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Let idle proxy threads steal work from busy ones (one shared tokio runtime) instead of one
    /// runtime per thread; off by default, which measured faster under load.
    #[serde(default)]
    pub work_stealing: bool,
    /// Seconds to keep serving after SIGTERM before shutting down.
    #[serde(default = "default_grace")]
    pub grace_period_seconds: u64,
    /// Status for a request no route maps: 403 or 404.
    #[serde(default = "default_unmapped")]
    pub unmapped_status: u16,
    /// Forward the client's Authorization header upstream.
    #[serde(default)]
    pub forward_authorization: bool,
    /// Largest request head accepted (431 above it).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Longest request target accepted (414 above it).
    #[serde(default = "default_max_uri_bytes")]
    pub max_uri_bytes: usize,
    /// Peers (IP addresses) whose X-Forwarded-* headers are trusted.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Extra client headers to strip before forwarding (X-Auth-* is always stripped).
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// Seconds between polls of policy bundles included by URL (ETag); 0 turns polling off.
    #[serde(default = "default_bundle_poll")]
    pub bundle_poll_seconds: u64,
    /// Decision log settings.
    #[serde(default)]
    pub decision_log: DecisionLogSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listen: default_listen(),
            admin: default_admin(),
            threads: default_threads(),
            work_stealing: false,
            grace_period_seconds: default_grace(),
            unmapped_status: default_unmapped(),
            forward_authorization: false,
            max_header_bytes: default_max_header_bytes(),
            max_uri_bytes: default_max_uri_bytes(),
            trusted_proxies: Vec::new(),
            strip_headers: Vec::new(),
            bundle_poll_seconds: default_bundle_poll(),
            decision_log: DecisionLogSettings::default(),
        }
    }
}

fn default_bundle_poll() -> u64 {
    30
}
fn one() -> f64 {
    1.0
}
fn default_log_level() -> String {
    "info".into()
}

/// Decision log settings (`gateway.decision_log`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogSettings {
    /// Emit decision lines at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// tracing level of the lines: error, warn, info, debug, trace.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// Fraction of allowed requests logged (0.0 - 1.0).
    #[serde(default = "one")]
    pub allow_sample: f64,
    /// Fraction of denied requests logged (0.0 - 1.0).
    #[serde(default = "one")]
    pub deny_sample: f64,
}

fn yes() -> bool {
    true
}

impl Default for DecisionLogSettings {
    fn default() -> Self {
        DecisionLogSettings {
            enabled: true,
            level: default_log_level(),
            allow_sample: 1.0,
            deny_sample: 1.0,
        }
    }
}

fn default_connect_ms() -> u64 {
    1000
}
fn default_read_ms() -> u64 {
    30_000
}

/// One named upstream (`upstreams.NAME`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// `host:port` addresses, resolved at load time and balanced round-robin.
    pub addresses: Vec<String>,
    /// Connect timeout.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Read timeout (also the wait for response headers).
    #[serde(default = "default_read_ms")]
    pub read_timeout_ms: u64,
}

impl UpstreamSettings {
    /// The `host:port` of each address (`[http://]host:port[/]`), or what is wrong with one.
    pub fn host_ports<'a>(&'a self, name: &str) -> Result<Vec<&'a str>, String> {
        if self.addresses.is_empty() {
            return Err(format!(
                "upstream `{name}` has no addresses; list at least one host:port"
            ));
        }
        self.addresses
            .iter()
            .map(|a| {
                if a.starts_with("https://") {
                    return Err(format!(
                        "upstream `{name}`: `{a}` is https; this build forwards plain HTTP (terminate TLS in front of the upstream)"
                    ));
                }
                let hostport = a.strip_prefix("http://").unwrap_or(a);
                let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
                let ok = hostport.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty()
                        && host.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
                        && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if ok {
                    Ok(hostport)
                } else {
                    Err(format!(
                        "upstream `{name}`: address `{a}` is not host:port (e.g. 127.0.0.1:8080 or api.internal:80)"
                    ))
                }
            })
            .collect()
    }
}

fn default_leeway() -> u64 {
    60
}
fn default_max_token() -> usize {
    8192
}
fn default_cache_capacity() -> usize {
    100_000
}

/// Token verification settings (`auth:`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Clock skew allowed on exp, nbf and iat.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Largest token accepted.
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    /// Longest token lifetime accepted (exp - iat), if set.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Accept HS256 tokens from issuer `rolegate-dev` when ROLEGATE_DEV_SECRET is set (development only).
    #[serde(default)]
    pub dev_issuer: bool,
    /// Trusted issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// Verified tokens kept in memory.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            leeway_seconds: default_leeway(),
            max_token_bytes: default_max_token(),
            max_lifetime_seconds: None,
            dev_issuer: false,
            issuers: Vec::new(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

/// One trusted issuer (`auth.issuers[]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted audiences; when non-empty `aud` must contain one.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowed algorithms (each key is further pinned to its key type).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// JWKS URL, fetched at load and refreshed.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS file.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// PEM public key files.
    #[serde(default)]
    pub pem_files: Vec<PathBuf>,
    /// OIDC issuer URL whose discovery document names the JWKS.
    #[serde(default)]
    pub oidc_discovery: Option<String>,
    /// Env var holding an HMAC secret.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// File holding an HMAC secret.
    #[serde(default)]
    pub hmac_secret_file: Option<PathBuf>,
    /// Refresh period of URL-backed keys.
    #[serde(default)]
    pub jwks_refresh_seconds: Option<u64>,
}

fn claim_sub() -> String {
    "sub".into()
}
fn claim_tenant() -> String {
    "tenant".into()
}
fn claim_roles() -> String {
    "roles".into()
}
fn claim_project_roles() -> String {
    "project_roles".into()
}

/// Where the principal is read from in a token's claims (`claims:`); dotted paths walk objects.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// Subject claim.
    #[serde(default = "claim_sub")]
    pub subject: String,
    /// Tenant claim.
    #[serde(default = "claim_tenant")]
    pub tenant: String,
    /// Roles claim: array of strings or a space-separated string.
    #[serde(default = "claim_roles")]
    pub roles: String,
    /// Project-bound roles claim: `{project: [roles]}`.
    #[serde(default = "claim_project_roles")]
    pub project_roles: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: claim_sub(),
            tenant: claim_tenant(),
            roles: claim_roles(),
            project_roles: claim_project_roles(),
        }
    }
}
