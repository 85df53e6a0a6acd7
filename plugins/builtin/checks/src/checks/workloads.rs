//! Deployments, ReplicaSets, StatefulSets, Jobs and CronJobs.

use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::cron;
use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "deployment-unavailable",
        severity: Severity::High,
        passes: "every Deployment has all replicas available",
    },
    Check {
        id: "deployment-rollout-stalled",
        severity: Severity::High,
        passes: "no Deployment rollout exceeded its progress deadline",
    },
    Check {
        id: "replicaset-failure",
        severity: Severity::High,
        passes: "no ReplicaSet fails to create or delete pods",
    },
    Check {
        id: "statefulset-unavailable",
        severity: Severity::High,
        passes: "every StatefulSet has all replicas available",
    },
    Check {
        id: "statefulset-missing-service",
        severity: Severity::Medium,
        passes: "every StatefulSet's governing Service exists",
    },
    Check {
        id: "statefulset-missing-storage-class",
        severity: Severity::High,
        passes: "every StorageClass named by a StatefulSet's volume claim templates exists",
    },
    Check {
        id: "job-failed",
        severity: Severity::High,
        passes: "no Job failed or is retrying failed pods",
    },
    Check {
        id: "job-suspended",
        severity: Severity::Low,
        passes: "no Job is suspended",
    },
    Check {
        id: "cronjob-suspended",
        severity: Severity::Low,
        passes: "no CronJob is suspended",
    },
    Check {
        id: "cronjob-invalid-schedule",
        severity: Severity::High,
        passes: "every CronJob schedule is valid",
    },
];

pub fn run(s: &Snapshot, report: &mut Report) {
    deployments(s, report);
    replicasets(s, report);
    statefulsets(s, report);
    jobs(s, report);
    cronjobs(s, report);
}

