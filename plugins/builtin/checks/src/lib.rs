//! Portico's built-in inspection. Each check reports its failures, one finding per object;
//! a check without failures reports one passed finding for the whole cluster.
//!
//! Layout: [`snapshot`] lists the objects once, [`checks`] holds the checks by area (pods,
//! containers, images, probes, logs, nodes, storage, workloads, autoscaling, configmaps,
//! networking, gateway, admission, rbac), [`report`] collects their findings, [`settings`] is
//! the configuration (see `manifest.toml` for every key and its default).

use portico_plugin_sdk::prelude::*;

mod checks;
mod cron;
mod gateway_api;
mod image_ref;
mod report;
mod selector;
mod settings;
mod snapshot;

use report::Report;
use settings::Settings;
use snapshot::Snapshot;

struct BuiltinChecks;

impl Inspector for BuiltinChecks {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let settings = Settings::load()?;
        let snapshot = Snapshot::read()?;
        let all = checks::all();
        let count = all.len();
        let mut disabled = settings.disabled();
        let blind = snapshot.blind_checks();
        if !blind.is_empty() {
            log::warn(format!(
                "not run, a kind they read could not be listed: {}",
                blind.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        disabled.extend(blind);
        let mut report = Report::new(all, disabled, settings.exclude_namespaces.clone());
        checks::run(&snapshot, &settings, &mut report)?;
        let findings = report.finish();
        let failed = findings.iter().filter(|f| !f.passed).count();
        log::info(format!(
            "{}: {count} checks, {failed} failed findings",
            cluster.id
        ));
        Ok(findings)
    }
}

portico_plugin_sdk::export_inspector!(BuiltinChecks);
