//! Configuration errors that point at the file, line and column an operator must edit.

use std::fmt;
use std::sync::Arc;

/// Where a value came from: file, 1-based line and column (0 when unknown).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The file as the operator named it (or as an include resolved it).
    pub file: Arc<str>,
    /// 1-based line; 0 when the parser could not tell.
    pub line: u32,
    /// 1-based column; 0 when the parser could not tell.
    pub column: u32,
}

impl Origin {
    /// An origin for a whole file (no line known).
    pub fn file(file: &Arc<str>) -> Self {
        Origin {
            file: file.clone(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file),
            (l, 0) => write!(f, "{}:{}", self.file, l),
            (l, c) => write!(f, "{}:{}:{}", self.file, l, c),
        }
    }
}

/// A value together with the place in the configuration it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub origin: Origin,
}

impl<T> Located<T> {
    /// Pairs a value with its origin.
    pub fn new(value: T, origin: Origin) -> Self {
        Located { value, origin }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// One configuration error: where, what, and (when obvious) how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the offending text is.
    pub origin: Origin,
    /// What is wrong, in the operator's words (lowercase, no final period).
    pub message: String,
    /// A suggested fix, when there is an obvious one.
    pub help: Option<String>,
}

impl ConfigError {
    /// An error at `origin`.
    pub fn new(origin: Origin, message: impl Into<String>) -> Self {
        ConfigError {
            origin,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a suggested fix.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Suggests the closest known name to `unknown`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in known {
        let score = strsim::jaro_winkler(unknown, candidate);
        if score > 0.85 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, name)| format!("did you mean `{name}`?"))
}
