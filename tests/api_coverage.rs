//! The Taikun and Palette presets front every operation of their real APIs, and real endpoints
//! map to the expected actions.

mod common;

use common::{preset, root};
use http::HeaderMap;
use rolegate::canonical::canonicalize;
use rolegate::cli::routes::{map_operation, Mapped};
use rolegate::policy::Request;

/// Every operation of the inventory maps to an action or a public route.
fn full_coverage(name: &str) {
    let policy = preset(name);
    let path = root().join(format!("tests/fixtures/apis/{name}-operations.tsv"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut unmapped = Vec::new();
    let mut n = 0;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        n += 1;
        if let Mapped::Unmapped = map_operation(&policy, cols[0], cols[1]) {
            unmapped.push(format!("{} {} ({})", cols[0], cols[1], cols[2]));
        }
    }
    assert!(n > 700, "{name}: only {n} operations read");
    assert!(
        unmapped.is_empty(),
        "{name}: {} unmapped:\n{}",
        unmapped.len(),
        unmapped.join("\n")
    );
}

#[test]
fn every_taikun_operation_is_mapped() {
    full_coverage("taikun");
}

#[test]
fn every_palette_operation_is_mapped() {
    full_coverage("palette");
}

/// Concrete requests to real endpoints decide the expected action (through canonicalization).
fn spot_checks(name: &str, min: usize) {
    let policy = preset(name);
    let text =
        std::fs::read_to_string(root().join(format!("tests/fixtures/spot-checks/{name}.tsv")))
            .unwrap();
    let headers = HeaderMap::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (method, target, want) = (cols[0], cols[1], cols[2]);
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        let path = canonicalize(path).unwrap_or_else(|e| panic!("{target}: {e}"));
        let req = Request {
            method,
            host: None,
            path: &path,
            query,
            headers: &headers,
        };
        let got = match policy.match_route(&req) {
            None => "unmapped".to_string(),
            Some(m) => m
                .entry
                .action
                .map_or("public".to_string(), |a| policy.catalog().id(a).to_string()),
        };
        n += 1;
        if got != want {
            failures.push(format!("{method} {target}: got {got}, want {want}"));
        }
    }
    assert!(n >= min, "{name}: only {n} spot checks");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn taikun_endpoints_map_to_documented_actions() {
    spot_checks("taikun", 60);
}

#[test]
fn palette_endpoints_map_to_permissions() {
    spot_checks("palette", 60);
}
