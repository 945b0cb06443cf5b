//! The proxy: pingora's request phases, each doing one step of the gateway's job.
//!
//! `request_filter` decides (canonicalize -> route -> token -> decide) and answers denials itself;
//! `upstream_peer` picks the upstream of the matched route; `upstream_request_filter` forwards the
//! canonical path with the gateway's identity headers; `logging` counts and logs the decision.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use super::headers::{nominated_decision_header, rewrite, Identity, Rewrite};
use super::respond::Problem;
use super::runtime::{CachedCaller, Runtime};
use super::{decision_log, request_id, Shared};
use crate::canonical::canonicalize;
use crate::policy::{CompiledPolicy, Decision, Reason, Request, RoleIdx, Subject};

/// The gateway's `ProxyHttp` implementation.
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// A proxy over shared state (runtime, metrics).
    pub fn new(shared: Arc<Shared>) -> Self {
        Gateway { shared }
    }
}

/// Per-request state, created by `new_ctx` and dropped after `logging`.
pub struct RequestCtx {
    start: Instant,
    request_id: String,
    runtime: Option<Arc<Runtime>>,
    decision: Option<Decision>,
    /// Canonical path + query when it differs from what the client sent.
    rewritten: Option<String>,
    canonical_path: String,
    caller: Option<Arc<CachedCaller>>,
    subject: Option<Arc<Subject>>,
    decided_in: Duration,
    upstream_start: Option<Instant>,
    upstream_status: Option<u16>,
    detail: Option<String>,
}

/// Wall-clock seconds, for token expiry.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a request was refused before the policy could decide.
struct Early {
    status: u16,
    reason: Reason,
    detail: String,
}

/// Reads the bearer token: none, one, or an error (duplicate or malformed header).
fn bearer(req: &RequestHeader) -> Result<Option<&str>, &'static str> {
    let mut values = req.headers.get_all(AUTHORIZATION).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let v = first
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let (scheme, token) = v
        .trim()
        .split_once(' ')
        .ok_or("the Authorization header is not `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization scheme is not Bearer");
    }
    let token = token.trim();
    if token.is_empty() || token.bytes().any(|b| matches!(b, b' ' | b',' | b'\t')) {
        return Err("the bearer token is malformed");
    }
    Ok(Some(token))
}

/// Size limits and the Host header, checked before anything else.
fn precheck(req: &RequestHeader, rt: &Runtime) -> Result<(), Early> {
    let early = |status, detail: &str| {
        Err(Early {
            status,
            reason: Reason::BadRequest,
            detail: detail.to_string(),
        })
    };
    let target_len = req.raw_path().len();
    if target_len > rt.settings.max_uri_bytes {
        return early(
            414,
            "the request target is longer than this gateway accepts",
        );
    }
    let head: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if head > rt.settings.max_header_bytes {
        return early(
            431,
            "the request headers are larger than this gateway accepts",
        );
    }
    // The URI the parser built may hold a repaired (percent-encoded) copy of a target that had
    // raw spaces, controls or non-ASCII bytes; refuse those targets outright.
    if req.raw_path().iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return early(
            400,
            "the request target has characters that must be percent-encoded",
        );
    }
    if let Err(why) = target_form(req.raw_path()) {
        return early(400, why);
    }
    if req.headers.get_all(http::header::HOST).iter().count() > 1 {
        return early(400, "more than one Host header");
    }
    Ok(())
}

/// The request target's form: origin-form (`/...`), `*` (refused later), or absolute-form with an
/// `http` or `https` scheme.
fn target_form(raw: &[u8]) -> Result<(), &'static str> {
    let scheme_ok = |s: &[u8]| raw.len() >= s.len() && raw[..s.len()].eq_ignore_ascii_case(s);
    if raw.first() == Some(&b'/') || raw == b"*" || scheme_ok(b"http://") || scheme_ok(b"https://")
    {
        Ok(())
    } else {
        Err("the request target must be a path or an http(s) URL")
    }
}

/// True when the request line (the first line of the raw header) carries a fragment. pingora
/// drops a fragment from both the URI and the raw target it builds, so only the raw header
/// shows that the client sent one.
fn has_fragment(raw_header: &[u8]) -> bool {
    raw_header
        .split(|&b| b == b'\n')
        .next()
        .is_some_and(|line| line.contains(&b'#'))
}

