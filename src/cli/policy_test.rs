//! `rolegate test`: table-driven policy tests, principal x request -> expected decision.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::explain::{explain, principal, Query};
use super::EXIT_USAGE;

/// A cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    /// Named principals (claims), referenced by cases.
    #[serde(default)]
    principals: BTreeMap<String, Map<String, Value>>,
    /// The cases.
    cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Shown on failure.
    name: String,
    /// A principal from `principals`.
    #[serde(default)]
    principal: Option<String>,
    /// Inline claims (instead of `principal`); neither means no token.
    #[serde(default)]
    claims: Option<Map<String, Value>>,
    /// Action to decide directly.
    #[serde(default)]
    action: Option<String>,
    /// Target tenant for `action`.
    #[serde(default)]
    tenant: Option<String>,
    /// Target project for `action`.
    #[serde(default)]
    project: Option<String>,
    /// Method and path: `GET /v1/clusters`.
    #[serde(default)]
    request: Option<String>,
    /// Headers of the request.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// `allow`, `deny`, or a status code.
    expect: Expect,
    /// Expected reason, optional.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expect {
    Status(u16),
    Word(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s}"),
            Expect::Word(w) => f.write_str(w),
        }
    }
}

/// Runs the cases and prints failures and a closing `N passed, M failed` line.
pub fn run(config_path: &Path, cases_path: &Path) -> ExitCode {
    let (config, policy) = match super::load_policy(config_path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let name: Arc<str> = Arc::from(cases_path.display().to_string());
    let text = match std::fs::read_to_string(cases_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", cases_path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let file: CasesFile = match crate::config::parse_yaml(&text, &name) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &file.cases {
        match run_case(&config, &policy, &file, case) {
            Ok(None) => passed += 1,
            Ok(Some(why)) => {
                failed += 1;
                println!("FAIL {}: {why}", case.name);
            }
            Err(e) => {
                eprintln!("error: case `{}`: {e}", case.name);
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_case(
    config: &crate::config::Config,
    policy: &crate::policy::CompiledPolicy,
    file: &CasesFile,
    case: &Case,
) -> Result<Option<String>, String> {
    let claims = match (&case.principal, &case.claims) {
        (Some(_), Some(_)) => return Err("give `principal` or `claims`, not both".into()),
        (Some(n), None) => Some(
            file.principals
                .get(n)
                .ok_or_else(|| format!("unknown principal `{n}`"))?,
        ),
        (None, c) => c.as_ref(),
    };
    let p = claims.map(|c| principal(c, &config.claims)).transpose()?;
    let mut q = Query {
        action: case.action.clone(),
        tenant: case.tenant.clone(),
        project: case.project.clone(),
        headers: case.headers.clone(),
        ..Query::default()
    };
    if let Some(r) = &case.request {
        let (m, path) = r
            .trim()
            .split_once(' ')
            .ok_or("`request` must be `METHOD /path`")?;
        q.method = Some(m.to_string());
        q.path = Some(path.trim().to_string());
    }
    let (d, json) = explain(policy, p.as_ref(), &q)?;
    let status_ok = match &case.expect {
        Expect::Status(s) => d.status == *s,
        // `expect: "403"` means the status, as `expect: 403` does.
        Expect::Word(w) if w.parse::<u16>().is_ok_and(|s| s == d.status) => true,
        Expect::Word(w) if w.parse::<u16>().is_ok() => false,
        Expect::Word(w) if w == "allow" => d.allowed,
        Expect::Word(w) if w == "deny" => !d.allowed,
        Expect::Word(w) => {
            return Err(format!(
                "`expect` must be allow, deny or a status, not `{w}`"
            ))
        }
    };
    let reason_ok = case
        .reason
        .as_deref()
        .is_none_or(|r| r == d.reason.as_str());
    Ok((!(status_ok && reason_ok)).then(|| {
        format!(
            "expected {}{}, got {json}",
            case.expect,
            case.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    }))
}
