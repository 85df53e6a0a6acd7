//! The calls that run a plugin: inspections, repository syncs and lifecycle hooks, and how a
//! call finds its plugin's component, configuration and allow-list.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{LocalComponent, LocalPlugin, PluginSource, Plugins, digest};
use crate::plugin::bindings::types;
use crate::plugin::engine::{Prepared, WorldPre};
use crate::plugin::host::{
    CallContext, CallReport, ClusterInfo, ConfigIssue, Finding, Output, RepositoryInfo, SyncOutcome,
};
use crate::plugin::http::{ScopedTrust, parse_ca_pem};
use crate::plugin::kube::KubeApi;
use crate::plugin::manifest::{Manifest, World};
use crate::plugin::{Error, Result};

impl Plugins {
    /// Runs inspector `name` against the cluster `kube` reads.
    pub async fn inspect(
        &self,
        name: &str,
        cluster: &ClusterInfo,
        kube: Arc<dyn KubeApi>,
    ) -> Result<CallReport<Vec<Finding>>> {
        self.inspect_with_config(name, cluster, kube, None).await
    }

    /// [`Plugins::inspect`] with `config` instead of the installed configuration (for this
    /// call only: nothing is stored).
    pub async fn inspect_with_config(
        &self,
        name: &str,
        cluster: &ClusterInfo,
        kube: Arc<dyn KubeApi>,
        config: Option<&serde_json::Value>,
    ) -> Result<CallReport<Vec<Finding>>> {
        let (manifest, prepared, context) = self
            .resolve(name, World::Inspector, Some(kube), Vec::new(), config)
            .await?;
        let target = types::Cluster::from(cluster);
        let report = self
            .host
            .call(
                prepared,
                context,
                self.shutdown.child_token(),
                move |store, prepared| {
                    Box::pin(async move {
                        let WorldPre::Inspector(pre) = &prepared.world else {
                            return Err(wasmtime::Error::msg("not an inspector"));
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance.call_inspect(&mut *store, &target).await
                    })
                },
            )
            .await?;
        let findings =
            Output::new(name, manifest.limits.max_output_bytes).findings(report.value)?;
        Ok(CallReport {
            value: findings,
            logs: report.logs,
            elapsed_ms: report.elapsed_ms,
        })
    }

    /// Runs repo-sync plugin `name` for `repository`. The repository's own host is allowed
    /// in addition to the manifest's `http` allow-list, and requests to it trust the
    /// repository's CA (when it has one) besides the web PKI roots.
    pub async fn sync_repository(
        &self,
        name: &str,
        repository: &RepositoryInfo,
    ) -> Result<CallReport<SyncOutcome>> {
        let mut extra = Vec::new();
        if let Ok(url) = reqwest::Url::parse(&repository.url)
            && let Some(host) = url.host_str()
        {
            extra.push(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            });
        }
        let (manifest, prepared, mut context) = self
            .resolve(name, World::RepoSync, None, extra, None)
            .await?;
        if let Some(pem) = &repository.ca_pem {
            let invalid = |detail| Error::InvalidCa {
                repository: repository.name.clone(),
                detail,
            };
            let roots = parse_ca_pem(pem).map_err(|e| invalid(e.to_string()))?;
            context.http_clients.scoped = Some(
                ScopedTrust::new(&repository.url, &roots, &context.http_clients.policy)
                    .map_err(|e| invalid(e.to_string()))?,
            );
        }
        let repo = types::Repository::from(repository);
        let report = self
            .host
            .call(
                prepared,
                context,
                self.shutdown.child_token(),
                move |store, prepared| {
                    Box::pin(async move {
                        let WorldPre::RepoSync(pre) = &prepared.world else {
                            return Err(wasmtime::Error::msg("not a repo-sync plugin"));
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance.call_sync(&mut *store, &repo).await
                    })
                },
            )
            .await?;
        let outcome = Output::new(name, manifest.limits.max_output_bytes).sync(report.value)?;
        Ok(CallReport {
            value: outcome,
            logs: report.logs,
            elapsed_ms: report.elapsed_ms,
        })
    }

    /// Calls lifecycle hook `name`'s `on-connect` (`connected`) or `on-disconnect`.
    pub async fn lifecycle(
        &self,
        name: &str,
        connected: bool,
        cluster: &ClusterInfo,
        kube: Arc<dyn KubeApi>,
    ) -> Result<CallReport<()>> {
        self.lifecycle_with_config(name, connected, cluster, kube, None)
            .await
    }

    /// [`Plugins::lifecycle`] with `config` instead of the installed configuration (for this
    /// call only: nothing is stored).
    pub async fn lifecycle_with_config(
        &self,
        name: &str,
        connected: bool,
        cluster: &ClusterInfo,
        kube: Arc<dyn KubeApi>,
        config: Option<&serde_json::Value>,
    ) -> Result<CallReport<()>> {
        let (_, prepared, context) = self
            .resolve(name, World::LifecycleHook, Some(kube), Vec::new(), config)
            .await?;
        let target = types::Cluster::from(cluster);
        self.host
            .call(
                prepared,
                context,
                self.shutdown.child_token(),
                move |store, prepared| {
                    Box::pin(async move {
                        let WorldPre::LifecycleHook(pre) = &prepared.world else {
                            return Err(wasmtime::Error::msg("not a lifecycle hook"));
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        if connected {
                            instance.call_on_connect(&mut *store, &target).await
                        } else {
                            instance.call_on_disconnect(&mut *store, &target).await
                        }
                    })
                },
            )
            .await
    }

    /// Asks plugin `name`'s `config-check` export about `config`, under the plugin's own
    /// limits and capabilities (its `config.get` returns `config`; there is no cluster, so
    /// `kube` calls fail with `unavailable`). `None`: the component has no such export. A
    /// disabled plugin is asked too: its configuration may be set before it is enabled.
    pub async fn check_config(
        &self,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<Option<Vec<ConfigIssue>>> {
        let (manifest, prepared, context) = self
            .resolve_any(name, None, None, Vec::new(), Some(config))
            .await?;
        if prepared.config_check.is_none() {
            return Ok(None);
        }
        let text = config.to_string();
        let report = self
            .host
            .call(
                prepared,
                context,
                self.shutdown.child_token(),
                move |store, prepared| {
                    Box::pin(async move {
                        let Some(pre) = &prepared.config_check else {
                            return Err(wasmtime::Error::msg("no config-check export"));
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .portico_plugin_config_check()
                            .call_validate_config(&mut *store, &text)
                            .await
                    })
                },
            )
            .await?;
        // The output cap holds here as for any export (16 bytes per element, as `Output`).
        let size: usize = report
            .value
            .iter()
            .map(|issue| issue.path.len() + issue.message.len() + 16)
            .sum();
        let limit = manifest.limits.max_output_bytes;
        if size > limit {
            return Err(Error::OutputTooLarge {
                plugin: name.to_owned(),
                size,
                limit,
            });
        }
        Ok(Some(
            report
                .value
                .into_iter()
                .map(|issue| ConfigIssue {
                    field: issue.path,
                    message: issue.message,
                    line: issue.line,
                    column: issue.column,
                })
                .collect(),
        ))
    }

    /// The manifest, the prepared component and the call context of an enabled plugin.
    async fn resolve(
        &self,
        name: &str,
        world: World,
        kube: Option<Arc<dyn KubeApi>>,
        extra_hosts: Vec<String>,
        config_override: Option<&serde_json::Value>,
    ) -> Result<(Arc<Manifest>, Arc<Prepared>, CallContext)> {
        self.resolve_any(name, Some(world), kube, extra_hosts, config_override)
            .await
    }

    /// [`Plugins::resolve`] for a plugin of `world` that must be enabled, or (`None`) for
    /// any plugin, enabled or not.
    async fn resolve_any(
        &self,
        name: &str,
        world: Option<World>,
        kube: Option<Arc<dyn KubeApi>>,
        extra_hosts: Vec<String>,
        config_override: Option<&serde_json::Value>,
    ) -> Result<(Arc<Manifest>, Arc<Prepared>, CallContext)> {
        let (row, manifest) = self.row(name).await?;
        if let Some(world) = world {
            if !row.enabled {
                return Err(Error::Disabled(name.to_owned()));
            }
            if manifest.world != world {
                return Err(Error::WrongKind {
                    name: name.to_owned(),
                    actual: manifest.world,
                    expected: world,
                });
            }
        }
        let world = manifest.world;
        let local = self.local.read().get(name).cloned();
        // A built-in runs this binary's component: compiled under its own digest.
        let digest_key = match &local {
            Some(LocalPlugin {
                component: LocalComponent::Embedded(_),
                digest,
            }) => digest.clone(),
            _ => row.digest.clone(),
        };
        let loader = {
            let db = self.db.clone();
            let row = Arc::clone(&row);
            async move {
                if row.source == PluginSource::Upload.as_str() {
                    return db
                        .plugin_component(&row.name, &row.digest)
                        .await?
                        .map(Bytes::from)
                        .ok_or_else(|| Error::NotFound(row.name.clone()));
                }
                let missing = |detail: String| Error::MissingComponent {
                    name: row.name.clone(),
                    detail,
                };
                let local = local
                    .ok_or_else(|| missing("such plugin in its plugin directory".to_owned()))?;
                let path = match local.component {
                    // This binary's own component, whatever version another replica recorded.
                    LocalComponent::Embedded(bytes) => return Ok(Bytes::from_static(bytes)),
                    LocalComponent::File(path) => path,
                };
                if local.digest != row.digest {
                    return Err(missing(format!(
                        "component with digest {} (its file has {})",
                        row.digest, local.digest
                    )));
                }
                let wasm = std::fs::read(&path)
                    .map_err(|e| missing(format!("readable file {}: {e}", path.display())))?;
                if digest(&wasm) != row.digest {
                    return Err(missing(format!(
                        "component with digest {} (the file changed since start)",
                        row.digest
                    )));
                }
                Ok(Bytes::from(wasm))
            }
        };
        let prepared = self.host.prepare(&digest_key, world, loader).await?;
        let config = match (config_override, &row.config) {
            (Some(value), _) => value.to_string(),
            (None, Some(text)) => text.clone(),
            (None, None) => manifest.config.to_string(),
        };
        let mut http_allow = manifest.capabilities.http.clone().unwrap_or_default();
        if manifest.capabilities.http.is_some() {
            http_allow.extend(extra_hosts);
        }
        let context = CallContext {
            plugin: name.to_owned(),
            capabilities: manifest.capabilities.clone(),
            limits: manifest.limits.clone(),
            config,
            kube,
            http_allow,
            http_clients: self.host.http_clients(),
            deadline: Instant::now(),
        };
        Ok((manifest, prepared, context))
    }
}
