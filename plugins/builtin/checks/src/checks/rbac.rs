//! RBAC: bindings that grant wildcard permissions.

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use portico_plugin_sdk::prelude::*;

use crate::report::{Check, Report, Target};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[Check {
    id: "rbac-wildcard-binding",
    severity: Severity::Medium,
    passes: "no RoleBinding or ClusterRoleBinding grants a role with wildcard verbs or resources",
}];

/// The apiserver's own bootstrap policy (cluster-admin bound to system:masters, …) carries this
/// label; it is how Kubernetes works, not a finding.
const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

pub fn run(s: &Snapshot, report: &mut Report) {
    for binding in &s.role_bindings {
        check(
            s,
            report,
            "RoleBinding",
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
        );
    }
    for binding in &s.cluster_role_bindings {
        check(
            s,
            report,
            "ClusterRoleBinding",
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
        );
    }
}

fn check(
    s: &Snapshot,
    report: &mut Report,
    kind: &str,
    meta: &ObjectMeta,
    role_ref: &RoleRef,
    subjects: Option<&[Subject]>,
) {
    let bootstrap = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(BOOTSTRAP_LABEL.0))
        .map(String::as_str)
        == Some(BOOTSTRAP_LABEL.1);
    if bootstrap {
        return;
    }
    // A RoleBinding may grant a Role of its namespace or a ClusterRole (within the namespace).
    let rules: Option<&[PolicyRule]> = match role_ref.kind.as_str() {
        "Role" => s
            .roles
            .iter()
            .find(|r| {
                r.metadata.namespace == meta.namespace
                    && r.metadata.name.as_deref() == Some(role_ref.name.as_str())
            })
            .and_then(|r| r.rules.as_deref()),
        "ClusterRole" => s
            .cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(role_ref.name.as_str()))
            .and_then(|r| r.rules.as_deref()),
        _ => None,
    };
    let wildcard: Vec<_> = rules
        .into_iter()
        .flatten()
        .filter(|rule| {
            rule.verbs.iter().any(|v| v == "*") || rule.resources.iter().flatten().any(|r| r == "*")
        })
        .map(|rule| {
            json!({
                "apiGroups": rule.api_groups,
                "resources": rule.resources,
                "verbs": rule.verbs,
            })
        })
        .collect();
    if wildcard.is_empty() {
        return;
    }
    let subjects: Vec<String> = subjects
        .into_iter()
        .flatten()
        .map(|s| match &s.namespace {
            Some(ns) => format!("{} {ns}/{}", s.kind, s.name),
            None => format!("{} {}", s.kind, s.name),
        })
        .collect();
    report.fail_on(
        "rbac-wildcard-binding",
        Target {
            kind,
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref().unwrap_or_default(),
        },
        format!(
            "grants {} {} with wildcard rules ({} of them) to {}",
            role_ref.kind,
            role_ref.name,
            wildcard.len(),
            if subjects.is_empty() {
                "no subjects".to_owned()
            } else {
                subjects.join(", ")
            }
        ),
        json!({
            "role": {"kind": role_ref.kind, "name": role_ref.name},
            "rules": wildcard,
            "subjects": subjects,
        }),
    );
}
