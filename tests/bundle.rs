//! Policy bundles end to end: a policy included by URL from a real HTTP server, polled with
//! ETag through the real proxy; a change swaps, a bad bundle or a dead server changes nothing.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::upstream::{request, Upstream};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::config::{load_file, load_with, MemorySource};
use rolegate::gateway::proxy::now_secs;
use rolegate::gateway::server::{load_runtime, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use rolegate::policy::CompiledPolicy;
use serde_json::{json, Value};

const SECRET: &str = "bundle-test-secret-0123456789abcdef";
const ISSUER: &str = "bundle-test";

/// A policy whose Viewer holds `grants`.
fn policy_doc(grants: &str) -> String {
    format!(
        "actions:
  probe.read: Read the probe
  item.view: View items
roles:
  Viewer: {{grants: [{grants}]}}
routes:
  - map:
      GET /probe: probe.read
      GET /items/{{id}}: item.view
"
    )
}

/// Refers to a role nobody defined (line 4).
const BROKEN: &str = "actions:
  probe.read: Read the probe
roles:
  Viewer: {inherits: [Reader], grants: [probe.read]}
routes:
  - map:
      GET /probe: probe.read
";

/// What the bundle server answers: a document and its ETag, or 503 when `None`.
struct Served {
    doc: Option<(String, String)>,
}

/// A policy bundle server: honours `If-None-Match`, counts 200s and 304s.
struct BundleServer {
    url: String,
    served: Arc<Mutex<Served>>,
    full: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

impl BundleServer {
    fn start(doc: &str, etag: &str) -> BundleServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/policy/bundle.yaml",
            listener.local_addr().unwrap()
        );
        let served = Arc::new(Mutex::new(Served {
            doc: Some((doc.to_string(), etag.to_string())),
        }));
        let (full, not_modified) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f, n) = (served.clone(), full.clone(), not_modified.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut if_none_match = None;
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n"
                {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("if-none-match") {
                            if_none_match = Some(v.trim().to_string());
                        }
                    }
                    line.clear();
                }
                let doc = s.lock().unwrap().doc.clone();
                let mut out = stream;
                let _ = match doc {
                    None => write!(out, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
                    Some((_, tag)) if if_none_match.as_deref() == Some(tag.as_str()) => {
                        n.fetch_add(1, Ordering::SeqCst);
                        write!(out, "HTTP/1.1 304 Not Modified\r\netag: {tag}\r\nconnection: close\r\n\r\n")
                    }
                    Some((body, tag)) => {
                        f.fetch_add(1, Ordering::SeqCst);
                        write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/yaml\r\netag: {tag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
            }
        });
        BundleServer {
            url,
            served,
            full,
            not_modified,
        }
    }

    fn serve(&self, doc: Option<(&str, &str)>) {
        self.served.lock().unwrap().doc = doc.map(|(d, t)| (d.to_string(), t.to_string()));
    }
}

/// The local part of the configuration: listeners, upstream, keys, and the bundle's URL.
fn local_config(upstream: &str, bundle_url: &str) -> String {
    format!(
        r#"include: ["{bundle_url}"]
gateway: {{threads: 2, grace_period_seconds: 0, bundle_poll_seconds: 1, decision_log: {{enabled: false}}}}
upstreams:
  api: {{addresses: ["{upstream}"]}}
auth:
  issuers:
    - {{issuer: {ISSUER}, algorithms: [HS256], hmac_secret_file: secret.txt}}
"#
    )
}

fn viewer() -> String {
    let claims = json!({"iss": ISSUER, "sub": "u1", "tenant": "acme", "roles": ["Viewer"], "exp": now_secs() + 3600});
    let t = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    format!("Bearer {t}")
}

/// Polls `f` every 20 ms until it holds; fails after 15 s.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(gw: &RunningGateway, sample: &str) -> f64 {
    request(&gw.admin, "GET", "/metrics", &[])
        .body
        .lines()
        .find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn policy(gw: &RunningGateway) -> Value {
    serde_json::from_str(&request(&gw.admin, "GET", "/policy", &[]).body).unwrap()
}

/// The revision of the same local settings with the bundle as a local include instead.
fn revision_with_local_copy(local: &str, url: &str, bundle: &str) -> String {
    let root = PathBuf::from("/mem/gateway.yaml");
    let local = local.replace(url, "bundle.yaml");
    let source = MemorySource(HashMap::from([
        (root.clone(), local),
        (PathBuf::from("/mem/bundle.yaml"), bundle.to_string()),
    ]));
    let config = load_with(&source, &root).unwrap_or_else(|e| panic!("{e}"));
    CompiledPolicy::compile(&config)
        .unwrap_or_else(|e| panic!("{e}"))
        .revision()
        .to_string()
}

