//! `rolegate validate`: compile and report.

use std::path::Path;
use std::process::ExitCode;

/// Compiles the configuration; prints counts, warnings and the revision.
pub fn run(path: &Path) -> ExitCode {
    let (config, policy) = match super::load_policy(path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    // Everything `serve` builds from the same configuration besides the policy: upstreams,
    // gateway settings and the keys of every issuer (JWKS URLs are fetched), so a configuration
    // `validate` passes also serves.
    // A policy-only file (no `upstreams:`) is served with `--upstream URL`; validate it as such.
    crate::auth::install_crypto_provider();
    let overrides = crate::gateway::Overrides {
        upstream: config
            .upstreams
            .is_empty()
            .then(|| "http://127.0.0.1:1".to_string()),
        ..Default::default()
    };
    if let Err(e) = crate::gateway::server::build_runtime(path, &config, &overrides) {
        eprintln!("error: {e}");
        return ExitCode::from(super::EXIT_USAGE);
    }
    for w in policy.warnings() {
        eprintln!("warning: {w}");
    }
    println!(
        "valid: {} actions, {} roles, {} routes, {} files (revision {})",
        policy.catalog().len(),
        policy.roles().len(),
        policy.routes().len(),
        config.files.len(),
        policy.short_revision()
    );
    ExitCode::SUCCESS
}
