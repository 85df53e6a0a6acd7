//! The checks, by area. Each area lists its checks (`CHECKS`) and runs them over the snapshot.

use portico_plugin_sdk::prelude::*;

use crate::report::{Check, Report};
use crate::settings::Settings;
use crate::snapshot::Snapshot;

mod admission;
mod autoscaling;
mod configmaps;
mod containers;
mod gateway;
mod images;
mod logs;
mod networking;
mod nodes;
mod pods;
mod probes;
mod rbac;
mod storage;
mod workloads;

/// Every area's checks, in report order.
const AREAS: &[&[Check]] = &[
    pods::CHECKS,
    containers::CHECKS,
    images::CHECKS,
    probes::CHECKS,
    logs::CHECKS,
    nodes::CHECKS,
    storage::CHECKS,
    workloads::CHECKS,
    autoscaling::CHECKS,
    configmaps::CHECKS,
    networking::CHECKS,
    gateway::CHECKS,
    admission::CHECKS,
    rbac::CHECKS,
];

/// Every check, in report order.
pub fn all() -> Vec<&'static Check> {
    AREAS.iter().flat_map(|area| area.iter()).collect()
}

/// Runs every area; only the log and storage checks call the host again.
pub fn run(s: &Snapshot, settings: &Settings, report: &mut Report) -> Result<(), Error> {
    pods::run(s, report);
    containers::run(s, report);
    images::run(s, settings, report);
    probes::run(s, report);
    logs::run(s, settings, report)?;
    nodes::run(s, report);
    storage::run(s, report)?;
    workloads::run(s, report);
    autoscaling::run(s, report)?;
    configmaps::run(s, settings, report);
    networking::run(s, report)?;
    gateway::run(s, report);
    admission::run(s, report);
    rbac::run(s, report);
    Ok(())
}

/// The pod specs of every pod and pod template (workloads), with their namespace.
fn pod_specs(
    s: &Snapshot,
) -> impl Iterator<
    Item = (
        Option<&String>,
        &portico_plugin_sdk::k8s::api::core::v1::PodSpec,
    ),
> {
    let pods = s
        .pods
        .iter()
        .filter_map(|p| Some((p.metadata.namespace.as_ref(), p.spec.as_ref()?)));
    let deployments = s.deployments.iter().filter_map(|d| {
        Some((
            d.metadata.namespace.as_ref(),
            d.spec.template.spec.as_ref()?,
        ))
    });
    let statefulsets = s.statefulsets.iter().filter_map(|d| {
        Some((
            d.metadata.namespace.as_ref(),
            d.spec.template.spec.as_ref()?,
        ))
    });
    let daemonsets = s.daemonsets.iter().filter_map(|d| {
        Some((
            d.metadata.namespace.as_ref(),
            d.spec.template.spec.as_ref()?,
        ))
    });
    let jobs = s.jobs.iter().filter_map(|j| {
        Some((
            j.metadata.namespace.as_ref(),
            j.spec.as_ref()?.template.spec.as_ref()?,
        ))
    });
    let cronjobs = s.cronjobs.iter().filter_map(|c| {
        Some((
            c.metadata.namespace.as_ref(),
            c.spec.job_template.spec.as_ref()?.template.spec.as_ref()?,
        ))
    });
    pods.chain(deployments)
        .chain(statefulsets)
        .chain(daemonsets)
        .chain(jobs)
        .chain(cronjobs)
}
