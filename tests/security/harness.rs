//! Shared by the security corpus (tests/security.rs) and the forwarding property
//! (tests/properties.rs): keys generated per run, named tokens with real signatures, a JWKS server
//! the tests can break, gateways started in-process, and raw HTTP/1.1 exchanges.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::gateway::server::{load_runtime, Listeners, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::common::root;
use crate::common::upstream::{Seen, Upstream};

/// The HMAC secret of the main gateway's `https://idp.test/realms/acme` issuer.
pub const SECRET: &[u8] = b"security-corpus-secret-0123456789abcdef";
/// `ROLEGATE_DEV_SECRET` for the preset gateways' development issuer.
pub const DEV_SECRET: &str = "security-dev-secret-0123456789abcdef";
/// The HMAC issuer.
pub const ISS: &str = "https://idp.test/realms/acme";
/// The Host header sent unless a case says otherwise.
pub const HOST: &str = "gateway.test";

/// Keys generated once per test process.
pub struct Keys {
    /// RSA private key (PKCS#8 PEM) of `https://rsa.test` and `https://rsa-jwks.test`.
    pub rsa_private_pem: String,
    /// Its public key (SPKI PEM).
    pub rsa_public_pem: String,
    /// Its public JWK, without `alg`.
    pub rsa_jwk: Value,
    /// RSA private key of `https://mixed.test` (PKCS#8 PEM) and its public key.
    pub mixed_private_pem: String,
    /// Public key of `https://mixed.test` (SPKI PEM).
    pub mixed_public_pem: String,
    /// EC P-256 keys by kid: PKCS#8 and public JWK.
    pub ec: BTreeMap<&'static str, (Vec<u8>, Value)>,
    /// Ed25519 key of `https://ed.test` (PKCS#8) and its public key (SPKI PEM).
    pub ed_pkcs8: Vec<u8>,
    /// Public key of `https://ed.test`.
    pub ed_public_pem: String,
    /// Another Ed25519 key nobody trusts.
    pub ed_other_pkcs8: Vec<u8>,
}

/// PEM armour around DER.
pub fn pem(label: &str, der: &[u8]) -> String {
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

fn rsa_pair() -> (String, String, Value) {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private = pem(
        "PRIVATE KEY",
        AsDer::<Pkcs8V1Der>::as_der(&kp).unwrap().as_ref(),
    );
    let public = kp.public_key();
    let spki = AsDer::<PublicKeyX509Der>::as_der(public).unwrap();
    let jwk = json!({
        "kty": "RSA",
        "kid": "r1",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    });
    (private, pem("PUBLIC KEY", spki.as_ref()), jwk)
}

fn ec_pair(kid: &str) -> (Vec<u8>, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = kp.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    (pkcs8.as_ref().to_vec(), jwk)
}

fn ed_pair() -> (Vec<u8>, String) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let spki = AsDer::<PublicKeyX509Der>::as_der(kp.public_key()).unwrap();
    (pkcs8.as_ref().to_vec(), pem("PUBLIC KEY", spki.as_ref()))
}

/// The process's keys.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (rsa_private_pem, rsa_public_pem, rsa_jwk) = rsa_pair();
        let (mixed_private_pem, mixed_public_pem, _) = rsa_pair();
        let (ed_pkcs8, ed_public_pem) = ed_pair();
        let (ed_other_pkcs8, _) = ed_pair();
        Keys {
            rsa_private_pem,
            rsa_public_pem,
            rsa_jwk,
            mixed_private_pem,
            mixed_public_pem,
            ec: ["k1", "k2", "k3"]
                .into_iter()
                .map(|k| (k, ec_pair(k)))
                .collect(),
            ed_pkcs8,
            ed_public_pem,
            ed_other_pkcs8,
        }
    })
}

