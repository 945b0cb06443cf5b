//! Hot reload end to end: swaps under continuous load through the real proxy, refused configs,
//! role and grant removal, the file watch (atomic rename, ConfigMap symlink flip, key files),
//! determinism, and `rolegate serve` as a process (SIGHUP, exit 2 on a bad config).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::upstream::{free_port, request, Conn, Resp, Upstream};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rolegate::config::{load_with, MemorySource};
use rolegate::gateway::proxy::now_secs;
use rolegate::gateway::server::{load_runtime, wait_listening, RunningGateway};
use rolegate::gateway::{Overrides, Shared};
use rolegate::policy::CompiledPolicy;
use rolegate::reload::Reloader;
use serde_json::{json, Value};

const SECRET: &str = "reload-test-secret-0123456789abcdef";
const ISSUER: &str = "reload-test";

/// The parts of a test policy that differ between variants.
#[derive(Clone, Copy)]
struct Parts {
    /// What `GET /probe` needs: an action id or `public`.
    probe: &'static str,
    /// The `roles:` block.
    roles: &'static str,
    /// The HMAC secret file.
    secret: &'static str,
    /// Text above everything else (an `include:`).
    head: &'static str,
    /// Extra entries of the route map.
    routes: &'static str,
}

const ROLES_A: &str = "  Viewer: {grants: [item.view, probe.read]}\n  Admin: {grants: [item.view, probe.read, probe.write]}";
const ROLES_B: &str =
    "  Viewer: {grants: [item.view]}\n  Admin: {grants: [item.view, probe.read, probe.write]}";

/// Policy A: `GET /probe` is `probe.read`, which a Viewer holds.
const A: Parts = Parts {
    probe: "probe.read",
    roles: ROLES_A,
    secret: "secret.txt",
    head: "",
    routes: "",
};
/// Policy B: `GET /probe` is `probe.write`, which a Viewer lacks (and Viewer lost `probe.read`).
const B: Parts = Parts {
    probe: "probe.write",
    roles: ROLES_B,
    ..A
};
/// The base of every invalid config: were any of it to take effect, `GET /probe` would be public.
const C: Parts = Parts {
    probe: "public",
    ..A
};

/// One way to break a configuration, and what its error must say.
struct Bad {
    name: &'static str,
    parts: Parts,
    /// Text the error must contain; `{file}` is the config path and `{line:X}` the line of X.
    expect: &'static [&'static str],
}

const BAD: &[Bad] = &[
    Bad {
        name: "YAML syntax error",
        parts: Parts {
            routes: "      GET /broken: [unclosed\n",
            ..C
        },
        expect: &["{file}:{line:[unclosed}:"],
    },
    Bad {
        name: "unknown action",
        parts: Parts {
            roles: "  Viewer: {grants: [item.view, probe.reed]}\n  Admin: {grants: [probe.write]}",
            ..C
        },
        expect: &[
            "{file}:{line:probe.reed}:",
            "unknown action `probe.reed`",
            "did you mean `probe.read`",
        ],
    },
    Bad {
        name: "unknown role",
        parts: Parts {
            roles: "  Viewer: {inherits: [Reader], grants: [item.view]}\n  Admin: {grants: [probe.write]}",
            ..C
        },
        expect: &["{file}:{line:Reader}:", "Reader"],
    },
    Bad {
        name: "inheritance cycle",
        parts: Parts {
            roles: "  Viewer: {inherits: [Admin], grants: [item.view]}\n  Admin: {inherits: [Viewer], grants: [probe.write]}",
            ..C
        },
        expect: &["{file}:", "inheritance cycle"],
    },
    Bad {
        name: "route conflict",
        parts: Parts {
            routes: "      GET /items/{uid}: item.view\n",
            ..C
        },
        expect: &["{file}:{line:/items/{uid}}:", "conflicts with"],
    },
    Bad {
        name: "unreadable include",
        parts: Parts {
            head: "include: [missing-roles.yaml]",
            ..C
        },
        expect: &["{file}:1:", "missing-roles.yaml"],
    },
    Bad {
        name: "missing key file",
        parts: Parts {
            secret: "missing-secret.txt",
            ..C
        },
        expect: &["missing-secret.txt", "cannot read"],
    },
];

