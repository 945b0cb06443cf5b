//! Errors of the import pipeline.

/// Everything that can go wrong reading a spec or a rules file, or applying the rules.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not valid JSON.
    #[error("spec is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The spec or the rules file is not valid YAML (or not of the expected shape).
    #[error("{what} is not valid: {message}")]
    Yaml {
        /// `spec` or `rules file`.
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A path (or Swagger `basePath`) cannot be a route: it would not survive as one line of the routes file.
    #[error("spec path {path:?} is not a path template ({why}); fix the spec before importing it")]
    BadPath {
        /// The path as the spec writes it.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The document is neither OpenAPI 3.x nor Swagger 2.0.
    #[error("spec has neither `openapi: 3.x` nor `swagger: 2.0` at the top")]
    UnknownFormat,
    /// A rule or group of the rules file is malformed.
    #[error("rules file: {place}: {message}")]
    BadRule {
        /// `rule 3` or `group tenant`.
        place: String,
        /// What is wrong.
        message: String,
    },
    /// A resource rule matched an operation whose verb cannot be inferred.
    #[error("rule {rule} gives resource `{resource}` but no verb fits `{method} {path}`; add a suffix verb or an explicit action")]
    NoVerb {
        /// 1-based rule number.
        rule: usize,
        /// The rule's resource.
        resource: String,
        /// The operation's method.
        method: String,
        /// The operation's path.
        path: String,
    },
    /// Two operations share a method and a route shape but map differently.
    #[error("`{first}` and `{second}` have the same route shape `{shape}` but different targets; make one rule cover both")]
    Conflict {
        /// The first operation.
        first: String,
        /// The second operation.
        second: String,
        /// The shared shape.
        shape: String,
    },
}
