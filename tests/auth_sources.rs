//! Every key source loads and verifies real signatures: PEM files (RSA, EC, Ed25519), a JWKS file,
//! an HMAC secret from an env var, OIDC discovery over a real socket, and the dev issuer.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::auth::{install_crypto_provider, TokenError, Verifier};
use rolegate::config::{AuthSettings, ClaimMapping, IssuerSettings};
use serde_json::json;

fn now() -> u64 {
    rolegate::gateway::proxy::now_secs()
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

fn claims(iss: &str) -> serde_json::Value {
    json!({"iss": iss, "sub": "s", "tenant": "t", "roles": ["R"], "exp": now() + 300})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, iss: &str) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    encode(&h, &claims(iss), key).unwrap()
}

fn issuer(name: &str, algs: &[&str]) -> IssuerSettings {
    IssuerSettings {
        issuer: name.into(),
        algorithms: algs.iter().map(|a| a.to_string()).collect(),
        ..IssuerSettings::default()
    }
}

async fn load(issuers: Vec<IssuerSettings>, dir: &Path) -> Result<Verifier, String> {
    install_crypto_provider();
    let settings = AuthSettings {
        issuers,
        ..AuthSettings::default()
    };
    Verifier::load(&settings, &ClaimMapping::default(), dir)
        .await
        .map_err(|e| e.to_string())
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn pem_files_of_each_key_type_verify_and_pin_their_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ec8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec8.as_ref()).unwrap();
    std::fs::write(
        dir.path().join("ec.pem"),
        pem("PUBLIC KEY", ec.public_key().as_der().unwrap().as_ref()),
    )
    .unwrap();
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&ed).unwrap();
    std::fs::write(
        dir.path().join("ed.pem"),
        pem("PUBLIC KEY", ed.public_key().as_der().unwrap().as_ref()),
    )
    .unwrap();
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let rsa8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
    std::fs::write(
        dir.path().join("rsa.pem"),
        pem("PUBLIC KEY", rsa.public_key().as_der().unwrap().as_ref()),
    )
    .unwrap();

    let mut ec_iss = issuer("ec", &["ES256"]);
    ec_iss.pem_files = vec!["ec.pem".into()];
    let mut ed_iss = issuer("ed", &["EdDSA"]);
    ed_iss.pem_files = vec!["ed.pem".into()];
    let mut rsa_iss = issuer("rsa", &["RS256", "PS256"]);
    rsa_iss.pem_files = vec!["rsa.pem".into()];
    let v = block(load(vec![ec_iss, ed_iss, rsa_iss], dir.path())).unwrap();
    assert!(v.is_ready());

    let ec_key = EncodingKey::from_ec_der(ec8.as_ref());
    let ed_key = EncodingKey::from_ed_der(ed8.as_ref());
    let rsa_key = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", rsa8.as_ref()).as_bytes()).unwrap();
    let n = now();
    assert!(v
        .verify(&sign(Algorithm::ES256, None, &ec_key, "ec"), n)
        .is_ok());
    assert!(v
        .verify(&sign(Algorithm::EdDSA, None, &ed_key, "ed"), n)
        .is_ok());
    assert!(v
        .verify(&sign(Algorithm::RS256, None, &rsa_key, "rsa"), n)
        .is_ok());
    assert!(v
        .verify(&sign(Algorithm::PS256, None, &rsa_key, "rsa"), n)
        .is_ok());
    // A key of another issuer never verifies; an algorithm outside the pin never reaches the crypto.
    assert_eq!(
        v.verify(&sign(Algorithm::ES256, None, &ec_key, "ed"), n)
            .unwrap_err(),
        TokenError::AlgNotAllowed
    );
    assert_eq!(
        v.verify(&sign(Algorithm::RS512, None, &rsa_key, "rsa"), n)
            .unwrap_err(),
        TokenError::AlgNotAllowed
    );
    // HS256 signed with the RSA public key's bytes (the classic confusion) is refused.
    let public_pem = std::fs::read(dir.path().join("rsa.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(&public_pem),
        "rsa",
    );
    assert_eq!(
        v.verify(&confused, n).unwrap_err(),
        TokenError::AlgNotAllowed
    );
}