/// The configuration text of `p` with upstream `up`.
fn config(up: &str, p: &Parts) -> String {
    format!(
        r#"{head}
gateway: {{threads: 2, grace_period_seconds: 0, decision_log: {{enabled: false}}}}
upstreams:
  api: {{addresses: ["{up}"], connect_timeout_ms: 1000, read_timeout_ms: 5000}}
auth:
  issuers:
    - issuer: {ISSUER}
      algorithms: [HS256]
      hmac_secret_file: {secret}
actions:
  probe.read: Read the probe
  probe.write: Write the probe
  item.view: View items
roles:
{roles}
routes:
  - map:
      GET /probe: {probe}
      GET /items/{{id}}: item.view
      GET /health: public
{routes}"#,
        head = p.head,
        secret = p.secret,
        roles = p.roles,
        probe = p.probe,
        routes = p.routes,
    )
}

/// The revision `text` compiles to (from memory, so nothing on disk changes).
fn revision_of(text: &str) -> String {
    let root = PathBuf::from("/mem/gateway.yaml");
    let source = MemorySource(HashMap::from([(root.clone(), text.to_string())]));
    let config = load_with(&source, &root).unwrap_or_else(|e| panic!("{e}"));
    CompiledPolicy::compile(&config)
        .unwrap_or_else(|e| panic!("{e}"))
        .revision()
        .to_string()
}

/// The texts a refused config's error must contain.
fn expected_error(bad: &Bad, file: &Path, text: &str) -> Vec<String> {
    bad.expect
        .iter()
        .map(|e| {
            let mut e = e.replace("{file}", &file.display().to_string());
            if let (Some(start), Some(end)) = (e.find("{line:"), e.rfind('}')) {
                let needle = &e[start + 6..end];
                let line = text
                    .lines()
                    .position(|l| l.contains(needle))
                    .unwrap_or_else(|| panic!("`{needle}` is not in the config"))
                    + 1;
                e = format!("{}{line}{}", &e[..start], &e[end + 1..]);
            }
            e
        })
        .collect()
}

/// Writes `text` to `path` the way editors and deploy tools do: a temporary file, renamed over.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn token(roles: &[&str]) -> String {
    let claims = json!({"iss": ISSUER, "sub": "u1", "tenant": "acme", "roles": roles, "exp": now_secs() + 3600});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A gateway running in-process on a config file, with its upstream.
