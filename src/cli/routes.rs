//! `rolegate routes import` and `rolegate routes coverage`: fronting an API described by OpenAPI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::openapi::rules::DEFAULT_RULES;
use crate::openapi::{import, normalize_path, read_spec, write_routes, Rules};
use crate::policy::CompiledPolicy;

/// `rolegate routes ...`
#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Write a route map for every operation of an OpenAPI 3 / Swagger 2 spec (exit 1 if some are not covered).
    Import {
        /// The spec (YAML or JSON).
        #[arg(long)]
        openapi: PathBuf,
        /// Import rules; without them each operation maps to `<first path segment>.<verb>`.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Map every operation of a spec through a configuration: action, public or unmapped (exit 1 if any unmapped).
    Coverage {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The spec (YAML or JSON).
        #[arg(long)]
        openapi: PathBuf,
        /// Print every operation, not only the unmapped ones.
        #[arg(long)]
        all: bool,
    },
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Runs a `routes` subcommand.
pub fn run(cmd: RoutesCommand) -> ExitCode {
    match cmd {
        RoutesCommand::Import {
            openapi,
            rules,
            output,
        } => import_cmd(&openapi, rules.as_deref(), output.as_deref()),
        RoutesCommand::Coverage {
            config,
            openapi,
            all,
        } => coverage_cmd(&config, &openapi, all),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_USAGE)
}

fn import_cmd(spec_path: &Path, rules_path: Option<&Path>, output: Option<&Path>) -> ExitCode {
    let spec = match read_spec(spec_path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (rules_text, rules_name) = match rules_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, file_name(p)),
            Err(e) => return fail(format!("cannot read `{}`: {e}", p.display())),
        },
        None => (DEFAULT_RULES.to_string(), "the default rules".to_string()),
    };
    let rules = match Rules::from_yaml(&rules_text) {
        Ok(r) => r,
        Err(e) => return fail(format!("{rules_name}: {e}")),
    };
    let result = match import(&spec.operations, &rules) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let text = write_routes(&result, &rules, &spec, &file_name(spec_path), &rules_name);
    for op in &result.uncovered {
        eprintln!(
            "not covered\t{}\t{}\t{}\t{}",
            op.method, op.path, op.operation_id, op.summary
        );
    }
    let written = match output {
        Some(o) => {
            std::fs::write(o, &text).map_err(|e| format!("cannot write `{}`: {e}", o.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    };
    if let Err(e) = written {
        return fail(e);
    }
    eprintln!(
        "{} operations: {} covered, {} not covered",
        spec.operations.len(),
        result.covered,
        result.uncovered.len()
    );
    if result.uncovered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What a spec operation maps to through a compiled policy.
pub enum Mapped {
    /// An action id, through route `route`.
    Action(String, u32),
    /// A public route.
    Public(u32),
    /// No route.
    Unmapped,
}

/// Maps one operation (method + path template) through the policy's router.
pub fn map_operation(policy: &CompiledPolicy, method: &str, path: &str) -> Mapped {
    let path = normalize_path(path);
    match policy.routes().find(method, None, &path) {
        Some(m) => match m.entry.action {
            Some(a) => Mapped::Action(policy.catalog().id(a).to_string(), m.idx),
            None => Mapped::Public(m.idx),
        },
        None => Mapped::Unmapped,
    }
}

fn coverage_cmd(config: &Path, spec_path: &Path, all: bool) -> ExitCode {
    let (_, policy) = match super::load_policy(config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let spec = match read_spec(spec_path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (mut actions, mut public, mut unmapped) = (0usize, 0usize, 0usize);
    let mut hit = BTreeSet::new();
    for op in &spec.operations {
        let (what, route) = match map_operation(&policy, &op.method, &op.path) {
            Mapped::Action(a, r) => {
                actions += 1;
                (a, Some(r))
            }
            Mapped::Public(r) => {
                public += 1;
                ("public".to_string(), Some(r))
            }
            Mapped::Unmapped => {
                unmapped += 1;
                ("UNMAPPED".to_string(), None)
            }
        };
        if let Some(r) = route {
            hit.insert(r);
        }
        if all || route.is_none() {
            println!("{}\t{}\t{}\t{}", op.method, op.path, what, op.operation_id);
        }
    }
    let stray: Vec<&str> = policy
        .routes()
        .entries()
        .iter()
        .enumerate()
        .filter(|(i, _)| !hit.contains(&(*i as u32)))
        .map(|(_, e)| &*e.template)
        .collect();
    for r in &stray {
        println!("route matches no operation\t{r}");
    }
    println!(
        "{} operations: {actions} to actions, {public} public, {unmapped} unmapped; {} of {} routes match no operation",
        spec.operations.len(),
        stray.len(),
        policy.routes().len()
    );
    if unmapped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
