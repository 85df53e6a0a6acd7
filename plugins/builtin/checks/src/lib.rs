//! Portico's built-in inspection. Each check reports its failures, one finding per object;
//! a check without failures reports one passed finding for the whole cluster.
//!
//! Configuration (JSON; all optional):
//! - `exclude-namespaces`: namespaces whose objects are skipped (default: `kube-system`,
//!   `kube-public`, `kube-node-lease`);
//! - `disabled-checks`: check ids to skip.

use std::collections::{BTreeMap, BTreeSet};

use portico_plugin_sdk::Value;
use portico_plugin_sdk::k8s::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use portico_plugin_sdk::k8s::api::batch::v1::{CronJob, Job};
use portico_plugin_sdk::k8s::api::core::v1::{
    ConfigMap, Container, Node, PersistentVolumeClaim, Pod, PodSpec, Service,
};
use portico_plugin_sdk::k8s::api::networking::v1::{Ingress, IngressBackend};
use portico_plugin_sdk::k8s::{Metadata, Resource};
use portico_plugin_sdk::prelude::*;

mod cron;

/// Every check: id, severity of its failures, what it verifies.
pub const CHECKS: &[(&str, Severity, &str)] = &[
    ("pod-failed", Severity::High, "no pod is in phase Failed"),
    (
        "pod-crash-loop",
        Severity::High,
        "no container is in CrashLoopBackOff",
    ),
    (
        "pod-pending",
        Severity::Medium,
        "no pod is stuck in phase Pending",
    ),
    (
        "pod-not-ready",
        Severity::Medium,
        "every running pod is Ready",
    ),
    (
        "service-no-pods",
        Severity::Medium,
        "every Service selector matches a pod",
    ),
    (
        "image-latest-tag",
        Severity::Low,
        "every image has an explicit, non-latest tag",
    ),
    (
        "container-missing-probes",
        Severity::Low,
        "every long-running container has liveness and readiness probes",
    ),
    (
        "container-privileged",
        Severity::High,
        "no container runs privileged",
    ),
    (
        "security-context-missing",
        Severity::Low,
        "every pod or container sets a securityContext",
    ),
    (
        "default-service-account",
        Severity::Low,
        "no pod runs as the default service account",
    ),
    ("node-not-ready", Severity::Critical, "every node is Ready"),
    (
        "node-pressure",
        Severity::High,
        "no node reports memory, disk or PID pressure",
    ),
    (
        "pvc-pending",
        Severity::Medium,
        "no PersistentVolumeClaim is Pending",
    ),
    (
        "deployment-unavailable",
        Severity::High,
        "every Deployment has all replicas available",
    ),
    (
        "cronjob-suspended",
        Severity::Low,
        "no CronJob is suspended",
    ),
    (
        "cronjob-invalid-schedule",
        Severity::High,
        "every CronJob schedule is valid",
    ),
    (
        "configmap-unused",
        Severity::Info,
        "every ConfigMap is used by a pod or workload",
    ),
    (
        "ingress-missing-service",
        Severity::High,
        "every Ingress backend Service exists",
    ),
];

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct Config {
    exclude_namespaces: BTreeSet<String>,
    disabled_checks: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            exclude_namespaces: ["kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            disabled_checks: BTreeSet::new(),
        }
    }
}

/// The objects the checks read, listed once.
struct Snapshot {
    pods: Vec<Pod>,
    services: Vec<Service>,
    nodes: Vec<Node>,
    pvcs: Vec<PersistentVolumeClaim>,
    deployments: Vec<Deployment>,
    statefulsets: Vec<StatefulSet>,
    daemonsets: Vec<DaemonSet>,
    jobs: Vec<Job>,
    cronjobs: Vec<CronJob>,
    configmaps: Vec<ConfigMap>,
    ingresses: Vec<Ingress>,
}