struct Gw {
    gw: RunningGateway,
    upstream: Upstream,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gw {
    fn reloader(&self) -> &Reloader {
        self.gw.shared.reloader.as_ref().expect("a reloader")
    }

    fn revision(&self) -> String {
        self.gw.shared.runtime.load().policy.revision().to_string()
    }

    fn fingerprint(&self) -> String {
        self.gw.shared.runtime.load().fingerprint.clone()
    }

    fn admin(&self, method: &str, target: &str) -> (u16, Value) {
        let r = request(&self.gw.admin, method, target, &[]);
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    /// `POST /reload`: Ok(result) on 200, Err(error) on 422.
    fn post_reload(&self) -> Result<String, String> {
        match self.admin("POST", "/reload") {
            (200, v) => Ok(v["result"].as_str().unwrap_or_default().to_string()),
            (422, v) => Err(v["error"].as_str().unwrap_or_default().to_string()),
            (s, v) => panic!("POST /reload answered {s}: {v}"),
        }
    }

    /// The value of one sample of /metrics (`name{labels}` exactly as exposed).
    fn metric(&self, sample: &str) -> f64 {
        metric(
            &request(&self.gw.admin, "GET", "/metrics", &[]).body,
            sample,
        )
    }
}

fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample `{sample}` in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Starts a gateway on the config at `path` (already written), the upstream already running.
fn launch(path: PathBuf, upstream: Upstream, dir: tempfile::TempDir) -> Gw {
    rolegate::auth::install_crypto_provider();
    let overrides = Overrides::default();
    let runtime = load_runtime(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    // These tests start and stop many gateways in one process. pingora's per-thread runtimes
    // (work_stealing off) find their runtime through a thread-local registry whose slots are
    // reused by later threads, so a second server in the same process can get a stopped
    // server's runtime; one work-stealing runtime per server has no such registry.
    let listeners = common::loopback_listeners(2, true);
    let shared = Shared::new(runtime, Some(path.clone()), overrides);
    let gw = RunningGateway::start(shared, listeners, Vec::new()).unwrap();
    Gw {
        gw,
        upstream,
        path,
        _dir: dir,
    }
}

/// A gateway serving `parts` from `<tmp>/gateway.yaml` with the secret in `<tmp>/secret.txt`.
fn start(parts: &Parts) -> Gw {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config(&upstream.addr, parts)).unwrap();
    launch(path, upstream, dir)
}

/// Polls `f` every 20 ms until it holds; fails after 10 s.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a client asks in the load test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    ViewerProbe,
    AdminProbe,
    ViewerItem,
    Health,
    AnonProbe,
}

const KINDS: [Kind; 5] = [
    Kind::ViewerProbe,
    Kind::AdminProbe,
    Kind::ViewerItem,
    Kind::Health,
    Kind::AnonProbe,
];

/// One answer a client saw.
struct Answer {
    kind: Kind,
    status: u16,
    request_id: String,
    body: String,
}

fn ask(conn: &mut Conn, kind: Kind, viewer: &str, admin: &str) -> Resp {
    match kind {
        Kind::ViewerProbe => conn.send("GET", "/probe", &[("authorization", viewer)]),
        Kind::AdminProbe => conn.send("GET", "/probe", &[("authorization", admin)]),
        Kind::ViewerItem => conn.send("GET", "/items/7", &[("authorization", viewer)]),
        Kind::Health => conn.send("GET", "/health", &[]),
        Kind::AnonProbe => conn.send("GET", "/probe", &[]),
    }
}

/// Which of the two valid policies an answer is consistent with ("A", "B" or "either"), or why
/// it is consistent with neither. `forwarded` maps request ids to the action the upstream saw.
fn judge(a: &Answer, forwarded: &HashMap<String, String>) -> Result<&'static str, String> {
    let problem: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    let denied =
        |reason: &str| problem["type"].as_str() == Some(&format!("urn:rolegate:problem:{reason}"));
    let action = problem["action"].as_str().unwrap_or("");
    let upstream_action = forwarded.get(&a.request_id).map(String::as_str);
    let verdict = match (a.kind, a.status) {
        (Kind::ViewerProbe, 200) if upstream_action == Some("probe.read") => Some("A"),
        (Kind::ViewerProbe, 403) if denied("not_granted") && action == "probe.write" => Some("B"),
        (Kind::AdminProbe, 200) if upstream_action == Some("probe.read") => Some("A"),
        (Kind::AdminProbe, 200) if upstream_action == Some("probe.write") => Some("B"),
        (Kind::ViewerItem, 200) if upstream_action == Some("item.view") => Some("either"),
        (Kind::Health, 200) if upstream_action == Some("") => Some("either"),
        (Kind::AnonProbe, 401) if denied("missing_token") && action == "probe.read" => Some("A"),
        (Kind::AnonProbe, 401) if denied("missing_token") && action == "probe.write" => Some("B"),
        _ => None,
    };
    verdict.ok_or_else(|| {
        format!(
            "{:?} got {} (upstream action {upstream_action:?}): {}",
            a.kind, a.status, a.body
        )
    })
}

/// Sends requests on one keep-alive connection until `stop` (at most `cap`).
fn client(addr: String, stop: Arc<AtomicBool>, offset: usize, cap: usize) -> Vec<Answer> {
    let viewer = bearer(&token(&["Viewer"]));
    let admin = bearer(&token(&["Admin"]));
    let mut conn = Conn::open(&addr);
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) && out.len() < cap {
        let kind = KINDS[(offset + out.len()) % KINDS.len()];
        let r = ask(&mut conn, kind, &viewer, &admin);
        out.push(Answer {
            kind,
            status: r.status,
            request_id: r.header("x-request-id").unwrap_or_default().to_string(),
            body: r.body,
        });
    }
    out
}

/// Runs a reload the way `via` says: `POST /reload` or the reloader's API.
fn reload(gw: &Gw, rt: &tokio::runtime::Runtime, via_admin: bool) -> Result<String, String> {
    if via_admin {
        gw.post_reload()
    } else {
        rt.block_on(gw.reloader().reload())
            .map(|o| o.as_str().to_string())
    }
}

