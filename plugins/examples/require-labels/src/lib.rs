//! Example inspection plugin (the one `docs/plugins.md` walks through): every Deployment must
//! carry the labels listed in the configuration.

use portico_plugin_sdk::k8s::api::apps::v1::Deployment;
use portico_plugin_sdk::prelude::*;

/// The plugin's configuration (`[config]` in its manifest).
#[derive(serde::Deserialize)]
struct Config {
    /// Label keys every Deployment must have.
    labels: Vec<String>,
    /// Only this namespace; every namespace when absent.
    namespace: Option<String>,
}

struct RequireLabels;

impl Inspector for RequireLabels {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let config: Config = config::get()?;
        let mut params = ListParams::default();
        if let Some(namespace) = &config.namespace {
            params = params.namespace(namespace);
        }
        let deployments: Vec<Deployment> = kube::list(&params)?;
        log::info(format!(
            "checking {} deployments in {}",
            deployments.len(),
            cluster.name
        ));

        let mut findings = Vec::new();
        for deployment in &deployments {
            let labels = deployment.metadata.labels.clone().unwrap_or_default();
            let missing: Vec<&String> = config
                .labels
                .iter()
                .filter(|key| !labels.contains_key(*key))
                .collect();
            let finding = if missing.is_empty() {
                Finding::pass("required-labels", "all required labels are present")
            } else {
                Finding::fail(
                    "required-labels",
                    Severity::Low,
                    format!("missing labels: {missing:?}"),
                )
                .extra(json!({ "missing": missing }))
            };
            findings.push(finding.on(deployment));
        }
        Ok(findings)
    }
}

portico_plugin_sdk::export_inspector!(RequireLabels);
