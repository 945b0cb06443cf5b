//! What a reload costs: reading and compiling the Palette preset and a generated policy of
//! 10,000 routes and 1,000 roles, a whole reload through the `Reloader` (read, compile, build
//! the runtime, compare, swap), and the swap itself next to the per-request runtime load.
//!
//! `cargo bench --bench compile`

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, Criterion};
use rolegate::config::load_file;
use rolegate::gateway::server::load_runtime;
use rolegate::gateway::{Overrides, Shared};
use rolegate::policy::CompiledPolicy;
use rolegate::reload::Outcome;

/// Resources of the generated policy: five actions and ten routes each.
const RESOURCES: usize = 1_000;
/// Roles of the generated policy.
const ROLES: usize = 1_000;

/// A generated policy: `RESOURCES` resources with five actions (list, get, create, update,
/// delete) and two API versions, so ten routes each; `ROLES` roles in inheritance chains of ten,
/// each granting its resource's actions by glob and two other actions by id, every tenth role
/// also `*.list`. `extra` is one more action (to make a second, different revision).
fn generated(extra: &str) -> String {
    let mut y = String::from(
        "gateway: {threads: 1}\nupstreams:\n  api: {addresses: [\"127.0.0.1:9\"]}\nactions:\n",
    );
    for r in 0..RESOURCES {
        for verb in ["list", "get", "create", "update", "delete"] {
            let _ = writeln!(y, "  r{r}.{verb}: {verb} resource {r}");
        }
    }
    let _ = writeln!(y, "  {extra}");
    y.push_str("roles:\n");
    for j in 0..ROLES {
        let _ = writeln!(y, "  R{j}:");
        if j % 10 != 0 {
            let _ = writeln!(y, "    inherits: [R{}]", j - 1);
        }
        let mut grants = vec![
            format!("\"r{}.*\"", j % RESOURCES),
            format!("r{}.get", (j * 7 + 3) % RESOURCES),
            format!("r{}.list", (j * 13 + 5) % RESOURCES),
        ];
        if j % 10 == 0 {
            grants.push("\"*.list\"".into());
        }
        let _ = writeln!(y, "    grants: [{}]", grants.join(", "));
    }
    y.push_str("routes:\n  - tenant: {param: tenant}\n    map:\n");
    for r in 0..RESOURCES {
        for v in ["v1", "v2"] {
            let base = format!("/api/{v}/t/{{tenant}}/r{r}");
            let _ = writeln!(y, "      GET {base}: r{r}.list");
            let _ = writeln!(y, "      POST {base}: r{r}.create");
            let _ = writeln!(y, "      GET {base}/{{id}}: r{r}.get");
            let _ = writeln!(y, "      PUT {base}/{{id}}: r{r}.update");
            let _ = writeln!(y, "      DELETE {base}/{{id}}: r{r}.delete");
        }
    }
    y
}

/// The Palette preset as a root file that includes the preset's files, plus `extra`.
fn palette_root(extra: &str) -> String {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let includes: Vec<String> = ["actions", "roles", "routes"]
        .iter()
        .map(|f| format!("\"{}\"", cfg.join(format!("palette/{f}.yaml")).display()))
        .collect();
    format!(
        "include: [{}]\nupstreams:\n  palette: {{addresses: [\"127.0.0.1:9\"]}}\nactions:\n  {extra}\n",
        includes.join(", ")
    )
}

fn compile(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let palette = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/palette.yaml");
    let big = dir.path().join("generated.yaml");
    std::fs::write(&big, generated("bench.a: A")).expect("write the generated policy");
    let mut g = c.benchmark_group("compile");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (name, path) in [("palette", &palette), ("10k_routes_1k_roles", &big)] {
        let config = load_file(path).expect("loads");
        let policy = CompiledPolicy::compile(&config).expect("compiles");
        eprintln!(
            "compile/{name}: {} routes, {} roles, {} actions",
            policy.routes().len(),
            policy.roles().len(),
            policy.catalog().len()
        );
        g.bench_function(format!("{name}/read_and_compile"), |b| {
            b.iter(|| {
                let config = load_file(black_box(path)).expect("loads");
                CompiledPolicy::compile(&config).expect("compiles")
            })
        });
        g.bench_function(format!("{name}/compile_only"), |b| {
            b.iter(|| CompiledPolicy::compile(black_box(&config)).expect("compiles"))
        });
    }
    g.finish();
}

/// A running gateway's shared state (no listeners) serving `path`, and a runtime to drive it.
fn shared_on(path: &Path) -> (Arc<Shared>, tokio::runtime::Runtime) {
    let overrides = Overrides::default();
    let runtime = load_runtime(path, &overrides).expect("the policy loads");
    let shared = Shared::new(runtime, Some(path.to_path_buf()), overrides);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    (shared, rt)
}

/// One reload that must end with `want`.
fn reload(shared: &Shared, rt: &tokio::runtime::Runtime, want: Outcome) {
    let reloader = shared.reloader.as_ref().expect("a reloader");
    assert_eq!(rt.block_on(reloader.reload()), Ok(want));
}

fn swap(c: &mut Criterion) {
    rolegate::auth::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("reload");
    g.sample_size(10).measurement_time(Duration::from_secs(8));

    // Whole reloads, alternating between two revisions that differ by one action, so that
    // every reload compiles, builds and swaps; and one that finds nothing changed.
    let variants = |name: &str, text: &dyn Fn(&str) -> String| -> (PathBuf, [String; 2]) {
        let path = dir.path().join(format!("{name}.yaml"));
        let texts = [text("bench.a: A"), text("bench.b: B")];
        std::fs::write(&path, &texts[0]).expect("write");
        (path, texts)
    };
    for (name, (path, texts)) in [
        ("palette", variants("palette", &palette_root)),
        ("10k_routes_1k_roles", variants("generated", &generated)),
    ] {
        let (shared, rt) = shared_on(&path);
        g.bench_function(format!("{name}/unchanged"), |b| {
            b.iter(|| reload(&shared, &rt, Outcome::Unchanged))
        });
        let mut next = 1;
        g.bench_function(format!("{name}/swapped"), |b| {
            b.iter(|| {
                std::fs::write(&path, &texts[next]).expect("write");
                next = 1 - next;
                reload(&shared, &rt, Outcome::Swapped)
            })
        });
    }
    g.finish();

    // The swap proper, and what each request pays to read the serving runtime.
    let palette_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/palette.yaml");
    let overrides = Overrides::default();
    let a = Arc::new(load_runtime(&palette_path, &overrides).expect("loads"));
    let b = Arc::new(load_runtime(&palette_path, &overrides).expect("loads"));
    let serving = ArcSwap::new(a.clone());
    let mut g = c.benchmark_group("swap");
    let mut flip = false;
    g.bench_function("store", |bench| {
        bench.iter(|| {
            flip = !flip;
            serving.store(if flip { b.clone() } else { a.clone() });
        })
    });
    g.bench_function("load_per_request", |bench| {
        bench.iter(|| black_box(serving.load_full()))
    });
    g.finish();
}

criterion_group!(benches, compile, swap);
criterion_main!(benches);
