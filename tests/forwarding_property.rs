//! Property over the real proxy: random requests built from the route templates (dot segments,
//! empty segments and escapes inserted; random principals, tenants and project headers) and every
//! request the upstream receives re-decided on exactly what it received. Whatever is forwarded is
//! canonical and allowed for the forwarded path. The data-driven corpus lives in tests/security.rs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::root;
use common::upstream::{free_port, Upstream};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::gateway::server::{load_runtime, Listeners, RunningGateway};
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
    rsa_private_pem: String,
    rsa_public_pem: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        rolegate::auth::install_crypto_provider();
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let private = pem(
            "PRIVATE KEY",
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa)
                .unwrap()
                .as_ref(),
        );
        let public = pem("PUBLIC KEY", rsa.public_key().as_der().unwrap().as_ref());
        std::fs::write(dir.join("rsa.pem"), &public).unwrap();
        let config = std::fs::read_to_string(root().join("tests/forwarding/gateway.yaml"))
            .unwrap()
            .replace("UPSTREAM", &upstream.addr);
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, config).unwrap();
        let runtime = load_runtime(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let listeners = Listeners {
            work_stealing: false,
            proxy: format!("127.0.0.1:{}", free_port()),
            admin: format!("127.0.0.1:{}", free_port()),
            threads: 1,
            grace_period_seconds: 0,
        };
        let gw = RunningGateway::start(
            Shared::new(runtime, None, Overrides::default()),
            listeners,
            Vec::new(),
        )
        .unwrap();
        Env {
            gw,
            upstream,
            rsa_private_pem: private,
            rsa_public_pem: public.into_bytes(),
        }
    })
}

