//! The upstream request: client identity headers out, the gateway's own identity headers in.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONNECTION};
use pingora::http::RequestHeader;

use crate::policy::{BoundSource, RouteEntry};

/// Headers the gateway injects; clients can never set them (all of `x-auth-*` is stripped).
pub const INJECTED: [&str; 5] = [
    "x-auth-subject",
    "x-auth-tenant",
    "x-auth-roles",
    "x-auth-action",
    "x-request-id",
];

/// Client headers that carry identity in common stacks; always stripped.
pub const IDENTITY_HEADERS: [&str; 10] = [
    "x-user",
    "x-user-id",
    "x-tenant",
    "x-tenant-id",
    "x-roles",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-remote-user",
    "remote-user",
];

/// Method override headers; stripped so the upstream acts on the method that was authorized.
pub const METHOD_OVERRIDES: [&str; 4] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
];

/// Path override headers (IIS, Symfony, Zend, nginx `auth_request`); stripped even from trusted
/// proxies so the upstream acts on the path that was authorized.
pub const PATH_OVERRIDES: [&str; 3] = ["x-original-url", "x-rewrite-url", "x-original-uri"];

/// Forwarding headers, trusted only from configured proxies (besides every `x-forwarded-*`).
pub const FORWARDING: [&str; 2] = ["forwarded", "x-real-ip"];

/// True for a forwarding header: kept only from a trusted proxy.
fn is_forwarding(name: &str) -> bool {
    name.starts_with("x-forwarded-") || FORWARDING.contains(&name)
}

/// The header a route decides on (its tenant or project source) that the client names in
/// `Connection`: the proxy drops nominated headers before forwarding, so the upstream would never
/// see the header the decision read.
pub fn nominated_decision_header<'e>(
    req: &RequestHeader,
    entry: &'e RouteEntry,
) -> Option<&'e HeaderName> {
    let nominated = |name: &HeaderName| {
        req.headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|t| {
                t.trim_ascii()
                    .eq_ignore_ascii_case(name.as_str().as_bytes())
            })
    };
    [Some(&entry.tenant), entry.project.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|source| match source {
            BoundSource::Header(name) if nominated(name) => Some(name),
            _ => None,
        })
}

/// Who the gateway vouches for on an allowed request.
pub struct Identity<'a> {
    /// Subject.
    pub subject: &'a str,
    /// Tenant.
    pub tenant: &'a str,
    /// Roles, comma-joined.
    pub roles: &'a str,
}

/// What to do to the upstream request.
pub struct Rewrite<'a> {
    /// Canonical path and query to forward, when it differs from what the client sent.
    pub path_and_query: Option<&'a str>,
    /// Identity to inject (None for public routes).
    pub identity: Option<Identity<'a>>,
    /// Action to inject.
    pub action: Option<&'a str>,
    /// Request id.
    pub request_id: &'a str,
    /// Keep the client's Authorization header.
    pub forward_authorization: bool,
    /// Extra headers to strip.
    pub strip: &'a [HeaderName],
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// Whether the client is a trusted proxy (its X-Forwarded-* are kept).
    pub trusted_peer: bool,
}

/// Applies `rw` to the upstream request.
pub fn rewrite(req: &mut RequestHeader, rw: &Rewrite) -> pingora::Result<()> {
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|name| {
            let stripped = |n: &str| {
                n.starts_with("x-auth-")
                    || IDENTITY_HEADERS.contains(&n)
                    || METHOD_OVERRIDES.contains(&n)
                    || PATH_OVERRIDES.contains(&n)
                    || (!rw.trusted_peer && is_forwarding(n))
            };
            let n = name.as_str();
            stripped(n)
                // `X_Auth_Tenant` is `X-Auth-Tenant` to CGI-style upstreams that fold `_` into `-`.
                || (n.contains('_') && stripped(&n.replace('_', "-")))
                || (!rw.forward_authorization && *name == AUTHORIZATION)
                || rw.strip.contains(name)
        })
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
    if let Some(pq) = rw.path_and_query {
        let uri = http::Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|e| {
                pingora::Error::because(pingora::ErrorType::InternalError, "canonical path", e)
            })?;
        req.set_uri(uri);
    }
    if let Some(ip) = rw.client_ip {
        let xff = match req
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if rw.trusted_peer => format!("{prev}, {ip}"),
            _ => ip.to_string(),
        };
        req.insert_header("x-forwarded-for", xff)?;
    }
    if let Some(id) = &rw.identity {
        insert_text(req, "x-auth-subject", id.subject)?;
        insert_text(req, "x-auth-tenant", id.tenant)?;
        insert_text(req, "x-auth-roles", id.roles)?;
    }
    if let Some(action) = rw.action {
        req.insert_header("x-auth-action", action)?;
    }
    req.insert_header("x-request-id", rw.request_id)?;
    Ok(())
}