#[test]
fn a_bundle_url_is_polled_with_etag_and_only_a_good_change_takes_effect() {
    rolegate::auth::install_crypto_provider();
    let upstream = Upstream::start();
    let (open, closed) = (policy_doc("probe.read, item.view"), policy_doc("item.view"));
    let server = BundleServer::start(&open, "\"v1\"");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let path = dir.path().join("gateway.yaml");
    let local = local_config(&upstream.addr, &server.url);
    std::fs::write(&path, &local).unwrap();
    let overrides = Overrides::default();
    let runtime = load_runtime(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let shared = Shared::new(runtime, Some(path.clone()), overrides);
    let gw =
        RunningGateway::start(shared, common::loopback_listeners(2, true), Vec::new()).unwrap();
    let auth = viewer();
    let probe = || request(&gw.proxy, "GET", "/probe", &[("authorization", &auth)]).status;
    let revision = || policy(&gw)["revision"].as_str().unwrap().to_string();

    // Loaded from the URL; a fleet reading the same bundle converges on one revision, the
    // same as the bundle's content read from a local file.
    assert_eq!(probe(), 200);
    assert_eq!(server.full.load(Ordering::SeqCst), 1);
    let open_revision = revision();
    assert_eq!(
        open_revision,
        revision_with_local_copy(&local, &server.url, &open)
    );
    let p = policy(&gw);
    assert_eq!(p["bundles"][0]["url"], server.url.as_str());
    assert_eq!(p["bundles"][0]["etag"], "\"v1\"");

    // Unchanged: the polls carry the ETag and get 304; nothing is fetched, compiled or counted.
    wait_until("two polls answered 304", || {
        server.not_modified.load(Ordering::SeqCst) >= 2
    });
    assert_eq!(server.full.load(Ordering::SeqCst), 1);
    assert!(
        metric(
            &gw,
            "rolegate_policy_bundle_polls_total{result=\"unchanged\"}"
        ) >= 2.0
    );
    assert_eq!(
        metric(&gw, "rolegate_policy_reloads_total{result=\"success\"}"),
        1.0
    );

    // A new bundle: the next poll sees it and swaps; the revision is the new content's.
    server.serve(Some((&closed, "\"v2\"")));
    wait_until("the closed policy serves", || probe() == 403);
    assert_eq!(
        revision(),
        revision_with_local_copy(&local, &server.url, &closed)
    );
    assert_eq!(policy(&gw)["bundles"][0]["etag"], "\"v2\"");
    assert_eq!(
        metric(&gw, "rolegate_policy_reloads_total{result=\"success\"}"),
        2.0
    );
    assert!(
        metric(
            &gw,
            "rolegate_policy_bundle_polls_total{result=\"changed\"}"
        ) >= 1.0
    );

    // A broken bundle is refused: the closed policy keeps serving, the error names the URL and
    // the line.
    let closed_revision = revision();
    server.serve(Some((BROKEN, "\"v3\"")));
    wait_until("the broken bundle is refused", || {
        metric(&gw, "rolegate_policy_reloads_total{result=\"failure\"}") >= 1.0
    });
    assert_eq!(probe(), 403);
    assert_eq!(revision(), closed_revision);
    let err = policy(&gw)["last_error"].as_str().unwrap().to_string();
    assert!(
        err.contains(&format!("{}:4:", server.url)) && err.contains("Reader"),
        "{err}"
    );

    // The server goes away: polls fail, the serving revision stays.
    server.serve(None);
    let errors = metric(&gw, "rolegate_policy_bundle_polls_total{result=\"error\"}");
    wait_until("a poll fails", || {
        metric(&gw, "rolegate_policy_bundle_polls_total{result=\"error\"}") > errors
    });
    assert_eq!(probe(), 403);
    assert_eq!(revision(), closed_revision);

    // It comes back with the first policy: the gateway converges on the first revision.
    server.serve(Some((&open, "\"v4\"")));
    wait_until("the open policy serves again", || probe() == 200);
    assert_eq!(revision(), open_revision);
}

#[test]
fn a_bundle_holds_policy_only_and_travels_over_https_or_loopback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let path = dir.path().join("gateway.yaml");
    let load = |url: &str| {
        std::fs::write(&path, local_config("127.0.0.1:9", url)).unwrap();
        load_file(&path).map(|_| ()).map_err(|e| e.to_string())
    };

    // Listener, key and upstream settings stay in local files.
    let server = BundleServer::start(
        "gateway: {threads: 1}\nactions: {probe.read: Read the probe}\n",
        "\"g\"",
    );
    let err = load(&server.url).expect_err("a bundle setting `gateway` is refused");
    assert!(
        err.contains(&format!(
            "{}: a policy bundle cannot set `gateway`",
            server.url
        )),
        "{err}"
    );

    // Plain http off loopback is refused before anything is sent, at the include's line.
    let err = load("http://policy.example.com/p.yaml").expect_err("plain http is refused");
    assert!(
        err.contains(&format!("{}:1:", path.display())) && err.contains("use https"),
        "{err}"
    );

    // A redirect is not followed: it could lead a loopback URL to a plain-http host elsewhere.
    server.serve(Some((
        "actions: {probe.read: Read the probe}\nroles: {R: {grants: [probe.read]}}\n",
        "\"r\"",
    )));
    assert!(
        load(&server.url).is_ok(),
        "the target itself is a good bundle"
    );
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_url = format!("http://{}/moved.yaml", redirector.local_addr().unwrap());
    let target = server.url.clone();
    std::thread::spawn(move || {
        for stream in redirector.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let mut out = stream;
            let _ = write!(out, "HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let err = load(&redirect_url).expect_err("a redirected bundle is refused");
    assert!(err.contains(&redirect_url) && err.contains("302"), "{err}");

    // An unreachable server is an error that names the URL.
    server.serve(None);
    let err = load(&server.url).expect_err("a 503 is refused");
    assert!(err.contains(&server.url) && err.contains("503"), "{err}");
}
