//! Claims, volumes and storage classes.

use portico_plugin_sdk::k8s::api::core::v1::Event;
use portico_plugin_sdk::k8s::api::storage::v1::StorageClass;
use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "pvc-pending",
        severity: Severity::Medium,
        passes: "no PersistentVolumeClaim is Pending",
    },
    Check {
        id: "pvc-lost",
        severity: Severity::High,
        passes: "no PersistentVolumeClaim has lost its volume",
    },
    Check {
        id: "pv-released",
        severity: Severity::Low,
        passes: "no PersistentVolume is Released and waiting to be reclaimed",
    },
    Check {
        id: "pv-failed",
        severity: Severity::High,
        passes: "no PersistentVolume failed its reclamation",
    },
    Check {
        id: "storageclass-multiple-default",
        severity: Severity::Medium,
        passes: "at most one StorageClass is marked default",
    },
];

/// The annotation that marks a default StorageClass, and its beta predecessor, which the
/// DefaultStorageClass admission plugin still honours.
const DEFAULT_CLASS: &[&str] = &[
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

pub fn run(s: &Snapshot, report: &mut Report) -> Result<(), Error> {
    claims(s, report)?;
    for pv in &s.pvs {
        let status = pv.status.clone().unwrap_or_default();
        let claim = pv
            .spec
            .as_ref()
            .and_then(|sp| sp.claim_ref.as_ref())
            .map(|c| {
                format!(
                    "{}/{}",
                    c.namespace.as_deref().unwrap_or_default(),
                    c.name.as_deref().unwrap_or_default()
                )
            });
        let reclaim = pv
            .spec
            .as_ref()
            .and_then(|sp| sp.persistent_volume_reclaim_policy.clone());
        let extra = json!({
            "claim": claim,
            "reclaimPolicy": reclaim,
            "reason": status.reason,
            "message": status.message,
        });
        match status.phase.as_deref() {
            Some("Released") => report.fail(
                "pv-released",
                pv,
                format!(
                    "volume is Released: its claim {} was deleted and it is not available to new claims until it is reclaimed (reclaim policy {})",
                    claim.as_deref().unwrap_or("(unknown)"),
                    reclaim.as_deref().unwrap_or("unset")
                ),
                extra,
            ),
            Some("Failed") => report.fail(
                "pv-failed",
                pv,
                format!(
                    "volume is Failed: its automatic reclamation failed{}",
                    status
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                extra,
            ),
            _ => {}
        }
    }
    let defaults: Vec<&StorageClass> = s
        .storage_classes
        .iter()
        .filter(|sc| {
            sc.metadata.annotations.as_ref().is_some_and(|a| {
                DEFAULT_CLASS
                    .iter()
                    .any(|key| a.get(*key).map(String::as_str) == Some("true"))
            })
        })
        .collect();
    if defaults.len() > 1 {
        let names: Vec<&str> = defaults
            .iter()
            .filter_map(|sc| sc.metadata.name.as_deref())
            .collect();
        for sc in &defaults {
            report.fail(
                "storageclass-multiple-default",
                *sc,
                format!(
                    "{} StorageClasses are marked default ({}): a claim without storageClassName gets the most recently created one",
                    defaults.len(),
                    names.join(", ")
                ),
                json!({ "defaults": names }),
            );
        }
    }
    Ok(())
}

fn claims(s: &Snapshot, report: &mut Report) -> Result<(), Error> {
    let pending: Vec<_> = s
        .pvcs
        .iter()
        .filter(|pvc| pvc.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Pending"))
        .filter(|pvc| report.in_scope(pvc.metadata.namespace.as_deref()))
        .collect();
    // Why a claim is pending is in the provisioner's events: read them only when needed.
    let events: Vec<Event> = if pending.is_empty() || !report.enabled("pvc-pending") {
        Vec::new()
    } else {
        kube::list(
            &ListParams::default()
                .fields("involvedObject.kind=PersistentVolumeClaim,reason=ProvisioningFailed"),
        )?
    };
    for pvc in pending {
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| {
                e.involved_object.namespace == pvc.metadata.namespace
                    && e.involved_object.name == pvc.metadata.name
            })
            .collect();
        let latest = mine.iter().filter_map(|e| e.message.as_deref()).next_back();
        let message = match latest {
            Some(m) => format!("claim is Pending: no volume is bound; provisioning failed: {m}"),
            None => "claim is Pending: no volume is bound".to_owned(),
        };
        let extra = if mine.is_empty() {
            Value::Null
        } else {
            json!({
                "provisioningFailed": mine.iter().filter_map(|e| e.message.as_deref()).collect::<Vec<_>>(),
            })
        };
        report.fail("pvc-pending", pvc, message, extra);
    }
    for pvc in &s.pvcs {
        if pvc.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Lost") {
            let volume = pvc.spec.as_ref().and_then(|sp| sp.volume_name.clone());
            report.fail(
                "pvc-lost",
                pvc,
                format!(
                    "claim is Lost: its volume {} no longer exists; the data is gone for this claim",
                    volume.as_deref().unwrap_or("(unnamed)")
                ),
                json!({ "volume": volume }),
            );
        }
    }
    Ok(())
}