/// Inserts a header whose value came from a token: its UTF-8 bytes as they are (HTTP carries
/// them as obs-text), without the control characters a header cannot carry.
fn insert_text(req: &mut RequestHeader, name: &'static str, value: &str) -> pingora::Result<()> {
    let control = |b: u8| (b < 0x20 && b != b'\t') || b == 0x7f;
    let value = if value.bytes().any(control) {
        HeaderValue::from_bytes(&value.bytes().filter(|&b| !control(b)).collect::<Vec<u8>>())
    } else {
        HeaderValue::from_bytes(value.as_bytes())
    }
    .map_err(|e| {
        pingora::Error::because(pingora::ErrorType::InternalError, "identity header", e)
    })?;
    req.insert_header(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(headers: &[(&str, &str)], trusted_peer: bool) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        let rw = Rewrite {
            path_and_query: None,
            identity: None,
            action: None,
            request_id: "rid",
            forward_authorization: false,
            strip: &[],
            client_ip: Some("127.0.0.1".parse().unwrap()),
            trusted_peer,
        };
        rewrite(&mut req, &rw).unwrap();
        req
    }

    #[test]
    fn identity_values_keep_their_utf8_and_lose_control_characters() {
        for (subject, want) in [
            ("alice", "alice".as_bytes()),
            ("é漢", "é漢".as_bytes()),
            (
                "a\r\nx-auth-tenant: globex",
                "ax-auth-tenant: globex".as_bytes(),
            ),
            ("tab\there\u{7f}", "tab\there".as_bytes()),
        ] {
            let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
            let rw = Rewrite {
                path_and_query: None,
                identity: Some(Identity {
                    subject,
                    tenant: "acme",
                    roles: "Viewer",
                }),
                action: None,
                request_id: "rid",
                forward_authorization: false,
                strip: &[],
                client_ip: None,
                trusted_peer: false,
            };
            rewrite(&mut req, &rw).unwrap();
            assert_eq!(
                req.headers["x-auth-subject"].as_bytes(),
                want,
                "{subject:?}"
            );
        }
    }

    #[test]
    fn every_x_forwarded_header_of_an_untrusted_peer_is_dropped() {
        let names = [
            "x-forwarded-uri",
            "x-forwarded-method",
            "x-forwarded-server",
            "x-forwarded-path",
            "x-forwarded-prefix",
            "x-forwarded-anything",
            "forwarded",
            "x-real-ip",
        ];
        let sent: Vec<(&str, &str)> = names.iter().map(|n| (*n, "v")).collect();
        let req = forwarded(&sent, false);
        for n in names {
            assert!(req.headers.get(n).is_none(), "{n} reached the upstream");
        }
        let req = forwarded(&sent, true);
        for n in names {
            assert_eq!(req.headers.get(n).unwrap(), "v", "{n} from a trusted proxy");
        }
    }

    #[test]
    fn a_decision_header_named_in_connection_is_found() {
        let entry = RouteEntry {
            template: "GET /x".into(),
            action: None,
            tenant: BoundSource::Header(HeaderName::from_static("x-target-tenant")),
            project: Some(BoundSource::Header(HeaderName::from_static("projectuid"))),
            relation: Default::default(),
            caller: Default::default(),
            upstream: None,
        };
        let with = |conn: &str| {
            let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
            req.append_header("connection", conn).unwrap();
            req
        };
        for (conn, found) in [
            ("close", None),
            ("X-Target-Tenant", Some("x-target-tenant")),
            ("keep-alive, projectUID", Some("projectuid")),
            ("x-target-tenant-other", None),
        ] {
            assert_eq!(
                nominated_decision_header(&with(conn), &entry).map(HeaderName::as_str),
                found,
                "{conn}"
            );
        }
    }

    #[test]
    fn path_and_method_overrides_never_reach_the_upstream() {
        let names = [
            "x-original-url",
            "x-rewrite-url",
            "x-original-uri",
            "x-original-method",
            "x-http-method-override",
        ];
        let sent: Vec<(&str, &str)> = names.iter().map(|n| (*n, "/admin")).collect();
        for trusted in [false, true] {
            let req = forwarded(&sent, trusted);
            for n in names {
                assert!(req.headers.get(n).is_none(), "{n} reached the upstream");
            }
        }
    }
}
