//! `builtin-rules`: rules without code. Each rule names the objects it applies to and a CEL
//! expression over `object` that must be true, as a ValidatingAdmissionPolicy validation;
//! ValidatingAdmissionPolicy documents can be imported as rules. Rules live in the plugin's
//! configuration, checked by the `config-check` export before the gateway stores it.
//!
//! - `rules.rs`: the configuration, checked and compiled; `policy.rs`: policy imports;
//! - `expr.rs`: the CEL environment (cel-rust plus Kubernetes library functions);
//! - `eval.rs`: a rule on one object; `selector.rs`: label selectors; `kinds.rs`: the
//!   built-in kinds by resource.

use std::collections::{BTreeMap, BTreeSet};

use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{ConfigIssue, Value};

mod eval;
mod expr;
mod kinds;
mod policy;
mod rules;
mod selector;

use eval::Outcome;
use rules::{Rule, Target};

struct Rules;

impl ConfigCheck for Rules {
    fn check_config(config: Value) -> Result<Vec<ConfigIssue>, Error> {
        Ok(rules::compile(&config).err().unwrap_or_default())
    }
}

impl Inspector for Rules {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let config = config::json()?;
        // Stored configurations were checked; one given for a single run (`--config`) or a
        // manifest default may not have been.
        let rules = rules::compile(&config).map_err(|issues| Error::invalid(describe(&issues)))?;
        let targets: BTreeSet<&Target> = rules.iter().flat_map(|r| &r.targets).collect();
        let mut lists = BTreeMap::new();
        for target in targets {
            let listed =
                kube::list_dynamic(&target.api_version, &target.kind, &ListParams::default());
            lists.insert(target.clone(), listed);
        }
        let namespaces = if rules.iter().any(|r| r.uses_namespace) {
            kube::list_dynamic("v1", "Namespace", &ListParams::default())?
        } else {
            Vec::new()
        };
        log::info(format!(
            "{} rules on {} kinds in {}",
            rules.len(),
            lists.len(),
            cluster.name
        ));
        Ok(audit(&rules, &lists, &namespaces))
    }
}

portico_plugin_sdk::export_inspector!(Rules, config_check);

/// Issues as one line each, for an error.
fn describe(issues: &[ConfigIssue]) -> String {
    let lines: Vec<String> = issues
        .iter()
        .map(|i| {
            let mut line = if i.path.is_empty() {
                i.message.clone()
            } else {
                format!("{}: {}", i.path, i.message)
            };
            if let (Some(l), Some(c)) = (i.line, i.column) {
                line.push_str(&format!(" (line {l}, column {c})"));
            }
            line
        })
        .collect();
    format!("the rules configuration is invalid: {}", lines.join("; "))
}

/// Every rule on the objects of its kinds: a failed finding per object that fails or cannot
/// be evaluated, one per kind that could not be listed, and one passed finding for a rule
/// with neither.
pub(crate) fn audit(
    rules: &[Rule],
    lists: &BTreeMap<Target, Result<Vec<Value>, Error>>,
    namespaces: &[Value],
) -> Vec<Finding> {
    let namespaces: BTreeMap<&str, (BTreeMap<String, String>, cel::Value)> = namespaces
        .iter()
        .filter_map(|ns| {
            let name = ns.pointer("/metadata/name")?.as_str()?;
            Some((name, (selector::labels_of(ns), eval::object_value(ns))))
        })
        .collect();
    let mut findings = Vec::new();
    for rule in rules {
        let mut checked = 0usize;
        let mut failed = 0usize;
        for target in &rule.targets {
            let objects = match lists.get(target) {
                Some(Ok(objects)) => objects,
                Some(Err(e)) => {
                    failed += 1;
                    findings.push(
                        Finding::fail(
                            &rule.id,
                            Severity::Info,
                            format!(
                                "could not list {} ({}): {}: {}",
                                target.kind, target.api_version, e.kind, e.message
                            ),
                        )
                        .extra(extra(rule, json!({ "listError": true }))),
                    );
                    continue;
                }
                None => continue,
            };
            for object in objects {
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str);
                let ns = namespace.and_then(|n| namespaces.get(n));
                if !rule.filter.admits(object, ns.map(|(labels, _)| labels)) {
                    continue;
                }
                let namespace_object = ns.map_or(cel::Value::Null, |(_, v)| v.clone());
                let outcome = rule.evaluate(&eval::object_value(object), &namespace_object);
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let finding = match outcome {
                    Outcome::Skipped => continue,
                    Outcome::Pass => {
                        checked += 1;
                        continue;
                    }
                    Outcome::Fail(message) => Finding::fail(&rule.id, rule.severity, message)
                        .extra(extra(rule, json!({}))),
                    Outcome::Error(error) => Finding::fail(
                        &rule.id,
                        rule.severity,
                        format!("the rule could not be evaluated: {error}"),
                    )
                    .extra(extra(rule, json!({ "evaluationError": error }))),
                };
                checked += 1;
                failed += 1;
                findings.push(finding.target(&target.kind, namespace, name));
            }
        }
        if failed == 0 {
            let message = match checked {
                0 => "no object matched".to_owned(),
                1 => "1 object passes".to_owned(),
                n => format!("{n} objects pass"),
            };
            findings.push(Finding::pass(&rule.id, message).extra(extra(rule, json!({}))));
        }
    }
    findings
}

/// A finding's `extra`: the rule's expression and origin, and `more`.
fn extra(rule: &Rule, more: Value) -> Value {
    let mut map = rule.extra.clone();
    map.insert("expression".to_owned(), json!(rule.expression));
    if let Value::Object(more) = more {
        map.extend(more);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests;
