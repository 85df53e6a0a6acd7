//! ValidatingAdmissionPolicy documents (`admissionregistration.k8s.io/v1`) imported as rules,
//! so that existing objects can be audited against the policies admission enforces.
//!
//! Read with k8s-openapi's types. Supported: `matchConstraints.resourceRules` (built-in
//! resources; `resourceNames`; operations must include `CREATE`, `UPDATE` or `*`, as stored
//! objects were created or updated), `excludeResourceRules`, `namespaceSelector`,
//! `objectSelector`, `matchConditions`, `variables`, `validations` (`expression`, `message`,
//! `messageExpression`, `reason`). Refused, with an issue saying so: `paramKind` (there is no
//! binding to find parameters by), bindings, subresources and custom resources by plural.
//! `auditAnnotations` only annotate the audit log and never decide a validation: they are
//! not evaluated, and each finding's `extra` says they were skipped.

use std::sync::Arc;

use portico_plugin_sdk::k8s::api::admissionregistration::v1::{
    NamedRuleWithOperations, ValidatingAdmissionPolicy,
};
use portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use portico_plugin_sdk::{ConfigIssue, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kinds::api_version;
use crate::rules::{
    Filter, NamedExpression, Rule, Target, compile_expression, compile_named, pick_version,
    resolve_resource,
};
use crate::selector::{LabelSelector, Requirement};

/// The annotation that sets a policy's severity (else `policySeverity`).
pub const SEVERITY_ANNOTATION: &str = "portico.io/severity";

/// The rules of `policies[i]`: a policy as a JSON object, or YAML (or JSON) text with one or
/// more documents.
pub fn import(
    raw: &Value,
    path: &str,
    default_severity: Severity,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Rule> {
    let documents: Vec<(String, Value)> = match raw {
        Value::String(text) => {
            let mut documents = Vec::new();
            for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
                let doc_path = format!("{path}#{i}");
                match Value::deserialize(document) {
                    Ok(Value::Null) => {}
                    Ok(value) => documents.push((doc_path, value)),
                    Err(e) => {
                        let mut issue = ConfigIssue::new(
                            doc_path,
                            format!("YAML document {} does not parse: {e}", i + 1),
                        );
                        if let Some(at) = e.location() {
                            issue = issue.at(at.line() as u32, at.column() as u32);
                        }
                        issues.push(issue);
                        // The parser cannot resume after an error.
                        break;
                    }
                }
            }
            documents
        }
        other => vec![(path.to_owned(), other.clone())],
    };
    documents
        .into_iter()
        .flat_map(|(path, document)| import_one(document, &path, default_severity, issues))
        .collect()
}

fn import_one(
    document: Value,
    path: &str,
    default_severity: Severity,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Rule> {
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != "ValidatingAdmissionPolicy" || version != "admissionregistration.k8s.io/v1" {
        let hint = if kind == "ValidatingAdmissionPolicyBinding" {
            ": bindings are not read (a policy applies to every object its matchConstraints \
             match; parameters are not supported)"
        } else {
            ""
        };
        issues.push(ConfigIssue::new(
            path,
            format!(
                "expected an admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, got \
                 `{version}` `{kind}`{hint}"
            ),
        ));
        return Vec::new();
    }
    let policy: ValidatingAdmissionPolicy = match serde_json::from_value(document) {
        Ok(policy) => policy,
        Err(e) => {
            issues.push(ConfigIssue::new(path, format!("not a valid policy: {e}")));
            return Vec::new();
        }
    };
    let before = issues.len();
    let name = policy.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        issues.push(ConfigIssue::new(
            format!("{path}.metadata.name"),
            "must not be empty",
        ));
    }
    let severity = match policy
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SEVERITY_ANNOTATION))
    {
        None => default_severity,
        Some(text) => match serde_json::from_value::<crate::rules::SeverityName>(json!(text)) {
            Ok(s) => s.into(),
            Err(_) => {
                issues.push(ConfigIssue::new(
                    format!("{path}.metadata.annotations"),
                    format!(
                        "{SEVERITY_ANNOTATION}: `{text}` is not info, low, medium, high or critical"
                    ),
                ));
                default_severity
            }
        },
    };
    let Some(spec) = policy.spec else {
        issues.push(ConfigIssue::new(
            format!("{path}.spec"),
            "the policy has no spec",
        ));
        return Vec::new();
    };
    let spec_path = format!("{path}.spec");
    if spec.param_kind.is_some() {
        issues.push(ConfigIssue::new(
            format!("{spec_path}.paramKind"),
            "policies with parameters are not supported: there is no binding to find them by",
        ));
    }
    let validations = spec.validations.unwrap_or_default();
    if validations.is_empty() {
        issues.push(ConfigIssue::new(
            format!("{spec_path}.validations"),
            "the policy has no validations (auditAnnotations alone decide nothing)",
        ));
    }
    let Some(constraints) = spec.match_constraints else {
        issues.push(ConfigIssue::new(
            format!("{spec_path}.matchConstraints"),
            "the policy has no matchConstraints",
        ));
        return Vec::new();
    };
    let constraints_path = format!("{spec_path}.matchConstraints");
    let mut targets = Vec::new();
    let mut names: Option<Vec<String>> = None;
    for (i, rule) in constraints
        .resource_rules
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let rule_path = format!("{constraints_path}.resourceRules[{i}]");
        let ops = rule.operations.clone().unwrap_or_default();
        if !ops
            .iter()
            .any(|o| o == "*" || o == "CREATE" || o == "UPDATE")
        {
            issues.push(ConfigIssue::new(
                format!("{rule_path}.operations"),
                "applies to neither CREATE nor UPDATE, so never to a stored object",
            ));
            continue;
        }
        let rule_names = rule.resource_names.clone().unwrap_or_default();
        if !rule_names.is_empty() {
            names.get_or_insert_with(Vec::new).extend(rule_names);
        }
        targets.extend(rule_targets(rule, &rule_path, issues));
    }
    if targets.is_empty() && issues.len() == before {
        issues.push(ConfigIssue::new(
            format!("{constraints_path}.resourceRules"),
            "matches no resource",
        ));
    }
    let mut excluded = Vec::new();
    for (i, rule) in constraints
        .exclude_resource_rules
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let rule_path = format!("{constraints_path}.excludeResourceRules[{i}]");
        let rule_names = rule.resource_names.clone().unwrap_or_default();
        for target in rule_targets(rule, &rule_path, issues) {
            excluded.push((target, rule_names.clone()));
        }
    }
    let namespace_labels = selector(
        constraints.namespace_selector,
        &format!("{constraints_path}.namespaceSelector"),
        issues,
    );
    let labels = selector(
        constraints.object_selector,
        &format!("{constraints_path}.objectSelector"),
        issues,
    );
    let named = |entries: Vec<(String, String)>| -> Vec<NamedExpression> {
        entries
            .into_iter()
            .map(|(name, expression)| NamedExpression { name, expression })
            .collect()
    };
    let conditions = compile_named(
        &named(
            spec.match_conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.name, c.expression))
                .collect(),
        ),
        &format!("{spec_path}.matchConditions"),
        issues,
    );
    let variables = compile_named(
        &named(
            spec.variables
                .unwrap_or_default()
                .into_iter()
                .map(|v| (v.name, v.expression))
                .collect(),
        ),
        &format!("{spec_path}.variables"),
        issues,
    );
    let mut compiled = Vec::new();
    for (i, validation) in validations.iter().enumerate() {
        let v_path = format!("{spec_path}.validations[{i}]");
        let program = compile_expression(
            &validation.expression,
            &format!("{v_path}.expression"),
            issues,
        );
        let message_expression = validation.message_expression.as_deref().and_then(|source| {
            compile_expression(source, &format!("{v_path}.messageExpression"), issues)
        });
        compiled.push((validation, program, message_expression));
    }
    if issues.len() > before {
        return Vec::new();
    }
    let filter = Filter {
        names,
        namespaces: None,
        exclude_namespaces: Vec::new(),
        labels,
        namespace_labels,
        excluded,
    };
    let conditions = Arc::new(conditions);
    let variables = Arc::new(variables);
    let audit_annotations = spec.audit_annotations.map_or(0, |a| a.len());
    let single = compiled.len() == 1;
    compiled
        .into_iter()
        .enumerate()
        .filter_map(|(i, (validation, program, message_expression))| {
            let mut extra = serde_json::Map::new();
            extra.insert("policy".to_owned(), json!(name));
            extra.insert("validation".to_owned(), json!(i));
            if let Some(reason) = &validation.reason {
                extra.insert("reason".to_owned(), json!(reason));
            }
            if audit_annotations > 0 {
                extra.insert(
                    "auditAnnotationsSkipped".to_owned(),
                    json!(audit_annotations),
                );
            }
            Some(Rule::new(
                if single {
                    name.clone()
                } else {
                    format!("{name}/{i}")
                },
                severity,
                targets.clone(),
                filter.clone(),
                conditions.clone(),
                variables.clone(),
                validation.expression.clone(),
                program?,
                validation.message.clone(),
                message_expression,
                extra,
            ))
        })
        .collect()
}