/// True when the query carries a `_method` parameter, which Symfony, Laravel and others read as
/// the request's method: the upstream would act on a method the gateway never decided on. The
/// name is compared decoded and as PHP reads it (leading spaces dropped, `.` and spaces read as
/// `_`, `name[...]` read as `name`), in any case.
fn has_method_override_param(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or("").replace('+', " ");
        let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy();
        let name = name.trim_start_matches(' ');
        let name = name.split('[').next().unwrap_or(name);
        let mut read = name.chars().map(|c| match c {
            ' ' | '.' => '_',
            c => c.to_ascii_lowercase(),
        });
        "_method".chars().all(|want| read.next() == Some(want)) && read.next().is_none()
    })
}

/// True when raw header lines name `Content-Length` (after the request line).
fn has_content_length_line(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

/// Refuses Content-Length together with Transfer-Encoding (a request smuggling vector). pingora
/// frames such a request by Transfer-Encoding and drops Content-Length from the parsed header,
/// so the raw header is what shows it.
fn framing(session: &Session) -> Result<(), Early> {
    let req = session.req_header();
    let mut lengths = req.headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let digits = !first.is_empty() && first.as_bytes().iter().all(u8::is_ascii_digit);
        if !digits || lengths.next().is_some() {
            // `Content-Length: 3, 3` or two lines: a lenient upstream may frame it differently.
            return Err(Early {
                status: 400,
                reason: Reason::BadRequest,
                detail: "Content-Length must be one decimal number".into(),
            });
        }
    }
    if !req.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Ok(());
    }
    if req.headers.contains_key(http::header::CONTENT_LENGTH)
        || has_content_length_line(&session.as_downstream().to_h1_raw())
    {
        return Err(Early {
            status: 400,
            reason: Reason::BadRequest,
            detail: "Content-Length together with Transfer-Encoding is ambiguous framing".into(),
        });
    }
    Ok(())
}

/// Host for route matching: the Host header without port. (pingora refuses an absolute-form
/// target whose authority disagrees with Host before any filter runs.)
fn host_of(req: &RequestHeader) -> Option<&str> {
    let raw = req.headers.get(http::header::HOST)?.to_str().ok()?;
    if let Some(rest) = raw.strip_prefix('[') {
        return Some(rest.find(']').map_or(raw, |i| &raw[..i + 2]));
    }
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    };
    // `admin.example.` is the fully qualified spelling of `admin.example`: the same host.
    Some(host.strip_suffix('.').unwrap_or(host))
}

impl Gateway {
    /// Authenticates the bearer token: the cache first, the verifier on a miss.
    async fn authenticate(
        &self,
        rt: &Runtime,
        token: &str,
    ) -> Result<Arc<CachedCaller>, (String, &'static str)> {
        let m = &self.shared.metrics;
        let now = now_secs();
        let generation = rt.auth.verifier.generation();
        if let Some(hit) = rt.auth.cache.get(token, now, generation) {
            m.token_cache_hits.inc();
            if let Err(e) = rt.auth.verifier.check_cached(&hit.issuer, now) {
                m.jwt(e.reason());
                return Err((e.description(), e.reason()));
            }
            return Ok(hit);
        }
        m.token_cache_misses.inc();
        match rt.auth.verifier.verify_or_refresh(token, now).await {
            Ok(v) => {
                m.jwt("valid");
                let caller = Arc::new(CachedCaller::new(v.principal, &v.issuer));
                rt.auth
                    .cache
                    .insert(token, caller.clone(), v.expires_at, generation);
                Ok(caller)
            }
            Err(e) => {
                m.jwt(e.reason());
                Err((e.description(), e.reason()))
            }
        }
    }

