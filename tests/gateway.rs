//! The gateway over real sockets: a real upstream, the real proxy, real signatures.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::upstream::{free_port, request, Conn, Upstream};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::gateway::server::{load_runtime, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use serde_json::json;

const SECRET: &str = "test-secret-0123456789abcdef";

struct Env {
    gw: RunningGateway,
    upstream: Upstream,
    jwks: Arc<Mutex<String>>,
    keys: Vec<(String, Vec<u8>)>,
}

/// A JWKS server whose document the test can replace.
fn jwks_server(doc: Arc<Mutex<String>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let body = doc.lock().unwrap().clone();
            let mut s = s;
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}", body.len(), body);
        }
    });
    port
}

fn ec_key(kid: &str) -> (String, Vec<u8>, serde_json::Value) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = kp.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    (kid.to_string(), pkcs8.as_ref().to_vec(), jwk)
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        rolegate::auth::install_crypto_provider();
        let upstream = Upstream::start();
        let (kid_a, der_a, jwk_a) = ec_key("key-a");
        let (kid_b, der_b, _) = ec_key("key-b");
        let jwks = Arc::new(Mutex::new(json!({"keys": [jwk_a]}).to_string()));
        let jwks_port = jwks_server(jwks.clone());
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        let down = free_port();
        let config = format!(
            r#"
gateway: {{threads: 1, grace_period_seconds: 0, decision_log: {{enabled: false}}}}
upstreams:
  api: {{addresses: ["{up}"], connect_timeout_ms: 500, read_timeout_ms: 2000}}
  down: {{addresses: ["127.0.0.1:{down}"], connect_timeout_ms: 500}}
auth:
  issuers:
    - issuer: test-hs
      audiences: [rolegate]
      algorithms: [HS256]
      hmac_secret_file: secret.txt
    - issuer: test-jwks
      algorithms: [ES256]
      jwks_url: http://127.0.0.1:{jwks_port}/jwks.json
actions:
  item.view: View items
  item.delete: Delete items
  broken.view: View the broken upstream
roles:
  Viewer: {{grants: [item.view, broken.view]}}
  Admin: {{inherits: [Viewer], grants: [item.delete]}}
routes:
  - upstream: api
    tenant: {{param: tenant}}
    map:
      GET /api/t/{{tenant}}/items/{{id}}: item.view
      DELETE /api/t/{{tenant}}/items/{{id}}: item.delete
  - upstream: api
    map:
      GET /health: public
  - upstream: down
    map:
      GET /broken: broken.view
"#,
            up = upstream.addr
        );
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, config).unwrap();
        let overrides = Overrides::default();
        let runtime = load_runtime(Path::new(&path), &overrides).unwrap_or_else(|e| panic!("{e}"));
        let listeners = common::loopback_listeners(1, false);
        let shared = Shared::new(runtime, Some(path), overrides);
        let gw = RunningGateway::start(shared, listeners, Vec::new()).unwrap();
        Env {
            gw,
            upstream,
            jwks,
            keys: vec![(kid_a, der_a), (kid_b, der_b)],
        }
    })
}

fn now() -> u64 {
    rolegate::gateway::proxy::now_secs()
}