#[test]
fn two_hundred_swaps_under_load_are_invisible_to_clients_and_bad_configs_never_take_effect() {
    let started = now_secs();
    let gw = start(&A);
    // Reloads in this test are explicit, so the counters below are exactly what it did.
    gw.reloader().set_watch_files(false);
    let text_a = config(&gw.upstream.addr, &A);
    let text_b = config(&gw.upstream.addr, &B);
    let (rev_a, rev_b) = (revision_of(&text_a), revision_of(&text_b));
    assert_ne!(rev_a, rev_b);
    assert_eq!(gw.revision(), rev_a);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (addr, stop) = (gw.gw.proxy.clone(), stop.clone());
            std::thread::spawn(move || client(addr, stop, i, 20_000))
        })
        .collect();

    let viewer = bearer(&token(&["Viewer"]));
    let mut probe = Conn::open(&gw.gw.proxy);
    let (mut swapped, mut unchanged, mut refused) = (0u64, 0u64, 0u64);
    let mut last_error = Vec::new();
    for i in 1..=200usize {
        let via_admin = i % 2 == 0;
        // An invalid config first: refused, and the serving revision does not move.
        let bad = &BAD[i % BAD.len()];
        let bad_text = config(&gw.upstream.addr, &bad.parts);
        write_atomic(&gw.path, &bad_text);
        let before = gw.revision();
        let err = reload(&gw, &rt, via_admin).expect_err(bad.name);
        refused += 1;
        last_error = expected_error(bad, &gw.path, &bad_text);
        for want in &last_error {
            assert!(
                err.contains(want.as_str()),
                "{}: `{err}` lacks `{want}`",
                bad.name
            );
        }
        assert_eq!(gw.revision(), before, "{} changed the revision", bad.name);
        assert_eq!(probe.send("GET", "/probe", &[]).status, 401, "{}", bad.name);

        // Then the other valid policy: swapped, and the very next request is decided by it.
        let (text, rev, viewer_status) = if i % 2 == 1 {
            (&text_b, &rev_b, 403)
        } else {
            (&text_a, &rev_a, 200)
        };
        write_atomic(&gw.path, text);
        assert_eq!(
            reload(&gw, &rt, via_admin).as_deref(),
            Ok("swapped"),
            "swap {i}"
        );
        swapped += 1;
        assert_eq!(&gw.revision(), rev);
        let r = probe.send("GET", "/probe", &[("authorization", &viewer)]);
        assert_eq!(r.status, viewer_status, "swap {i}: {}", r.body);

        // Now and then the same policy laid out differently: compiled, nothing swapped.
        if i % 40 == 0 {
            write_atomic(&gw.path, &format!("# layout only\n{text}\n\n"));
            assert_eq!(reload(&gw, &rt, !via_admin).as_deref(), Ok("unchanged"));
            unchanged += 1;
            assert_eq!(&gw.revision(), rev);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Vec<Answer>> = clients
        .into_iter()
        .map(|c| {
            c.join()
                .expect("a client saw a transport error (reset or closed connection)")
        })
        .collect();

    let forwarded: HashMap<String, String> = gw
        .upstream
        .requests()
        .iter()
        .map(|s| {
            (
                s.header("x-request-id").first().unwrap_or(&"").to_string(),
                s.header("x-auth-action").first().unwrap_or(&"").to_string(),
            )
        })
        .collect();
    let mut seen = HashMap::new();
    for (c, list) in answers.iter().enumerate() {
        assert!(
            list.len() >= 50,
            "client {c} sent only {} requests",
            list.len()
        );
        for a in list {
            let verdict = judge(a, &forwarded).unwrap_or_else(|e| panic!("client {c}: {e}"));
            *seen.entry((a.kind, verdict)).or_insert(0u64) += 1;
        }
    }
    assert!(
        seen.contains_key(&(Kind::ViewerProbe, "A"))
            && seen.contains_key(&(Kind::ViewerProbe, "B")),
        "the clients saw only one policy: {seen:?}"
    );

    let m = request(&gw.gw.admin, "GET", "/metrics", &[]).body;
    assert_eq!(
        metric(&m, "rolegate_policy_reloads_total{result=\"success\"}"),
        (1 + swapped + unchanged) as f64,
        "the initial load, {swapped} swaps and {unchanged} unchanged reloads"
    );
    assert_eq!(
        metric(&m, "rolegate_policy_reloads_total{result=\"failure\"}"),
        refused as f64
    );
    let info: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("rolegate_policy_info{"))
        .collect();
    assert_eq!(
        info,
        vec![format!("rolegate_policy_info{{revision=\"{rev_a}\"}} 1").as_str()]
    );
    assert!(metric(&m, "rolegate_policy_last_reload_success_timestamp_seconds") >= started as f64);
    let (status, policy) = gw.admin("GET", "/policy");
    assert_eq!(status, 200);
    assert_eq!(policy["revision"], rev_a.as_str());
    assert_eq!(policy["reloads"]["failure"], refused);
    let shown = policy["last_error"].as_str().unwrap_or_default();
    for want in &last_error {
        assert!(
            shown.contains(want.as_str()),
            "/policy last_error `{shown}` lacks `{want}`"
        );
    }
    assert!(policy["last_error_at"]
        .as_u64()
        .is_some_and(|t| t >= started));
}