    /// The decision for one request; `Err` carries an answer the gateway must write itself.
    async fn decide(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
    ) -> Result<Decision, Early> {
        let req = session.req_header();
        precheck(req, rt)?;
        framing(session)?;
        if has_fragment(&session.as_downstream().to_h1_raw()) {
            return Err(Early {
                status: 400,
                reason: Reason::BadRequest,
                detail: "a request target never carries a fragment (`#`)".into(),
            });
        }
        let raw_path = req.uri.path();
        let canonical = canonicalize(raw_path).map_err(|e| Early {
            status: 400,
            reason: Reason::BadRequest,
            detail: e.to_string(),
        })?;
        // Every decision from here on (401s included) is logged with the path it was made on.
        ctx.canonical_path = canonical.to_string();
        let query = req.uri.query();
        if query.is_some_and(has_method_override_param) {
            return Err(Early {
                status: 400,
                reason: Reason::BadRequest,
                detail: "a `_method` query parameter (method override) is not accepted".into(),
            });
        }
        let request = Request {
            method: req.method.as_str(),
            host: host_of(req),
            path: &canonical,
            query,
            headers: &req.headers,
        };
        let route = rt.policy.match_route(&request);
        if let Some(name) = route
            .as_ref()
            .and_then(|m| nominated_decision_header(req, m.entry))
        {
            return Err(Early {
                status: 400,
                reason: Reason::BadRequest,
                detail: format!("`Connection` names `{name}`, which this route is decided on"),
            });
        }
        if let Some(m) = &route {
            if m.entry.is_public() {
                ctx.rewritten = rewritten(&canonical, query, req);
                return Ok(Decision::allow(Reason::PublicRoute, None).on(None, Some(m.idx)));
            }
        }
        let action = route.as_ref().and_then(|m| m.entry.action);
        let token = match bearer(req) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Ok(Decision::deny(401, Reason::MissingToken)
                    .on(action, route.as_ref().map(|m| m.idx)))
            }
            Err(why) => {
                ctx.detail = Some(why.to_string());
                self.shared.metrics.jwt("malformed");
                return Ok(Decision::deny(401, Reason::InvalidToken)
                    .on(action, route.as_ref().map(|m| m.idx)));
            }
        };
        let caller = match self.authenticate(rt, token).await {
            Ok(c) => c,
            Err((detail, _)) => {
                ctx.detail = Some(detail);
                return Ok(Decision::deny(401, Reason::InvalidToken)
                    .on(action, route.as_ref().map(|m| m.idx)));
            }
        };
        let subject = caller.subject_for(&rt.policy);
        let decision = match &route {
            None => rt.policy.unmapped(),
            Some(m) => rt.policy.decide_route(m, &subject, &request),
        };
        if decision.allowed {
            ctx.rewritten = rewritten(&canonical, query, req);
        }
        ctx.caller = Some(caller);
        ctx.subject = Some(subject);
        Ok(decision)
    }
}

/// `X-Auth-Roles`: the caller's tenant-wide roles the policy knows, plus the project-bound role
/// that granted this request when a project binding decided it (the upstream sees the role it
/// was allowed by, and never a role the gateway ignored).
fn roles_header<'s>(
    s: &'s Subject,
    granting: Option<RoleIdx>,
    policy: &CompiledPolicy,
) -> Cow<'s, str> {
    let from_project = granting
        .filter(|r| !s.tenant_roles.contains(r) && s.projects.iter().any(|p| p.roles.contains(r)));
    match from_project {
        None => Cow::Borrowed(&s.tenant_roles_joined),
        Some(r) if s.tenant_roles_joined.is_empty() => {
            Cow::Owned(policy.roles().name(r).to_string())
        }
        Some(r) => Cow::Owned(format!(
            "{},{}",
            s.tenant_roles_joined,
            policy.roles().name(r)
        )),
    }
}

