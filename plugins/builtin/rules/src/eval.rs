//! Running a rule on one object, as the apiserver runs a ValidatingAdmissionPolicy
//! validation: the expression must be true; false fails with `message`, the evaluated
//! `messageExpression` or `failed expression: EXPR`; an error is reported as such.

use std::collections::{BTreeMap, HashMap};

use cel::{Context, ExecutionError, Value};

use crate::expr;
use crate::rules::{Filter, Rule};
use crate::selector::labels_of;

/// What a rule made of one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A matchCondition is false: the rule does not apply.
    Skipped,
    Pass,
    /// The expression is false; the message.
    Fail(String),
    /// The rule could not be evaluated; why.
    Error(String),
}

impl Filter {
    /// Whether an object (its namespace's labels when it has a namespace, if known) is one
    /// the rule applies to. Namespace constraints leave cluster-scoped objects alone, as a
    /// ValidatingAdmissionPolicy's namespaceSelector does (Namespace objects aside, which
    /// are matched by their own labels).
    pub fn admits(
        &self,
        object: &serde_json::Value,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let name = str_at(object, "/metadata/name").unwrap_or_default();
        let namespace = str_at(object, "/metadata/namespace");
        let kind = str_at(object, "/kind").unwrap_or_default();
        if let Some(names) = &self.names
            && !names.iter().any(|n| n == name)
        {
            return false;
        }
        if self.excluded.iter().any(|(target, names)| {
            target.kind == kind
                && str_at(object, "/apiVersion")
                    .is_some_and(|v| group(v) == group(&target.api_version))
                && (names.is_empty() || names.iter().any(|n| n == name))
        }) {
            return false;
        }
        if let Some(namespace) = namespace {
            if let Some(namespaces) = &self.namespaces
                && !namespaces.iter().any(|n| n == namespace)
            {
                return false;
            }
            if self.exclude_namespaces.iter().any(|n| n == namespace) {
                return false;
            }
        }
        if let Some(selector) = &self.namespace_labels {
            let own;
            let labels = if kind == "Namespace" && namespace.is_none() {
                own = labels_of(object);
                Some(&own)
            } else if namespace.is_some() {
                namespace_labels
            } else {
                // Cluster-scoped: not constrained by namespaces.
                None
            };
            let applies_to_namespace = kind == "Namespace" || namespace.is_some();
            if applies_to_namespace && !labels.is_some_and(|l| selector.matches(l)) {
                return false;
            }
        }
        if let Some(selector) = &self.labels
            && !selector.matches(&labels_of(object))
        {
            return false;
        }
        true
    }
}

fn str_at<'a>(object: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(serde_json::Value::as_str)
}

/// The group of an apiVersion (`""` for `v1`).
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Rule {
    /// Evaluates the rule on `object`, with `namespace_object` as `namespaceObject` (null for
    /// cluster-scoped objects).
    pub fn evaluate(&self, object: &Value, namespace_object: &Value) -> Outcome {
        let mut context = Context::with_env(expr::env().clone());
        context.add_variable_from_value("object", object.clone());
        // As on CREATE: there is no previous version of a stored object to compare with.
        context.add_variable_from_value("oldObject", Value::Null);
        // No parameters (paramKind is refused), so `params` is null as the apiserver has it.
        context.add_variable_from_value("params", Value::Null);
        context.add_variable_from_value("namespaceObject", namespace_object.clone());

        // Variables in order, each seeing the ones before it. The apiserver evaluates them
        // lazily, so one that fails only matters where it is used: a failed one is left out
        // and named when an expression then misses it.
        let mut variables: HashMap<String, Value> = HashMap::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        for (name, program) in self.variables.iter() {
            context.add_variable_from_value("variables", variables.clone());
            match program.execute(&context) {
                Ok(value) => {
                    variables.insert(name.clone(), value);
                }
                Err(e) => {
                    failed.insert(name.clone(), e.to_string());
                }
            }
        }
        context.add_variable_from_value("variables", variables);
        let explain = |e: ExecutionError| match &e {
            ExecutionError::NoSuchKey(key) if failed.contains_key(key.as_str()) => {
                format!("variable `{key}` failed: {}", failed[key.as_str()])
            }
            _ => e.to_string(),
        };

        for (name, program) in self.conditions.iter() {
            match program.execute(&context) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => return Outcome::Skipped,
                Ok(other) => {
                    return Outcome::Error(format!(
                        "matchCondition `{name}` returned {}, not a bool",
                        type_name(&other)
                    ));
                }
                Err(e) => {
                    return Outcome::Error(format!("matchCondition `{name}`: {}", explain(e)));
                }
            }
        }

        match self.program.execute(&context) {
            Ok(Value::Bool(true)) => Outcome::Pass,
            Ok(Value::Bool(false)) => Outcome::Fail(self.failure_message(&context)),
            Ok(other) => Outcome::Error(format!(
                "the expression returned {}, not a bool",
                type_name(&other)
            )),
            Err(e) => Outcome::Error(explain(e)),
        }
    }

    /// The apiserver's choice (apiserver's `validating/validator.go`): `messageExpression`
    /// when it evaluates to a string that, trimmed, is non-empty, on one line and at most
    /// 5 KiB; else `message`, trimmed; else `failed expression: EXPR`.
    fn failure_message(&self, context: &Context<'_, '_>) -> String {
        /// `celconfig.MaxEvaluatedMessageExpressionSizeBytes`.
        const MAX_MESSAGE: usize = 5 * 1024;
        if let Some(program) = &self.message_expression
            && let Ok(Value::String(text)) = program.execute(context)
        {
            let text = text.trim();
            if !text.is_empty() && text.len() <= MAX_MESSAGE && !text.contains('\n') {
                return text.to_owned();
            }
        }
        match self.message.as_deref().map(str::trim) {
            Some(message) if !message.is_empty() => message.to_owned(),
            _ => format!("failed expression: {}", self.expression.trim()),
        }
    }
}

fn type_name(value: &Value) -> String {
    format!("{:?}", value.type_of()).to_lowercase()
}

/// An object as the CEL value rules see.
pub fn object_value(object: &serde_json::Value) -> Value {
    expr::json_to_cel(object)
}