#[test]
fn removing_a_role_or_a_grant_takes_effect_for_the_next_request() {
    let gw = start(&A);
    gw.reloader().set_watch_files(false);
    let admin = bearer(&token(&["Admin"]));
    let viewer = bearer(&token(&["Viewer"]));
    let mut conn = Conn::open(&gw.gw.proxy);
    assert_eq!(
        conn.send("GET", "/probe", &[("authorization", &admin)])
            .status,
        200
    );
    assert_eq!(
        conn.send("GET", "/items/1", &[("authorization", &viewer)])
            .status,
        200
    );
    let (hits, misses) = (
        gw.metric("rolegate_token_cache_hits_total"),
        gw.metric("rolegate_token_cache_misses_total"),
    );

    // The role Admin is gone: the same token, on the same connection, holds no known role.
    let no_admin = Parts {
        roles: "  Viewer: {grants: [item.view, probe.read]}",
        ..A
    };
    write_atomic(&gw.path, &config(&gw.upstream.addr, &no_admin));
    assert_eq!(gw.post_reload().as_deref(), Ok("swapped"));
    let r = conn.send("GET", "/probe", &[("authorization", &admin)]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("urn:rolegate:problem:no_known_role"),
        "{}",
        r.body
    );

    // Viewer loses item.view: the next request is refused.
    let no_item = Parts {
        roles: "  Viewer: {grants: [probe.read]}",
        ..A
    };
    write_atomic(&gw.path, &config(&gw.upstream.addr, &no_item));
    assert_eq!(gw.post_reload().as_deref(), Ok("swapped"));
    let r = conn.send("GET", "/items/1", &[("authorization", &viewer)]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("urn:rolegate:problem:not_granted"),
        "{}",
        r.body
    );
    assert_eq!(
        conn.send("GET", "/probe", &[("authorization", &viewer)])
            .status,
        200
    );

    // A policy-only swap keeps the verified tokens (and a JWKS URL's refresh state): the same
    // tokens were cache hits after both swaps, never verified again.
    assert_eq!(gw.metric("rolegate_token_cache_misses_total"), misses);
    assert_eq!(gw.metric("rolegate_token_cache_hits_total"), hits + 3.0);
}

