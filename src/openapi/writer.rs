//! Writing the routes file and the operation inventory. Output depends only on the inputs: no time stamps, no
//! hash-map order.

use std::fmt::Write as _;

use super::rules::Rules;
use super::spec::{flat, Operation, Spec};
use super::{Import, RouteLine};

/// True when `s` can be written as a plain YAML scalar in block context without quoting.
fn plain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/{}_.-,* ".contains(c))
        && !s.starts_with(['{', '*', '-', ' '])
        && !s.ends_with(' ')
}

fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Writes the routes file for `import`: `routes:` with one group per non-empty output group (in rules-file order),
/// each route as `METHOD /path: action  # operationId`, a rule's `why` as a comment line above the routes it decides.
pub fn write_routes(
    import: &Import,
    rules: &Rules,
    spec: &Spec,
    spec_name: &str,
    rules_name: &str,
) -> String {
    let mut out = String::new();
    for line in &rules.header {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {}", flat(line));
        }
    }
    let public = import
        .routes
        .iter()
        .filter(|r| r.target.as_str() == "public")
        .map(|r| r.operation_ids.len())
        .sum::<usize>();
    let _ = writeln!(
        out,
        "# Generated from {spec_name} ({} {}) with {rules_name}: {} operations, {} mapped to actions, {} public, {} not covered.",
        spec.title,
        spec.version,
        spec.operations.len(),
        import.covered - public,
        public,
        import.uncovered.len()
    );
    let _ = writeln!(
        out,
        "# Do not edit by hand: change {rules_name} and regenerate."
    );
    if import.routes.is_empty() {
        out.push_str("routes: []\n");
        return out;
    }
    out.push_str("routes:\n");
    for (gi, group) in rules.groups.iter().enumerate() {
        let lines: Vec<&RouteLine> = import.routes.iter().filter(|r| r.group == gi).collect();
        if lines.is_empty() {
            continue;
        }
        if let Some(c) = &group.comment {
            let _ = writeln!(out, "  # {}", flat(c));
        }
        let mut keys: Vec<String> = Vec::new();
        if let Some(u) = &group.upstream {
            keys.push(format!("upstream: {}", scalar(u)));
        }
        if let Some(h) = &group.host {
            keys.push(format!("host: {}", scalar(h)));
        }
        if let Some(t) = &group.tenant {
            keys.push(format!("tenant: {}", t.to_yaml()));
        }
        if let Some(r) = &group.relation {
            keys.push(format!("relation: {r}"));
        }
        if let Some(c) = &group.caller {
            keys.push(format!("caller: {c}"));
        }
        if let Some(p) = &group.project {
            keys.push(format!("project: {}", p.to_yaml()));
        }
        keys.push("map:".into());
        for (i, k) in keys.iter().enumerate() {
            let _ = writeln!(out, "{}{k}", if i == 0 { "  - " } else { "    " });
        }
        // A why is written above each run of consecutive routes it explains, so it never seems to explain a route
        // that has none.
        let mut last_why: Option<&str> = None;
        for r in lines {
            if let Some(w) = r.why.as_deref() {
                if last_why != Some(w) {
                    let _ = writeln!(out, "      # {}", flat(w));
                }
            }
            last_why = r.why.as_deref();
            let key = scalar(&format!("{} {}", r.method, r.path));
            let mut comment = r.operation_ids.join(", ");
            for note in &r.notes {
                comment.push_str("; ");
                comment.push_str(note);
            }
            let _ = writeln!(
                out,
                "      {key}: {}  # {}",
                scalar(r.target.as_str()),
                flat(&comment)
            );
        }
    }
    out
}

/// Writes operations as a TSV inventory: `method, path, operationId, tag, summary` with a header line.
pub fn write_inventory(operations: &[Operation]) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut out = String::from("method\tpath\toperationId\ttag\tsummary\n");
    for op in operations {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            op.method,
            op.path,
            clean(&op.operation_id),
            clean(&op.tag),
            clean(&op.summary)
        );
    }
    out
}
