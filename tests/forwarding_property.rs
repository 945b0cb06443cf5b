//! Property over the real proxy: random requests built from the route templates (dot segments,
//! empty segments and escapes inserted; random principals, tenants and project headers) and every
//! request the upstream receives re-decided on exactly what it received. Whatever is forwarded is
//! canonical and allowed for the forwarded path. The data-driven corpus lives in tests/security.rs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use common::root;
use common::upstream::Upstream;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::gateway::server::{load_runtime, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use serde_json::{json, Value};

const SECRET: &[u8] = b"adversarial-secret-0123456789abcdef";
const ISS: &str = "https://idp.test/realms/acme";

/// One random request.
struct Case {
    method: String,
    /// Request target, sent as is.
    target: String,
    /// Named token for `Authorization: Bearer` (see `token()`).
    token: Option<String>,
    /// Extra header lines, sent as written.
    headers: Vec<String>,
}

struct Env {
    gw: RunningGateway,
    upstream: Upstream,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        rolegate::auth::install_crypto_provider();
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        let config = std::fs::read_to_string(root().join("tests/forwarding/gateway.yaml"))
            .unwrap()
            .replace("UPSTREAM", &upstream.addr);
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, config).unwrap();
        let runtime = load_runtime(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let listeners = common::loopback_listeners(1, false);
        let gw = RunningGateway::start(
            Shared::new(runtime, None, Overrides::default()),
            listeners,
            Vec::new(),
        )
        .unwrap();
        Env { gw, upstream }
    })
}

fn now() -> i64 {
    rolegate::gateway::proxy::now_secs() as i64
}

