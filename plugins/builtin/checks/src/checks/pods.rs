//! Pod phases and container states.

use portico_plugin_sdk::k8s::api::core::v1::ContainerStatus;
use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "pod-failed",
        severity: Severity::High,
        passes: "no pod is in phase Failed",
    },
    Check {
        id: "pod-crash-loop",
        severity: Severity::High,
        passes: "no container is in CrashLoopBackOff",
    },
    Check {
        id: "pod-pending",
        severity: Severity::Medium,
        passes: "no pod is stuck in phase Pending",
    },
    Check {
        id: "pod-not-ready",
        severity: Severity::Medium,
        passes: "every running pod is Ready",
    },
    Check {
        id: "container-error",
        severity: Severity::High,
        passes: "no container fails to pull, to be created or to start, or exited with an error",
    },
];

/// Waiting reasons of the kubelet that mean the container cannot start until someone acts
/// (`pkg/kubelet/images` and `kuberuntime`); `CrashLoopBackOff` has its own check.
const WAITING_ERRORS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "ImageInspectError",
    "InvalidImageName",
    "CreateContainerConfigError",
    "PreCreateHookError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
];

pub fn run(s: &Snapshot, report: &mut Report) {
    for pod in &s.pods {
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.as_deref().unwrap_or("Unknown");
        match phase {
            "Failed" => report.fail(
                "pod-failed",
                pod,
                format!(
                    "pod failed: {}",
                    status
                        .reason
                        .as_deref()
                        .or(status.message.as_deref())
                        .unwrap_or("no reason given")
                ),
                Value::Null,
            ),
            "Pending" => report.fail(
                "pod-pending",
                pod,
                format!(
                    "pod is Pending{}",
                    status
                        .conditions
                        .iter()
                        .flatten()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                        .and_then(|c| c.message.as_deref())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                Value::Null,
            ),
            _ => {}
        }
        let statuses: Vec<&ContainerStatus> = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .collect();
        let crash_looping: Vec<&str> = statuses
            .iter()
            .filter(|c| waiting_reason(c) == Some("CrashLoopBackOff"))
            .map(|c| c.name.as_str())
            .collect();
        if !crash_looping.is_empty() {
            report.fail(
                "pod-crash-loop",
                pod,
                format!(
                    "containers in CrashLoopBackOff: {}",
                    crash_looping.join(", ")
                ),
                json!({ "containers": crash_looping }),
            );
        }
        container_errors(pod, &statuses, report);
        if phase == "Running" {
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if !ready {
                let not_ready: Vec<&str> = status
                    .container_statuses
                    .iter()
                    .flatten()
                    .filter(|c| !c.ready)
                    .map(|c| c.name.as_str())
                    .collect();
                report.fail(
                    "pod-not-ready",
                    pod,
                    format!(
                        "running pod is not Ready (containers not ready: {})",
                        not_ready.join(", ")
                    ),
                    json!({ "containers": not_ready }),
                );
            }
        }
    }
}

fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
    c.state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref())
}

/// `container-error`: waiting for a reason that needs a fix, or terminated with a non-zero
/// exit code (its current state, not a past restart).
fn container_errors(
    pod: &portico_plugin_sdk::k8s::api::core::v1::Pod,
    statuses: &[&ContainerStatus],
    report: &mut Report,
) {
    let mut errors = Vec::new();
    let mut summary = Vec::new();
    for c in statuses {
        let state = c.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref())
            && let Some(reason) = waiting.reason.as_deref()
            && WAITING_ERRORS.contains(&reason)
        {
            summary.push(format!("{}: {reason}", c.name));
            errors.push(json!({
                "container": c.name,
                "reason": reason,
                "message": waiting.message,
            }));
        } else if let Some(terminated) = state.and_then(|s| s.terminated.as_ref())
            && terminated.exit_code != 0
        {
            let reason = terminated.reason.as_deref().unwrap_or("Error");
            summary.push(format!(
                "{}: {reason} (exit code {})",
                c.name, terminated.exit_code
            ));
            errors.push(json!({
                "container": c.name,
                "reason": reason,
                "exitCode": terminated.exit_code,
                "message": terminated.message,
            }));
        }
    }
    if !errors.is_empty() {
        report.fail(
            "container-error",
            pod,
            format!("containers failing: {}", summary.join("; ")),
            json!({ "containers": errors }),
        );
    }
}
