//! HorizontalPodAutoscalers (`autoscaling/v2`): conditions, targets, and the resource
//! requests utilization targets need.

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::autoscaling::v2::HorizontalPodAutoscaler;
use portico_plugin_sdk::k8s::api::core::v1::{Container, PodSpec};
use portico_plugin_sdk::prelude::*;

use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "hpa-not-scaling",
        severity: Severity::High,
        passes: "every HorizontalPodAutoscaler can scale and is not held at maxReplicas",
    },
    Check {
        id: "hpa-missing-target",
        severity: Severity::High,
        passes: "every HorizontalPodAutoscaler's scale target exists",
    },
    Check {
        id: "hpa-target-no-requests",
        severity: Severity::Medium,
        passes: "every container scaled on resource utilization has a request for that resource",
    },
];

/// What a target lookup found.
enum Target<'a> {
    /// The target and its pod template, when it is a kind read in the snapshot.
    Found(Option<&'a PodSpec>),
    Missing,
    /// A kind outside the snapshot the cluster does not serve, or could not be read: no
    /// verdict.
    Unknown,
}

pub fn run(s: &Snapshot, report: &mut Report) -> Result<(), Error> {
    for hpa in &s.hpas {
        conditions(hpa, report);
        let namespace = hpa.metadata.namespace.as_deref().unwrap_or_default();
        let reference = &hpa.spec.scale_target_ref;
        let target = find_target(s, namespace, reference);
        match target {
            Target::Missing => report.fail(
                "hpa-missing-target",
                hpa,
                format!(
                    "scale target {} {} does not exist",
                    reference.kind, reference.name
                ),
                json!({
                    "kind": reference.kind,
                    "name": reference.name,
                    "apiVersion": reference.api_version,
                }),
            ),
            Target::Found(Some(template)) => requests(hpa, template, report),
            Target::Found(None) | Target::Unknown => {}
        }
    }
    Ok(())
}

/// `AbleToScale` or `ScalingActive` False, or `ScalingLimited` True because the desired count
/// exceeds `maxReplicas` (reason `TooManyReplicas`). `ScalingLimited` at the minimum
/// (`TooFewReplicas`) is the normal idle state, and `ScaleUpLimit`/`ScaleDownLimit` are the
/// configured rate limits at work: neither is reported.
fn conditions(hpa: &HorizontalPodAutoscaler, report: &mut Report) {
    let conditions = hpa
        .status
        .as_ref()
        .and_then(|st| st.conditions.clone())
        .unwrap_or_default();
    let bad: Vec<_> = conditions
        .iter()
        .filter(|c| {
            (matches!(c.type_.as_str(), "AbleToScale" | "ScalingActive") && c.status == "False")
                || (c.type_ == "ScalingLimited"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("TooManyReplicas"))
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    let text: Vec<String> = bad
        .iter()
        .map(|c| {
            format!(
                "{}={} ({}){}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("no reason"),
                c.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let details: Vec<_> = bad
        .iter()
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
        .collect();
    report.fail(
        "hpa-not-scaling",
        hpa,
        text.join("; "),
        json!({
            "conditions": details,
            "minReplicas": hpa.spec.min_replicas.unwrap_or(1),
            "maxReplicas": hpa.spec.max_replicas,
        }),
    );
}

fn find_target<'a>(
    s: &'a Snapshot,
    namespace: &str,
    reference: &portico_plugin_sdk::k8s::api::autoscaling::v2::CrossVersionObjectReference,
) -> Target<'a> {
    // apiVersion is optional in the reference: without it, match on the kind alone.
    let group = reference
        .api_version
        .as_deref()
        .map(|v| v.split_once('/').map_or("", |(g, _)| g));
    let same = |meta: &portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.namespace.as_deref() == Some(namespace)
            && meta.name.as_deref() == Some(reference.name.as_str())
    };
    let found = |template: Option<Option<&'a PodSpec>>| match template {
        Some(t) => Target::Found(t),
        None => Target::Missing,
    };
    match (group, reference.kind.as_str()) {
        (Some("apps") | None, "Deployment") => found(
            s.deployments
                .iter()
                .find(|d| same(&d.metadata))
                .map(|d| d.spec.template.spec.as_ref()),
        ),
        (Some("apps") | None, "StatefulSet") => found(
            s.statefulsets
                .iter()
                .find(|d| same(&d.metadata))
                .map(|d| d.spec.template.spec.as_ref()),
        ),
        (Some("apps") | None, "ReplicaSet") => found(
            s.replicasets
                .iter()
                .find(|d| same(&d.metadata))
                .map(|d| d.spec.template.as_ref().and_then(|t| t.spec.as_ref())),
        ),
        // Anything else with a scale subresource (ReplicationControllers, custom resources):
        // ask the cluster for that one object.
        _ => {
            let api_version = reference.api_version.as_deref().unwrap_or("v1");
            let params = ListParams::default()
                .namespace(namespace)
                .fields(format!("metadata.name={}", reference.name));
            match kube::list_dynamic(api_version, &reference.kind, &params) {
                Ok(items) if items.is_empty() => Target::Missing,
                Ok(_) => Target::Found(None),
                Err(e) => {
                    log::warn(format!(
                        "hpa-missing-target: cannot read {} {api_version}: {}",
                        reference.kind, e.message
                    ));
                    Target::Unknown
                }
            }
        }
    }
}

/// The HPA computes utilization as usage over request: "if some of the Pod's containers do
/// not have the relevant resource request set, CPU utilization for the Pod will not be defined
/// and the autoscaler will not take any action for that metric" (HPA walkthrough). No metrics
/// means the default, 80 % average CPU utilization.
fn requests(hpa: &HorizontalPodAutoscaler, template: &PodSpec, report: &mut Report) {
    // (resource, container or None for every container)
    let mut needs: Vec<(String, Option<String>)> = Vec::new();
    match hpa.spec.metrics.as_deref() {
        None | Some([]) => needs.push(("cpu".to_owned(), None)),
        Some(metrics) => {
            for m in metrics {
                if let Some(r) = &m.resource
                    && r.target.type_ == "Utilization"
                {
                    needs.push((r.name.clone(), None));
                }
                if let Some(r) = &m.container_resource
                    && r.target.type_ == "Utilization"
                {
                    needs.push((r.name.clone(), Some(r.container.clone())));
                }
            }
        }
    }
    // Regular containers and sidecars (restartable init containers) count; init containers
    // that run to completion do not.
    let containers: Vec<&Container> = template
        .containers
        .iter()
        .chain(
            template
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always")),
        )
        .collect();
    let mut missing = Vec::new();
    for (resource, only) in &needs {
        for c in &containers {
            if only.as_ref().is_some_and(|name| *name != c.name) {
                continue;
            }
            let has = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key(resource));
            if !has {
                missing.push(json!({"container": c.name, "resource": resource}));
            }
        }
    }
    if missing.is_empty() {
        return;
    }
    let reference = &hpa.spec.scale_target_ref;
    let text: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "{} ({})",
                m["container"].as_str().unwrap_or_default(),
                m["resource"].as_str().unwrap_or_default()
            )
        })
        .collect();
    report.fail(
        "hpa-target-no-requests",
        hpa,
        format!(
            "{} {} scales on utilization but containers have no request for it: {}; the autoscaler takes no action on that metric",
            reference.kind,
            reference.name,
            text.join(", ")
        ),
        json!({ "target": {"kind": reference.kind, "name": reference.name}, "missing": missing }),
    );
}
