//! Gateway options over real sockets: unmapped -> 404 by config, Authorization forwarding,
//! round-robin over several upstream addresses, and 504 when the upstream does not answer in time.

mod common;

use std::net::TcpListener;
use std::sync::OnceLock;

use common::upstream::{request, Upstream};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::gateway::server::{load_runtime, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use serde_json::json;

const SECRET: &str = "options-secret-0123456789";

struct Env {
    gw: RunningGateway,
    a: Upstream,
    b: Upstream,
    _silent: TcpListener,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        rolegate::auth::install_crypto_provider();
        let (a, b) = (Upstream::start(), Upstream::start());
        // Accepts connections and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        let config = format!(
            r#"
gateway: {{threads: 1, grace_period_seconds: 0, unmapped_status: 404, forward_authorization: true, decision_log: {{enabled: false}}}}
upstreams:
  pair: {{addresses: ["{a}", "{b}"]}}
  silent: {{addresses: ["{silent_addr}"], read_timeout_ms: 300}}
auth:
  issuers:
    - {{issuer: opt, algorithms: [HS256], hmac_secret_file: secret.txt}}
actions: {{x.get: Get x}}
roles: {{Reader: {{grants: [x.get]}}}}
routes:
  - upstream: pair
    map:
      GET /x/{{id}}: x.get
  - upstream: silent
    map:
      GET /slow: x.get
"#,
            a = a.addr,
            b = b.addr
        );
        let path = dir.join("gw.yaml");
        std::fs::write(&path, config).unwrap();
        let runtime = load_runtime(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let listeners = common::loopback_listeners(1, false);
        let gw = RunningGateway::start(Shared::new(runtime, None, Overrides::default()), listeners, Vec::new()).unwrap();
        Env { gw, a, b, _silent: silent }
    })
}

fn auth() -> String {
    let claims = json!({"iss": "opt", "sub": "s", "tenant": "t", "roles": ["Reader"], "exp": rolegate::gateway::proxy::now_secs() + 600});
    format!(
        "Bearer {}",
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes())
        )
        .unwrap()
    )
}

#[test]
fn unmapped_routes_get_404_when_configured() {
    let r = request(
        &env().gw.proxy,
        "GET",
        "/nope",
        &[("authorization", &auth())],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("unmapped_route"));
}

#[test]
fn requests_alternate_over_the_upstream_addresses_and_keep_authorization_when_configured() {
    let e = env();
    let a = auth();
    let before = (e.a.requests().len(), e.b.requests().len());
    for i in 0..6 {
        let r = request(
            &e.gw.proxy,
            "GET",
            &format!("/x/{i}"),
            &[("authorization", &a)],
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let after = (e.a.requests().len(), e.b.requests().len());
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (3, 3),
        "round-robin over two addresses"
    );
    assert_eq!(
        e.a.last().header("authorization"),
        vec![a.as_str()],
        "forward_authorization keeps it"
    );
}

#[test]
fn an_upstream_that_does_not_answer_gives_504() {
    let r = request(
        &env().gw.proxy,
        "GET",
        "/slow",
        &[("authorization", &auth())],
    );
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("upstream_timeout"), "{}", r.body);
}