/// The built-in kinds one resource rule names.
fn rule_targets(
    rule: &NamedRuleWithOperations,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Target> {
    let groups = rule.api_groups.clone().unwrap_or_default();
    let resources = rule.resources.clone().unwrap_or_default();
    if groups.is_empty() || resources.is_empty() {
        issues.push(ConfigIssue::new(path, "needs apiGroups and resources"));
        return Vec::new();
    }
    let mut targets = Vec::new();
    for group in &groups {
        for resource in &resources {
            for builtin in resolve_resource(group, resource, path, issues) {
                let scope_ok = match rule.scope.as_deref() {
                    Some("Namespaced") => builtin.namespaced,
                    Some("Cluster") => !builtin.namespaced,
                    _ => true,
                };
                if scope_ok {
                    let version = pick_version(builtin, rule.api_versions.as_deref());
                    targets.push(Target {
                        api_version: api_version(builtin.group, &version),
                        kind: builtin.kind.to_owned(),
                    });
                }
            }
        }
    }
    targets.sort();
    targets.dedup();
    targets
}

fn selector(
    selector: Option<K8sSelector>,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<LabelSelector> {
    let selector = selector?;
    let converted = LabelSelector {
        match_labels: selector.match_labels.unwrap_or_default(),
        match_expressions: selector
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(|r| Requirement {
                key: r.key,
                operator: r.operator,
                values: r.values.unwrap_or_default(),
            })
            .collect(),
    };
    for problem in converted.problems() {
        issues.push(ConfigIssue::new(path, problem));
    }
    // An empty selector matches everything, as in Kubernetes.
    Some(converted)
}
