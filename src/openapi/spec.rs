//! Reading OpenAPI 3.x and Swagger 2.0 documents (YAML or JSON) into a flat list of operations.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::error::ImportError;
use super::method_rank;

/// The HTTP methods a path item may hold, as spelled in specs.
pub(super) const SPEC_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case method (`GET`).
    pub method: String,
    /// The path template exactly as the spec writes it (`/v1/spectroclusters/{uid}`).
    pub path: String,
    /// `operationId`, empty when the spec gives none.
    pub operation_id: String,
    /// The first tag that is not an API-version tag such as `v1`; empty when there is none.
    pub tag: String,
    /// `summary` (or, when absent, the first line of `description`), on one line.
    pub summary: String,
}

/// Which dialect a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    /// `swagger: "2.0"`.
    Swagger2,
    /// `openapi: 3.x`.
    OpenApi3,
}

/// A parsed spec: its dialect, its `info` and its operations sorted by path, then method.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Dialect.
    pub format: SpecFormat,
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// Operations, sorted by path then method (GET, HEAD, POST, PUT, PATCH, DELETE, ...).
    pub operations: Vec<Operation>,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(default)]
    swagger: Option<Value>,
    #[serde(default)]
    openapi: Option<Value>,
    #[serde(default)]
    info: Option<RawInfo>,
    #[serde(default, rename = "basePath")]
    base_path: Option<String>,
    #[serde(default)]
    paths: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Text that lands in a comment of the routes file: control characters (newlines above all)
/// become spaces, so it never starts a YAML line of its own.
pub(super) fn flat(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Checks that a path template can be written as a route: visible ASCII from a leading `/`, no
/// query or fragment.
fn check_path(path: &str) -> Result<(), ImportError> {
    let why = if !path.starts_with('/') {
        Some("it does not start with `/`")
    } else if !path.bytes().all(|b| b.is_ascii_graphic()) {
        Some("it holds a space, a control character or non-ASCII")
    } else if path.contains(['?', '#']) {
        Some("it holds `?` or `#`")
    } else {
        None
    };
    match why {
        Some(why) => Err(ImportError::BadPath {
            path: path.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    title: Option<Value>,
    #[serde(default)]
    version: Option<Value>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

fn is_version_tag(tag: &str) -> bool {
    let rest = tag.strip_prefix('v').or_else(|| tag.strip_prefix('V'));
    matches!(rest, Some(r) if !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
}

/// Parses a spec from text. JSON when the first non-blank character is `{`, YAML otherwise.
pub fn parse_spec(text: &str) -> Result<Spec, ImportError> {
    let raw: RawSpec = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)?
    } else {
        serde_saphyr::from_str(text).map_err(|e| ImportError::Yaml {
            what: "spec",
            message: e.to_string(),
        })?
    };
    let format = match (&raw.openapi, &raw.swagger) {
        (Some(v), _) if scalar(v).starts_with('3') => SpecFormat::OpenApi3,
        (_, Some(v)) if scalar(v).starts_with('2') => SpecFormat::Swagger2,
        _ => return Err(ImportError::UnknownFormat),
    };
    let (title, version) = match &raw.info {
        Some(i) => (
            i.title.as_ref().map(scalar).unwrap_or_default(),
            i.version.as_ref().map(scalar).unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    let (title, version) = (flat(&title), flat(&version));
    // Swagger 2.0 serves every path under `basePath`; OpenAPI 3's `servers` are left to the operator.
    let base = match (format, raw.base_path.as_deref()) {
        (SpecFormat::Swagger2, Some(b)) if b != "/" && !b.is_empty() => {
            check_path(b)?;
            b.trim_end_matches('/')
        }
        _ => "",
    };
    let mut operations = Vec::new();
    for (path, item) in &raw.paths {
        check_path(path)?;
        for (key, op) in item {
            let lower = key.to_ascii_lowercase();
            if !SPEC_METHODS.contains(&lower.as_str()) {
                continue; // `parameters`, `summary`, `servers`, `$ref`, extensions
            }
            let Value::Object(op) = op else { continue };
            let tag = op
                .get("tags")
                .and_then(Value::as_array)
                .and_then(|tags| tags.iter().map(scalar).find(|t| !is_version_tag(t)))
                .unwrap_or_default();
            let summary = op
                .get("summary")
                .map(scalar)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| op.get("description").map(scalar))
                .map(|s| one_line(&s))
                .unwrap_or_default();
            operations.push(Operation {
                method: lower.to_ascii_uppercase(),
                path: format!("{base}{path}"),
                operation_id: flat(&op.get("operationId").map(scalar).unwrap_or_default()),
                tag: flat(&tag),
                summary,
            });
        }
    }
    operations
        .sort_by(|a, b| (&a.path, method_rank(&a.method)).cmp(&(&b.path, method_rank(&b.method))));
    Ok(Spec {
        format,
        title,
        version,
        operations,
    })
}

/// Reads and parses a spec file.
pub fn read_spec(path: &std::path::Path) -> Result<Spec, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_spec(&text)
}
