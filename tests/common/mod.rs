//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod upstream;

use std::path::{Path, PathBuf};

use rolegate::config::load_file;
use rolegate::policy::CompiledPolicy;

/// Proxy and admin listeners on free loopback ports, no grace period. `work_stealing` must be
/// true in a test binary that starts and stops several gateways (see `launch` in tests/reload.rs).
pub fn loopback_listeners(
    threads: usize,
    work_stealing: bool,
) -> rolegate::gateway::server::Listeners {
    rolegate::gateway::server::Listeners {
        proxy: format!("127.0.0.1:{}", upstream::free_port()),
        admin: format!("127.0.0.1:{}", upstream::free_port()),
        threads,
        work_stealing,
        grace_period_seconds: 0,
    }
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads and compiles a preset from config/.
pub fn preset(name: &str) -> CompiledPolicy {
    let path = root().join("config").join(format!("{name}.yaml"));
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    CompiledPolicy::compile(&config).unwrap_or_else(|e| panic!("{e}"))
}

/// One role x action matrix read from a CSV fixture.
pub struct Matrix {
    pub roles: Vec<String>,
    /// (action id, one Y/N per role)
    pub rows: Vec<(String, Vec<bool>)>,
}

/// Splits one CSV line, honouring double quotes.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Reads tests/fixtures/matrices/NAME.csv: role columns are the ones whose cells are Y/N.
pub fn matrix(name: &str) -> Matrix {
    let path: &Path = &root()
        .join("tests/fixtures/matrices")
        .join(format!("{name}.csv"));
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = csv_fields(lines.next().expect("header"));
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    let role_cols: Vec<usize> = (1..header.len())
        .filter(|&c| {
            rows.iter()
                .all(|r| matches!(r.get(c).map(String::as_str), Some("Y") | Some("N")))
        })
        .collect();
    Matrix {
        roles: role_cols.iter().map(|&c| header[c].clone()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    role_cols.iter().map(|&c| r[c] == "Y").collect(),
                )
            })
            .collect(),
    }
}
