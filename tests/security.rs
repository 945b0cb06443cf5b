//! The security corpus (tests/security/*.yaml) against the real proxy, one case per attack: every
//! class of the threat list as data. Request cases give the raw request and the expected status,
//! and for forwarded requests what the upstream must and must not see; every request the upstream
//! receives is re-decided on exactly what it received. Policy cases edit and reload a live
//! gateway; key cases load issuers whose JWKS misbehaves.

mod common;
#[path = "security/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::root;
use harness::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use rolegate::gateway::server::load_runtime;
use rolegate::gateway::Overrides;
use serde::Deserialize;
use serde_json::{json, Value};

/// Acceptable statuses; 0 means the gateway closed the connection without answering.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Expect {
    One(u16),
    Any(Vec<u16>),
}

impl Expect {
    fn allows(&self, s: u16) -> bool {
        match self {
            Expect::One(e) => *e == s,
            Expect::Any(v) => v.contains(&s),
        }
    }
}

/// One request case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Attack class in threats.md (1-35).
    class: u8,
    name: String,
    /// Which gateway: `main` (tests/security/gateway.yaml), `trusted` (the same with 127.0.0.1
    /// as a trusted proxy) or a preset name (taikun, enterprise, child-tenants, palette).
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default = "get")]
    method: String,
    /// Request target, sent as is.
    #[serde(default)]
    target: String,
    /// Named token for `Authorization: Bearer` (see `token()`).
    #[serde(default)]
    token: Option<String>,
    /// A principal minted as a development token (preset gateways).
    #[serde(default)]
    principal: Option<PrincipalSpec>,
    /// Extra header lines, sent as written (duplicates allowed).
    #[serde(default)]
    headers: Vec<String>,
    /// Host header (default `gateway.test`); `none` sends none.
    #[serde(default)]
    host: Option<String>,
    /// A whole raw request instead of method/target/headers.
    #[serde(default)]
    raw: Option<String>,
    /// JWKS documents to serve before sending (path -> document).
    #[serde(default)]
    jwks: BTreeMap<String, String>,
    /// Send the request this many times (fresh tokens each time).
    #[serde(default)]
    repeat: Option<usize>,
    /// Expected status.
    expect: Expect,
    /// Problem type of a refusal (`urn:rolegate:problem:<reason>`).
    #[serde(default)]
    reason: Option<String>,
    /// The exact target the upstream must receive.
    #[serde(default)]
    forwarded: Option<String>,
    /// The method the upstream must receive (default: the method sent).
    #[serde(default)]
    forwarded_method: Option<String>,
    /// Headers that must not reach the upstream.
    #[serde(default)]
    absent: Vec<String>,
    /// Headers the upstream must see with exactly these values.
    #[serde(default)]
    upstream: BTreeMap<String, String>,
    /// The gateway must close the connection after answering.
    #[serde(default)]
    closes: bool,
    /// The answer must come within this many milliseconds.
    #[serde(default)]
    within_ms: Option<u64>,
    /// At most this many fetches of a JWKS path of the case's gateway in total (path -> count)
    /// after the case; a path starting with `/` is a server-wide path (`/attacker`).
    #[serde(default)]
    jwks_fetches_at_most: BTreeMap<String, usize>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
struct Corpus<C> {
    cases: Vec<C>,
}