fn deployments(s: &Snapshot, report: &mut Report) {
    for deployment in &s.deployments {
        let wanted = deployment.spec.replicas.unwrap_or(1);
        let status = deployment.status.clone().unwrap_or_default();
        let available = status.available_replicas.unwrap_or(0);
        let unavailable = status
            .unavailable_replicas
            .unwrap_or(0)
            .max(wanted - available);
        if unavailable > 0 {
            report.fail(
                "deployment-unavailable",
                deployment,
                format!("{unavailable} of {wanted} replicas unavailable"),
                json!({ "wanted": wanted, "available": available }),
            );
        }
        // The controller sets Progressing=False (reason ProgressDeadlineExceeded) once a
        // rollout made no progress for progressDeadlineSeconds.
        if let Some(stalled) = status.conditions.iter().flatten().find(|c| {
            c.type_.as_deref() == Some("Progressing") && c.status.as_deref() == Some("False")
        }) {
            report.fail(
                "deployment-rollout-stalled",
                deployment,
                format!(
                    "rollout stalled: {}{}",
                    stalled.reason.as_deref().unwrap_or("Progressing=False"),
                    stalled
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                json!({
                    "reason": stalled.reason,
                    "message": stalled.message,
                    "progressDeadlineSeconds": deployment.spec.progress_deadline_seconds.unwrap_or(600),
                }),
            );
        }
    }
}

fn replicasets(s: &Snapshot, report: &mut Report) {
    for rs in &s.replicasets {
        // ReplicaFailure: pods could not be created (quota, limit ranges, admission, …) or
        // deleted.
        let failure = rs
            .status
            .as_ref()
            .and_then(|st| st.conditions.as_ref())
            .and_then(|cs| {
                cs.iter().find(|c| {
                    c.type_.as_deref() == Some("ReplicaFailure")
                        && c.status.as_deref() == Some("True")
                })
            });
        if let Some(c) = failure {
            report.fail(
                "replicaset-failure",
                rs,
                format!(
                    "ReplicaFailure: {}{}",
                    c.reason.as_deref().unwrap_or("no reason given"),
                    c.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                json!({
                    "reason": c.reason,
                    "message": c.message,
                    "wanted": rs.spec.replicas.unwrap_or(1),
                    "replicas": rs.status.as_ref().map(|st| st.replicas),
                }),
            );
        }
    }
}

fn statefulsets(s: &Snapshot, report: &mut Report) {
    for sts in &s.statefulsets {
        let namespace = sts.metadata.namespace.as_deref();
        let wanted = sts.spec.replicas.unwrap_or(1);
        let status = sts.status.clone().unwrap_or_default();
        let available = status
            .available_replicas
            .or(status.ready_replicas)
            .unwrap_or(0);
        if available < wanted {
            report.fail(
                "statefulset-unavailable",
                sts,
                format!("{} of {wanted} replicas unavailable", wanted - available),
                json!({
                    "wanted": wanted,
                    "available": available,
                    "ready": status.ready_replicas.unwrap_or(0),
                }),
            );
        }
        if let Some(service) = sts.spec.service_name.as_deref().filter(|n| !n.is_empty()) {
            let exists = s.services.iter().any(|svc| {
                svc.metadata.namespace.as_deref() == namespace
                    && svc.metadata.name.as_deref() == Some(service)
            });
            if !exists {
                report.fail(
                    "statefulset-missing-service",
                    sts,
                    format!(
                        "governing Service {service} does not exist: the pods get no stable DNS names"
                    ),
                    json!({ "service": service }),
                );
            }
        }
        // An empty storageClassName asks for no class (pre-provisioned volumes); an absent
        // one for the default class.
        let mut missing: Vec<&str> = sts
            .spec
            .volume_claim_templates
            .iter()
            .flatten()
            .filter_map(|t| t.spec.as_ref()?.storage_class_name.as_deref())
            .filter(|class| !class.is_empty())
            .filter(|class| {
                !s.storage_classes
                    .iter()
                    .any(|sc| sc.metadata.name.as_deref() == Some(*class))
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            report.fail(
                "statefulset-missing-storage-class",
                sts,
                format!(
                    "volume claim templates name missing StorageClasses: {}; new pods' claims stay Pending",
                    missing.join(", ")
                ),
                json!({ "storageClasses": missing }),
            );
        }
    }
}

fn jobs(s: &Snapshot, report: &mut Report) {
    for job in &s.jobs {
        let spec = job.spec.clone().unwrap_or_default();
        let status = job.status.clone().unwrap_or_default();
        let conditions = status.conditions.clone().unwrap_or_default();
        let has = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == "True")
        };
        let failed_pods = status.failed.unwrap_or(0);
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let extra = json!({ "failedPods": failed_pods, "backoffLimit": backoff_limit });
        if let Some(failed) = has("Failed") {
            report.fail(
                "job-failed",
                job,
                format!(
                    "Job failed: {}{}",
                    failed.reason.as_deref().unwrap_or("no reason given"),
                    failed
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                json!({
                    "failedPods": failed_pods,
                    "backoffLimit": backoff_limit,
                    "reason": failed.reason,
                    "message": failed.message,
                }),
            );
        } else if failed_pods > 0 && has("Complete").is_none() {
            report.fail(
                "job-failed",
                job,
                format!(
                    "{failed_pods} pods failed; the Job is retrying (backoffLimit {backoff_limit})"
                ),
                extra,
            );
        }
        if spec.suspend == Some(true) {
            report.fail(
                "job-suspended",
                job,
                "Job is suspended: it creates no pods until spec.suspend is false".to_owned(),
                Value::Null,
            );
        }
    }
}

fn cronjobs(s: &Snapshot, report: &mut Report) {
    for cronjob in &s.cronjobs {
        let spec = &cronjob.spec;
        if spec.suspend == Some(true) {
            report.fail(
                "cronjob-suspended",
                cronjob,
                "CronJob is suspended: it schedules no jobs".to_owned(),
                Value::Null,
            );
        }
        if let Err(reason) = cron::validate(&spec.schedule) {
            report.fail(
                "cronjob-invalid-schedule",
                cronjob,
                format!("schedule {:?} is invalid: {reason}", spec.schedule),
                json!({ "schedule": spec.schedule }),
            );
        }
    }
}
