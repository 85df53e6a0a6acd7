//! Lifecycle-hook plugins as a [`HookSink`]: every enabled plugin of world `lifecycle-hook` gets
//! `on-connect` or `on-disconnect`, with the scope its manifest's `[hook] scope` gives.
//!
//! On connect the plugin's `kube` capability reads the cluster through this replica's pooled
//! connection. On disconnect there is no connection any more: `kube` calls fail with
//! `unavailable`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{HookSink, Outcome, Planned, Result};
use crate::app::App;
use crate::cluster::{ClusterEvent, ClusterEventKind};
use crate::plugin::{
    ClusterInfo, DisconnectedKubeApi, Error as PluginError, KubeApi, PoolKubeApi, TrapReason, World,
};

/// Lifecycle-hook plugins as a [`HookSink`].
#[derive(Debug, Clone)]
pub struct LifecyclePlugins {
    app: App,
}

impl LifecyclePlugins {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

impl HookSink for LifecyclePlugins {
    fn kind(&self) -> &'static str {
        "plugin"
    }

    fn plan<'a>(&'a self, event: &'a ClusterEvent) -> BoxFuture<'a, Result<Vec<Planned>>> {
        Box::pin(async move {
            let plugins = self.app.plugins.enabled(World::LifecycleHook).await?;
            if plugins.is_empty() {
                return Ok(Vec::new());
            }
            // A deleted cluster has no record any more: its id stands for its name.
            let cluster = match self.app.db.cluster(&event.cluster_id).await? {
                Some(record) => ClusterInfo {
                    id: record.id,
                    name: record.name,
                    labels: record.labels,
                },
                None => ClusterInfo {
                    id: event.cluster_id.clone(),
                    name: event.cluster_id.clone(),
                    labels: BTreeMap::new(),
                },
            };
            let connected = event.kind == ClusterEventKind::Connected;
            Ok(plugins
                .into_iter()
                .map(|plugin| Planned {
                    hook: plugin.name.clone(),
                    scope: plugin.hook_scope.unwrap_or_default(),
                    run: Box::pin(call(
                        self.app.clone(),
                        plugin.name,
                        connected,
                        cluster.clone(),
                        plugin.limits.max_kube_response_bytes,
                    )),
                })
                .collect())
        })
    }
}

async fn call(
    app: App,
    plugin: String,
    connected: bool,
    cluster: ClusterInfo,
    max_body: usize,
) -> Outcome {
    let kube: Arc<dyn KubeApi> = match app.clusters.connection(&cluster.id) {
        Some(connection) if connected => Arc::new(PoolKubeApi::new(connection, max_body)),
        _ => Arc::new(DisconnectedKubeApi::new(&cluster.id)),
    };
    let export = if connected {
        "on-connect"
    } else {
        "on-disconnect"
    };
    match app
        .plugins
        .lifecycle(&plugin, connected, &cluster, kube)
        .await
    {
        Ok(report) => {
            tracing::debug!(
                plugin,
                cluster = %cluster.id,
                export,
                elapsed_ms = report.elapsed_ms,
                "lifecycle hook ran"
            );
            Outcome::Delivered
        }
        Err(PluginError::Trap {
            reason: TrapReason::Cancelled,
            ..
        }) => Outcome::Cancelled,
        Err(e) => {
            tracing::warn!(plugin, cluster = %cluster.id, export, error = %e, "lifecycle hook failed");
            Outcome::Failed
        }
    }
}
