//! `rolegate token`: development tokens for demos and scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::auth::{mint_dev_token, DEV_SECRET_ENV};

/// Arguments of `rolegate token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Configuration whose roles the token should name (checked; unknown roles are refused).
    #[arg(long, short)]
    config: PathBuf,
    /// Subject.
    #[arg(long)]
    sub: String,
    /// Tenant.
    #[arg(long)]
    tenant: String,
    /// Tenant-wide role (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Project-bound role, PROJECT=ROLE (repeatable).
    #[arg(long = "project-role")]
    project_roles: Vec<String>,
    /// Lifetime: seconds, or with a unit (30s, 15m, 1h, 1d).
    #[arg(long, default_value = "1h")]
    ttl: String,
}

fn parse_ttl(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        's' => (&s[..s.len() - 1], 1),
        'm' => (&s[..s.len() - 1], 60),
        'h' => (&s[..s.len() - 1], 3600),
        'd' => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| (1..=MAX_TTL_SECONDS).contains(n))
}

/// The longest a dev token may live (a year): longer ones would overflow `exp` or outlive any demo.
const MAX_TTL_SECONDS: u64 = 366 * 86_400;

/// Prints a token signed with $ROLEGATE_DEV_SECRET.
pub fn run(a: TokenArgs) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(super::EXIT_USAGE)
    };
    let (_, policy) = match super::load_policy(&a.config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let Some(secret) = std::env::var(DEV_SECRET_ENV).ok().filter(|s| !s.is_empty()) else {
        return fail(format!(
            "set {DEV_SECRET_ENV} to the development secret the gateway uses"
        ));
    };
    let Some(ttl) = parse_ttl(&a.ttl) else {
        return fail(format!(
            "--ttl `{}` is not a duration like 30s, 15m, 1h (at most 366d)",
            a.ttl
        ));
    };
    let mut project_roles = Vec::new();
    for pr in &a.project_roles {
        match pr.split_once('=') {
            Some((p, r)) if !p.is_empty() && !r.is_empty() => {
                project_roles.push((p.to_string(), r.to_string()))
            }
            _ => return fail(format!("--project-role `{pr}` is not PROJECT=ROLE")),
        }
    }
    for role in a.roles.iter().chain(project_roles.iter().map(|(_, r)| r)) {
        if policy.roles().get(role).is_none() {
            let hint =
                crate::config::did_you_mean(role, policy.roles().names()).unwrap_or_default();
            return fail(format!("unknown role `{role}` {hint}").trim().to_string());
        }
    }
    let now = crate::gateway::proxy::now_secs();
    match mint_dev_token(
        secret.as_bytes(),
        &a.sub,
        &a.tenant,
        &a.roles,
        &project_roles,
        ttl,
        now,
    ) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
