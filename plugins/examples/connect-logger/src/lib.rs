//! Example lifecycle hook: on connect, logs how many nodes the cluster has; on both events,
//! posts a small JSON message to `webhook-url` when the configuration gives one (its host
//! must be in the manifest's `http` allow-list).

use portico_plugin_sdk::http::Request;
use portico_plugin_sdk::k8s::api::core::v1::Node;
use portico_plugin_sdk::prelude::*;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct Config {
    webhook_url: Option<String>,
}

struct ConnectLogger;

impl LifecycleHook for ConnectLogger {
    fn on_connect(cluster: Cluster) -> Result<(), Error> {
        let nodes: Vec<Node> = kube::list_all()?;
        log::info(format!(
            "connected to {} ({} nodes)",
            cluster.id,
            nodes.len()
        ));
        notify(&cluster, "connected", nodes.len())
    }

    fn on_disconnect(cluster: Cluster) -> Result<(), Error> {
        log::info(format!("disconnected from {}", cluster.id));
        notify(&cluster, "disconnected", 0)
    }
}

portico_plugin_sdk::export_lifecycle_hook!(ConnectLogger);

fn notify(cluster: &Cluster, event: &str, nodes: usize) -> Result<(), Error> {
    let config: Config = config::get()?;
    let Some(url) = config.webhook_url else {
        return Ok(());
    };
    let body = json!({ "event": event, "cluster": cluster.id, "nodes": nodes }).to_string();
    let response = Request::post(url, body)
        .header("content-type", "application/json")
        .send()?;
    if !response.is_success() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("webhook answered HTTP {}", response.status),
        ));
    }
    Ok(())
}