/// A JWKS server whose documents the tests switch per path (`/g1/ec`, `/g1/flood`, ...). Every
/// path serves `k1` (`rsa-noalg` for paths ending so) until told otherwise.
pub struct Jwks {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    docs: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

/// How long the `@slow` document takes: longer than the gateway's 5 s fetch timeout.
pub const SLOW: Duration = Duration::from_secs(8);

/// The body of a named JWKS document: `k1`, `k2`, `k1+k2` (EC keys), `rsa-noalg`, or `@garbage`,
/// `@huge`; `@slow` and `@down` are handled by the server.
fn jwks_body(doc: &str) -> Vec<u8> {
    let k = keys();
    match doc {
        "rsa-noalg" => json!({"keys": [k.rsa_jwk]}).to_string().into_bytes(),
        "@garbage" => b"{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": 7}".to_vec(),
        "@huge" => {
            let pad = "x".repeat(2 * 1024 * 1024);
            json!({"keys": [k.ec["k1"].1], "pad": pad})
                .to_string()
                .into_bytes()
        }
        names => {
            let keys: Vec<&Value> = names.split('+').map(|n| &k.ec[n].1).collect();
            json!({ "keys": keys }).to_string().into_bytes()
        }
    }
}

impl Jwks {
    /// Starts the server.
    pub fn start() -> Jwks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let docs: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (d, h) = (docs.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (d, h) = (d.clone(), h.clone());
                std::thread::spawn(move || serve_jwks(stream, &d, &h));
            }
        });
        Jwks { base, docs, hits }
    }

    /// Serves document `doc` on `/path` from now on.
    pub fn set(&self, path: &str, doc: &str) {
        self.docs
            .lock()
            .unwrap()
            .insert(format!("/{path}"), doc.to_string());
    }

    /// Requests received on `/path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .get(&format!("/{path}"))
            .copied()
            .unwrap_or(0)
    }
}

fn serve_jwks(
    stream: TcpStream,
    docs: &Mutex<HashMap<String, String>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut rest = String::new();
    while reader.read_line(&mut rest).map(|n| n > 2).unwrap_or(false) {
        rest.clear();
    }
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let default = if path.ends_with("/rsa-noalg") {
        "rsa-noalg"
    } else {
        "k1"
    };
    let doc = docs
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_else(|| default.into());
    let mut out = stream;
    match doc.as_str() {
        "@down" => {
            let _ = out.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            return;
        }
        "@slow" => std::thread::sleep(SLOW),
        _ => {}
    }
    let body = match doc.as_str() {
        "@slow" => jwks_body("k1+k2"),
        d => jwks_body(d),
    };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(&body);
}

/// The process's JWKS server.
pub fn jwks() -> &'static Jwks {
    static JWKS: OnceLock<Jwks> = OnceLock::new();
    JWKS.get_or_init(Jwks::start)
}

/// A gateway running in this process with its own recording upstream.
pub struct Gateway {
    /// The gateway.
    pub gw: RunningGateway,
    /// What the upstream received.
    pub upstream: Upstream,
    /// The configuration file (reloadable gateways).
    pub config: PathBuf,
    /// This gateway's JWKS paths (`g1` for `/g1/ec`, ...); empty for presets.
    pub jwks_prefix: String,
}

impl Gateway {
    /// Serves `doc` on this gateway's JWKS path `path`.
    pub fn set_jwks(&self, path: &str, doc: &str) {
        jwks().set(&format!("{}/{path}", self.jwks_prefix), doc);
    }

    /// Fetches of this gateway's JWKS path `path`.
    pub fn jwks_hits(&self, path: &str) -> usize {
        jwks().hits(&format!("{}/{path}", self.jwks_prefix))
    }
}

/// Everything the process-wide setup must do before the first gateway loads: crypto provider and
/// the development issuer's secret.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        rolegate::auth::install_crypto_provider();
        std::env::set_var(rolegate::auth::DEV_SECRET_ENV, DEV_SECRET);
        let _ = keys();
        let _ = jwks();
    });
}

/// Work stealing on: the corpus starts and stops many gateways in one process, which pingora's
/// per-thread runtimes do not survive (see `launch` in tests/reload.rs). The one-gateway test
/// binaries (gateway, gateway_options, forwarding_property) run the default, work stealing off.
fn listeners(threads: usize) -> Listeners {
    crate::common::loopback_listeners(threads, true)
}