fn now() -> i64 {
    rolegate::gateway::proxy::now_secs() as i64
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn hs(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// A token signed with HMAC over a hand-made header (for header tricks).
fn hs_with_header(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

fn base(tenant: Value, roles: Value) -> Value {
    json!({"iss": ISS, "aud": "rolegate", "sub": "u1", "tenant": tenant, "roles": roles, "iat": now(), "exp": now() + 600})
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

/// The named tokens the corpus uses.
fn token(name: &str) -> String {
    let e = env();
    let viewer = base(json!("acme"), json!(["Viewer"]));
    let hdr = json!({"alg": "HS256", "typ": "JWT"});
    match name {
        "viewer" => hs(&viewer),
        "admin" => hs(&base(json!("acme"), json!(["Admin"]))),
        "eu-admin" => hs(&base(json!("acme-eu"), json!(["Admin"]))),
        "us-viewer" => hs(&base(json!("acme-us"), json!(["Viewer"]))),
        "globex-admin" => hs(&base(json!("globex"), json!(["Admin"]))),
        "p1-reader" => hs(&with(
            base(json!("acme"), json!([])),
            "project_roles",
            json!({"p1": ["Project Reader"]}),
        )),
        "project-role-tenant-wide" => hs(&base(json!("acme"), json!(["Project Reader"]))),
        "alg-none" => format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&viewer)),
        "alg-None-sig" => format!("{}.{}.c2ln", b64(&json!({"alg": "None"})), b64(&viewer)),
        "alg-missing" => format!("{}.{}.c2ln", b64(&json!({"typ": "JWT"})), b64(&viewer)),
        "empty-sig" => {
            let t = hs(&viewer);
            format!("{}.", t.rsplit_once('.').unwrap().0)
        }
        "bad-sig" => encode(
            &Header::new(Algorithm::HS256),
            &viewer,
            &EncodingKey::from_secret(b"not-the-secret"),
        )
        .unwrap(),
        "rsa-ok" => encode(
            &Header::new(Algorithm::RS256),
            &with(
                without(viewer.clone(), "aud"),
                "iss",
                json!("https://rsa.test"),
            ),
            &EncodingKey::from_rsa_pem(e.rsa_private_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
        "rsa-pubkey-as-hmac" => hs_with_header(
            &hdr,
            &with(viewer.clone(), "iss", json!("https://rsa.test")),
            &e.rsa_public_pem,
        ),
        "ecdsa-zero" => format!(
            "{}.{}.{}",
            b64(&json!({"alg": "ES256"})),
            b64(&with(viewer.clone(), "iss", json!("https://rsa.test"))),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        ),
        "es256-on-hs-issuer" => format!(
            "{}.{}.{}",
            b64(&json!({"alg": "ES256"})),
            b64(&viewer),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        ),
        "jwk-embedded" => hs_with_header(
            &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"attacker")}}),
            &viewer,
            b"attacker",
        ),
        "jku" => hs_with_header(
            &json!({"alg": "HS256", "jku": "http://127.0.0.1:1/jwks"}),
            &viewer,
            b"attacker",
        ),
        "x5u" => hs_with_header(
            &json!({"alg": "HS256", "x5u": "http://127.0.0.1:1/cert"}),
            &viewer,
            b"attacker",
        ),
        "x5c" => hs_with_header(
            &json!({"alg": "HS256", "x5c": ["MIIB"]}),
            &viewer,
            b"attacker",
        ),
        "kid-traversal" => hs_with_header(
            &json!({"alg": "HS256", "kid": "../../../../dev/null"}),
            &viewer,
            b"",
        ),
        "kid-sql" => hs_with_header(
            &json!({"alg": "HS256", "kid": "x' UNION SELECT 'secret"}),
            &viewer,
            b"secret",
        ),
        "kid-url" => hs_with_header(
            &json!({"alg": "HS256", "kid": "http://127.0.0.1:1/key"}),
            &viewer,
            b"attacker",
        ),
        "kid-random" => hs_with_header(
            &json!({"alg": "HS256", "kid": format!("k{}", now())}),
            &viewer,
            SECRET,
        ),
        "kid-huge" => hs_with_header(
            &json!({"alg": "HS256", "kid": "k".repeat(10_000)}),
            &viewer,
            SECRET,
        ),
        "exp-string" => hs(&with(
            viewer.clone(),
            "exp",
            json!((now() + 600).to_string()),
        )),
        "exp-null" => hs(&with(viewer.clone(), "exp", Value::Null)),
        "exp-bool" => hs(&with(viewer.clone(), "exp", json!(true))),
        "exp-float" => hs(&with(
            viewer.clone(),
            "exp",
            json!((now() + 600) as f64 + 0.5),
        )),
        "exp-huge" => hs(&with(viewer.clone(), "exp", json!(1e300))),
        "exp-negative" => hs(&with(viewer.clone(), "exp", json!(-1))),
        "exp-missing" => hs(&without(viewer.clone(), "exp")),
        "nbf-string" => hs(&with(viewer.clone(), "nbf", json!("0"))),
        "expired" => hs(&with(viewer.clone(), "exp", json!(now() - 3600))),
        "expired-within-leeway" => hs(&with(viewer.clone(), "exp", json!(now() - 30))),
        "nbf-future" => hs(&with(viewer.clone(), "nbf", json!(now() + 3600))),
        "iat-future" => hs(&with(viewer.clone(), "iat", json!(now() + 3600))),
        "lifetime-too-long" => hs(&with(viewer.clone(), "exp", json!(now() + 30 * 86400))),
        "iss-trailing-slash" => hs(&with(viewer.clone(), "iss", json!(format!("{ISS}/")))),
        "iss-case" => hs(&with(viewer.clone(), "iss", json!(ISS.to_uppercase()))),
        "iss-missing" => hs(&without(viewer.clone(), "iss")),
        "wrong-aud" => hs(&with(viewer.clone(), "aud", json!("other-service"))),
        "aud-missing" => hs(&without(viewer.clone(), "aud")),
        "aud-array" => hs(&with(viewer.clone(), "aud", json!(["other", "rolegate"]))),
        "tenant-missing" => hs(&without(viewer.clone(), "tenant")),
        "tenant-empty" => hs(&base(json!(""), json!(["Viewer"]))),
        "tenant-array" => hs(&base(json!(["acme"]), json!(["Viewer"]))),
        "tenant-number" => hs(&base(json!(7), json!(["Viewer"]))),
        "tenant-other" => hs(&base(json!("globex"), json!(["Viewer"]))),
        "roles-number" => hs(&base(json!("acme"), json!(5))),
        "roles-lowercase" => hs(&base(json!("acme"), json!(["admin"]))),
        "roles-space" => hs(&base(json!("acme"), json!([" Admin"]))),
        "roles-unknown" => hs(&base(json!("acme"), json!(["Superuser"]))),
        "roles-string" => hs(&base(json!("acme"), json!("Viewer Admin"))),
        "roles-nested-array" => hs(&base(json!("acme"), json!([["Admin"]]))),
        "two-segments" => hs(&viewer).rsplit_once('.').unwrap().0.to_string(),
        "four-segments" => format!("{}.x", hs(&viewer)),
        "padded" => {
            let t = hs(&viewer);
            let (h, rest) = t.split_once('.').unwrap();
            format!("{h}==.{rest}")
        }
        "std-base64" => {
            let t = hs(&viewer);
            let (msg, sig) = t.rsplit_once('.').unwrap();
            // Standard-alphabet characters in place of base64url ones (at least one, always).
            let std = sig.replace('-', "+").replace('_', "/");
            format!("{msg}.+{}", &std[1..])
        }
        "dup-claim" => {
            let payload = format!(
                r#"{{"iss":"{ISS}","aud":"rolegate","tenant":"globex","tenant":"acme","roles":["Admin"],"exp":{}}}"#,
                now() + 600
            );
            let msg = format!("{}.{}", b64(&hdr), URL_SAFE_NO_PAD.encode(payload));
            let sig = jsonwebtoken::crypto::sign(
                msg.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                Algorithm::HS256,
            )
            .unwrap();
            format!("{msg}.{sig}")
        }
        "crit" => hs_with_header(&json!({"alg": "HS256", "crit": ["exp"]}), &viewer, SECRET),
        "deep" => {
            let mut v = json!("x");
            for _ in 0..64 {
                v = json!([v]);
            }
            hs(&with(viewer.clone(), "nest", v))
        }
        "huge" => hs(&with(viewer.clone(), "pad", json!("p".repeat(6000)))),
        "garbage" => "not-a-token".to_string(),
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
