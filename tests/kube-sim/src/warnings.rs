//! `Warning` response headers, as the apiserver sends them (`Warning: 299 - "text"`; clients
//! such as kubectl print `Warning: text`).
//!
//! A documented subset of the apiserver's warnings on create and update:
//! - pods and pod templates (`pkg/api/pod/warnings.go`, `GetWarningsForPod` and
//!   `GetWarningsForPodTemplate`): deprecated node labels in `nodeSelector` and node affinity
//!   terms (`pkg/api/node/util.go`), deprecated annotations
//!   (`scheduler.alpha.kubernetes.io/critical-pod`, `security.alpha.kubernetes.io/sysctls`,
//!   `…/unsafe-sysctls`, the seccomp pod annotation without `seccompProfile`), duplicate
//!   `imagePullSecrets` names, an `env` entry hiding an earlier one;
//!
//! Deprecated API versions would also warn, but the simulator serves none.

use serde_json::Value;

use crate::resources::ResourceInfo;

/// Deprecated node labels and the apiserver's message for each (`pkg/api/node/util.go`).
const DEPRECATED_NODE_LABELS: &[(&str, &str)] = &[
    (
        "beta.kubernetes.io/arch",
        "deprecated since v1.14; use \"kubernetes.io/arch\" instead",
    ),
    (
        "beta.kubernetes.io/os",
        "deprecated since v1.14; use \"kubernetes.io/os\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "deprecated since v1.17; use \"topology.kubernetes.io/region\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead",
    ),
];

const DEPRECATED_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "scheduler.alpha.kubernetes.io/critical-pod",
        "non-functional in v1.16+; use the \"priorityClassName\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/unsafe-sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
];

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";

fn node_label_message(key: &str) -> Option<&'static str> {
    DEPRECATED_NODE_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| *m)
}

/// `field.Path` rendering of a map key: `spec.nodeSelector[beta.kubernetes.io/os]`.
fn key_path(prefix: &str, field: &str, key: &str) -> String {
    format!("{prefix}{field}[{key}]")
}

/// Warnings for a pod spec and its metadata; `prefix` is `""` for pods and
/// `spec.template.` for templates (the apiserver's `fieldPath`).
fn pod_warnings(prefix: &str, meta: &Value, spec: &Value, out: &mut Vec<String>) {
    if let Some(sel) = spec.get("nodeSelector").and_then(Value::as_object) {
        for k in sel.keys() {
            if let Some(msg) = node_label_message(k) {
                out.push(format!(
                    "{}: {msg}",
                    key_path(prefix, "spec.nodeSelector", k)
                ));
            }
        }
    }
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    for (i, term) in terms.into_iter().flatten().enumerate() {
        let exprs = term.get("matchExpressions").and_then(Value::as_array);
        for (j, e) in exprs.into_iter().flatten().enumerate() {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            if let Some(msg) = node_label_message(key) {
                out.push(format!(
                    "{prefix}spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}].matchExpressions[{j}].key: {key} is {msg}"
                ));
            }
        }
    }
    let annotations = meta.get("annotations").and_then(Value::as_object);
    for (key, msg) in DEPRECATED_ANNOTATIONS {
        if annotations.is_some_and(|a| a.contains_key(*key)) {
            out.push(format!(
                "{}: {msg}",
                key_path(prefix, "metadata.annotations", key)
            ));
        }
    }
    if spec.pointer("/securityContext/seccompProfile").is_none()
        && annotations.is_some_and(|a| a.contains_key(SECCOMP_POD_ANNOTATION))
    {
        out.push(format!(
            "{}: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            key_path(prefix, "metadata.annotations", SECCOMP_POD_ANNOTATION)
        ));
    }
    let pull = spec.get("imagePullSecrets").and_then(Value::as_array);
    let mut seen: Vec<&str> = Vec::new();
    for (i, s) in pull.into_iter().flatten().enumerate() {
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        if seen.contains(&name) {
            out.push(format!(
                "{prefix}spec.imagePullSecrets[{i}].name: duplicate name {name:?}"
            ));
        } else {
            seen.push(name);
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (ci, c) in containers.into_iter().flatten().enumerate() {
            let env = c.get("env").and_then(Value::as_array);
            let mut names: Vec<&str> = Vec::new();
            for (i, e) in env.into_iter().flatten().enumerate() {
                let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
                if !names.contains(&name) {
                    names.push(name);
                    continue;
                }
                let value = e.get("value").and_then(Value::as_str).unwrap_or_default();
                let reference = format!("$({name})");
                let bad = e.get("valueFrom").is_some()
                    || value == reference
                    || !value.contains(&reference);
                if bad {
                    out.push(format!(
                        "{prefix}spec.{list}[{ci}].env[{i}]: hides previous definition of {name:?}, which may be dropped when using apply"
                    ));
                }
            }
        }
    }
}

/// The warnings the apiserver would send for creating or updating `obj`.
pub fn for_object(res: &ResourceInfo, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    let template = |p: &str| obj.pointer(p);
    match (res.group, res.plural) {
        ("", "pods") => pod_warnings("", meta, obj.get("spec").unwrap_or(&empty), &mut out),
        ("apps", _) | ("batch", "jobs") => {
            if let Some(t) = template("/spec/template") {
                pod_warnings(
                    "spec.template.",
                    t.get("metadata").unwrap_or(&empty),
                    t.get("spec").unwrap_or(&empty),
                    &mut out,
                );
            }
        }
        ("batch", "cronjobs") => {
            if let Some(t) = template("/spec/jobTemplate/spec/template") {
                pod_warnings(
                    "spec.jobTemplate.spec.template.",
                    t.get("metadata").unwrap_or(&empty),
                    t.get("spec").unwrap_or(&empty),
                    &mut out,
                );
            }
        }
        _ => {}
    }
    out
}

/// Adds one `Warning: 299 - "text"` header per warning (RFC 7234 warn-code 299, agent `-`,
/// quotes and backslashes escaped, as `k8s.io/apiserver/pkg/warning` writes them).
pub fn add_headers(headers: &mut http::HeaderMap, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            headers.append(http::header::WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests;