/// Starts a gateway on the configuration at `path`; `reloadable` keeps the path for reloads.
pub fn start_at(
    path: PathBuf,
    upstream: Upstream,
    overrides: Overrides,
    reloadable: bool,
) -> Gateway {
    init();
    let runtime = load_runtime(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let shared = Shared::new(runtime, reloadable.then(|| path.clone()), overrides);
    if let Some(r) = &shared.reloader {
        r.set_watch_files(false);
    }
    let gw = RunningGateway::start(shared, listeners(2), Vec::new()).unwrap();
    let jwks_prefix = path
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Gateway {
        gw,
        upstream,
        config: path,
        jwks_prefix,
    }
}

/// Writes the security gateway's configuration and key files to a new directory and returns
/// the configuration path. `trusted` lists the trusted proxies. The JWKS URLs live under the
/// directory's name, so gateways never share a JWKS document.
pub fn write_main_config(upstream: &str, trusted: &[&str]) -> PathBuf {
    init();
    let k = keys();
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::fs::write(dir.join("rsa.pem"), &k.rsa_public_pem).unwrap();
    std::fs::write(dir.join("mixed.pem"), &k.mixed_public_pem).unwrap();
    std::fs::write(dir.join("ed.pem"), &k.ed_public_pem).unwrap();
    let trusted = format!(
        "[{}]",
        trusted
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config = std::fs::read_to_string(root().join("tests/security/gateway.yaml"))
        .unwrap()
        .replace("UPSTREAM", upstream)
        .replace(
            "JWKS",
            &format!(
                "{}/{}",
                jwks().base,
                dir.file_name().unwrap().to_string_lossy()
            ),
        )
        .replace("TRUSTED", &trusted);
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Starts a gateway on tests/security/gateway.yaml.
pub fn start_main(trusted: &[&str]) -> Gateway {
    init();
    let upstream = Upstream::start();
    let path = write_main_config(&upstream.addr, trusted);
    start_at(path, upstream, Overrides::default(), true)
}

/// Starts a preset from config/ with every route sent to a recording upstream and the
/// development issuer on.
pub fn start_preset(name: &str) -> Gateway {
    init();
    let upstream = Upstream::start();
    let overrides = Overrides {
        upstream: Some(format!("http://{}", upstream.addr)),
        ..Overrides::default()
    };
    start_at(
        root().join("config").join(format!("{name}.yaml")),
        upstream,
        overrides,
        false,
    )
}

/// Unix seconds now.
pub fn now() -> i64 {
    rolegate::gateway::proxy::now_secs() as i64
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// HS256 with the main issuer's secret.
pub fn hs(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// Signs `header.payload` as given (for header tricks) with `alg` and `key`.
pub fn sign_raw(header: &Value, claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, alg).unwrap();
    format!("{msg}.{sig}")
}

/// HMAC over a hand-made header.
pub fn hs_with_header(header: &Value, claims: &Value, secret: &[u8]) -> String {
    sign_raw(
        header,
        claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(secret),
    )
}

/// ES256 with the EC key `kid` (the header names `kid`).
pub fn es(kid: &str, claims: &Value) -> String {
    es_as(kid, kid, claims)
}

/// ES256 with the EC key `key`, the header naming `kid`.
pub fn es_as(key: &str, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.to_string());
    encode(&h, claims, &EncodingKey::from_ec_der(&keys().ec[key].0)).unwrap()
}

/// RS256 (or another RSA algorithm) with the `rsa.test` key.
pub fn rs(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(keys().rsa_private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// EdDSA with `pkcs8`.
pub fn ed(pkcs8: &[u8], claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::EdDSA),
        claims,
        &EncodingKey::from_ed_der(pkcs8),
    )
    .unwrap()
}

/// Claims of a valid token from `iss` (tenant acme unless changed).
pub fn claims(iss: &str, tenant: Value, roles: Value) -> Value {
    json!({"iss": iss, "aud": "rolegate", "sub": "u1", "tenant": tenant, "roles": roles,
           "iat": now(), "exp": now() + 600})
}

/// `v` with `key` set to `val`.
pub fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

/// `v` without `key`.
pub fn without(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

/// A principal written inline in a corpus case; minted as a development token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// Subject.
    #[serde(default = "default_sub")]
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// Tenant-scope roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Project -> roles.
    #[serde(default)]
    pub project_roles: BTreeMap<String, Vec<String>>,
}

fn default_sub() -> String {
    "u1".into()
}

/// A development token for `p` (preset gateways).
pub fn mint(p: &PrincipalSpec) -> String {
    let pairs: Vec<(String, String)> = p
        .project_roles
        .iter()
        .flat_map(|(proj, roles)| roles.iter().map(move |r| (proj.clone(), r.clone())))
        .collect();
    rolegate::auth::mint_dev_token(
        DEV_SECRET.as_bytes(),
        &p.sub,
        &p.tenant,
        &p.roles,
        &pairs,
        600,
        now() as u64,
    )
    .unwrap()
}

/// One exchange on a fresh connection.
#[derive(Debug)]
pub struct Reply {
    /// Status, or 0 when the gateway closed the connection without answering.
    pub status: u16,
    /// `X-Request-Id` of the answer.
    pub request_id: String,
    /// The whole answer as text.
    pub text: String,
    /// True when the gateway closed the connection after answering.
    pub closed: bool,
}

/// Sends raw bytes to `addr` and reads one response; `check_close` waits briefly to see
/// whether the gateway closes the connection afterwards.
pub fn send(addr: &str, bytes: &[u8], check_close: bool) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    if s.write_all(bytes).is_err() {
        return Reply {
            status: 0,
            request_id: String::new(),
            text: String::new(),
            closed: true,
        };
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                eof = true;
                break;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete(&buf, bytes.starts_with(b"HEAD ")) {
                    break;
                }
            }
        }
    }
    let closed = eof || {
        if check_close {
            s.set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            matches!(s.read(&mut chunk), Ok(0))
        } else {
            false
        }
    };
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let request_id = header_value(&text, "x-request-id").unwrap_or_default();
    Reply {
        status,
        request_id,
        text,
        closed,
    }
}

