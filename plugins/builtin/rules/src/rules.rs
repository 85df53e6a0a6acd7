//! The configuration (`rules`, `policies`, `policySeverity`), checked and compiled into
//! [`Rule`]s. Every problem is a [`ConfigIssue`] naming where it is: the gateway refuses a
//! configuration with issues before storing it, and an inspection refuses to run with one.

use std::sync::Arc;

use cel::Program;
use portico_plugin_sdk::{ConfigIssue, Severity};
use serde::Deserialize;
use serde_json::Value;

use crate::expr;
use crate::kinds::{self, api_version};
use crate::policy;
use crate::selector::LabelSelector;

/// A rule as written in `rules[]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleSpec {
    id: String,
    #[serde(rename = "match")]
    matching: MatchSpec,
    expression: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_expression: Option<String>,
    #[serde(default)]
    severity: Option<SeverityName>,
    #[serde(default)]
    variables: Vec<NamedExpression>,
}

/// What a rule applies to.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MatchSpec {
    /// `apps/v1`: with `kinds`, any kind, custom resources included.
    #[serde(default)]
    api_version: Option<String>,
    /// With `resources` (or `kinds`): built-in kinds of these groups (`""` core, `*` any).
    #[serde(default)]
    api_groups: Option<Vec<String>>,
    #[serde(default)]
    api_versions: Option<Vec<String>>,
    #[serde(default)]
    kinds: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    exclude_namespaces: Vec<String>,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    namespace_selector: Option<LabelSelector>,
}

/// A `variables[]` entry (or a matchCondition): a name and an expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedExpression {
    pub name: String,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityName {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeverityName> for Severity {
    fn from(s: SeverityName) -> Self {
        match s {
            SeverityName::Info => Severity::Info,
            SeverityName::Low => Severity::Low,
            SeverityName::Medium => Severity::Medium,
            SeverityName::High => Severity::High,
            SeverityName::Critical => Severity::Critical,
        }
    }
}

/// One kind a rule lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub api_version: String,
    pub kind: String,
}

/// Which objects of its targets a rule applies to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub names: Option<Vec<String>>,
    pub namespaces: Option<Vec<String>>,
    pub exclude_namespaces: Vec<String>,
    pub labels: Option<LabelSelector>,
    pub namespace_labels: Option<LabelSelector>,
    /// (kind, names: empty for all) left out, from `excludeResourceRules`.
    pub excluded: Vec<(Target, Vec<String>)>,
}

/// A rule ready to run.
#[derive(Debug)]
pub struct Rule {
    /// The finding's check id.
    pub id: String,
    pub severity: Severity,
    pub targets: Vec<Target>,
    pub filter: Filter,
    /// All must be true for the rule to apply (a policy's `matchConditions`).
    pub conditions: Arc<Vec<(String, Program)>>,
    /// `variables.NAME`, evaluated in order (a later one may use an earlier one).
    pub variables: Arc<Vec<(String, Program)>>,
    pub expression: String,
    pub program: Program,
    pub message: Option<String>,
    pub message_expression: Option<Program>,
    /// Whether an expression reads `namespaceObject` (the plugin then lists Namespaces).
    pub uses_namespace: bool,
    /// Added to each finding's `extra` (the policy and its `reason`).
    pub extra: serde_json::Map<String, Value>,
}

/// The configuration's rules, or every problem it has.
pub fn compile(config: &Value) -> Result<Vec<Rule>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut rules = Vec::new();
    let Some(top) = config.as_object() else {
        return Err(vec![ConfigIssue::new(
            "",
            "the configuration must be a JSON object with `rules` and/or `policies`",
        )]);
    };
    for key in top.keys() {
        if !["rules", "policies", "policySeverity"].contains(&key.as_str()) {
            issues.push(ConfigIssue::new(
                key.clone(),
                "unknown key (expected `rules`, `policies`, `policySeverity`)",
            ));
        }
    }
    let policy_severity = match top.get("policySeverity") {
        None => Severity::Medium,
        Some(v) => match serde_json::from_value::<SeverityName>(v.clone()) {
            Ok(s) => s.into(),
            Err(e) => {
                issues.push(ConfigIssue::new("policySeverity", e.to_string()));
                Severity::Medium
            }
        },
    };
    let mut ids = std::collections::BTreeSet::new();
    for (i, raw) in array(top.get("rules"), "rules", &mut issues)
        .iter()
        .enumerate()
    {
        let path = format!("rules[{i}]");
        match serde_json::from_value::<RuleSpec>((*raw).clone()) {
            Ok(spec) => {
                if let Some(rule) = compile_rule(spec, &path, &mut issues) {
                    if !ids.insert(rule.id.clone()) {
                        issues.push(ConfigIssue::new(
                            format!("{path}.id"),
                            format!("rule id `{}` is used twice", rule.id),
                        ));
                    }
                    rules.push(rule);
                }
            }
            Err(e) => issues.push(ConfigIssue::new(path, e.to_string())),
        }
    }
    for (i, raw) in array(top.get("policies"), "policies", &mut issues)
        .iter()
        .enumerate()
    {
        let path = format!("policies[{i}]");
        for rule in policy::import(raw, &path, policy_severity, &mut issues) {
            if !ids.insert(rule.id.clone()) {
                issues.push(ConfigIssue::new(
                    path.clone(),
                    format!("rule id `{}` is used twice", rule.id),
                ));
            }
            rules.push(rule);
        }
    }
    if issues.is_empty() {
        Ok(rules)
    } else {
        Err(issues)
    }
}