/// The target to forward when the client's differs from the canonical form (dot segments,
/// escapes, an absolute-form target): the upstream always receives exactly what was authorized.
fn rewritten(canonical: &str, query: Option<&str>, req: &RequestHeader) -> Option<String> {
    let want_len = canonical.len() + query.map_or(0, |q| q.len() + 1);
    let raw = req.raw_path();
    let same = raw.len() == want_len
        && raw.starts_with(canonical.as_bytes())
        && query.is_none_or(|q| {
            raw[canonical.len()] == b'?' && &raw[canonical.len() + 1..] == q.as_bytes()
        });
    if same {
        return None;
    }
    Some(match query {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical.to_string(),
    })
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            request_id: request_id::next(),
            runtime: None,
            decision: None,
            rewritten: None,
            canonical_path: String::new(),
            caller: None,
            subject: None,
            decided_in: Duration::ZERO,
            upstream_start: None,
            upstream_status: None,
            detail: None,
        }
    }

    /// Decides the request; answers 400/401/403/404/414/431 itself and returns `true` then.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        ctx.start = Instant::now();
        // INVARIANT: one runtime (policy revision) decides and forwards this whole request.
        let rt = self.shared.runtime.load_full();
        ctx.runtime = Some(rt.clone());
        let outcome = self.decide(session, ctx, &rt).await;
        ctx.decided_in = ctx.start.elapsed();
        self.shared
            .metrics
            .decision_seconds
            .observe(ctx.decided_in.as_secs_f64());
        let (decision, detail) = match outcome {
            Ok(d) => (d, None),
            Err(e) => (Decision::deny(e.status, e.reason), Some(e.detail)),
        };
        ctx.decision = Some(decision);
        // Counted when decided, so a client that has its answer also finds it in /metrics.
        rt.counters.count(&self.shared.metrics, &decision);
        if decision.allowed {
            return Ok(false);
        }
        let detail = detail
            .or_else(|| ctx.detail.clone())
            .unwrap_or_else(|| decision.reason.describe().to_string());
        let kind = match decision.status {
            414 => "uri_too_long",
            431 => "headers_too_large",
            _ => decision.reason.as_str(),
        };
        Problem {
            status: decision.status,
            kind,
            detail: &detail,
            action: decision.action.map(|a| rt.policy.catalog().id(a)),
            request_id: &ctx.request_id,
        }
        .send(session)
        .await?;
        Ok(true)
    }

    /// The upstream of the matched route, round-robin over its addresses.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let rt = ctx
            .runtime
            .as_ref()
            .ok_or_else(|| Error::new(ErrorType::InternalError))?;
        let route = ctx.decision.and_then(|d| d.route);
        let pool = rt
            .upstream(route.and_then(|r| rt.policy.routes().entry(r).upstream))
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "route has no upstream"))?;
        let mut peer = HttpPeer::new(pool.pick(), false, String::new());
        peer.options.connection_timeout = Some(pool.connect_timeout);
        peer.options.read_timeout = Some(pool.read_timeout);
        ctx.upstream_start = Some(Instant::now());
        Ok(Box::new(peer))
    }

    /// Forwards exactly the canonical path that was authorized, with the gateway's identity headers.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let rt = ctx
            .runtime
            .as_ref()
            .ok_or_else(|| Error::new(ErrorType::InternalError))?;
        let client_ip: Option<IpAddr> = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let trusted_peer = client_ip.is_some_and(|ip| rt.trusted_proxies.contains(&ip));
        let granting = ctx.decision.and_then(|d| d.role);
        let roles = match (&ctx.caller, &ctx.subject) {
            (Some(_), Some(s)) => Some(roles_header(s, granting, &rt.policy)),
            _ => None,
        };
        let identity = match (&ctx.caller, &ctx.subject, &roles) {
            (Some(c), Some(s), Some(roles)) => Some(Identity {
                subject: &c.principal.subject,
                tenant: s.tenant.as_deref().unwrap_or(""),
                roles,
            }),
            _ => None,
        };
        let action = ctx
            .decision
            .and_then(|d| d.action)
            .map(|a| rt.policy.catalog().id(a));
        rewrite(
            upstream_request,
            &Rewrite {
                path_and_query: ctx.rewritten.as_deref(),
                identity,
                action,
                request_id: &ctx.request_id,
                forward_authorization: rt.settings.forward_authorization,
                strip: &rt.strip,
                client_ip,
                trusted_peer,
            },
        )
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if !upstream_response.status.is_informational() {
            ctx.upstream_status = Some(upstream_response.status.as_u16());
            if let Some(t) = ctx.upstream_start {
                self.shared
                    .metrics
                    .upstream_seconds
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// Tells the client the request id the upstream and the decision log saw.
    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        upstream_response.insert_header("x-request-id", &ctx.request_id)
    }

    /// Upstream failures become 502 (refused, reset) or 504 (timed out) problem responses.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        use pingora::ErrorSource;
        let (status, kind, detail) = match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(code)) => {
                (*code, "http_error", "the request could not be processed")
            }
            (
                ErrorSource::Upstream,
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
            ) => (
                504,
                "upstream_timeout",
                "the upstream did not answer in time",
            ),
            (ErrorSource::Upstream, _) => (
                502,
                "upstream_unavailable",
                "the upstream could not be reached",
            ),
            (
                ErrorSource::Downstream,
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
            ) => (0, "", ""),
            (ErrorSource::Downstream, _) => (400, "bad_request", "the request could not be read"),
            _ => (
                500,
                "internal_error",
                "the gateway failed to process the request",
            ),
        };
        if matches!(e.esource(), ErrorSource::Upstream) {
            self.shared.metrics.upstream_response(None);
        }
        if status > 0 && session.response_written().is_none() {
            let action = ctx.runtime.as_ref().and_then(|rt| {
                ctx.decision
                    .and_then(|d| d.action)
                    .map(|a| rt.policy.catalog().id(a).to_string())
            });
            let _ = Problem {
                status,
                kind,
                detail,
                action: action.as_deref(),
                request_id: &ctx.request_id,
            }
            .send(session)
            .await;
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    /// Records the total time and upstream status, and logs the decision, once the response is done.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let m = &self.shared.metrics;
        let total = ctx.start.elapsed();
        m.total_seconds.observe(total.as_secs_f64());
        if let Some(status) = ctx.upstream_status {
            m.upstream_response(Some(status));
        }
        let (Some(rt), Some(d)) = (&ctx.runtime, &ctx.decision) else {
            return;
        };
        decision_log::emit(&decision_log::Line {
            settings: &rt.settings.decision_log,
            request_id: &ctx.request_id,
            method: session.req_header().method.as_str(),
            path: &ctx.canonical_path,
            policy: &rt.policy,
            decision: d,
            principal: ctx.caller.as_ref().map(|c| &c.principal),
            decided_in: ctx.decided_in,
            total,
            upstream_status: ctx.upstream_status,
            response_status: session.response_written().map(|h| h.status.as_u16()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port_and_a_trailing_dot() {
        for (sent, want) in [
            ("admin.example", "admin.example"),
            ("admin.example:8080", "admin.example"),
            ("admin.example.", "admin.example"),
            ("admin.example.:443", "admin.example"),
            ("[::1]:80", "[::1]"),
        ] {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            req.insert_header("host", sent).unwrap();
            assert_eq!(host_of(&req), Some(want), "{sent}");
        }
    }

    #[test]
    fn method_override_parameters_are_found_however_spelled() {
        for q in [
            "_method=DELETE",
            "a=1&_method=DELETE",
            "%5Fmethod=DELETE",
            "%5fMETHOD=PUT",
            ".method=DELETE",
            " _method=DELETE",
            "_method[]=DELETE",
            "x=1;_method=DELETE",
            "_method",
        ] {
            assert!(has_method_override_param(q), "{q}");
        }
        for q in [
            "x_method=1",
            "_methods=1",
            "_method_=1",
            "method=DELETE",
            "+method=DELETE",
            "a=_method",
            "",
        ] {
            assert!(!has_method_override_param(q), "{q}");
        }
    }

    #[test]
    fn other_schemes_are_not_request_targets() {
        for ok in [&b"/a"[..], b"*", b"http://h/a", b"HTTPS://h/a?q"] {
            assert!(target_form(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [&b"ftp://h/admin"[..], b"file:///etc/passwd", b"h:80", b""] {
            assert!(
                target_form(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn fragments_are_found_in_the_request_line_only() {
        assert!(has_fragment(b"GET /admin#x HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(has_fragment(
            b"GET /public/x#/../../admin HTTP/1.1\r\nHost: a\r\n\r\n"
        ));
        assert!(!has_fragment(b"GET /a HTTP/1.1\r\nX-Color: #fff\r\n\r\n"));
    }

    #[test]
    fn content_length_lines_are_found_in_any_case_but_not_in_the_request_line() {
        let raw =
            b"POST /content-length: HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(!has_content_length_line(raw));
        for cl in ["Content-Length: 4", "content-length:4", "CONTENT-LENGTH: 0"] {
            let raw =
                format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\nTransfer-Encoding: chunked\r\n\r\n");
            assert!(has_content_length_line(raw.as_bytes()), "{cl}");
        }
        assert!(!has_content_length_line(
            b"POST / HTTP/1.1\r\nX-Content-Length: 4\r\n\r\n"
        ));
    }
}