#[test]
fn a_jwks_file_selects_keys_by_kid_and_skips_unusable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ec8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec8.as_ref()).unwrap();
    let p = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])},
        {"kty": "EC", "crv": "P-256", "kid": "broken", "x": "AAAA", "y": "AAAA"},
        {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}
    ]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let mut iss = issuer("jwks", &["ES256"]);
    iss.jwks_file = Some("jwks.json".into());
    let v = block(load(vec![iss], dir.path())).unwrap();
    let key = EncodingKey::from_ec_der(ec8.as_ref());
    assert!(v
        .verify(&sign(Algorithm::ES256, Some("k1"), &key, "jwks"), now())
        .is_ok());
    assert_eq!(
        v.verify(&sign(Algorithm::ES256, Some("k2"), &key, "jwks"), now())
            .unwrap_err(),
        TokenError::UnknownKey
    );
    let hs = sign(
        Algorithm::HS256,
        Some("sym"),
        &EncodingKey::from_secret(b"secret"),
        "jwks",
    );
    assert_eq!(
        v.verify(&hs, now()).unwrap_err(),
        TokenError::AlgNotAllowed,
        "oct keys are not allowed for an ES256 issuer"
    );
}

#[test]
fn hmac_secrets_come_from_env_or_file_and_missing_ones_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut env_iss = issuer("hs", &["HS256"]);
    env_iss.hmac_secret_env = Some("ROLEGATE_TEST_ABSENT_SECRET".into());
    let e = block(load(vec![env_iss], dir.path())).err().unwrap();
    assert!(
        e.contains("ROLEGATE_TEST_ABSENT_SECRET") && e.contains("`hs`"),
        "{e}"
    );
    let mut file_iss = issuer("hs", &["HS256"]);
    file_iss.hmac_secret_file = Some("nope.txt".into());
    let e = block(load(vec![file_iss], dir.path())).err().unwrap();
    assert!(e.contains("nope.txt"), "{e}");
    let mut no_algs = issuer("hs", &[]);
    no_algs.hmac_secret_file = Some("nope.txt".into());
    let e = block(load(vec![no_algs], dir.path())).err().unwrap();
    assert!(e.contains("algorithms"), "{e}");
}

/// Serves an OIDC discovery document and the JWKS it names.
fn oidc_server(jwks: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let issuer = base.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap_or(0);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let body = if first.contains("/.well-known/openid-configuration") {
                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string()
            } else {
                jwks.clone()
            };
            let mut s = s;
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}", body.len(), body);
        }
    });
    base
}

#[test]
fn oidc_discovery_finds_the_jwks() {
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&ed).unwrap();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "e1", "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())}]});
    let base = oidc_server(jwks.to_string());
    let mut iss = issuer(&base, &["EdDSA"]);
    iss.oidc_discovery = Some(base.clone());
    let dir = tempfile::tempdir().unwrap();
    let v = block(load(vec![iss], dir.path())).unwrap();
    let t = sign(
        Algorithm::EdDSA,
        Some("e1"),
        &EncodingKey::from_ed_der(ed8.as_ref()),
        &base,
    );
    assert!(v.verify(&t, now()).is_ok());
}

#[test]
fn an_unreachable_jwks_url_fails_the_load_with_its_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut iss = issuer("down", &["RS256"]);
    iss.jwks_url = Some(format!("http://127.0.0.1:{port}/jwks"));
    let dir = tempfile::tempdir().unwrap();
    let e = block(load(vec![iss], dir.path())).err().unwrap();
    assert!(e.contains("`down`") && e.contains(&port.to_string()), "{e}");
}

#[test]
fn garbage_and_oversized_jwks_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.json"), "<html>not json</html>").unwrap();
    std::fs::write(dir.path().join("empty.json"), r#"{"keys": []}"#).unwrap();
    let big = format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(1_100_000));
    std::fs::write(dir.path().join("huge.json"), big).unwrap();
    for (file, want) in [
        ("garbage.json", "not a JWKS"),
        ("empty.json", "no usable key"),
        ("huge.json", "larger than 1 MiB"),
    ] {
        let mut iss = issuer("j", &["ES256"]);
        iss.jwks_file = Some(file.into());
        let e = block(load(vec![iss], dir.path())).err().unwrap();
        assert!(e.contains(want), "{file}: {e}");
    }
}

#[test]
fn a_jwks_url_that_never_answers_fails_the_load_within_the_fetch_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        // Accept and hold connections without answering.
        let conns: Vec<_> = l.incoming().take(1).flatten().collect();
        std::thread::sleep(std::time::Duration::from_secs(8));
        drop(conns);
    });
    let mut iss = issuer("slow", &["RS256"]);
    iss.jwks_url = Some(format!("http://{addr}/jwks"));
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let e = block(load(vec![iss], dir.path())).err().unwrap();
    let waited = started.elapsed();
    assert!(e.contains("`slow`"), "{e}");
    assert!(
        waited < std::time::Duration::from_secs(7),
        "waited {waited:?}"
    );
    drop(held);
}