#[test]
fn the_file_watch_picks_up_an_atomic_rename_and_coalesces_a_burst_into_one_reload() {
    let gw = start(&A);
    let text_a = config(&gw.upstream.addr, &A);
    let text_b = config(&gw.upstream.addr, &B);
    let (rev_a, rev_b) = (revision_of(&text_a), revision_of(&text_b));
    let viewer = bearer(&token(&["Viewer"]));

    write_atomic(&gw.path, &text_b);
    wait_until("the watch swaps in B", || gw.revision() == rev_b);
    let r = request(&gw.gw.proxy, "GET", "/probe", &[("authorization", &viewer)]);
    assert_eq!(r.status, 403, "{}", r.body);

    // A burst of twenty writes alternating A and B, ending on A: one compile, one swap.
    let success = gw.metric("rolegate_policy_reloads_total{result=\"success\"}");
    for i in 0..20 {
        write_atomic(&gw.path, if i % 2 == 0 { &text_b } else { &text_a });
    }
    wait_until("the watch swaps in A", || gw.revision() == rev_a);
    std::thread::sleep(rolegate::reload::DEBOUNCE * 4);
    assert_eq!(
        gw.metric("rolegate_policy_reloads_total{result=\"success\"}"),
        success + 1.0,
        "a burst of writes is one reload"
    );
    let r = request(&gw.gw.proxy, "GET", "/probe", &[("authorization", &viewer)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // A change to another file in the same directory reloads nothing.
    std::fs::write(gw.path.with_file_name("notes.txt"), "unrelated").unwrap();
    std::thread::sleep(rolegate::reload::DEBOUNCE * 4);
    assert_eq!(
        gw.metric("rolegate_policy_reloads_total{result=\"success\"}"),
        success + 1.0
    );

    // An invalid file is refused by the watch as well.
    let failures = gw.metric("rolegate_policy_reloads_total{result=\"failure\"}");
    write_atomic(&gw.path, &config(&gw.upstream.addr, &BAD[1].parts));
    wait_until("the watch refuses the bad file", || {
        gw.metric("rolegate_policy_reloads_total{result=\"failure\"}") == failures + 1.0
    });
    assert_eq!(gw.revision(), rev_a);
}

#[test]
fn fixing_a_file_only_a_refused_configuration_reads_reloads() {
    let gw = start(&A);
    let rev_a = gw.revision();
    let viewer = bearer(&token(&["Viewer"]));
    // The new configuration includes a file in a directory the serving one never read, and
    // that file is wrong: refused, A keeps serving.
    let extra = gw.path.with_file_name("extra");
    std::fs::create_dir(&extra).unwrap();
    write_atomic(
        &extra.join("more.yaml"),
        "routes:\n  - map:\n      GET /more: nosuch.action\n",
    );
    let failures = gw.metric("rolegate_policy_reloads_total{result=\"failure\"}");
    let with_include = Parts {
        head: "include: [extra/more.yaml]",
        ..A
    };
    write_atomic(&gw.path, &config(&gw.upstream.addr, &with_include));
    wait_until("the watch refuses the bad include", || {
        gw.metric("rolegate_policy_reloads_total{result=\"failure\"}") == failures + 1.0
    });
    assert_eq!(gw.revision(), rev_a);
    // Fixing the file the error names is enough: its directory is watched now.
    std::thread::sleep(rolegate::reload::DEBOUNCE * 2);
    write_atomic(
        &extra.join("more.yaml"),
        "routes:\n  - map:\n      GET /more: item.view\n",
    );
    wait_until("the fixed include is swapped in", || gw.revision() != rev_a);
    let r = request(&gw.gw.proxy, "GET", "/more", &[("authorization", &viewer)]);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Writes a ConfigMap revision directory and flips `..data` to it, as the kubelet does.
fn configmap_flip(dir: &Path, rev: usize, files: &[(&str, &str)]) {
    let name = format!("..2025_01_01_00_00_0{rev}.000000001");
    std::fs::create_dir(dir.join(&name)).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(&name).join(f), text).unwrap();
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(&name, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[test]
fn the_file_watch_picks_up_a_configmap_symlink_flip_and_edits_of_a_symlink_target() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let cm = dir.path();
    let text_a = config(&upstream.addr, &A);
    let text_b = config(&upstream.addr, &B);
    let (rev_a, rev_b) = (revision_of(&text_a), revision_of(&text_b));
    configmap_flip(cm, 1, &[("gateway.yaml", &text_a), ("secret.txt", SECRET)]);
    for f in ["gateway.yaml", "secret.txt"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), cm.join(f)).unwrap();
    }
    let gw = launch(cm.join("gateway.yaml"), upstream, dir);
    assert_eq!(gw.revision(), rev_a);
    let cm = gw.path.parent().unwrap().to_path_buf();

    configmap_flip(&cm, 2, &[("gateway.yaml", &text_b), ("secret.txt", SECRET)]);
    wait_until("the first flip is served", || gw.revision() == rev_b);
    // The old revision directory is gone; the watch still sees the next flip.
    configmap_flip(&cm, 3, &[("gateway.yaml", &text_a), ("secret.txt", SECRET)]);
    wait_until("the second flip is served", || gw.revision() == rev_a);
    let viewer = bearer(&token(&["Viewer"]));
    let r = request(&gw.gw.proxy, "GET", "/probe", &[("authorization", &viewer)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // Editing, in place, the file a symlink resolves to is seen too.
    let target = std::fs::canonicalize(cm.join("gateway.yaml")).unwrap();
    std::fs::write(&target, &text_b).unwrap();
    wait_until("the in-place edit is served", || gw.revision() == rev_b);
    assert_eq!(
        gw.metric("rolegate_policy_reloads_total{result=\"failure\"}"),
        0.0
    );
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

/// An ES256 key: (private PKCS#8 DER, public key PEM, public JWK with `kid`).
fn ec_key(kid: &str) -> (Vec<u8>, String, Value) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = kp.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    let public = pem("PUBLIC KEY", kp.public_key().as_der().unwrap().as_ref());
    (pkcs8.as_ref().to_vec(), public, jwk)
}

fn es256(iss: &str, kid: Option<&str>, der: &[u8]) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = kid.map(str::to_string);
    let claims = json!({"iss": iss, "sub": "k", "tenant": "acme", "roles": ["Viewer"], "exp": now_secs() + 3600});
    bearer(&encode(&h, &claims, &EncodingKey::from_ec_der(der)).unwrap())
}

/// A JWKS endpoint serving `doc`; returns its URL and a count of the fetches it answered.
fn jwks_server(doc: String) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let count = fetches.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            count.fetch_add(1, Ordering::SeqCst);
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                doc.len()
            );
        }
    });
    (url, fetches)
}

