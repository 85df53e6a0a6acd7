//! {{name}}: every Deployment must carry the labels the configuration lists.

use portico_plugin_sdk::k8s::api::apps::v1::Deployment;
use portico_plugin_sdk::prelude::*;

#[derive(serde::Deserialize)]
struct Config {
    labels: Vec<String>,
}

struct Plugin;

impl Inspector for Plugin {
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error> {
        let config: Config = config::get()?;
        let deployments: Vec<Deployment> = kube::list_all()?;
        log::info(format!("checking {} deployments in {}", deployments.len(), cluster.name));
        let mut findings = Vec::new();
        for deployment in &deployments {
            let labels = deployment.metadata.labels.clone().unwrap_or_default();
            let missing: Vec<&String> =
                config.labels.iter().filter(|key| !labels.contains_key(*key)).collect();
            let finding = if missing.is_empty() {
                Finding::pass("required-labels", "all required labels are present")
            } else {
                Finding::fail("required-labels", Severity::Low, format!("missing labels: {missing:?}"))
                    .extra(json!({ "missing": missing }))
            };
            findings.push(finding.on(deployment));
        }
        Ok(findings)
    }
}

portico_plugin_sdk::export_inspector!(Plugin);
