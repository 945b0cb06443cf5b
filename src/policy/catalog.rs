//! The action catalog: documented action ids resolved to dense indices at compile time.

use std::collections::HashMap;

use super::bitset::ActionSet;
use crate::config::{did_you_mean, ActionDef, ConfigError, Located};

/// Index of an action in its catalog.
pub type ActionIdx = u32;

/// True for a well-formed action id: non-empty, no whitespace or `*`, and not `public` (reserved).
pub fn is_valid_action_id(id: &str) -> bool {
    !id.is_empty() && id != "public" && !id.contains('*') && !id.chars().any(char::is_whitespace)
}

/// The documented actions of one policy, in the order they were written.
#[derive(Debug, Clone)]
pub struct Catalog {
    ids: Vec<Box<str>>,
    labels: Vec<Box<str>>,
    sections: Vec<Option<Box<str>>>,
    index: HashMap<Box<str>, ActionIdx>,
}

impl Catalog {
    /// Builds the catalog; a repeated or malformed id is an error.
    pub fn build(defs: &[ActionDef]) -> Result<Self, ConfigError> {
        let mut cat = Catalog {
            ids: Vec::with_capacity(defs.len()),
            labels: Vec::with_capacity(defs.len()),
            sections: Vec::with_capacity(defs.len()),
            index: HashMap::with_capacity(defs.len()),
        };
        let mut first_seen: HashMap<&str, &Located<String>> = HashMap::new();
        for d in defs {
            let id = d.id.value.as_str();
            if !is_valid_action_id(id) {
                return Err(ConfigError::new(
                    d.id.origin.clone(),
                    format!("`{id}` is not a valid action id"),
                )
                .with_help(
                    "action ids are non-empty, contain no spaces or `*`, and `public` is reserved",
                ));
            }
            if let Some(prev) = first_seen.insert(id, &d.id) {
                return Err(ConfigError::new(
                    d.id.origin.clone(),
                    format!("action `{id}` is defined twice (first at {})", prev.origin),
                ));
            }
            cat.index.insert(id.into(), cat.ids.len() as ActionIdx);
            cat.ids.push(id.into());
            cat.labels.push(d.label.as_str().into());
            cat.sections.push(d.section.as_deref().map(Into::into));
        }
        if u32::try_from(cat.ids.len()).is_err() {
            return Err(ConfigError::new(
                defs[0].id.origin.clone(),
                "too many actions".to_string(),
            ));
        }
        Ok(cat)
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the catalog has no action.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of action `id`.
    pub fn get(&self, id: &str) -> Option<ActionIdx> {
        self.index.get(id).copied()
    }

    /// The id of action `idx`.
    pub fn id(&self, idx: ActionIdx) -> &str {
        &self.ids[idx as usize]
    }

    /// The documented label of action `idx`.
    pub fn label(&self, idx: ActionIdx) -> &str {
        &self.labels[idx as usize]
    }

    /// The section of action `idx`, if any.
    pub fn section(&self, idx: ActionIdx) -> Option<&str> {
        self.sections[idx as usize].as_deref()
    }

    /// All ids in catalog order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|s| &**s)
    }

    /// Resolves an action id, or explains which one is unknown and what was probably meant.
    pub fn resolve(&self, id: &Located<String>, context: &str) -> Result<ActionIdx, ConfigError> {
        self.get(&id.value).ok_or_else(|| self.unknown(id, context))
    }

    fn unknown(&self, id: &Located<String>, context: &str) -> ConfigError {
        let err = ConfigError::new(
            id.origin.clone(),
            format!("unknown action `{}` {context}", id.value),
        );
        match did_you_mean(&id.value, self.ids()) {
            Some(help) => err.with_help(help),
            None => err.with_help("add it under `actions:` or fix the id"),
        }
    }

    /// Expands a grant (an id, or a glob where `*` matches any run of characters) into `set`.
    /// A grant that matches nothing is an error: it is almost always a typo.
    pub fn expand_grant(
        &self,
        grant: &Located<String>,
        context: &str,
        set: &mut ActionSet,
    ) -> Result<(), ConfigError> {
        if !grant.value.contains('*') {
            set.insert(self.resolve(grant, context)?);
            return Ok(());
        }
        let mut matched = false;
        for (i, id) in self.ids.iter().enumerate() {
            if glob_match(&grant.value, id) {
                set.insert(i as ActionIdx);
                matched = true;
            }
        }
        if matched {
            Ok(())
        } else {
            Err(ConfigError::new(
                grant.origin.clone(),
                format!("grant `{}` {context} matches no action", grant.value),
            )
            .with_help("`*` matches any run of characters, e.g. `cluster.*` or `*.get`"))
        }
    }
}

/// Matches `text` against `pattern`, where `*` matches any (possibly empty) run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_prefixes_suffixes_and_middles() {
        assert!(glob_match("cluster.*", "cluster.get"));
        assert!(glob_match("*.get", "cluster.get"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("cluster.*", "clusterProfile.get"));
        assert!(!glob_match("*.get", "cluster.list"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
    }
}