fn hs(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn base(tenant: Value, roles: Value) -> Value {
    json!({"iss": ISS, "aud": "rolegate", "sub": "u1", "tenant": tenant, "roles": roles, "iat": now(), "exp": now() + 600})
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

/// The token each named principal of the property carries (see `principal_of`).
fn token(name: &str) -> String {
    match name {
        "viewer" => hs(&base(json!("acme"), json!(["Viewer"]))),
        "admin" => hs(&base(json!("acme"), json!(["Admin"]))),
        "eu-admin" => hs(&base(json!("acme-eu"), json!(["Admin"]))),
        "us-viewer" => hs(&base(json!("acme-us"), json!(["Viewer"]))),
        "globex-admin" => hs(&base(json!("globex"), json!(["Admin"]))),
        "p1-reader" => hs(&with(
            base(json!("acme"), json!([])),
            "project_roles",
            json!({"p1": ["Project Reader"]}),
        )),
        other => panic!("unknown token name `{other}`"),
    }
}

/// One raw request on a fresh connection: the status, or 0 if the gateway closed without answering.
fn send(bytes: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(&env().gw.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(bytes).is_err() {
        return (0, String::new(), String::new());
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    let head_request = bytes.starts_with(b"HEAD ");
                    if head_request || body.len() >= len {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let request_id = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-request-id:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, request_id, text)
}

fn request_bytes(c: &Case) -> Vec<u8> {
    let mut req = format!("{} {} HTTP/1.1\r\n", c.method, c.target);
    req.push_str("Host: gateway.test\r\n");
    if let Some(t) = &c.token {
        req.push_str(&format!("Authorization: Bearer {}\r\n", token(t)));
    }
    for h in &c.headers {
        let h = match h.find("{TOKEN:") {
            Some(start) => {
                let end = start + h[start..].find('}').unwrap();
                format!(
                    "{}{}{}",
                    &h[..start],
                    token(&h[start + 7..end]),
                    &h[end + 1..]
                )
            }
            None => h.clone(),
        };
        req.push_str(&h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A named token's tenant, tenant roles and project-bound roles.
type Claims = (
    &'static str,
    Vec<&'static str>,
    Vec<(&'static str, Vec<&'static str>)>,
);

/// The principal each named token carries.
fn principal_of(name: &str) -> rolegate::policy::Principal {
    let (tenant, roles, projects): Claims = match name {
        "viewer" => ("acme", vec!["Viewer"], vec![]),
        "admin" => ("acme", vec!["Admin"], vec![]),
        "eu-admin" => ("acme-eu", vec!["Admin"], vec![]),
        "us-viewer" => ("acme-us", vec!["Viewer"], vec![]),
        "globex-admin" => ("globex", vec!["Admin"], vec![]),
        "p1-reader" => ("acme", vec![], vec![("p1", vec!["Project Reader"])]),
        other => panic!("no principal for `{other}`"),
    };
    rolegate::policy::Principal {
        subject: "u1".into(),
        tenant: Some(tenant.into()),
        roles: roles.into_iter().map(String::from).collect(),
        project_roles: projects
            .into_iter()
            .map(|(p, r)| (p.to_string(), r.into_iter().map(String::from).collect()))
            .collect(),
    }
}

mod forwarding {
    use proptest::prelude::*;

    use super::*;

    const TEMPLATES: [&str; 9] = [
        "/api/t/{T}/items/{I}",
        "/admin/settings",
        "/public/{I}",
        "/p/items/{I}",
        "/family/{T}/items",
        "/tenants/{T}/children",
        "/q/items",
        "/h/items",
        "/project/{I}",
    ];
    const TENANTS: [&str; 10] = [
        "acme", "acme", "acme", "acme", "globex", "acme-eu", "acme-us", "%61cme", "ACME",
        "acme%2Fx",
    ];
    const IDS: [&str; 5] = ["1", "%31", "a%3Fb", "..", "x;y"];
    /// Noise inserted between segments: dot segments, empty segments, escapes.
    const NOISE: [&str; 8] = [".", "..", "", "x/..", "%2e", "%2e%2e", "admin/..", "%2F"];
    const TOKENS: [&str; 9] = [
        "viewer",
        "admin",
        "admin",
        "admin",
        "eu-admin",
        "us-viewer",
        "globex-admin",
        "p1-reader",
        "none",
    ];

    fn path() -> impl Strategy<Value = String> {
        (
            prop::sample::select(&TEMPLATES[..]),
            prop::sample::select(&TENANTS[..]),
            prop::sample::select(&IDS[..]),
            prop::collection::vec((0usize..6, prop::sample::select(&NOISE[..])), 0..2),
        )
            .prop_map(|(t, tenant, id, noise)| {
                let filled = t.replace("{T}", tenant).replace("{I}", id);
                let mut segs: Vec<String> = filled.split('/').skip(1).map(String::from).collect();
                for (at, n) in noise {
                    let at = at.min(segs.len());
                    segs.insert(at, n.to_string());
                }
                format!("/{}", segs.join("/"))
            })
    }

    fn request() -> impl Strategy<Value = (String, String, String, Vec<String>)> {
        let query = prop::sample::select(vec![
            "",
            "?tenant=acme",
            "?tenant=globex",
            "?tenant=acme&tenant=acme-eu",
        ]);
        let method = prop::sample::select(vec!["GET", "GET", "GET", "DELETE", "POST", "HEAD"]);
        let token = prop::sample::select(&TOKENS[..]);
        let headers = prop::collection::vec(
            prop::sample::select(vec![
                "ProjectUid: p1",
                "ProjectUid: p2",
                "X-Target-Tenant: acme",
                "X-Target-Tenant: globex",
            ]),
            0..3,
        );
        (path(), query, method, token, headers).prop_map(|(p, q, m, t, h)| {
            (
                m.to_string(),
                format!("{p}{q}"),
                t.to_string(),
                h.into_iter().map(String::from).collect(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        /// Whatever the proxy forwards is canonical and allowed by the policy for that path and principal.
        #[test]
        fn whatever_is_forwarded_is_allowed_for_the_forwarded_path((method, target, tok, headers) in request()) {
            let e = env();
            let case = Case {
                method: method.clone(),
                target: target.clone(),
                token: (tok != "none").then(|| tok.clone()),
                headers: headers.clone(),
            };
            let before = e.upstream.requests().len();
            let (status, rid, _) = send(&request_bytes(&case));
            let seen = e.upstream.requests();
            let Some(up) = seen[before..].iter().find(|s| s.header("x-request-id") == vec![rid.as_str()]) else {
                prop_assert_ne!(status, 200, "200 without reaching the upstream");
                return Ok(());
            };
            prop_assert_eq!(status, 200);
            let (path, query) = up.target.split_once('?').map_or((up.target.as_str(), None), |(p, q)| (p, Some(q)));
            let canonical = rolegate::canonical::canonicalize(path).map(|c| c.into_owned());
            prop_assert_eq!(canonical.as_deref(), Ok(path), "forwarded a non-canonical path");
            let mut map = http::HeaderMap::new();
            for h in &headers {
                let (k, v) = h.split_once(": ").unwrap();
                map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
            }
            let rt = e.gw.shared.runtime.load();
            let policy = &rt.policy;
            let req = rolegate::policy::Request { method: &method, host: Some("gateway.test"), path, query, headers: &map };
            let subject = (tok != "none").then(|| policy.resolve(&principal_of(&tok)));
            let d = policy.decide(subject.as_ref(), &req);
            prop_assert!(d.allowed, "forwarded {} {} for {} but the policy says {:?}", method, up.target, tok, d.reason);
        }
    }
}
