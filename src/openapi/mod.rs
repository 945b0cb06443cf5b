//! OpenAPI import: read a spec into operations, map them to actions with an import rules file, and write a
//! deterministic rolegate routes file plus the list of operations no rule covers.
//!
//! The pipeline reads top-down: [`spec`] (OpenAPI 3.x / Swagger 2.0, YAML or JSON -> [`Operation`]s) ->
//! [`rules`] (first matching rule wins -> action, `public` or a resource whose verb is inferred) ->
//! [`import`](fn@import) (apply rules, normalize paths, merge or refuse route-shape conflicts) ->
//! [`writer`] (routes YAML with `# operationId` trailing comments).

pub mod error;
pub mod rules;
pub mod spec;
pub mod writer;

pub use spec::read_spec;

pub use error::ImportError;
pub use rules::{infer_verb, Decision, Rules, Target};
pub use spec::{parse_spec, Operation, Spec, SpecFormat};
pub use writer::{write_inventory, write_routes};

use std::collections::BTreeMap;

/// One route line of the output: a method and a router path mapped to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLine {
    /// Index of the output group (into [`Rules::groups`]).
    pub group: usize,
    /// Upper-case method.
    pub method: String,
    /// The path as the router takes it: the spec path without a trailing `/`.
    pub path: String,
    /// What the route maps to.
    pub target: Target,
    /// The operationIds the line stands for (two when identical-shape operations were merged).
    pub operation_ids: Vec<String>,
    /// Why comment of the rule that decided it.
    pub why: Option<String>,
    /// Notes for the trailing comment (the spec path, when the router path differs from it).
    pub notes: Vec<String>,
}

/// The result of applying rules to a spec's operations.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// Route lines, sorted by group, then path, then method.
    pub routes: Vec<RouteLine>,
    /// Operations no rule covers (never guessed).
    pub uncovered: Vec<Operation>,
    /// Number of operations covered (a merged line counts each of its operations).
    pub covered: usize,
}

/// Sort rank of a method in the output (GET first).
pub fn method_rank(method: &str) -> usize {
    const ORDER: [&str; 8] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
    ];
    ORDER
        .iter()
        .position(|m| *m == method)
        .unwrap_or(ORDER.len())
}

/// The router shape of a path: parameters blanked (`/a/{x}/b` -> `/a/{}/b`), no trailing `/`.
pub fn route_shape(path: &str) -> String {
    normalize_path(path)
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path as the router takes it: a trailing `/` (other than the root) removed.
pub fn normalize_path(path: &str) -> String {
    if path.len() > 1 && path.ends_with('/') {
        path.trim_end_matches('/').to_string()
    } else {
        path.to_string()
    }
}

/// Applies `rules` to `operations`. Operations with the same method and route shape are merged into one line when
/// they map to the same target in the same group; otherwise the import fails with [`ImportError::Conflict`].
pub fn import(operations: &[Operation], rules: &Rules) -> Result<Import, ImportError> {
    let mut out = Import::default();
    // (method, shape) -> index into out.routes
    let mut by_shape: BTreeMap<(String, String), usize> = BTreeMap::new();
    for op in operations {
        let Some(decision) = rules.classify(op)? else {
            out.uncovered.push(op.clone());
            continue;
        };
        out.covered += 1;
        let key = (op.method.clone(), route_shape(&op.path));
        if let Some(&i) = by_shape.get(&key) {
            let prev = &mut out.routes[i];
            if prev.target == decision.target && prev.group == decision.group {
                prev.operation_ids.push(op.operation_id.clone());
                if normalize_path(&op.path) != op.path {
                    prev.notes.push(format!("spec path `{}`", op.path));
                }
                continue;
            }
            return Err(ImportError::Conflict {
                first: format!(
                    "{} {} ({})",
                    prev.method,
                    prev.path,
                    prev.operation_ids.join(", ")
                ),
                second: format!("{} {} ({})", op.method, op.path, op.operation_id),
                shape: key.1,
            });
        }
        by_shape.insert(key, out.routes.len());
        let path = normalize_path(&op.path);
        let notes = if path != op.path {
            vec![format!("spec path `{}`", op.path)]
        } else {
            Vec::new()
        };
        out.routes.push(RouteLine {
            group: decision.group,
            method: op.method.clone(),
            path,
            target: decision.target,
            operation_ids: vec![op.operation_id.clone()],
            why: decision.why,
            notes,
        });
    }
    out.routes.sort_by(|a, b| {
        (a.group, &a.path, method_rank(&a.method)).cmp(&(b.group, &b.path, method_rank(&b.method)))
    });
    Ok(out)
}