#[test]
fn key_files_reload_like_the_policy_and_a_jwks_url_keeps_its_own_refresh() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (der1, pem1, jwk1) = ec_key("k1");
    let (der2, pem2, jwk2) = ec_key("k2");
    let (der3, _, jwk3) = ec_key("k3");
    let (jwks_url, fetches) = jwks_server(json!({"keys": [jwk3]}).to_string());
    let pem_path = dir.path().join("signer.pem");
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&pem_path, &pem1).unwrap();
    std::fs::write(&jwks_path, json!({"keys": [jwk1]}).to_string()).unwrap();
    let up = upstream.addr.clone();
    let text = |extra_action: &str| {
        format!(
            r#"
gateway: {{threads: 2, grace_period_seconds: 0, decision_log: {{enabled: false}}}}
upstreams:
  api: {{addresses: ["{up}"]}}
auth:
  issuers:
    - {{issuer: pem-issuer, algorithms: [ES256], pem_files: [signer.pem]}}
    - {{issuer: jwks-issuer, algorithms: [ES256], jwks_file: jwks.json}}
    - {{issuer: url-issuer, algorithms: [ES256], jwks_url: "{jwks_url}"}}
actions:
  item.view: View items
  {extra_action}
roles:
  Viewer: {{grants: [item.view]}}
routes:
  - map:
      GET /items/{{id}}: item.view
"#
        )
    };
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, text("")).unwrap();
    let gw = launch(path, upstream, dir);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let revision = gw.revision();
    let get =
        |auth: &str| request(&gw.gw.proxy, "GET", "/items/1", &[("authorization", auth)]).status;
    let (pem_old, pem_new) = (
        es256("pem-issuer", None, &der1),
        es256("pem-issuer", None, &der2),
    );
    let (jwks_old, jwks_new) = (
        es256("jwks-issuer", Some("k1"), &der1),
        es256("jwks-issuer", Some("k2"), &der2),
    );
    let by_url = es256("url-issuer", Some("k3"), &der3);
    assert_eq!((get(&pem_old), get(&pem_new)), (200, 401));
    assert_eq!((get(&jwks_old), get(&jwks_new)), (200, 401));
    assert_eq!(get(&by_url), 200);

    // A new PEM file, renamed into place: the watch swaps the keys, the policy is the same.
    // The verifier is rebuilt, so the JWKS URL is fetched again, off the request path.
    let fingerprint = gw.fingerprint();
    let tmp = pem_path.with_extension("pem.tmp");
    std::fs::write(&tmp, &pem2).unwrap();
    std::fs::rename(&tmp, &pem_path).unwrap();
    wait_until("the new PEM key is loaded", || {
        gw.fingerprint() != fingerprint
    });
    assert_eq!(gw.revision(), revision);
    assert_eq!((get(&pem_old), get(&pem_new)), (401, 200));
    assert_eq!(get(&by_url), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A new JWKS file and POST /reload: the old key id is gone, the new one verifies.
    gw.reloader().set_watch_files(false);
    std::fs::write(&jwks_path, json!({"keys": [jwk2]}).to_string()).unwrap();
    assert_eq!(gw.post_reload().as_deref(), Ok("swapped"));
    assert_eq!((get(&jwks_old), get(&jwks_new)), (401, 200));

    // A policy-only change keeps the verifier: no fetch of the JWKS URL, and the token
    // verified before is still a cache hit.
    let fetched = fetches.load(Ordering::SeqCst);
    assert_eq!(get(&by_url), 200);
    let misses = gw.metric("rolegate_token_cache_misses_total");
    std::fs::write(&gw.path, text("item.edit: Edit items")).unwrap();
    assert_eq!(gw.post_reload().as_deref(), Ok("swapped"));
    assert_ne!(gw.revision(), revision);
    assert_eq!(get(&by_url), 200);
    assert_eq!(gw.metric("rolegate_token_cache_misses_total"), misses);
    assert_eq!(fetches.load(Ordering::SeqCst), fetched);

    // A key file that vanished is refused like any bad config; the loaded keys keep serving.
    std::fs::remove_file(&jwks_path).unwrap();
    let err = gw
        .post_reload()
        .expect_err("a missing JWKS file is refused");
    assert!(err.contains("jwks.json"), "{err}");
    assert_eq!(get(&jwks_new), 200);
}

