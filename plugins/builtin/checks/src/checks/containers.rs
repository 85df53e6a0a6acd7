//! Container settings: probes present, privileges, security contexts, service accounts.

use portico_plugin_sdk::k8s::api::core::v1::{Container, Pod, PodSpec};
use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "container-missing-probes",
        severity: Severity::Low,
        passes: "every long-running container has liveness and readiness probes",
    },
    Check {
        id: "container-privileged",
        severity: Severity::High,
        passes: "no container runs privileged",
    },
    Check {
        id: "security-context-missing",
        severity: Severity::Low,
        passes: "every pod or container sets a securityContext",
    },
    Check {
        id: "default-service-account",
        severity: Severity::Low,
        passes: "no pod runs as the default service account",
    },
];

/// Init containers then containers.
pub fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

pub fn run(s: &Snapshot, report: &mut Report) {
    for pod in &s.pods {
        let Some(spec) = &pod.spec else { continue };
        let all: Vec<&Container> = all_containers(spec).collect();

        // Pods of Jobs run to completion: probes make no sense there.
        if !owned_by(pod, "Job") {
            let mut missing = Vec::new();
            for c in &spec.containers {
                if c.liveness_probe.is_none() {
                    missing.push(format!("{}: liveness", c.name));
                }
                if c.readiness_probe.is_none() {
                    missing.push(format!("{}: readiness", c.name));
                }
            }
            if !missing.is_empty() {
                report.fail(
                    "container-missing-probes",
                    pod,
                    format!("missing probes: {}", missing.join(", ")),
                    json!({ "missing": missing }),
                );
            }
        }

        let privileged: Vec<&str> = all
            .iter()
            .filter(|c| {
                c.security_context
                    .as_ref()
                    .and_then(|sc| sc.privileged)
                    .unwrap_or(false)
            })
            .map(|c| c.name.as_str())
            .collect();
        if !privileged.is_empty() {
            report.fail(
                "container-privileged",
                pod,
                format!("privileged containers: {}", privileged.join(", ")),
                json!({ "containers": privileged }),
            );
        }

        if spec.security_context.is_none() {
            let without: Vec<&str> = all
                .iter()
                .filter(|c| c.security_context.is_none())
                .map(|c| c.name.as_str())
                .collect();
            if !without.is_empty() {
                report.fail(
                    "security-context-missing",
                    pod,
                    format!(
                        "no pod securityContext and none on containers: {}",
                        without.join(", ")
                    ),
                    json!({ "containers": without }),
                );
            }
        }

        if uses_default_service_account(spec) {
            report.fail(
                "default-service-account",
                pod,
                "pod runs as the namespace's default service account".to_owned(),
                Value::Null,
            );
        }
    }
}

fn uses_default_service_account(spec: &PodSpec) -> bool {
    let account = spec
        .service_account_name
        .as_deref()
        .filter(|a| !a.is_empty())
        .or(spec.service_account.as_deref().filter(|a| !a.is_empty()));
    account.is_none_or(|a| a == "default")
}

pub fn owned_by(pod: &Pod, kind: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == kind)
}