impl Snapshot {
    fn read(config: &Config) -> Result<Self, Error> {
        fn keep<
            K: Metadata<Ty = portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
        >(
            config: &Config,
            objects: Vec<K>,
        ) -> Vec<K> {
            objects
                .into_iter()
                .filter(|o| {
                    o.metadata()
                        .namespace
                        .as_ref()
                        .is_none_or(|ns| !config.exclude_namespaces.contains(ns))
                })
                .collect()
        }
        Ok(Self {
            pods: keep(config, kube::list_all()?),
            services: keep(config, kube::list_all()?),
            nodes: kube::list_all()?,
            pvcs: keep(config, kube::list_all()?),
            deployments: keep(config, kube::list_all()?),
            statefulsets: keep(config, kube::list_all()?),
            daemonsets: keep(config, kube::list_all()?),
            jobs: keep(config, kube::list_all()?),
            cronjobs: keep(config, kube::list_all()?),
            configmaps: keep(config, kube::list_all()?),
            ingresses: keep(config, kube::list_all()?),
        })
    }
}

/// Failed findings per check, in check order.
struct Report {
    failures: BTreeMap<&'static str, Vec<Finding>>,
    disabled: BTreeSet<String>,
}

impl Report {
    fn fail<K>(&mut self, check: &'static str, object: &K, message: String, extra: Value)
    where
        K: Resource
            + Metadata<Ty = portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    {
        if self.disabled.contains(check) {
            return;
        }
        let severity = CHECKS
            .iter()
            .find(|(id, _, _)| *id == check)
            .map(|(_, s, _)| *s)
            .expect("known check");
        let mut finding = Finding::fail(check, severity, message).on(object);
        if !extra.is_null() {
            finding = finding.extra(extra);
        }
        self.failures.entry(check).or_default().push(finding);
    }

    fn finish(mut self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (id, _, description) in CHECKS {
            if self.disabled.contains(*id) {
                continue;
            }
            match self.failures.remove(id) {
                Some(failed) => findings.extend(failed),
                None => findings.push(Finding::pass(*id, *description)),
            }
        }
        findings
    }
}

struct BuiltinChecks;

impl Inspector for BuiltinChecks {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let config: Config = config::get()?;
        let snapshot = Snapshot::read(&config)?;
        let mut report = Report {
            failures: BTreeMap::new(),
            disabled: config.disabled_checks.clone(),
        };
        pods(&snapshot, &mut report);
        containers(&snapshot, &mut report);
        services(&snapshot, &mut report);
        nodes(&snapshot, &mut report);
        storage(&snapshot, &mut report);
        workloads(&snapshot, &mut report);
        configmaps(&snapshot, &mut report);
        ingresses(&snapshot, &mut report);
        let findings = report.finish();
        let failed = findings.iter().filter(|f| !f.passed).count();
        log::info(format!(
            "{}: {} checks, {failed} failed findings",
            cluster.id,
            CHECKS.len()
        ));
        Ok(findings)
    }
}

portico_plugin_sdk::export_inspector!(BuiltinChecks);

fn pods(s: &Snapshot, report: &mut Report) {
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
        let crash_looping: Vec<&str> = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .filter(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
            })
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

