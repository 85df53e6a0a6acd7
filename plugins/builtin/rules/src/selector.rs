//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), matched in the plugin so
//! that one list of a kind serves every rule on it. Written by hand: the rules are those of
//! apimachinery's `LabelSelectorAsSelector` (a few lines), and no crate for wasm32 does only
//! this.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A `metav1.LabelSelector`. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// What is wrong with it, as the apiserver would refuse it: `In` and `NotIn` need values,
    /// `Exists` and `DoesNotExist` take none, no other operator exists.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, r) in self.match_expressions.iter().enumerate() {
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => problems.push(format!(
                    "matchExpressions[{i}]: operator {} needs at least one value",
                    r.operator
                )),
                "Exists" | "DoesNotExist" if !r.values.is_empty() => problems.push(format!(
                    "matchExpressions[{i}]: operator {} takes no values",
                    r.operator
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => problems.push(format!(
                    "matchExpressions[{i}]: unknown operator `{other}` (In, NotIn, Exists, DoesNotExist)"
                )),
            }
        }
        problems
    }

    /// Whether `labels` satisfy every term (all of them: the terms are ANDed).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    // As in apimachinery: a missing key satisfies NotIn.
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// The labels of a JSON object (`metadata.labels`), empty when it has none.
pub fn labels_of(object: &serde_json::Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
