//! ConfigMaps: used, not empty, not near the size limit.

use std::collections::BTreeSet;

use portico_plugin_sdk::k8s::api::core::v1::{ConfigMap, PodSpec};
use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::report::{Check, Report};
use crate::settings::{CONFIGMAP_LIMIT_BYTES, Settings};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "configmap-unused",
        severity: Severity::Info,
        passes: "every ConfigMap is used by a pod or workload",
    },
    Check {
        id: "configmap-empty",
        severity: Severity::Low,
        passes: "every ConfigMap has data",
    },
    Check {
        id: "configmap-too-large",
        severity: Severity::Medium,
        passes: "no ConfigMap is close to the apiserver's 1 MiB limit",
    },
];

/// Published into every namespace by the control plane.
const ROOT_CA: &str = "kube-root-ca.crt";

pub fn run(s: &Snapshot, settings: &Settings, report: &mut Report) {
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    for (namespace, spec) in super::pod_specs(s) {
        if let Some(namespace) = namespace {
            for name in configmaps_of(spec) {
                used.insert((namespace.clone(), name));
            }
        }
    }
    for cm in &s.configmaps {
        let name = cm.metadata.name.clone().unwrap_or_default();
        if name == ROOT_CA {
            continue;
        }
        let namespace = cm.metadata.namespace.clone().unwrap_or_default();
        if !used.contains(&(namespace, name)) {
            report.fail(
                "configmap-unused",
                cm,
                "no pod or workload mounts or reads this ConfigMap".to_owned(),
                Value::Null,
            );
        }
        let keys = cm.data.as_ref().map_or(0, |d| d.len())
            + cm.binary_data.as_ref().map_or(0, |d| d.len());
        if keys == 0 {
            report.fail(
                "configmap-empty",
                cm,
                "ConfigMap has no data and no binaryData".to_owned(),
                Value::Null,
            );
        }
        let size = size_of(cm);
        if size > settings.configmap_warn_bytes {
            report.fail(
                "configmap-too-large",
                cm,
                format!(
                    "ConfigMap holds {size} bytes, {:.0} % of the {CONFIGMAP_LIMIT_BYTES} bytes the apiserver allows",
                    size as f64 * 100.0 / CONFIGMAP_LIMIT_BYTES as f64
                ),
                json!({
                    "bytes": size,
                    "limitBytes": CONFIGMAP_LIMIT_BYTES,
                    "warnBytes": settings.configmap_warn_bytes,
                }),
            );
        }
    }
}

/// The size the apiserver checks: the values of `data` and the decoded bytes of `binaryData`.
pub fn size_of(cm: &ConfigMap) -> u64 {
    let data: usize = cm.data.iter().flatten().map(|(_, v)| v.len()).sum();
    let binary: usize = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(_, v)| v.0.len())
        .sum();
    (data + binary) as u64
}

/// ConfigMaps a pod spec refers to: volumes (plain and projected), `envFrom` and `env`.
fn configmaps_of(spec: &PodSpec) -> Vec<String> {
    let mut names = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        if let Some(cm) = &volume.config_map {
            names.push(cm.name.clone());
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                names.push(cm.name.clone());
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for container in containers {
        for from in container.env_from.iter().flatten() {
            if let Some(cm) = &from.config_map_ref {
                names.push(cm.name.clone());
            }
        }
        for env in container.env.iter().flatten() {
            if let Some(key) = env
                .value_from
                .as_ref()
                .and_then(|v| v.config_map_key_ref.as_ref())
            {
                names.push(key.name.clone());
            }
        }
    }
    names
}