fn containers(s: &Snapshot, report: &mut Report) {
    for pod in &s.pods {
        let Some(spec) = &pod.spec else { continue };
        let all: Vec<&Container> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect();

        let bad_images: Vec<&str> = all
            .iter()
            .filter_map(|c| c.image.as_deref())
            .filter(|image| !pinned_image(image))
            .collect();
        if !bad_images.is_empty() {
            report.fail(
                "image-latest-tag",
                pod,
                format!("images without a pinned tag: {}", bad_images.join(", ")),
                json!({ "images": bad_images }),
            );
        }

        // Pods of Jobs run to completion: probes make no sense there.
        let batch = owned_by(pod, "Job");
        if !batch {
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

/// A tag other than `latest`, or a digest.
fn pinned_image(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    // The tag follows the last ':' after the last '/' (a registry may carry a port).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
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

fn owned_by(pod: &Pod, kind: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == kind)
}

fn services(s: &Snapshot, report: &mut Report) {
    for service in &s.services {
        let Some(selector) = service
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .filter(|sel| !sel.is_empty())
        else {
            continue; // no selector: endpoints are managed by hand
        };
        if service.spec.as_ref().and_then(|spec| spec.type_.as_deref()) == Some("ExternalName") {
            continue;
        }
        let namespace = service.metadata.namespace.as_deref();
        let matches =
            s.pods.iter().any(|pod| {
                pod.metadata.namespace.as_deref() == namespace
                    && pod.metadata.labels.as_ref().is_some_and(|labels| {
                        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
            });
        if !matches {
            let selector_text: Vec<String> =
                selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            report.fail(
                "service-no-pods",
                service,
                format!("selector {} matches no pod", selector_text.join(",")),
                json!({ "selector": selector }),
            );
        }
    }
}

fn nodes(s: &Snapshot, report: &mut Report) {
    for node in &s.nodes {
        let conditions = node
            .status
            .as_ref()
            .and_then(|st| st.conditions.clone())
            .unwrap_or_default();
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        if ready != Some("True") {
            report.fail(
                "node-not-ready",
                node,
                format!("node is not Ready (Ready={})", ready.unwrap_or("missing")),
                Value::Null,
            );
        }
        let pressures: Vec<&str> = conditions
            .iter()
            .filter(|c| {
                matches!(
                    c.type_.as_str(),
                    "MemoryPressure" | "DiskPressure" | "PIDPressure"
                ) && c.status == "True"
            })
            .map(|c| c.type_.as_str())
            .collect();
        if !pressures.is_empty() {
            report.fail(
                "node-pressure",
                node,
                format!("node reports {}", pressures.join(", ")),
                json!({ "conditions": pressures }),
            );
        }
    }
}

fn storage(s: &Snapshot, report: &mut Report) {
    for pvc in &s.pvcs {
        if pvc.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Pending") {
            report.fail(
                "pvc-pending",
                pvc,
                "claim is Pending: no volume is bound".to_owned(),
                Value::Null,
            );
        }
    }
}

fn workloads(s: &Snapshot, report: &mut Report) {
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
    }
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

fn configmaps(s: &Snapshot, report: &mut Report) {
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut note = |namespace: Option<&String>, spec: Option<&PodSpec>| {
        if let (Some(namespace), Some(spec)) = (namespace, spec) {
            for name in configmaps_of(spec) {
                used.insert((namespace.clone(), name));
            }
        }
    };
    for pod in &s.pods {
        note(pod.metadata.namespace.as_ref(), pod.spec.as_ref());
    }
    for d in &s.deployments {
        note(d.metadata.namespace.as_ref(), d.spec.template.spec.as_ref());
    }
    for d in &s.statefulsets {
        note(d.metadata.namespace.as_ref(), d.spec.template.spec.as_ref());
    }
    for d in &s.daemonsets {
        note(d.metadata.namespace.as_ref(), d.spec.template.spec.as_ref());
    }
    for j in &s.jobs {
        note(
            j.metadata.namespace.as_ref(),
            j.spec.as_ref().and_then(|sp| sp.template.spec.as_ref()),
        );
    }
    for c in &s.cronjobs {
        note(
            c.metadata.namespace.as_ref(),
            c.spec
                .job_template
                .spec
                .as_ref()
                .and_then(|sp| sp.template.spec.as_ref()),
        );
    }
    for cm in &s.configmaps {
        let name = cm.metadata.name.clone().unwrap_or_default();
        // Published into every namespace by the control plane.
        if name == "kube-root-ca.crt" {
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
    }
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

fn ingresses(s: &Snapshot, report: &mut Report) {
    for ingress in &s.ingresses {
        let namespace = ingress.metadata.namespace.as_deref();
        let Some(spec) = &ingress.spec else { continue };
        let backends = spec.default_backend.iter().chain(
            spec.rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter().map(|p| &p.backend)),
        );
        let mut missing: Vec<String> = backends
            .filter_map(|b: &IngressBackend| b.service.as_ref().map(|svc| svc.name.clone()))
            .filter(|name| {
                !s.services.iter().any(|svc| {
                    svc.metadata.namespace.as_deref() == namespace
                        && svc.metadata.name.as_deref() == Some(name.as_str())
                })
            })
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            report.fail(
                "ingress-missing-service",
                ingress,
                format!("backends refer to missing Services: {}", missing.join(", ")),
                json!({ "services": missing }),
            );
        }
    }
}
