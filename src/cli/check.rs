//! `rolegate check`: explain one decision, or a batch of them.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Map, Value};

use super::explain::{decision_json, explain, principal, Query};
use super::EXIT_USAGE;
use crate::policy::{Decision, Reason};

/// Arguments of `rolegate check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// The caller's claims as JSON (no signature needed).
    #[arg(long, conflicts_with = "token")]
    claims: Option<String>,
    /// A signed token, verified against the configured issuers.
    #[arg(long)]
    token: Option<String>,
    /// Decide this action directly instead of a method and path.
    #[arg(long)]
    action: Option<String>,
    /// Target tenant for --action (default: the caller's).
    #[arg(long, requires = "action")]
    tenant: Option<String>,
    /// Target project for --action.
    #[arg(long, requires = "action")]
    project: Option<String>,
    /// Request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Read one JSON request per line from stdin and print one decision per line.
    #[arg(long, conflicts_with_all = ["claims", "token", "action"])]
    batch: bool,
    /// METHOD PATH of the request to decide.
    #[arg(num_args = 0..=2)]
    request: Vec<String>,
}

/// Runs `rolegate check`.
pub fn run(args: CheckArgs) -> ExitCode {
    let (config, policy) = match super::load_policy(&args.config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.batch {
        return batch(&config, &policy);
    }
    let usage = |msg: &str| {
        eprintln!("error: {msg}");
        ExitCode::from(EXIT_USAGE)
    };
    let claims: Map<String, Value> = match (&args.claims, &args.token) {
        (Some(c), None) => match serde_json::from_str(c) {
            Ok(Value::Object(m)) => m,
            _ => return usage("--claims must be a JSON object"),
        },
        (None, Some(token)) => match super::verify_token(&config, token) {
            Ok(m) => m,
            Err(e) => {
                // The same fields as every other decision, plus why the token was refused.
                let refused = Decision::deny(401, Reason::InvalidToken);
                let mut json = decision_json(&policy, &refused, None);
                json["action"] = args.action.clone().into();
                json["detail"] = e.into();
                println!("{json}");
                return ExitCode::from(1);
            }
        },
        _ => return usage("give --claims JSON or --token JWT"),
    };
    let mut q = Query {
        action: args.action.clone(),
        tenant: args.tenant.clone(),
        project: args.project.clone(),
        ..Query::default()
    };
    match (args.action.is_some(), args.request.as_slice()) {
        (true, []) => {}
        (false, [m, p]) => {
            q.method = Some(m.clone());
            q.path = Some(p.clone());
        }
        _ => return usage("give --action ID, or METHOD PATH"),
    }
    for h in &args.headers {
        match h.split_once(':') {
            Some((k, v)) => {
                // A repeated header is one comma-joined field, as the gateway reads it.
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                q.headers
                    .entry(k)
                    .and_modify(|have| {
                        have.push_str(", ");
                        have.push_str(v);
                    })
                    .or_insert_with(|| v.to_string());
            }
            None => return usage(&format!("header `{h}` is not `Name: value`")),
        }
    }
    let p = match principal(&claims, &config.claims) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    match explain(&policy, Some(&p), &q) {
        Ok((d, json)) => {
            println!("{json}");
            if d.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => usage(&e),
    }
}

fn batch(config: &crate::config::Config, policy: &crate::policy::CompiledPolicy) -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for (n, line) in stdin.lock().split(b'\n').enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if line.trim_ascii().is_empty() {
            continue;
        }
        let result = std::str::from_utf8(&line)
            .map_err(|_| format!("line {}: not UTF-8", n + 1))
            .and_then(|line| {
                serde_json::from_str::<Query>(line).map_err(|e| format!("line {}: {e}", n + 1))
            })
            .and_then(|q| {
                let p = q
                    .claims
                    .as_ref()
                    .map(|c| principal(c, &config.claims))
                    .transpose()
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
                explain(policy, p.as_ref(), &q).map_err(|e| format!("line {}: {e}", n + 1))
            });
        let json = match result {
            Ok((_, json)) => json,
            Err(e) => {
                failed = true;
                serde_json::json!({"error": e})
            }
        };
        if writeln!(out, "{json}").is_err() {
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let _ = out.flush();
    if failed {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}