fn header_value(text: &str, name: &str) -> Option<String> {
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// True when `buf` holds a whole response (head and Content-Length body).
fn complete(buf: &[u8], head_request: bool) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = header_value(&format!("{head}\r\n\r\n"), "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    head_request || body.len() >= len
}

/// The requests the upstream received after index `from` that carry `request_id`.
pub fn forwarded_with(upstream: &Upstream, from: usize, request_id: &str) -> Vec<Seen> {
    upstream.requests()[from..]
        .iter()
        .filter(|s| !request_id.is_empty() && s.header("x-request-id") == vec![request_id])
        .cloned()
        .collect()
}

/// Re-decides a request exactly as the upstream received it: the policy of the serving runtime,
/// the principal of the (re-verified) token. Returns the reason when the policy would not allow it.
pub fn redecide(gw: &RunningGateway, seen: &Seen, token: Option<&str>) -> Result<(), String> {
    let rt = gw.shared.runtime.load();
    let (path, query) = seen
        .target
        .split_once('?')
        .map_or((seen.target.as_str(), None), |(p, q)| (p, Some(q)));
    match rolegate::canonical::canonicalize(path) {
        Ok(c) if c == path => {}
        other => {
            return Err(format!(
                "forwarded a non-canonical path `{path}`: {other:?}"
            ))
        }
    }
    let mut headers = http::HeaderMap::new();
    for (k, v) in &seen.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    let host = seen
        .header("host")
        .first()
        .map(|h| h.rsplit_once(':').map_or(*h, |(h, _)| h).to_string());
    let req = rolegate::policy::Request {
        method: &seen.method,
        host: host.as_deref(),
        path,
        query,
        headers: &headers,
    };
    // A token that does not verify is no identity (public routes ignore it).
    let verified = token.map(|t| {
        rt.auth
            .verifier
            .verify(t, rolegate::gateway::proxy::now_secs())
    });
    let subject = match &verified {
        Some(Ok(v)) => Some(rt.policy.resolve(&v.principal)),
        _ => None,
    };
    let d = rt.policy.decide(subject.as_ref(), &req);
    if d.allowed {
        Ok(())
    } else {
        Err(format!(
            "forwarded {} {} but the policy says {:?} (token: {:?})",
            seen.method,
            seen.target,
            d.reason,
            verified.map(|v| v.map(|_| "verifies"))
        ))
    }
}