fn hs(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn token(roles: &[&str], tenant: &str) -> String {
    hs(
        json!({"iss": "test-hs", "aud": "rolegate", "sub": "u1", "tenant": tenant, "roles": roles, "exp": now() + 600, "iat": now()}),
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn get(target: &str, token: Option<&str>) -> common::upstream::Resp {
    let auth = token.map(bearer);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    request(&env().gw.proxy, "GET", target, &headers)
}

#[test]
fn allowed_request_reaches_upstream_with_canonical_path_and_injected_identity() {
    let e = env();
    let t = token(&["Viewer"], "acme");
    let auth = bearer(&t);
    let r = request(
        &e.gw.proxy,
        "GET",
        "/api/t/acme/items/../items/%31?x=1",
        &[
            ("authorization", &auth),
            ("x-auth-tenant", "evil"),
            ("x-user-id", "root"),
            ("x-http-method-override", "DELETE"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rid = r.header("x-request-id").expect("x-request-id").to_string();
    let seen = e
        .upstream
        .requests()
        .into_iter()
        .find(|s| s.header("x-request-id") == vec![rid.as_str()])
        .expect("the upstream saw the request");
    assert_eq!(seen.target, "/api/t/acme/items/1?x=1");
    assert_eq!(seen.header("x-auth-tenant"), vec!["acme"]);
    assert_eq!(seen.header("x-auth-subject"), vec!["u1"]);
    assert_eq!(seen.header("x-auth-roles"), vec!["Viewer"]);
    assert_eq!(seen.header("x-auth-action"), vec!["item.view"]);
    assert!(
        seen.header("x-user-id").is_empty(),
        "client identity header reached the upstream"
    );
    assert!(seen.header("x-http-method-override").is_empty());
    assert!(
        seen.header("authorization").is_empty(),
        "Authorization is stripped by default"
    );
}

#[test]
fn missing_and_invalid_tokens_get_401_with_a_bearer_challenge() {
    let n = now();
    let cases = [
        ("missing", None),
        ("expired", Some(hs(json!({"iss": "test-hs", "aud": "rolegate", "tenant": "acme", "roles": ["Viewer"], "exp": n - 3600})))),
        ("not yet valid", Some(hs(json!({"iss": "test-hs", "aud": "rolegate", "tenant": "acme", "roles": ["Viewer"], "exp": n + 7200, "nbf": n + 3600})))),
        ("wrong issuer", Some(hs(json!({"iss": "someone-else", "aud": "rolegate", "tenant": "acme", "roles": ["Viewer"], "exp": n + 600})))),
        ("wrong audience", Some(hs(json!({"iss": "test-hs", "aud": "other", "tenant": "acme", "roles": ["Viewer"], "exp": n + 600})))),
        ("exp as string", Some(hs(json!({"iss": "test-hs", "aud": "rolegate", "tenant": "acme", "roles": ["Viewer"], "exp": format!("{}", n + 600)})))),
        ("bad signature", Some(encode(&Header::new(Algorithm::HS256), &json!({"iss": "test-hs", "aud": "rolegate", "tenant": "acme", "roles": ["Viewer"], "exp": n + 600}), &EncodingKey::from_secret(b"wrong")).unwrap())),
    ];
    for (name, tok) in cases {
        let r = get("/api/t/acme/items/1", tok.as_deref());
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        if let Some(t) = &tok {
            assert!(!r.body.contains(t.as_str()), "{name}: the token was echoed");
        }
    }
}

#[test]
fn two_authorization_headers_are_refused() {
    let t = bearer(&token(&["Admin"], "acme"));
    let r = request(
        &env().gw.proxy,
        "GET",
        "/api/t/acme/items/1",
        &[("authorization", &t), ("authorization", &t)],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn viewer_cannot_delete_and_tenants_are_isolated() {
    let viewer = token(&["Viewer"], "acme");
    let auth = bearer(&viewer);
    let r = request(
        &env().gw.proxy,
        "DELETE",
        "/api/t/acme/items/1",
        &[("authorization", &auth)],
    );
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("not_granted") && r.body.contains("item.delete"),
        "{}",
        r.body
    );
    let r = get("/api/t/globex/items/1", Some(&viewer));
    assert_eq!(r.status, 403);
    assert!(r.body.contains("tenant_mismatch"), "{}", r.body);
    let r = get("/api/t/acme/secret", Some(&viewer));
    assert_eq!(r.status, 403);
    assert!(r.body.contains("unmapped_route"), "{}", r.body);
    let admin = bearer(&token(&["Admin"], "acme"));
    let r = request(
        &env().gw.proxy,
        "DELETE",
        "/api/t/acme/items/1",
        &[("authorization", &admin)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn public_route_needs_no_token_and_bad_paths_get_400() {
    assert_eq!(get("/health", None).status, 200);
    let t = token(&["Admin"], "acme");
    for bad in [
        "/api/t/acme/items/1%2F..",
        "/api/t/acme/items/1;x",
        "/api/t/acme/items/%zz",
        "/api/t/acme/items/%00",
    ] {
        assert_eq!(get(bad, Some(&t)).status, 400, "{bad}");
    }
}

#[test]
fn upstream_down_gives_502_problem() {
    let r = get("/broken", Some(&token(&["Viewer"], "acme")));
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

#[test]
fn keep_alive_survives_a_denial() {
    let mut c = Conn::open(&env().gw.proxy);
    let viewer = bearer(&token(&["Viewer"], "acme"));
    let r = c.send(
        "DELETE",
        "/api/t/acme/items/1",
        &[("authorization", &viewer)],
    );
    assert_eq!(r.status, 403);
    let r = c.send("GET", "/api/t/acme/items/1", &[("authorization", &viewer)]);
    assert_eq!(r.status, 200, "second request on the same connection");
    let r = c.send("GET", "/api/t/acme/items/1", &[]);
    assert_eq!(r.status, 401);
    let r = c.send("GET", "/api/t/acme/items/2", &[("authorization", &viewer)]);
    assert_eq!(r.status, 200);
}

fn metric(name_and_labels: &str) -> f64 {
    let admin = &env().gw.admin;
    let body = request(admin, "GET", "/metrics", &[]).body;
    body.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_decisions_and_pass_promtool() {
    let key =
        r#"rolegate_requests_total{action="item.view",decision="deny",reason="tenant_mismatch"}"#;
    let before = metric(key);
    let t = token(&["Viewer"], "acme");
    for _ in 0..3 {
        assert_eq!(get("/api/t/other/items/1", Some(&t)).status, 403);
    }
    assert_eq!(metric(key) - before, 3.0);
    assert!(metric("rolegate_token_cache_hits_total") >= 2.0);
    let body = request(&env().gw.admin, "GET", "/metrics", &[]).body;
    assert!(body.contains("rolegate_policy_info{revision=\""));
    assert!(body
        .contains("rolegate_request_duration_seconds_bucket{stage=\"decision\",le=\"0.000001\"}"));
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else if std::env::var("CI").is_ok() {
        panic!("promtool is not installed; .ci/run installs the prometheus package");
    }
    for ep in ["/healthz", "/readyz", "/policy"] {
        assert_eq!(request(&env().gw.admin, "GET", ep, &[]).status, 200, "{ep}");
    }
}

fn es(kid: &str, der: &[u8]) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.to_string());
    encode(&h, &json!({"iss": "test-jwks", "sub": "u2", "tenant": "acme", "roles": ["Viewer"], "exp": now() + 600}), &EncodingKey::from_ec_der(der)).unwrap()
}

#[test]
fn jwks_rotation_new_kid_works_after_refresh_and_removed_kid_stops() {
    let e = env();
    let (kid_a, der_a) = &e.keys[0];
    let (kid_b, der_b) = &e.keys[1];
    let tok_a = es(kid_a, der_a);
    assert_eq!(get("/api/t/acme/items/1", Some(&tok_a)).status, 200);
    // Rotate: the provider now publishes key B only.
    *e.jwks.lock().unwrap() = jwks_for(der_b, kid_b);
    let tok_b = es(kid_b, der_b);
    assert_eq!(
        get("/api/t/acme/items/1", Some(&tok_b)).status,
        200,
        "new kid after refetch"
    );
    assert_eq!(
        get("/api/t/acme/items/1", Some(&tok_a)).status,
        401,
        "removed kid, even though cached before"
    );
}

fn jwks_for(der: &[u8], kid: &str) -> String {
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).unwrap();
    let point = kp.public_key().as_ref();
    json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]})
    .to_string()
}

#[test]
fn admin_closes_http10_connections_and_names_the_allowed_method() {
    use std::io::Read;
    let admin = &env().gw.admin;
    let mut s = std::net::TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    // read_to_end returns only at EOF: a kept-alive connection times out here instead.
    s.read_to_end(&mut got)
        .expect("the admin listener closes an HTTP/1.0 connection after its answer");
    assert!(String::from_utf8_lossy(&got).contains(" 200 "));

    let r = request(admin, "DELETE", "/metrics", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = request(admin, "GET", "/reload", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

/// A gateway whose only issuer reads a JWKS URL refreshed every second.
fn short_refresh_gateway(jwks_port: u16, upstream: &str) -> RunningGateway {
    let dir = tempfile::tempdir().unwrap().keep();
    let config = format!(
        r#"
gateway: {{threads: 1, grace_period_seconds: 0, decision_log: {{enabled: false}}}}
upstreams:
  api: {{addresses: ["{upstream}"]}}
auth:
  issuers:
    - issuer: test-jwks
      algorithms: [ES256]
      jwks_url: http://127.0.0.1:{jwks_port}/jwks.json
      jwks_refresh_seconds: 1
actions:
  item.view: View items
roles:
  Viewer: {{grants: [item.view]}}
routes:
  - upstream: api
    tenant: {{param: tenant}}
    map:
      GET /api/t/{{tenant}}/items/{{id}}: item.view
"#
    );
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).unwrap();
    let overrides = Overrides::default();
    let runtime = load_runtime(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let shared = Shared::new(runtime, Some(path), overrides);
    RunningGateway::start(shared, common::loopback_listeners(1, false), Vec::new()).unwrap()
}

#[test]
fn a_key_removed_from_the_jwks_stops_a_cached_token_after_the_refresh_period() {
    rolegate::auth::install_crypto_provider();
    let upstream = Upstream::start();
    let (kid_a, der_a, jwk_a) = ec_key("rot-a");
    let (_, _, jwk_b) = ec_key("rot-b");
    let jwks = Arc::new(Mutex::new(json!({"keys": [jwk_a]}).to_string()));
    let gw = short_refresh_gateway(jwks_server(jwks.clone()), &upstream.addr);
    let tok_a = es(&kid_a, &der_a);
    let get_a = || {
        request(
            &gw.proxy,
            "GET",
            "/api/t/acme/items/1",
            &[("authorization", &format!("Bearer {tok_a}"))],
        )
        .status
    };
    assert_eq!(get_a(), 200);
    assert_eq!(get_a(), 200, "a cache hit");
    // The provider drops key A; only cache hits follow, so the refresh must start from them.
    *jwks.lock().unwrap() = json!({"keys": [jwk_b]}).to_string();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let mut last = get_a();
    while last == 200 && started.elapsed() < std::time::Duration::from_secs(8) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        last = get_a();
    }
    assert_eq!(last, 401, "the removed key still verifies cached tokens");
    gw.stop();
}
