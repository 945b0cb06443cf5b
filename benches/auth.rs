//! Token verification per algorithm (HS256, RS256, ES256, EdDSA) with real keys, cold (every check
//! a token gets on a cache miss) and cached (the gateway's hit path), plus the pieces: the token
//! front end, claims -> principal, principal -> subject on the Palette policy.
//!
//! `cargo bench --bench auth`; figures are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::auth::{install_crypto_provider, principal_from_claims, token, TokenCache, Verifier};
use rolegate::config::{load_file, AuthSettings, ClaimMapping, IssuerSettings};
use rolegate::gateway::runtime::CachedCaller;
use rolegate::policy::CompiledPolicy;
use serde_json::json;

fn now() -> u64 {
    rolegate::gateway::proxy::now_secs()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A Palette-shaped token: a tenant role and three project bindings.
fn claims(iss: &str) -> serde_json::Value {
    let n = now();
    json!({
        "iss": iss, "sub": "user-5f2c", "tenant": "t1",
        "roles": ["Tenant Viewer"],
        "project_roles": {"p1": ["Cluster Admin"], "p2": ["Cluster Viewer", "App Deployment Editor"], "p3": ["Project Viewer"]},
        "iat": n, "nbf": n, "exp": n + 3600,
    })
}

struct Keys {
    _dir: tempfile::TempDir,
    verifier: Arc<Verifier>,
    tokens: Vec<(&'static str, String)>,
}

/// One issuer per algorithm, keys generated now and loaded from files as a deployment would.
fn keys() -> Keys {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let secret = b"bench-secret-bench-secret-bench-secret!!";
    std::fs::write(dir.path().join("hs.key"), secret).expect("write");
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
    let rsa8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).expect("der");
    let rsa_pub = rsa.public_key().as_der().expect("der");
    std::fs::write(
        dir.path().join("rs.pem"),
        pem("PUBLIC KEY", rsa_pub.as_ref()),
    )
    .expect("write");
    let ec8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("ec");
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec8.as_ref()).expect("ec");
    std::fs::write(
        dir.path().join("es.pem"),
        pem(
            "PUBLIC KEY",
            ec.public_key().as_der().expect("der").as_ref(),
        ),
    )
    .expect("write");
    let ed = Ed25519KeyPair::generate().expect("ed");
    let ed8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&ed).expect("der");
    std::fs::write(
        dir.path().join("ed.pem"),
        pem(
            "PUBLIC KEY",
            ed.public_key().as_der().expect("der").as_ref(),
        ),
    )
    .expect("write");

    let issuer = |name: &str, alg: &str| IssuerSettings {
        issuer: name.into(),
        algorithms: vec![alg.into()],
        ..IssuerSettings::default()
    };
    let mut hs = issuer("hs", "HS256");
    hs.hmac_secret_file = Some("hs.key".into());
    let mut rs = issuer("rs", "RS256");
    rs.pem_files = vec!["rs.pem".into()];
    let mut es = issuer("es", "ES256");
    es.pem_files = vec!["es.pem".into()];
    let mut edi = issuer("ed", "EdDSA");
    edi.pem_files = vec!["ed.pem".into()];
    let settings = AuthSettings {
        issuers: vec![hs, rs, es, edi],
        ..AuthSettings::default()
    };
    let verifier = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(Verifier::load(
            &settings,
            &ClaimMapping::default(),
            dir.path(),
        ))
        .expect("keys load");
    let sign =
        |alg, key: &EncodingKey, iss| encode(&Header::new(alg), &claims(iss), key).expect("sign");
    let rsa_key =
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", rsa8.as_ref()).as_bytes()).expect("rsa key");
    let tokens = vec![
        (
            "HS256",
            sign(Algorithm::HS256, &EncodingKey::from_secret(secret), "hs"),
        ),
        ("RS256", sign(Algorithm::RS256, &rsa_key, "rs")),
        (
            "ES256",
            sign(
                Algorithm::ES256,
                &EncodingKey::from_ec_der(ec8.as_ref()),
                "es",
            ),
        ),
        (
            "EdDSA",
            sign(
                Algorithm::EdDSA,
                &EncodingKey::from_ed_der(ed8.as_ref()),
                "ed",
            ),
        ),
    ];
    Keys {
        _dir: dir,
        verifier: Arc::new(verifier),
        tokens,
    }
}

fn palette() -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/palette.yaml");
    CompiledPolicy::compile(&load_file(&path).expect("palette loads")).expect("palette compiles")
}

fn verify(c: &mut Criterion) {
    let k = keys();
    let policy = palette();
    let n = now();
    let generation = k.verifier.generation();
    for (alg, tok) in &k.tokens {
        let v = k.verifier.verify(tok, n).expect("the token verifies");
        assert_eq!(v.principal.project_roles.len(), 3);
        c.bench_function(&format!("{alg}: verify, cold ({} bytes)", tok.len()), |b| {
            b.iter(|| black_box(k.verifier.verify(black_box(tok), n)))
        });
        // A miss as the gateway handles it: verify, wrap, resolve against the policy, cache.
        let cache: TokenCache<CachedCaller> = TokenCache::new(100_000);
        c.bench_function(
            &format!("{alg}: miss path (verify + resolve + insert)"),
            |b| {
                b.iter(|| {
                    let v = k.verifier.verify(black_box(tok), n).expect("valid");
                    let caller = Arc::new(CachedCaller::new(v.principal, &v.issuer));
                    black_box(caller.subject_for(&policy));
                    cache.insert(tok, caller, v.expires_at, generation);
                })
            },
        );
        let caller = Arc::new(CachedCaller::new(v.principal, &v.issuer));
        caller.subject_for(&policy);
        cache.insert(tok, caller, v.expires_at, generation);
        c.bench_function(&format!("{alg}: cached (cache hit + subject)"), |b| {
            b.iter(|| {
                let hit = cache.get(black_box(tok), n, generation).expect("hit");
                black_box(hit.subject_for(&policy))
            })
        });
    }
}

fn pieces(c: &mut Criterion) {
    let k = keys();
    let policy = palette();
    let (_, tok) = &k.tokens[0];
    c.bench_function("token front end: split, base64url, strict JSON", |b| {
        b.iter(|| black_box(token::parse(black_box(tok), 8192).expect("parses")))
    });
    let parsed = token::parse(tok, 8192).expect("parses");
    let mapping = ClaimMapping::default();
    c.bench_function("claims -> principal (1 role, 3 project bindings)", |b| {
        b.iter(|| black_box(principal_from_claims(black_box(&parsed.claims), &mapping)))
    });
    let principal = principal_from_claims(&parsed.claims, &mapping).expect("maps");
    c.bench_function(
        "principal -> subject on Palette (role names to one bitset)",
        |b| b.iter(|| black_box(policy.resolve(black_box(&principal)))),
    );
}

criterion_group!(benches, verify, pieces);
criterion_main!(benches);
