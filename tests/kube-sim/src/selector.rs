//! Label and field selectors, parsed with the apiserver's grammar.
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`,
//! joined by commas (all must hold). Fields: `f=v`, `f==v`, `f!=v` on `metadata.name`,
//! `metadata.namespace` and the per-kind fields the apiserver indexes (`spec.nodeName`, …).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::status::ApiError;

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelReq {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

fn parse_err(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} (selector \"{sel}\")"
    ))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(sel: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| parse_err(sel, "expected a set in parentheses"))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(parse_err(
            sel,
            "for 'in', 'notin' operators, values set can't be empty",
        ));
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses a selector string.
    pub fn parse(sel: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(Self { reqs });
        }
        for part in split_top_level(sel) {
            let part = part.trim();
            if part.is_empty() {
                return Err(parse_err(sel, "found ',', expected: identifier"));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                let key = key.trim();
                if !valid_key(key) {
                    return Err(parse_err(sel, "invalid label key"));
                }
                LabelReq::DoesNotExist(key.to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEquals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Equals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Equals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('>') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| parse_err(sel, "expected an integer"))?;
                LabelReq::GreaterThan(k.trim().to_string(), n)
            } else if let Some((k, v)) = part.split_once('<') {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| parse_err(sel, "expected an integer"))?;
                LabelReq::LessThan(k.trim().to_string(), n)
            } else {
                let mut words = part.splitn(2, char::is_whitespace);
                let key = words.next().unwrap_or_default().trim();
                let rest = words.next().unwrap_or_default().trim();
                if rest.is_empty() {
                    LabelReq::Exists(key.to_string())
                } else if let Some(set) = rest.strip_prefix("notin") {
                    LabelReq::NotIn(key.to_string(), parse_set(sel, set)?)
                } else if let Some(set) = rest.strip_prefix("in") {
                    LabelReq::In(key.to_string(), parse_set(sel, set)?)
                } else {
                    return Err(parse_err(sel, &format!("unexpected '{rest}'")));
                }
            };
            let key = match &req {
                LabelReq::Equals(k, _)
                | LabelReq::NotEquals(k, _)
                | LabelReq::In(k, _)
                | LabelReq::NotIn(k, _)
                | LabelReq::Exists(k)
                | LabelReq::DoesNotExist(k)
                | LabelReq::GreaterThan(k, _)
                | LabelReq::LessThan(k, _) => k,
            };
            if !valid_key(key) {
                return Err(parse_err(sel, &format!("invalid label key \"{key}\"")));
            }
            reqs.push(req);
        }
        Ok(Self { reqs })
    }

    /// True when the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| match r {
            LabelReq::Equals(k, v) => labels.get(k) == Some(v),
            LabelReq::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::DoesNotExist(k) => !labels.contains_key(k),
            LabelReq::GreaterThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::LessThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        self.matches(&labels_of(obj))
    }
}

/// `metadata.labels` of an object as a map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (JSON path, wanted value, equal?)
    reqs: Vec<(String, String, bool)>,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on separators not preceded by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

impl FieldSelector {
    /// Parses a field selector for a resource; unknown fields are a 400 as on the apiserver.
    pub fn parse(sel: &str, res: &ResourceInfo) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(Self { reqs });
        }
        for part in split_unescaped(sel, ',') {
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{sel}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let path = match field {
                "metadata.name" | "metadata.namespace" => field,
                other => res
                    .fields
                    .iter()
                    .find(|(name, _)| *name == other)
                    .map(|(_, path)| *path)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("field label not supported: {other}"))
                    })?,
            };
            reqs.push((path.to_string(), unescape(value), eq));
        }
        Ok(Self { reqs })
    }

    /// True when the selector is empty.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object satisfies every requirement.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, want, eq)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = match cur.get(seg) {
                    Some(v) => v,
                    None => &Value::Null,
                };
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => match path.as_str() {
                    "spec.hostNetwork" | "spec.unschedulable" => "false".to_string(),
                    _ => String::new(),
                },
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

/// A label and a field selector together.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_operators() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let ok = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(ok("app=web"));
        assert!(ok("app==web"));
        assert!(!ok("app!=web"));
        assert!(ok("missing!=x"));
        assert!(ok("app in (web, api)"));
        assert!(!ok("app notin (web,api)"));
        assert!(ok("missing notin (a)"));
        assert!(ok("tier"));
        assert!(ok("!missing"));
        assert!(!ok("!app"));
        assert!(ok("app=web,tier in (front),!missing"));
        assert!(ok("n>4") && !ok("n<5"));
        assert!(ok(""));
    }

    #[test]
    fn bad_label_selectors_are_rejected() {
        for bad in ["app in web", "app in ()", "a b c", ",", "app=web,,x"] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(err.code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selectors() {
        let res = crate::resources::by_plural("", "v1", "pods").unwrap();
        let pod = serde_json::json!({"metadata": {"name": "a", "namespace": "ns"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let ok = |s: &str| FieldSelector::parse(s, res).unwrap().matches_object(&pod);
        assert!(ok("metadata.name=a"));
        assert!(ok("metadata.namespace==ns,spec.nodeName=n1"));
        assert!(!ok("status.phase!=Running"));
        assert!(ok("spec.hostNetwork=false"));
        let err = FieldSelector::parse("spec.bogus=1", res).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.bogus");
    }
}
