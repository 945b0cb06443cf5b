//! Route match + decision on the Palette preset (1181 routes), and the verified-token cache hit path.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use rolegate::auth::TokenCache;
use rolegate::config::load_file;
use rolegate::policy::{CompiledPolicy, Principal, Request};

fn palette() -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/palette.yaml");
    CompiledPolicy::compile(&load_file(&path).expect("palette preset loads"))
        .expect("palette preset compiles")
}

fn decide(c: &mut Criterion) {
    let policy = palette();
    let principal = Principal {
        subject: "u1".into(),
        tenant: Some("t1".into()),
        roles: vec!["Tenant Viewer".into()],
        project_roles: vec![("p1".into(), vec!["Cluster Admin".into()])],
    };
    let subject = policy.resolve(&principal);
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
    c.bench_function("palette: route match + decide (tenant role)", |b| {
        b.iter(|| black_box(policy.decide(Some(black_box(&subject)), black_box(&get))))
    });
}

fn token_cache(c: &mut Criterion) {
    let cache: TokenCache<u64> = TokenCache::new(100_000);
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "a".repeat(600));
    cache.insert(&token, Arc::new(7), u64::MAX, 1);
    c.bench_function("token cache hit (700-byte token)", |b| {
        b.iter(|| black_box(cache.get(black_box(&token), 1, 1)))
    });
}

criterion_group!(benches, decide, token_cache);
criterion_main!(benches);
