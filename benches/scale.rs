//! Per-request cost as the policy grows: generated policies of 100 / 10k / 100k routes and
//! 10 / 1k / 10k roles. A decision is a radix lookup and a bit test, and a token's roles are
//! resolved once, so route match + decide should stay flat; resolving a principal grows only with
//! the catalog's bitset width. Compile and swap of these policies are in benches/compile.rs.
//!
//! `cargo bench --bench scale`; figures are in BENCHMARKS.md.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::HeaderMap;
use rolegate::config::load_file;
use rolegate::policy::{CompiledPolicy, Principal, Request};

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
/// Actions each role grants.
const GRANTS: usize = 20;

/// A generated policy: `routes` routes over `routes / 4` path shapes (four methods each) in 100
/// services, `actions` actions, `roles` roles granting 20 actions each.
struct Shape {
    routes: usize,
    roles: usize,
}

impl Shape {
    fn actions(&self) -> usize {
        (self.routes / 10).clamp(100, 10_000)
    }

    fn grant(&self, role: usize, k: usize) -> usize {
        (role * 7 + k * 13) % self.actions()
    }

    fn path(i: usize) -> String {
        let shape = i / METHODS.len();
        format!("/api/s{}/r{shape}/{{id}}/items", shape % 100)
    }

    fn yaml(&self) -> String {
        let mut y = String::from("actions:\n");
        for a in 0..self.actions() {
            let _ = writeln!(y, "  a{a}: Action {a}");
        }
        y.push_str("roles:\n");
        for r in 0..self.roles {
            let grants: Vec<String> = (0..GRANTS)
                .map(|k| format!("a{}", self.grant(r, k)))
                .collect();
            let _ = writeln!(y, "  R{r}:\n    grants: [{}]", grants.join(", "));
        }
        y.push_str("routes:\n  - map:\n");
        for i in 0..self.routes {
            let _ = writeln!(
                y,
                "      {} {}: a{}",
                METHODS[i % METHODS.len()],
                Self::path(i),
                i % self.actions()
            );
        }
        y.push_str("upstreams:\n  api:\n    addresses: [\"127.0.0.1:9\"]\n");
        y
    }
}

fn scale(c: &mut Criterion) {
    let shapes = [
        Shape {
            routes: 100,
            roles: 10,
        },
        Shape {
            routes: 10_000,
            roles: 10,
        },
        Shape {
            routes: 100_000,
            roles: 10,
        },
        Shape {
            routes: 10_000,
            roles: 1_000,
        },
        Shape {
            routes: 10_000,
            roles: 10_000,
        },
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("scale");
    g.measurement_time(Duration::from_secs(3));
    let empty = HeaderMap::new();
    for s in &shapes {
        let file = dir.path().join(format!("p-{}-{}.yaml", s.routes, s.roles));
        std::fs::write(&file, s.yaml()).expect("write policy");
        let t = Instant::now();
        let config = load_file(&file).expect("generated policy loads");
        let loaded = t.elapsed();
        let policy = CompiledPolicy::compile(&config).expect("generated policy compiles");
        eprintln!(
            "scale: {} routes, {} roles, {} actions: loaded in {:?}, compiled in {:?}",
            policy.routes().len(),
            policy.roles().len(),
            policy.catalog().len(),
            loaded,
            t.elapsed() - loaded
        );
        // The caller holds three roles spread over the table; role 1 grants action a7 (k = 0).
        let principal = Principal {
            subject: "u1".into(),
            tenant: Some("t1".into()),
            roles: [1, s.roles / 2, s.roles - 1]
                .iter()
                .map(|r| format!("R{r}"))
                .collect(),
            project_roles: Vec::new(),
        };
        let subject = policy.resolve(&principal);
        // A route in the middle of the table whose action (a7) role 1 grants.
        let allow_route = 7 + s.actions() * (s.routes / s.actions() / 2);
        let allow_path = Shape::path(allow_route).replace("{id}", "42");
        let allow = Request {
            method: METHODS[allow_route % METHODS.len()],
            host: None,
            path: &allow_path,
            query: None,
            headers: &empty,
        };
        let d = policy.decide(Some(&subject), &allow);
        assert!(d.allowed, "{}: {d:?}", allow_path);
        assert_eq!(d.action.map(|a| policy.catalog().id(a)), Some("a7"));
        // The next route whose action none of the caller's roles grants.
        let deny_route = (allow_route + 1..s.routes)
            .find(|i| {
                let a = policy.catalog().get(&format!("a{}", i % s.actions()));
                !a.is_some_and(|a| subject.tenant_grants.contains(a))
            })
            .expect("some action is not granted");
        let deny_path = Shape::path(deny_route).replace("{id}", "42");
        let deny = Request {
            method: METHODS[deny_route % METHODS.len()],
            path: &deny_path,
            ..allow
        };
        assert!(!policy.decide(Some(&subject), &deny).allowed);
        let id = format!("{} routes, {} roles", s.routes, s.roles);
        g.bench_with_input(
            BenchmarkId::new("route match + decide (allow)", &id),
            &allow,
            |b, r| b.iter(|| black_box(policy.decide(Some(&subject), black_box(r)))),
        );
        g.bench_with_input(
            BenchmarkId::new("route match + decide (deny)", &id),
            &deny,
            |b, r| b.iter(|| black_box(policy.decide(Some(&subject), black_box(r)))),
        );
        g.bench_with_input(
            BenchmarkId::new("resolve 3 roles (once per token)", &id),
            &principal,
            |b, p| b.iter(|| black_box(policy.resolve(black_box(p)))),
        );
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
