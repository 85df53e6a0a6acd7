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
use crate::cluster::{ClusterEvent, ClusterEventKind, ClusterManager};
use crate::plugin::{
    ClusterInfo, DisconnectedKubeApi, Error as PluginError, KubeApi, Plugins, PoolKubeApi,
    TrapReason, World,
};
use crate::storage::Db;

/// Lifecycle-hook plugins as a [`HookSink`].
#[derive(Debug, Clone)]
pub struct LifecyclePlugins {
    plugins: Plugins,
    clusters: Arc<ClusterManager>,
    db: Db,
}

impl LifecyclePlugins {
    pub fn new(plugins: Plugins, clusters: Arc<ClusterManager>, db: Db) -> Self {
        Self {
            plugins,
            clusters,
            db,
        }
    }
}

impl HookSink for LifecyclePlugins {
    fn kind(&self) -> &'static str {
        "plugin"
    }

    fn plan<'a>(&'a self, event: &'a ClusterEvent) -> BoxFuture<'a, Result<Vec<Planned>>> {
        Box::pin(async move {
            let plugins = self.plugins.enabled(World::LifecycleHook).await?;
            if plugins.is_empty() {
                return Ok(Vec::new());
            }
            // A deleted cluster has no record any more: its id stands for its name.
            let cluster = match self.db.cluster(&event.cluster_id).await? {
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
                        self.clone(),
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
    hooks: LifecyclePlugins,
    plugin: String,
    connected: bool,
    cluster: ClusterInfo,
    max_body: usize,
) -> Outcome {
    let kube: Arc<dyn KubeApi> = match hooks.clusters.connection(&cluster.id) {
        Some(connection) if connected => Arc::new(PoolKubeApi::new(connection, max_body)),
        _ => Arc::new(DisconnectedKubeApi::new(&cluster.id)),
    };
    let export = if connected {
        "on-connect"
    } else {
        "on-disconnect"
    };
    match hooks
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
