//! Route match + decision on the full Palette (1181 routes) and Taikun (748 routes) tables, the
//! verified-token cache hit, and one cached request end to end (canonicalize, route, cache hit,
//! subject, decide): everything the gateway does per request before forwarding.
//!
//! `cargo bench --bench decide`; figures and how to read them are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use rolegate::auth::TokenCache;
use rolegate::canonical::canonicalize;
use rolegate::config::load_file;
use rolegate::gateway::runtime::CachedCaller;
use rolegate::policy::{CompiledPolicy, Principal, Request};

fn preset(name: &str) -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/{name}.yaml"));
    CompiledPolicy::compile(&load_file(&path).expect("preset loads")).expect("preset compiles")
}

/// One concrete request per route of the table: the first method of the route, every path
/// parameter filled with `value`; routes another route shadows for that path are left out.
fn every_route(policy: &CompiledPolicy, value: &str) -> Vec<(String, String)> {
    let empty = HeaderMap::new();
    let mut out = Vec::new();
    for (idx, e) in policy.routes().entries().iter().enumerate() {
        let (methods, template) = e.template.split_once(' ').expect("METHODS /path");
        let method = match methods.split(',').next().expect("a method") {
            "*" => "GET",
            m => m,
        };
        let path: String = template
            .split('/')
            .map(|seg| match seg.strip_prefix('{') {
                Some(p) if p.starts_with('*') => "a/b".to_string(),
                Some(_) => value.to_string(),
                None => seg.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let req = Request {
            method,
            host: None,
            path: &path,
            query: None,
            headers: &empty,
        };
        if policy.match_route(&req).map(|m| m.idx as usize) == Some(idx) {
            out.push((method.to_string(), path));
        }
    }
    out
}

fn palette_principal() -> Principal {
    Principal {
        subject: "u1".into(),
        tenant: Some("t1".into()),
        roles: vec!["Tenant Viewer".into()],
        project_roles: vec![("p1".into(), vec!["Cluster Admin".into()])],
    }
}

fn decide(c: &mut Criterion) {
    let policy = preset("palette");
    let subject = policy.resolve(&palette_principal());
    let mut headers = HeaderMap::new();
    headers.insert("projectuid", HeaderValue::from_static("p1"));
    let req = Request {
        method: "DELETE",
        host: None,
        path: "/v1/spectroclusters/6f1c2a",
        query: None,
        headers: &headers,
    };
    let decided = policy.decide(Some(&subject), &req);
    assert_eq!(
        decided.action,
        policy.catalog().get("cluster.delete"),
        "the route maps to cluster.delete"
    );
    assert!(decided.allowed, "Cluster Admin in p1 deletes clusters");
    c.bench_function("palette: route match + decide (project role)", |b| {
        b.iter(|| black_box(policy.decide(Some(black_box(&subject)), black_box(&req))))
    });
    let empty = HeaderMap::new();
    let get = Request {
        method: "GET",
        host: None,
        path: "/v1/spectroclusters/6f1c2a",
        query: None,
        headers: &empty,
    };
    assert!(policy.decide(Some(&subject), &get).allowed);
    c.bench_function("palette: route match + decide (tenant role)", |b| {
        b.iter(|| black_box(policy.decide(Some(black_box(&subject)), black_box(&get))))
    });
    let delete = Request {
        headers: &empty,
        ..req
    };
    assert!(!policy.decide(Some(&subject), &delete).allowed);
    c.bench_function("palette: route match + decide (deny, not granted)", |b| {
        b.iter(|| black_box(policy.decide(Some(black_box(&subject)), black_box(&delete))))
    });
    sweep(c, "palette", &policy, &subject, &headers);

    let taikun = preset("taikun");
    let manager = taikun.resolve(&Principal {
        subject: "u1".into(),
        tenant: Some("t1".into()),
        roles: vec!["Manager".into()],
        project_roles: Vec::new(),
    });
    let t_req = Request {
        method: "DELETE",
        host: None,
        path: "/api/v1/accessprofiles/42",
        query: None,
        headers: &empty,
    };
    assert!(taikun.decide(Some(&manager), &t_req).allowed);
    c.bench_function("taikun: route match + decide (Manager)", |b| {
        b.iter(|| black_box(taikun.decide(Some(black_box(&manager)), black_box(&t_req))))
    });
    sweep(c, "taikun", &taikun, &manager, &empty);
}

/// Every route of the table in turn (allows and denies as the role table says): the mean
/// decision cost over the whole table rather than one path.
fn sweep(
    c: &mut Criterion,
    name: &str,
    policy: &CompiledPolicy,
    subject: &rolegate::policy::Subject,
    headers: &HeaderMap,
) {
    let routes = every_route(policy, "t1");
    assert!(
        routes.len() * 10 >= policy.routes().len() * 9,
        "{name}: most routes are reachable by a concrete path ({} of {})",
        routes.len(),
        policy.routes().len()
    );
    let reqs: Vec<Request> = routes
        .iter()
        .map(|(m, p)| Request {
            method: m,
            host: None,
            path: p,
            query: None,
            headers,
        })
        .collect();
    let allowed = reqs
        .iter()
        .filter(|r| policy.decide(Some(subject), r).allowed)
        .count();
    eprintln!(
        "{name}: sweeping {} routes of {} ({allowed} allowed for the bench caller)",
        reqs.len(),
        policy.routes().len()
    );
    let mut i = 0usize;
    c.bench_function(
        &format!("{name}: route match + decide, every route in turn"),
        |b| {
            b.iter(|| {
                i = if i + 1 == reqs.len() { 0 } else { i + 1 };
                black_box(policy.decide(Some(subject), black_box(&reqs[i])))
            })
        },
    );
}

fn token_cache(c: &mut Criterion) {
    let cache: TokenCache<u64> = TokenCache::new(100_000);
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "a".repeat(600));
    cache.insert(&token, Arc::new(7), u64::MAX, 1);
    c.bench_function("token cache hit (700-byte token)", |b| {
        b.iter(|| black_box(cache.get(black_box(&token), 1, 1)))
    });
}

/// What the gateway does for a request with a cached token before forwarding it: canonical path,
/// route, cache hit, the subject kept with the cached token, decision.
fn cached_request(c: &mut Criterion) {
    let policy = preset("palette");
    let cache: TokenCache<CachedCaller> = TokenCache::new(100_000);
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "a".repeat(600));
    cache.insert(
        &token,
        Arc::new(CachedCaller::new(palette_principal(), "bench")),
        u64::MAX,
        1,
    );
    let mut headers = HeaderMap::new();
    headers.insert("projectuid", HeaderValue::from_static("p1"));
    let one = |raw: &str| {
        let path = canonicalize(raw).ok()?;
        let req = Request {
            method: "DELETE",
            host: Some("api.example.com"),
            path: &path,
            query: None,
            headers: &headers,
        };
        let m = policy.match_route(&req)?;
        let caller = cache.get(&token, 1, 1)?;
        let subject = caller.subject_for(&policy);
        Some(policy.decide_route(&m, &subject, &req))
    };
    assert!(one("/v1/spectroclusters/6f1c2a").is_some_and(|d| d.allowed));
    c.bench_function(
        "palette: cached request end to end (canonicalize + route + cache hit + decide)",
        |b| b.iter(|| black_box(one(black_box("/v1/spectroclusters/6f1c2a")))),
    );
}

criterion_group!(benches, decide, token_cache, cached_request);
criterion_main!(benches);