/// The named tokens of the corpus; each call signs afresh (random kids differ per call).
fn token(name: &str) -> String {
    let k = keys();
    let viewer = claims(ISS, json!("acme"), json!(["Viewer"]));
    let hdr = json!({"alg": "HS256", "typ": "JWT"});
    let iss = |c: &Value, iss: &str| with(c.clone(), "iss", json!(iss));
    let attacker = b"attacker-chosen-secret";
    match name {
        "viewer" => hs(&viewer),
        "admin" => hs(&claims(ISS, json!("acme"), json!(["Admin"]))),
        "creator" => hs(&claims(ISS, json!("acme"), json!(["Creator"]))),
        "eu-admin" => hs(&claims(ISS, json!("acme-eu"), json!(["Admin"]))),
        "eu-dev-admin" => hs(&claims(ISS, json!("acme-eu-dev"), json!(["Admin"]))),
        "us-viewer" => hs(&claims(ISS, json!("acme-us"), json!(["Viewer"]))),
        "globex-admin" => hs(&claims(ISS, json!("globex"), json!(["Admin"]))),
        "p1-reader" => hs(&with(
            claims(ISS, json!("acme"), json!([])),
            "project_roles",
            json!({"p1": ["Project Reader"]}),
        )),
        "globex-p1-reader" => hs(&with(
            claims(ISS, json!("globex"), json!([])),
            "project_roles",
            json!({"p1": ["Project Reader"]}),
        )),
        "project-role-tenant-wide" => hs(&claims(ISS, json!("acme"), json!(["Project Reader"]))),
        // 16. alg none and empty signatures
        "alg-none" => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(viewer.to_string())
        ),
        "alg-None-sig" => format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(json!({"alg": "None"}).to_string()),
            URL_SAFE_NO_PAD.encode(viewer.to_string())
        ),
        "alg-missing" => format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(json!({"typ": "JWT"}).to_string()),
            URL_SAFE_NO_PAD.encode(viewer.to_string())
        ),
        "alg-empty" => hs_with_header(&json!({"alg": ""}), &viewer, SECRET),
        "alg-number" => hs_with_header(&json!({"alg": 256}), &viewer, SECRET),
        "empty-sig" => format!("{}.", hs(&viewer).rsplit_once('.').unwrap().0),
        "bad-sig" => hs_with_header(&hdr, &viewer, b"not-the-secret"),
        "truncated-sig" => {
            let t = hs(&viewer);
            t[..t.len() - 4].to_string()
        }
        // 17. Algorithm confusion
        "rsa-ok" => rs(
            Algorithm::RS256,
            None,
            &without(iss(&viewer, "https://rsa.test"), "aud"),
        ),
        "rsa-ps256" => rs(Algorithm::PS256, None, &iss(&viewer, "https://rsa.test")),
        "rsa-pubkey-as-hmac" => hs_with_header(
            &hdr,
            &iss(&viewer, "https://rsa.test"),
            k.rsa_public_pem.as_bytes(),
        ),
        "mixed-ok" => jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::RS256),
            &iss(&viewer, "https://mixed.test"),
            &EncodingKey::from_rsa_pem(k.mixed_private_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
        "mixed-hs-with-public-pem" => hs_with_header(
            &hdr,
            &iss(&viewer, "https://mixed.test"),
            k.mixed_public_pem.as_bytes(),
        ),
        "mixed-hs-with-public-pem-trimmed" => hs_with_header(
            &hdr,
            &iss(&viewer, "https://mixed.test"),
            k.mixed_public_pem.trim_end().as_bytes(),
        ),
        "jwks-noalg-rs256" => rs(
            Algorithm::RS256,
            Some("r1"),
            &iss(&viewer, "https://rsa-jwks.test"),
        ),
        "jwks-noalg-hs256-with-modulus" => hs_with_header(
            &json!({"alg": "HS256", "kid": "r1"}),
            &iss(&viewer, "https://rsa-jwks.test"),
            k.rsa_jwk["n"].as_str().unwrap().as_bytes(),
        ),
        "jwks-noalg-hs256-with-pem" => hs_with_header(
            &json!({"alg": "HS256", "kid": "r1"}),
            &iss(&viewer, "https://rsa-jwks.test"),
            k.rsa_public_pem.as_bytes(),
        ),
        "es256-on-hs-issuer" => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256"}).to_string()),
            URL_SAFE_NO_PAD.encode(viewer.to_string()),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        ),
        "ed-as-hmac" => hs_with_header(
            &hdr,
            &iss(&viewer, "https://ed.test"),
            k.ed_public_pem.as_bytes(),
        ),
        // 18. ECDSA and EdDSA
        "ec" => es("k1", &iss(&viewer, "https://ec.test")),
        "ec-k2" => es("k2", &iss(&viewer, "https://ec.test")),
        "ec-zero" => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1"}).to_string()),
            URL_SAFE_NO_PAD.encode(iss(&viewer, "https://ec.test").to_string()),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        ),
        "ec-zero-der" => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1"}).to_string()),
            URL_SAFE_NO_PAD.encode(iss(&viewer, "https://ec.test").to_string()),
            URL_SAFE_NO_PAD.encode([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])
        ),
        "ec-signed-by-k3-as-k1" => es_as("k3", "k1", &iss(&viewer, "https://ec.test")),
        "ec-tampered" => {
            let t = es("k1", &iss(&viewer, "https://ec.test"));
            let (h, rest) = t.split_once('.').unwrap();
            let (_, sig) = rest.split_once('.').unwrap();
            let admin = claims("https://ec.test", json!("acme"), json!(["Admin"]));
            format!("{h}.{}.{sig}", URL_SAFE_NO_PAD.encode(admin.to_string()))
        }
        "ed" => ed(&k.ed_pkcs8, &iss(&viewer, "https://ed.test")),
        "ed-admin" => ed(
            &k.ed_pkcs8,
            &claims("https://ed.test", json!("acme"), json!(["Admin"])),
        ),
        "ed-other-key" => ed(&k.ed_other_pkcs8, &iss(&viewer, "https://ed.test")),
        "ed-zero" => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA"}).to_string()),
            URL_SAFE_NO_PAD.encode(iss(&viewer, "https://ed.test").to_string()),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        ),
        // 19. Keys embedded in the header
        "jwk-embedded" => hs_with_header(
            &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(attacker)}}),
            &viewer,
            attacker,
        ),
        "jwk-embedded-rsa" => {
            let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
            h.jwk = serde_json::from_value(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})).ok();
            jsonwebtoken::encode(
                &h,
                &iss(&viewer, "https://rsa.test"),
                &EncodingKey::from_rsa_pem(k.mixed_private_pem.as_bytes()).unwrap(),
            )
            .unwrap()
        }
        "jku" => hs_with_header(
            &json!({"alg": "HS256", "jku": format!("{}/attacker", jwks().base)}),
            &viewer,
            attacker,
        ),
        "jku-ec" => {
            let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
            h.jku = Some(format!("{}/jku-attacker", jwks().base));
            h.kid = Some("k3".into());
            jsonwebtoken::encode(
                &h,
                &iss(&viewer, "https://ec.test"),
                &EncodingKey::from_ec_der(&k.ec["k3"].0),
            )
            .unwrap()
        }
        "x5u" => hs_with_header(
            &json!({"alg": "HS256", "x5u": format!("{}/attacker", jwks().base)}),
            &viewer,
            attacker,
        ),
        "x5c" => hs_with_header(
            &json!({"alg": "HS256", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
            &viewer,
            attacker,
        ),
        "x5c-valid-signature" => {
            hs_with_header(&json!({"alg": "HS256", "x5c": ["MIIB"]}), &viewer, SECRET)
        }
        // 20. kid injection
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
            &json!({"alg": "HS256", "kid": format!("{}/attacker", jwks().base)}),
            &viewer,
            attacker,
        ),
        "kid-random" => hs_with_header(
            &json!({"alg": "HS256", "kid": format!("k{}", rand_u64())}),
            &viewer,
            SECRET,
        ),
        "kid-huge" => hs_with_header(
            &json!({"alg": "HS256", "kid": "k".repeat(10_000)}),
            &viewer,
            SECRET,
        ),
        "kid-long" => hs_with_header(
            &json!({"alg": "HS256", "kid": "k".repeat(1000)}),
            &viewer,
            SECRET,
        ),
        "kid-number" => hs_with_header(&json!({"alg": "HS256", "kid": 1}), &viewer, SECRET),
        "kid-ec-traversal" => es_as("k1", "../k1", &iss(&viewer, "https://ec.test")),
        "flood-random-kid" => es_as(
            "k2",
            &format!("r{}", rand_u64()),
            &iss(&viewer, "https://flood.test"),
        ),
        "flood-k1" => es("k1", &iss(&viewer, "https://flood.test")),
        // 21. Time claim types
        "exp-string" => hs(&with(
            viewer.clone(),
            "exp",
            json!((now() + 600).to_string()),
        )),
        "exp-null" => hs(&with(viewer.clone(), "exp", Value::Null)),
        "exp-bool" => hs(&with(viewer.clone(), "exp", json!(true))),
        "exp-array" => hs(&with(viewer.clone(), "exp", json!([now() + 600]))),
        "exp-float" => hs(&with(
            viewer.clone(),
            "exp",
            json!((now() + 600) as f64 + 0.5),
        )),
        "exp-huge" => hs(&with(viewer.clone(), "exp", json!(1e300))),
        "exp-u64-max" => hs(&with(viewer.clone(), "exp", json!(u64::MAX))),
        "exp-negative" => hs(&with(viewer.clone(), "exp", json!(-1))),
        "exp-missing" => hs(&without(viewer.clone(), "exp")),
        "nbf-string" => hs(&with(viewer.clone(), "nbf", json!("0"))),
        "iat-string" => hs(&with(viewer.clone(), "iat", json!(now().to_string()))),
        // 22. Time windows
        "expired" => hs(&with(viewer.clone(), "exp", json!(now() - 3600))),
        "expired-within-leeway" => hs(&with(viewer.clone(), "exp", json!(now() - 30))),
        "expired-beyond-leeway" => hs(&with(viewer.clone(), "exp", json!(now() - 90))),
        "nbf-future" => hs(&with(viewer.clone(), "nbf", json!(now() + 3600))),
        "nbf-within-leeway" => hs(&with(viewer.clone(), "nbf", json!(now() + 30))),
        "iat-future" => hs(&with(viewer.clone(), "iat", json!(now() + 3600))),
        "lifetime-too-long" => hs(&with(viewer.clone(), "exp", json!(now() + 30 * 86400))),
        "lifetime-too-long-no-iat" => hs(&with(
            without(viewer.clone(), "iat"),
            "exp",
            json!(now() + 30 * 86400),
        )),
        // 23. Issuer and audience
        "iss-trailing-slash" => hs(&iss(&viewer, &format!("{ISS}/"))),
        "iss-case" => hs(&iss(&viewer, &ISS.to_uppercase())),
        "iss-missing" => hs(&without(viewer.clone(), "iss")),
        "iss-array" => hs(&with(viewer.clone(), "iss", json!([ISS]))),
        "iss-other-issuers-name" => hs(&iss(&viewer, "https://rsa.test")),
        "wrong-aud" => hs(&with(viewer.clone(), "aud", json!("other-service"))),
        "aud-missing" => hs(&without(viewer.clone(), "aud")),
        "aud-case" => hs(&with(viewer.clone(), "aud", json!("Rolegate"))),
        "aud-array" => hs(&with(viewer.clone(), "aud", json!(["other", "rolegate"]))),
        "aud-array-other" => hs(&with(viewer.clone(), "aud", json!(["other", "more"]))),
        // 24. Tenant claim
        "tenant-missing" => hs(&without(viewer.clone(), "tenant")),
        "tenant-empty" => hs(&claims(ISS, json!(""), json!(["Viewer"]))),
        "tenant-array" => hs(&claims(ISS, json!(["acme"]), json!(["Viewer"]))),
        "tenant-number" => hs(&claims(ISS, json!(7), json!(["Viewer"]))),
        "tenant-object" => hs(&claims(ISS, json!({"id": "acme"}), json!(["Viewer"]))),
        "tenant-other" => hs(&claims(ISS, json!("globex"), json!(["Viewer"]))),
        "tenant-case" => hs(&claims(ISS, json!("ACME"), json!(["Viewer"]))),
        "tenant-padded" => hs(&claims(ISS, json!(" acme"), json!(["Viewer"]))),
        // 25. Roles
        "roles-number" => hs(&claims(ISS, json!("acme"), json!(5))),
        "roles-object" => hs(&claims(ISS, json!("acme"), json!({"Admin": true}))),
        "roles-lowercase" => hs(&claims(ISS, json!("acme"), json!(["admin"]))),
        "roles-space" => hs(&claims(ISS, json!("acme"), json!([" Admin"]))),
        "roles-unknown" => hs(&claims(ISS, json!("acme"), json!(["Superuser"]))),
        "roles-unknown-and-viewer" => {
            hs(&claims(ISS, json!("acme"), json!(["Superuser", "Viewer"])))
        }
        "roles-string" => hs(&claims(ISS, json!("acme"), json!("Viewer Admin"))),
        "roles-nested-array" => hs(&claims(ISS, json!("acme"), json!([["Admin"]]))),
        "roles-glob" => hs(&claims(ISS, json!("acme"), json!(["*"]))),
        "roles-null" => hs(&claims(ISS, json!("acme"), Value::Null)),
        "project-roles-array" => hs(&with(
            claims(ISS, json!("acme"), json!([])),
            "project_roles",
            json!(["Project Reader"]),
        )),
        "project-roles-wildcard" => hs(&with(
            claims(ISS, json!("acme"), json!([])),
            "project_roles",
            json!({"*": ["Project Reader"]}),
        )),
        // 27. Token shape
        "two-segments" => hs(&viewer).rsplit_once('.').unwrap().0.to_string(),
        "four-segments" => format!("{}.x", hs(&viewer)),
        "five-segments-jwe" => format!("{}.a.b", hs(&viewer)),
        "padded" => {
            let t = hs(&viewer);
            let (h, rest) = t.split_once('.').unwrap();
            format!("{h}==.{rest}")
        }
        "std-base64" => {
            let t = hs(&viewer);
            let (msg, sig) = t.rsplit_once('.').unwrap();
            let std = sig.replace('-', "+").replace('_', "/");
            format!("{msg}.+{}", &std[1..])
        }
        "dup-claim" => {
            let payload = format!(
                r#"{{"iss":"{ISS}","aud":"rolegate","tenant":"globex","tenant":"acme","roles":["Admin"],"exp":{}}}"#,
                now() + 600
            );
            let msg = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(hdr.to_string()),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let sig = jsonwebtoken::crypto::sign(
                msg.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                Algorithm::HS256,
            )
            .unwrap();
            format!("{msg}.{sig}")
        }
        "dup-header-alg" => {
            let header = r#"{"alg":"none","alg":"HS256"}"#;
            let msg = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(viewer.to_string())
            );
            let sig = jsonwebtoken::crypto::sign(
                msg.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                Algorithm::HS256,
            )
            .unwrap();
            format!("{msg}.{sig}")
        }
        "crit" => hs_with_header(&json!({"alg": "HS256", "crit": ["exp"]}), &viewer, SECRET),
        "crit-empty" => hs_with_header(&json!({"alg": "HS256", "crit": []}), &viewer, SECRET),
        "b64-false" => hs_with_header(
            &json!({"alg": "HS256", "b64": false, "crit": ["b64"]}),
            &viewer,
            SECRET,
        ),
        "deep" => {
            let mut v = json!("x");
            for _ in 0..64 {
                v = json!([v]);
            }
            hs(&with(viewer.clone(), "nest", v))
        }
        "payload-array" => {
            let msg = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(hdr.to_string()),
                URL_SAFE_NO_PAD.encode("[1]")
            );
            let sig = jsonwebtoken::crypto::sign(
                msg.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                Algorithm::HS256,
            )
            .unwrap();
            format!("{msg}.{sig}")
        }
        "huge" => hs(&with(viewer.clone(), "pad", json!("p".repeat(3500)))),
        "huge-header" => hs(&with(viewer.clone(), "pad", json!("p".repeat(9000)))),
        "garbage" => "not-a-token".to_string(),
        "json-not-base64" => format!("{{\"alg\":\"none\"}}.{}.", viewer),
        // Class 35 issuers (each JWKS starts with k1)
        "garbage-k1" => es("k1", &iss(&viewer, "https://garbage.test")),
        "garbage-k2" => es("k2", &iss(&viewer, "https://garbage.test")),
        "huge-k1" => es("k1", &iss(&viewer, "https://huge.test")),
        "huge-k2" => es("k2", &iss(&viewer, "https://huge.test")),
        "slow-k1" => es("k1", &iss(&viewer, "https://slow.test")),
        "slow-k2" => es("k2", &iss(&viewer, "https://slow.test")),
        "down-k1" => es("k1", &iss(&viewer, "https://down.test")),
        "down-k2" => es("k2", &iss(&viewer, "https://down.test")),
        other => panic!("unknown token name `{other}`"),
    }
}