#[test]
fn loading_the_same_policy_a_hundred_times_gives_the_same_revision_and_decisions() {
    let gw = start(&A);
    gw.reloader().set_watch_files(false);
    let revision = gw.revision();
    let success = gw.metric("rolegate_policy_reloads_total{result=\"success\"}");
    let viewer = bearer(&token(&["Viewer"]));
    let admin = bearer(&token(&["Admin"]));
    let mut conn = Conn::open(&gw.gw.proxy);
    let decisions = |conn: &mut Conn| -> Vec<u16> {
        KINDS
            .iter()
            .map(|k| ask(conn, *k, &viewer, &admin).status)
            .collect()
    };
    let first = decisions(&mut conn);
    assert_eq!(first, vec![200, 200, 200, 200, 401]);
    for i in 0..100 {
        assert_eq!(gw.post_reload().as_deref(), Ok("unchanged"), "load {i}");
        assert_eq!(gw.revision(), revision, "load {i}");
        assert_eq!(decisions(&mut conn), first, "load {i}");
    }
    assert_eq!(
        gw.metric("rolegate_policy_reloads_total{result=\"success\"}"),
        success + 100.0
    );
    assert_eq!(
        gw.metric(&format!("rolegate_policy_info{{revision=\"{revision}\"}}")),
        1.0
    );

    // A large preset compiled a hundred times: one revision, one table of decisions.
    let path = common::root().join("config/palette.yaml");
    let config = rolegate::config::load_file(&path).unwrap();
    let table = |p: &CompiledPolicy| -> Vec<(String, bool)> {
        let names: Vec<String> = p.roles().names().map(str::to_string).collect();
        names
            .iter()
            .flat_map(|role| {
                let subject = p.resolve(&rolegate::policy::Principal {
                    subject: "s".into(),
                    tenant: Some("t".into()),
                    roles: vec![role.clone()],
                    project_roles: vec![("p".into(), vec![role.clone()])],
                });
                (0..p.catalog().len() as u32)
                    .map(|a| {
                        let d = p.decide_action(&subject, a, None, Some("p"));
                        (format!("{role} {}", p.catalog().id(a)), d.allowed)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let reference = CompiledPolicy::compile(&config).unwrap();
    let expected = table(&reference);
    assert!(expected.iter().any(|(_, allowed)| *allowed));
    for i in 0..100 {
        let again = rolegate::config::load_file(&path).unwrap();
        let p = CompiledPolicy::compile(&again).unwrap();
        assert_eq!(p.revision(), reference.revision(), "compile {i}");
        if i % 10 == 0 {
            assert!(table(&p) == expected, "compile {i} decides differently");
        }
    }
}

/// Runs `rolegate serve` on `config`; its stderr lines are collected as they come.
struct Served {
    child: std::process::Child,
    proxy: String,
    admin: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(config: &Path) -> Served {
        let (proxy, admin) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &proxy, "--admin", &admin])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Served {
            child,
            proxy,
            admin,
            log,
        }
    }

    fn logged(&self, what: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(what))
    }

    fn policy(&self) -> Value {
        serde_json::from_str(&request(&self.admin, "GET", "/policy", &[]).body).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_reloads_on_sighup_and_keeps_serving() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, config(&upstream.addr, &A)).unwrap();
    let mut served = Served::start(&path);
    wait_listening(&served.proxy).unwrap();
    wait_listening(&served.admin).unwrap();
    wait_until("the reload triggers are ready", || {
        served.logged("reload triggers ready")
    });
    assert_eq!(request(&served.admin, "GET", "/readyz", &[]).status, 200);
    let before = served.policy();
    assert_eq!(before["reloads"]["success"], 1);

    let pid = served.child.id().to_string();
    for n in 2..=3 {
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        wait_until("SIGHUP is counted as a reload", || {
            assert!(
                std::net::TcpStream::connect(&served.admin).is_ok(),
                "the gateway stopped listening after SIGHUP"
            );
            served.policy()["reloads"]["success"] == n
        });
    }
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "SIGHUP ended the process"
    );
    assert!(
        served.logged(r#""trigger":"signal""#),
        "{:?}",
        served.log.lock().unwrap()
    );
    assert_eq!(served.policy()["revision"], before["revision"]);
    let viewer = bearer(&token(&["Viewer"]));
    let r = request(
        &served.proxy,
        "GET",
        "/probe",
        &[("authorization", &viewer)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn serve_refuses_to_start_on_an_invalid_config_with_exit_2_and_the_located_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let path = dir.path().join("gateway.yaml");
    let bad = &BAD[1];
    let text = config("127.0.0.1:9", &bad.parts);
    std::fs::write(&path, &text).unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["serve", "--config"])
        .arg(&path)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin",
            &admin,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in expected_error(bad, &path, &text) {
        assert!(stderr.contains(&want), "`{want}` is not in: {stderr}");
    }
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        std::net::TcpStream::connect(&admin).is_err(),
        "nothing is ready"
    );
}