fn array<'a>(
    value: Option<&'a Value>,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<&'a Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => {
            issues.push(ConfigIssue::new(path, "must be a list"));
            Vec::new()
        }
    }
}

/// Compiles `source` found at `path`; a parse error is an issue with its position.
pub fn compile_expression(
    source: &str,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Program> {
    match expr::compile(source) {
        Ok(program) => {
            let refs = program.references();
            for unavailable in ["request", "authorizer"] {
                if refs.has_variable(unavailable) {
                    issues.push(ConfigIssue::new(
                        path,
                        format!(
                            "`{unavailable}` is not available: rules audit stored objects, there \
                             is no admission request"
                        ),
                    ));
                }
            }
            Some(program)
        }
        Err(e) => {
            issues.push(
                ConfigIssue::new(
                    path,
                    format!("the CEL expression does not compile: {}", e.message),
                )
                .at(e.line, e.column),
            );
            None
        }
    }
}

/// Compiles named expressions (`variables`, `matchConditions`) under `path[i].expression`.
pub fn compile_named(
    entries: &[NamedExpression],
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<(String, Program)> {
    let mut compiled = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.name.is_empty() {
            issues.push(ConfigIssue::new(
                format!("{path}[{i}].name"),
                "must not be empty",
            ));
        }
        if let Some(program) = compile_expression(
            &entry.expression,
            &format!("{path}[{i}].expression"),
            issues,
        ) {
            compiled.push((entry.name.clone(), program));
        }
    }
    compiled
}

fn compile_rule(spec: RuleSpec, path: &str, issues: &mut Vec<ConfigIssue>) -> Option<Rule> {
    let before = issues.len();
    if spec.id.trim().is_empty() {
        issues.push(ConfigIssue::new(format!("{path}.id"), "must not be empty"));
    }
    let targets = match_targets(&spec.matching, &format!("{path}.match"), issues);
    for (what, selector) in [
        ("labelSelector", &spec.matching.label_selector),
        ("namespaceSelector", &spec.matching.namespace_selector),
    ] {
        for problem in selector.iter().flat_map(LabelSelector::problems) {
            issues.push(ConfigIssue::new(format!("{path}.match.{what}"), problem));
        }
    }
    let variables = compile_named(&spec.variables, &format!("{path}.variables"), issues);
    let program = compile_expression(&spec.expression, &format!("{path}.expression"), issues);
    let message_expression = spec.message_expression.as_deref().and_then(|source| {
        compile_expression(source, &format!("{path}.messageExpression"), issues)
    });
    if issues.len() > before {
        return None;
    }
    let MatchSpec {
        names,
        namespaces,
        exclude_namespaces,
        label_selector,
        namespace_selector,
        ..
    } = spec.matching;
    let filter = Filter {
        names,
        namespaces,
        exclude_namespaces,
        labels: label_selector,
        namespace_labels: namespace_selector,
        excluded: Vec::new(),
    };
    Some(Rule::new(
        spec.id,
        spec.severity.map_or(Severity::Medium, Severity::from),
        targets,
        filter,
        Arc::new(Vec::new()),
        Arc::new(variables),
        spec.expression,
        program?,
        spec.message,
        message_expression,
        serde_json::Map::new(),
    ))
}

impl Rule {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        severity: Severity,
        targets: Vec<Target>,
        filter: Filter,
        conditions: Arc<Vec<(String, Program)>>,
        variables: Arc<Vec<(String, Program)>>,
        expression: String,
        program: Program,
        message: Option<String>,
        message_expression: Option<Program>,
        extra: serde_json::Map<String, Value>,
    ) -> Self {
        let reads_namespace = |p: &Program| p.references().has_variable("namespaceObject");
        let uses_namespace = filter.namespace_labels.is_some()
            || reads_namespace(&program)
            || message_expression.as_ref().is_some_and(reads_namespace)
            || variables.iter().any(|(_, p)| reads_namespace(p))
            || conditions.iter().any(|(_, p)| reads_namespace(p));
        Self {
            id,
            severity,
            targets,
            filter,
            conditions,
            variables,
            expression,
            program,
            message,
            message_expression,
            uses_namespace,
            extra,
        }
    }
}