fn rand_u64() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed) as u64;
    (now() as u64).wrapping_mul(1_000_003).wrapping_add(n)
}

/// Replaces `{TOKEN:name}` and `{PAD:n}` in `s`; returns the text and the tokens used.
fn expand(s: &str, used: &mut Vec<String>) -> String {
    let mut out = s.to_string();
    while let Some(start) = out.find("{TOKEN:").or_else(|| out.find("{PAD:")) {
        let end = start + out[start..].find('}').expect("unclosed placeholder");
        let inner = &out[start + 1..end];
        let value = match inner.split_once(':') {
            Some(("TOKEN", name)) => {
                let t = token(name);
                used.push(t.clone());
                t
            }
            Some(("PAD", n)) => "x".repeat(n.parse().expect("PAD count")),
            _ => unreachable!(),
        };
        out.replace_range(start..=end, &value);
    }
    out
}

/// The raw request of a case and the bearer token it carries (for re-deciding).
fn request_bytes(c: &Case) -> (Vec<u8>, Option<String>) {
    let mut used = Vec::new();
    if let Some(raw) = &c.raw {
        let r = expand(raw, &mut used);
        return (r.into_bytes(), used.into_iter().next());
    }
    let mut req = format!("{} {} HTTP/1.1\r\n", c.method, expand(&c.target, &mut used));
    match c.host.as_deref() {
        None => req.push_str(&format!("Host: {HOST}\r\n")),
        Some("none") => {}
        Some(h) => req.push_str(&format!("Host: {h}\r\n")),
    }
    let mut bearer = None;
    if let Some(t) = &c.token {
        let t = token(t);
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        bearer = Some(t);
    }
    if let Some(p) = &c.principal {
        let t = mint(p);
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        bearer = Some(t);
    }
    for h in &c.headers {
        req.push_str(&expand(h, &mut used));
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    (req.into_bytes(), bearer.or_else(|| used.into_iter().next()))
}

/// The gateways request cases run against, started on first use.
fn gateway(name: &str) -> &'static Gateway {
    static GWS: OnceLock<Mutex<HashMap<String, &'static Gateway>>> = OnceLock::new();
    let mut map = GWS.get_or_init(Default::default).lock().unwrap();
    map.entry(name.to_string()).or_insert_with(|| {
        Box::leak(Box::new(match name {
            "main" => start_main(&[]),
            "trusted" => start_main(&["127.0.0.1"]),
            preset => start_preset(preset),
        }))
    })
}

