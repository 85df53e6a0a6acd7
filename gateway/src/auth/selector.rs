//! Cluster label selectors in grants, with Kubernetes' syntax: `k=v` (or `k==v`), `k!=v`,
//! `k in (a,b)`, `k notin (a,b)`, `k` (has the label), `!k` (has not), comma-separated, all
//! of which must hold. Parsed once when grants are loaded; matching allocates nothing.

use std::collections::BTreeMap;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// Why a selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid label selector `{0}`: use `key=value`, `key!=value`, `key in (a,b)`, \
     `key notin (a,b)`, `key` or `!key`, comma-separated"
)]
pub struct SelectorError(String);

impl Selector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let bad = || SelectorError(text.to_owned());
        let mut terms = Vec::new();
        for part in split_terms(text).ok_or_else(bad)? {
            terms.push(parse_term(part.trim()).ok_or_else(bad)?);
        }
        if terms.is_empty() {
            return Err(bad());
        }
        Ok(Self { terms })
    }

    /// Whether a cluster with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::NotEquals(k, v) => labels.get(k) != Some(v),
            Term::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Term::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Term::Exists(k) => labels.contains_key(k),
            Term::Absent(k) => !labels.contains_key(k),
        })
    }
}

/// Splits at the commas outside parentheses; `None` for unbalanced parentheses.
fn split_terms(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    (depth == 0).then(|| {
        parts.push(&text[start..]);
        parts
    })
}

fn parse_term(term: &str) -> Option<Term> {
    if let Some(key) = term.strip_prefix('!') {
        return valid_key(key.trim()).map(|k| Term::Absent(k.to_owned()));
    }
    for (op, set) in [(" notin ", false), (" in ", true)] {
        if let Some((key, values)) = term.split_once(op) {
            let key = valid_key(key.trim())?.to_owned();
            let values = values.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values = values
                .split(',')
                .map(|v| valid_value(v.trim()).map(str::to_owned))
                .collect::<Option<Vec<_>>>()?;
            return Some(if set {
                Term::In(key, values)
            } else {
                Term::NotIn(key, values)
            });
        }
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Some(Term::NotEquals(
            valid_key(key.trim())?.to_owned(),
            valid_value(value.trim())?.to_owned(),
        ));
    }
    if let Some((key, value)) = term.split_once('=') {
        let value = value.strip_prefix('=').unwrap_or(value);
        return Some(Term::Equals(
            valid_key(key.trim())?.to_owned(),
            valid_value(value.trim())?.to_owned(),
        ));
    }
    valid_key(term).map(|k| Term::Exists(k.to_owned()))
}

/// A label key: an optional DNS prefix and `/`, then 1-63 name characters.
fn valid_key(key: &str) -> Option<&str> {
    let name = key.rsplit_once('/').map_or(key, |(prefix, name)| {
        if prefix.is_empty() || prefix.len() > 253 {
            ""
        } else {
            name
        }
    });
    let ok = (1..=63).contains(&name.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then_some(key)
}

/// A label value: up to 63 name characters (empty allowed).
fn valid_value(value: &str) -> Option<&str> {
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some(value)
}