/// The kinds `matching` names: `apiVersion` + `kinds` as written, else built-in kinds by
/// `apiGroups` (+ `apiVersions`) and `resources` or `kinds`.
fn match_targets(matching: &MatchSpec, path: &str, issues: &mut Vec<ConfigIssue>) -> Vec<Target> {
    let mut targets = Vec::new();
    let kinds = matching.kinds.as_deref().unwrap_or_default();
    let resources = matching.resources.as_deref().unwrap_or_default();
    if kinds.is_empty() == resources.is_empty() {
        issues.push(ConfigIssue::new(
            path,
            "name what the rule applies to with either `kinds` or `resources`",
        ));
        return targets;
    }
    if let Some(api_version) = &matching.api_version {
        if matching.api_groups.is_some() || matching.api_versions.is_some() || !resources.is_empty()
        {
            issues.push(ConfigIssue::new(
                path,
                "`apiVersion` goes with `kinds` alone (for `resources`, use `apiGroups` and \
                 `apiVersions`)",
            ));
            return targets;
        }
        for kind in kinds {
            targets.push(Target {
                api_version: api_version.clone(),
                kind: kind.clone(),
            });
        }
        return targets;
    }
    let groups: Vec<Option<&str>> = match &matching.api_groups {
        Some(groups) => groups.iter().map(|g| Some(g.as_str())).collect(),
        None => vec![None],
    };
    let versions = matching.api_versions.as_deref();
    for group in groups {
        let found: Vec<&kinds::BuiltinKind> = if resources.is_empty() {
            kinds
                .iter()
                .flat_map(|kind| {
                    let found: Vec<_> = kinds::by_kind(group, kind).collect();
                    if found.is_empty() {
                        issues.push(ConfigIssue::new(
                            path,
                            format!(
                                "kind `{kind}` is not a built-in kind{}: name custom resources \
                                 with `apiVersion` and `kinds`",
                                group
                                    .map(|g| format!(" of group `{g}`"))
                                    .unwrap_or_default()
                            ),
                        ));
                    } else if group.is_none() && found.len() > 1 {
                        issues.push(ConfigIssue::new(
                            path,
                            format!(
                                "kind `{kind}` is in several groups ({}): give `apiVersion` or \
                                 `apiGroups`",
                                found
                                    .iter()
                                    .map(|b| b.api_version())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                    found
                })
                .collect()
        } else {
            let group = group.unwrap_or("");
            resources
                .iter()
                .flat_map(|resource| resolve_resource(group, resource, path, issues))
                .collect()
        };
        for builtin in found {
            let version = pick_version(builtin, versions);
            targets.push(Target {
                api_version: api_version(builtin.group, &version),
                kind: builtin.kind.to_owned(),
            });
        }
    }
    targets.sort();
    targets.dedup();
    targets
}

/// The built-in kinds a ValidatingAdmissionPolicy-style (group, resource) names.
pub fn resolve_resource(
    group: &str,
    resource: &str,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<&'static kinds::BuiltinKind> {
    if resource.contains('/') {
        issues.push(ConfigIssue::new(
            path,
            format!(
                "resource `{resource}`: subresources are not supported (rules read stored \
                 objects)"
            ),
        ));
        return Vec::new();
    }
    let found: Vec<_> = kinds::by_resource(group, resource).collect();
    if found.is_empty() {
        issues.push(ConfigIssue::new(
            path,
            format!(
                "resource `{resource}` of group `{group}` is not a built-in kind: name custom \
                 resources in `rules` with `apiVersion` and `kinds`"
            ),
        ));
    }
    found
}

/// The version to list `builtin` at: k8s-openapi's, when `versions` allows it (or says
/// nothing), else the first one named (the cluster may still serve it).
pub fn pick_version(builtin: &kinds::BuiltinKind, versions: Option<&[String]>) -> String {
    match versions {
        Some(v) if !v.iter().any(|v| v == "*" || v == builtin.version) && !v.is_empty() => {
            v[0].clone()
        }
        _ => builtin.version.to_owned(),
    }
}