fn corpus_files(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/security"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

fn read_corpus<C: serde::de::DeserializeOwned>(file: &Path) -> Vec<C> {
    let text = std::fs::read_to_string(file).unwrap();
    let corpus: Corpus<C> = rolegate::config::parse_yaml(&text, &file.display().to_string().into())
        .unwrap_or_else(|e| panic!("{e}"));
    corpus.cases
}

/// Runs one request case; failures are pushed to `failures`.
fn run_case(c: &Case, label: &str, failures: &mut Vec<String>) {
    let g = gateway(c.gateway.as_deref().unwrap_or("main"));
    for (path, doc) in &c.jwks {
        g.set_jwks(path, doc);
    }
    for _ in 0..c.repeat.unwrap_or(1) {
        let before = g.upstream.requests().len();
        let (bytes, bearer) = request_bytes(c);
        let started = Instant::now();
        let reply = send(&g.gw.proxy, &bytes, c.closes);
        let took = started.elapsed();
        let status = reply.status;
        let last_line = reply.text.lines().last().unwrap_or("").to_string();
        if !c.expect.allows(status) {
            failures.push(format!(
                "{label}: got {status}, want {:?}\n    {last_line}",
                c.expect
            ));
            continue;
        }
        if let Some(reason) = &c.reason {
            let want = format!("\"type\":\"urn:rolegate:problem:{reason}\"");
            if !reply.text.contains(&want) {
                failures.push(format!(
                    "{label}: the answer is not `{reason}`: {last_line}"
                ));
            }
        }
        if c.closes && !reply.closed {
            failures.push(format!("{label}: the connection stayed open"));
        }
        if let Some(ms) = c.within_ms {
            if took > Duration::from_millis(ms) {
                failures.push(format!(
                    "{label}: answered after {took:?}, want within {ms} ms"
                ));
            }
        }
        let forwarded = forwarded_with(&g.upstream, before, &reply.request_id);
        if status != 200 {
            if !forwarded.is_empty() {
                failures.push(format!(
                    "{label}: answered {status} but the upstream saw the request"
                ));
            }
            continue;
        }
        let [up] = forwarded.as_slice() else {
            failures.push(format!(
                "{label}: 200 but the upstream saw {} copies",
                forwarded.len()
            ));
            continue;
        };
        if let Some(want) = &c.forwarded {
            if &up.target != want {
                failures.push(format!(
                    "{label}: upstream got `{}`, want `{want}`",
                    up.target
                ));
            }
        }
        let method = c.forwarded_method.as_deref().unwrap_or(&c.method);
        if c.raw.is_none() && up.method != method {
            failures.push(format!(
                "{label}: upstream got method {}, want {method}",
                up.method
            ));
        }
        for h in &c.absent {
            let v = up.header(&h.to_ascii_lowercase());
            if !v.is_empty() {
                failures.push(format!("{label}: `{h}` reached the upstream: {v:?}"));
            }
        }
        for (k, v) in &c.upstream {
            let got = up.header(&k.to_ascii_lowercase());
            if got != vec![v.as_str()] {
                failures.push(format!("{label}: upstream `{k}` is {got:?}, want `{v}`"));
            }
        }
        if let Err(e) = redecide(&g.gw, up, bearer.as_deref()) {
            failures.push(format!("{label}: {e}"));
        }
    }
    for (path, most) in &c.jwks_fetches_at_most {
        let n = match path.strip_prefix('/') {
            Some(global) => jwks().hits(global),
            None => g.jwks_hits(path),
        };
        if n > *most {
            failures.push(format!(
                "{label}: the JWKS on /{path} was fetched {n} times, want at most {most}"
            ));
        }
    }
}

#[test]
fn request_corpus_has_no_bypass() {
    init();
    let mut failures = Vec::new();
    let mut n = 0;
    for file in corpus_files("requests-") {
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        for c in read_corpus::<Case>(&file) {
            n += 1;
            let label = format!("[{fname}] class {} {}", c.class, c.name);
            run_case(&c, &label, &mut failures);
        }
    }
    // Nothing reaches an upstream except through the gateway: a smuggled request would arrive
    // without a request id of the gateway's.
    let gws = [
        "main",
        "trusted",
        "taikun",
        "enterprise",
        "child-tenants",
        "palette",
    ];
    for name in gws {
        for seen in gateway(name).upstream.requests() {
            if seen.header("x-request-id").len() != 1 {
                failures.push(format!(
                    "[{name}] the upstream saw a request the gateway did not send: {} {}",
                    seen.method, seen.target
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures in {n} request cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One policy case: an edit of the live configuration, the reload's outcome, and requests after it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyCase {
    class: u8,
    name: String,
    /// Text replacements applied to tests/security/gateway.yaml (each must match).
    #[serde(default)]
    replace: Vec<(String, String)>,
    /// Text appended to the configuration.
    #[serde(default)]
    append: Option<String>,
    /// `refused`, `swapped` or `unchanged`.
    reload: String,
    /// Reload this many times (the same file each time; 32 expects the same revision).
    #[serde(default)]
    times: Option<usize>,
    /// Requests after the reload and their statuses.
    #[serde(default)]
    then: Vec<Probe>,
    /// Swap between the base and the edited configuration this many times under load (class 30).
    #[serde(default)]
    storm: Option<usize>,
}

/// A request in a policy case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    request: String,
    token: String,
    expect: u16,
}

/// A reloadable gateway on the security configuration, restored to the base before each case.
struct Live {
    g: Gateway,
    base: String,
    rt: tokio::runtime::Runtime,
}

impl Live {
    fn start() -> Live {
        let g = start_main(&[]);
        let base = std::fs::read_to_string(&g.config).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Live { g, base, rt }
    }

    fn write(&self, text: &str) {
        let tmp = self.g.config.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.g.config).unwrap();
    }

    fn reload(&self) -> Result<String, String> {
        let r = self.g.gw.shared.reloader.as_ref().unwrap();
        self.rt.block_on(r.reload()).map(|o| o.as_str().to_string())
    }

    fn revision(&self) -> String {
        self.g
            .gw
            .shared
            .runtime
            .load()
            .policy
            .revision()
            .to_string()
    }

    fn failures_counted(&self) -> u64 {
        self.g.gw.shared.metrics.reloads(false)
    }

    fn probe(&self, p: &Probe) -> u16 {
        let (method, target) = p.request.split_once(' ').unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {}\r\n\r\n",
            token(&p.token)
        );
        send(&self.g.gw.proxy, req.as_bytes(), false).status
    }
}

fn edited(base: &str, c: &PolicyCase) -> String {
    let mut text = base.to_string();
    for (from, to) in &c.replace {
        assert!(
            text.contains(from.as_str()),
            "{}: `{from}` is not in the base config",
            c.name
        );
        text = text.replacen(from.as_str(), to, 1);
    }
    if let Some(a) = &c.append {
        text.push('\n');
        text.push_str(a);
    }
    text
}

#[test]
fn policy_corpus_refuses_bad_configs_and_applies_changes_at_once() {
    init();
    let live = Live::start();
    let mut failures = Vec::new();
    for file in corpus_files("policy") {
        for c in read_corpus::<PolicyCase>(&file) {
            let label = format!("class {} {}", c.class, c.name);
            live.write(&live.base);
            assert!(
                live.reload().is_ok(),
                "{label}: the base config must reload"
            );
            let revision = live.revision();
            let failed_before = live.failures_counted();
            let text = edited(&live.base, &c);
            if let Some(swaps) = c.storm {
                if let Err(e) = storm(&live, &text, swaps) {
                    failures.push(format!("{label}: {e}"));
                }
                continue;
            }
            live.write(&text);
            for i in 0..c.times.unwrap_or(1) {
                let got = live.reload();
                let outcome = match &got {
                    Ok(o) => o.as_str(),
                    Err(_) => "refused",
                };
                let want = if i == 0 {
                    c.reload.as_str()
                } else {
                    "unchanged"
                };
                if outcome != want {
                    failures.push(format!("{label}: reload {i} was {got:?}, want {want}"));
                }
            }
            match c.reload.as_str() {
                "refused" => {
                    if live.revision() != revision {
                        failures.push(format!("{label}: a refused config changed the revision"));
                    }
                    if live.failures_counted() != failed_before + 1 {
                        failures.push(format!("{label}: the failure was not counted once"));
                    }
                }
                "unchanged" if live.revision() != revision => {
                    failures.push(format!("{label}: the revision changed"));
                }
                _ => {}
            }
            for p in &c.then {
                let got = live.probe(p);
                if got != p.expect {
                    failures.push(format!(
                        "{label}: {} as {} got {got}, want {}",
                        p.request, p.token, p.expect
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Class 30: `swaps` reloads alternating between the base and `edited` while two clients send
/// requests that both revisions allow (under different actions); a request decided by a mixed,
/// partial or empty table would be refused.
fn storm(live: &Live, edited: &str, swaps: usize) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, bad, sent) = (stop.clone(), bad.clone(), sent.clone());
            let addr = live.g.gw.proxy.clone();
            let t = token("viewer");
            std::thread::spawn(move || {
                let mut conn = common::upstream::Conn::open(&addr);
                let auth = format!("Bearer {t}");
                while !stop.load(Ordering::Relaxed) {
                    let r = conn.send("GET", "/storm/1", &[("authorization", auth.as_str())]);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status != 200 {
                        bad.lock().unwrap().push(format!("{} {}", r.status, r.body));
                    }
                }
            })
        })
        .collect();
    let mut outcome = Ok(());
    for i in 0..swaps {
        live.write(if i % 2 == 0 { edited } else { &live.base });
        match live.reload() {
            Ok(o) if o == "swapped" => {}
            other => {
                outcome = Err(format!("swap {i} was {other:?}"));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    outcome?;
    let bad = bad.lock().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    if !bad.is_empty() {
        return Err(format!(
            "{} of {sent} requests refused: {:?}",
            bad.len(),
            &bad[..bad.len().min(3)]
        ));
    }
    if sent < swaps / 2 {
        return Err(format!("only {sent} requests during {swaps} swaps"));
    }
    let actions: BTreeSet<String> = live
        .g
        .upstream
        .requests()
        .iter()
        .filter(|s| s.target == "/storm/1")
        .flat_map(|s| s.header("x-auth-action").into_iter().map(str::to_string))
        .collect();
    if actions != BTreeSet::from(["storm.a".to_string(), "storm.b".to_string()]) {
        return Err(format!(
            "the upstream saw actions {actions:?}, want both revisions'"
        ));
    }
    Ok(())
}

/// One key-loading case: an issuer whose JWKS serves `jwks` when the gateway loads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyCase {
    class: u8,
    name: String,
    /// The JWKS document served at load (`@down`, `@slow`, `@garbage`, `@huge`, `k1`, ...), or
    /// `unreachable` for a port nothing listens on.
    jwks: String,
    /// `loads` or `refused`.
    expect: String,
    /// The load must finish within this many milliseconds.
    within_ms: u64,
}

#[test]
fn key_corpus_loads_or_refuses_within_bounded_time() {
    init();
    let mut failures = Vec::new();
    for file in corpus_files("keys") {
        for (i, c) in read_corpus::<KeyCase>(&file).into_iter().enumerate() {
            let label = format!("class {} {}", c.class, c.name);
            let url = if c.jwks == "unreachable" {
                format!("http://127.0.0.1:{}/jwks", common::upstream::free_port())
            } else {
                let path = format!("load{i}");
                jwks().set(&path, &c.jwks);
                format!("{}/{path}", jwks().base)
            };
            let dir = tempfile::tempdir().unwrap();
            let config = format!(
                "upstreams: {{api: {{addresses: [\"127.0.0.1:9\"]}}}}\n\
                 actions: {{a.view: View}}\nroles: {{R: {{grants: [a.view]}}}}\n\
                 routes: [{{map: {{GET /a: a.view}}}}]\n\
                 auth: {{issuers: [{{issuer: https://load.test, algorithms: [ES256], jwks_url: \"{url}\"}}]}}\n"
            );
            let path = dir.path().join("gateway.yaml");
            std::fs::write(&path, config).unwrap();
            let started = Instant::now();
            let got = load_runtime(&path, &Overrides::default());
            let took = started.elapsed();
            let outcome = if got.is_ok() { "loads" } else { "refused" };
            if outcome != c.expect {
                failures.push(format!(
                    "{label}: {outcome}, want {} ({:?})",
                    c.expect,
                    got.err()
                ));
            }
            if took > Duration::from_millis(c.within_ms) {
                failures.push(format!(
                    "{label}: took {took:?}, want within {} ms",
                    c.within_ms
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_has_150_cases_and_covers_all_35_classes() {
    let mut classes = BTreeSet::new();
    let mut n = 0;
    for file in corpus_files("requests-") {
        for c in read_corpus::<Case>(&file) {
            classes.insert(c.class);
            n += 1;
        }
    }
    for file in corpus_files("policy") {
        for c in read_corpus::<PolicyCase>(&file) {
            classes.insert(c.class);
            n += 1;
        }
    }
    for file in corpus_files("keys") {
        for c in read_corpus::<KeyCase>(&file) {
            classes.insert(c.class);
            n += 1;
        }
    }
    let missing: Vec<u8> = (1..=35).filter(|c| !classes.contains(c)).collect();
    assert!(missing.is_empty(), "classes without a case: {missing:?}");
    assert!(n >= 150, "only {n} cases");
}

/// A raw upstream that records every byte it receives and answers each connection once.
fn raw_upstream() -> (String, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut s: TcpStream = s;
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            });
        }
    });
    (addr, seen)
}

#[test]
fn content_length_with_transfer_encoding_is_refused_and_nothing_is_smuggled() {
    init();
    let (addr, seen) = raw_upstream();
    let path = write_main_config(&addr, &[]);
    let g = start_at(
        path,
        common::upstream::Upstream::start(),
        Overrides::default(),
        false,
    );
    let admin = token("admin");
    let smuggled = "DELETE /api/t/acme/items/1 HTTP/1.1\r\nHost: gateway.test\r\n\r\n";
    for (cl, te) in [
        ("Content-Length: 4", "Transfer-Encoding: chunked"),
        ("content-length: 60", "transfer-encoding: chunked"),
        ("Content-Length: 0", "Transfer-Encoding: chunked"),
        ("CONTENT-LENGTH: 4", "Transfer-Encoding: gzip, chunked"),
    ] {
        for order in [[cl, te], [te, cl]] {
            let req = format!(
                "POST /api/t/acme/items HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {admin}\r\n{}\r\n{}\r\n\r\n0\r\n\r\n{smuggled}",
                order[0], order[1]
            );
            let r = send(&g.gw.proxy, req.as_bytes(), true);
            assert_eq!(r.status, 400, "{order:?}: {}", r.text);
            assert!(r.closed, "{order:?}: the connection stayed open");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        seen.lock().unwrap().is_empty(),
        "the upstream received: {}",
        String::from_utf8_lossy(&seen.lock().unwrap())
    );
    // Chunked alone is forwarded chunked, and the bytes after the last chunk never become a request.
    let req = format!(
        "POST /api/t/acme/items HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {admin}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
    );
    let r = send(&g.gw.proxy, req.as_bytes(), false);
    assert_eq!(r.status, 200, "{}", r.text);
    std::thread::sleep(Duration::from_millis(500));
    let bytes = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert_eq!(bytes.matches("HTTP/1.1\r\n").count(), 1, "{bytes}");
    assert!(
        bytes.starts_with("POST /api/t/acme/items HTTP/1.1\r\n"),
        "{bytes}"
    );
    assert!(
        !bytes.to_ascii_lowercase().contains("content-length"),
        "{bytes}"
    );
    assert!(bytes.contains("4\r\nbody\r\n0\r\n\r\n"), "{bytes}");
}

#[test]
fn url_backed_keys_fail_closed_an_hour_after_refreshes_stop() {
    init();
    jwks().set("stale", "k1");
    let g = {
        let settings = rolegate::config::AuthSettings {
            issuers: vec![rolegate::config::IssuerSettings {
                issuer: "https://stale.test".into(),
                algorithms: vec!["ES256".into()],
                jwks_url: Some(format!("{}/stale", jwks().base)),
                jwks_refresh_seconds: Some(300),
                ..Default::default()
            }],
            ..Default::default()
        };
        rolegate::gateway::server::block_on(rolegate::auth::Verifier::load(
            &settings,
            &rolegate::config::ClaimMapping::default(),
            Path::new("."),
        ))
        .unwrap()
    };
    let claims =
        json!({"iss": "https://stale.test", "sub": "u", "tenant": "acme", "exp": now() + 3 * 3600});
    let t = es("k1", &claims);
    let now = now() as u64;
    assert!(g.verify(&t, now).is_ok());
    assert!(
        g.verify(&t, now + 300 + 3600 - 5).is_ok(),
        "usable within the stale limit"
    );
    assert_eq!(
        g.verify(&t, now + 300 + 3600 + 5).unwrap_err(),
        rolegate::auth::TokenError::UnknownKey,
        "stale keys must fail closed"
    );
}
