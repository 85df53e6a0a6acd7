//! The plugin registry: plugins from the plugin directory and uploads, kept in the database
//! (so every replica sees the same set, enabled flags and configuration), and the calls that
//! run them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::bindings::types;
use super::engine::{HostSettings, PluginHost, Prepared};
use super::host::{
    CallContext, CallReport, ClusterInfo, Finding, Output, RepositoryInfo, SyncOutcome,
};
use super::http::{ScopedTrust, parse_ca_pem};
use super::kube::KubeApi;
use super::manifest::{Capabilities, HookScope, LimitCeilings, Limits, Manifest, World};
use super::{Error, Result};
use crate::clock::now_millis;
use crate::storage::Db;
use crate::storage::plugins::PluginRow;

/// Where a plugin was installed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    /// `POST /api/v1/plugins`; the component is in the database.
    Upload,
    /// The plugin directory of each replica.
    Directory,
}

impl PluginSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Directory => "directory",
        }
    }
}

/// An installed plugin, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRecord {
    pub name: String,
    pub version: String,
    pub world: World,
    pub description: Option<String>,
    pub source: PluginSource,
    pub enabled: bool,
    /// Hex sha256 of the component.
    pub digest: String,
    pub size: i64,
    pub capabilities: Capabilities,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_scope: Option<HookScope>,
    /// The configuration calls get: the installation's, else the manifest's default.
    pub config: serde_json::Value,
    /// The manifest's default configuration.
    pub default_config: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A plugin found in this replica's plugin directory.
#[derive(Debug, Clone)]
struct LocalPlugin {
    path: PathBuf,
    digest: String,
}

/// The registry and the host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Plugins {
    host: PluginHost,
    db: Db,
    /// Plugins of this replica's plugin directory, by name.
    local: Arc<RwLock<HashMap<String, LocalPlugin>>>,
    /// Cancelled when the gateway stops: in-flight calls end at the next epoch tick.
    shutdown: CancellationToken,
    /// Rows and parsed manifests calls used lately, by name (see [`ROW_CACHE_TTL`]).
    rows: Arc<Mutex<HashMap<String, CachedRow>>>,
}

/// How long a call may use a plugin's row (enabled flag, configuration, digest, manifest)
/// without reading it again. A change made through this replica applies at once; one made
/// through another replica within this long. Reading and parsing the row costs more than the
/// whole call of a small plugin (see `bench/`).
const ROW_CACHE_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct CachedRow {
    read_at: Instant,
    row: Arc<PluginRow>,
    manifest: Arc<Manifest>,
}

impl Plugins {
    /// Starts the host and loads `plugin_dir` (a missing folder is no error).
    pub async fn start(
        settings: HostSettings,
        db: Db,
        plugin_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let plugins = Self::new(settings, db, shutdown)?;
        plugins.load_directory(plugin_dir).await?;
        Ok(plugins)
    }

    /// Starts the host over the plugins `db` holds, loading no plugin directory.
    pub fn new(settings: HostSettings, db: Db, shutdown: CancellationToken) -> Result<Self> {
        Ok(Self {
            host: PluginHost::new(settings)?,
            db,
            local: Arc::default(),
            shutdown,
            rows: Arc::default(),
        })
    }

    /// The wasmtime host.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Loads every `NAME.toml` manifest of `dir` with its component (`NAME.wasm` unless the
    /// manifest names one) and records it in the database. A plugin that fails is logged and
    /// skipped; returns the names loaded. Components are compiled and checked against their
    /// world on first use.
    pub async fn load_directory(&self, dir: &Path) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(dir = %dir.display(), "no plugin directory");
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(Error::Host(format!(
                    "plugin directory {}: {e}",
                    dir.display()
                )));
            }
        };
        let mut manifests: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            // Run from a source checkout, `./plugins` is the plugin workspace: its Cargo
            // manifest is not a plugin manifest.
            .filter(|p| p.file_name().is_none_or(|n| n != "Cargo.toml"))
            .collect();
        manifests.sort();
        let mut loaded = Vec::new();
        for path in manifests {
            match self.load_one(&path).await {
                Ok(name) => {
                    self.forget(&name);
                    loaded.push(name);
                }
                Err(e) => {
                    tracing::error!(manifest = %path.display(), error = %e, "plugin not loaded")
                }
            }
        }
        tracing::info!(dir = %dir.display(), plugins = ?loaded, "plugin directory loaded");
        Ok(loaded)
    }

    async fn load_one(&self, manifest_path: &Path) -> Result<String> {
        let text = std::fs::read_to_string(manifest_path)
            .map_err(|e| Error::Host(format!("{}: {e}", manifest_path.display())))?;
        let manifest = self.check_manifest(&text)?;
        let file = match &manifest.component {
            Some(file) => file.clone(),
            None => {
                let stem = manifest_path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy();
                format!("{stem}.wasm")
            }
        };
        let wasm_path = manifest_path.with_file_name(file);
        let wasm = std::fs::read(&wasm_path)
            .map_err(|e| Error::Host(format!("{}: {e}", wasm_path.display())))?;
        if !wasm.starts_with(b"\0asm") {
            return Err(Error::NotAComponent(format!(
                "{} has no WebAssembly header",
                wasm_path.display()
            )));
        }
        // Compiled on first use (from the disk cache after a restart), not here: starting
        // stays fast however many plugins the directory holds.
        let digest = digest(&wasm);
        let size = wasm.len() as i64;
        let now = now_millis();
        let row = PluginRow {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            world: manifest.world.as_str().to_owned(),
            manifest: text,
            digest: digest.clone(),
            size,
            source: PluginSource::Directory.as_str().to_owned(),
            enabled: true,
            config: None,
            created_at: now,
            updated_at: now,
        };
        match self.db.plugin(&manifest.name).await? {
            Some(existing) if existing.source != PluginSource::Directory.as_str() => {
                return Err(Error::Host(format!(
                    "an uploaded plugin named `{}` exists; the directory's is ignored",
                    manifest.name
                )));
            }
            Some(existing) => {
                if existing.digest != row.digest || existing.manifest != row.manifest {
                    self.db.replace_plugin(&row, None).await?;
                }
            }
            None => match self.db.insert_plugin(&row, None).await {
                Ok(()) | Err(crate::storage::StorageError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            },
        }
        self.local.write().insert(
            manifest.name.clone(),
            LocalPlugin {
                path: wasm_path,
                digest,
            },
        );
        Ok(manifest.name)
    }

    /// Parses and validates manifest text under this host's ceilings.
    pub fn check_manifest(&self, text: &str) -> Result<Manifest> {
        Manifest::parse(text, self.host.settings().ceilings())
    }

    /// Installs an uploaded plugin after checking that the component implements the declared
    /// world; with `replace`, an existing uploaded plugin of that name is replaced (keeping
    /// its enabled flag and configuration).
    pub async fn install(
        &self,
        manifest_text: &str,
        wasm: Vec<u8>,
        replace: bool,
    ) -> Result<(PluginRecord, bool)> {
        let manifest = self.check_manifest(manifest_text)?;
        let digest = digest(&wasm);
        let size = wasm.len() as i64;
        // One buffer, shared by the compiler and the database write.
        let wasm = Bytes::from(wasm);
        let component = wasm.clone();
        self.host
            .prepare(&digest, manifest.world, async move { Ok(component) })
            .await?;
        let now = now_millis();
        let row = PluginRow {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            world: manifest.world.as_str().to_owned(),
            manifest: manifest_text.to_owned(),
            digest,
            size,
            source: PluginSource::Upload.as_str().to_owned(),
            enabled: true,
            config: None,
            created_at: now,
            updated_at: now,
        };
        let existing = self.db.plugin(&manifest.name).await?;
        let replaced = match existing {
            Some(existing) if existing.source == PluginSource::Directory.as_str() => {
                return Err(Error::FromDirectory(manifest.name));
            }
            Some(_) if replace => {
                self.db.replace_plugin(&row, Some(&wasm[..])).await?;
                true
            }
            _ => {
                self.db.insert_plugin(&row, Some(&wasm[..])).await?;
                false
            }
        };
        self.forget(&row.name);
        tracing::info!(plugin = %row.name, version = %row.version, world = %row.world, replaced, "plugin installed");
        Ok((self.get(&row.name).await?, replaced))
    }

    /// Every plugin, by name.
    pub async fn list(&self) -> Result<Vec<PluginRecord>> {
        let rows = self.db.plugins().await?;
        rows.into_iter().map(|row| self.record(row)).collect()
    }

    /// Enabled plugins of one world (for the scheduler and the hooks).
    pub async fn enabled(&self, world: World) -> Result<Vec<PluginRecord>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|p| p.enabled && p.world == world)
            .collect())
    }

    /// One plugin.
    pub async fn get(&self, name: &str) -> Result<PluginRecord> {
        let row = self
            .db
            .plugin(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        self.record(row)
    }

    /// Enables or disables a plugin.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<PluginRecord> {
        if !self.db.set_plugin_enabled(name, enabled).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        self.forget(name);
        tracing::info!(plugin = name, enabled, "plugin state changed");
        self.get(name).await
    }

    /// Replaces the configuration calls get (`None`: back to the manifest's default).
    pub async fn set_config(
        &self,
        name: &str,
        config: Option<&serde_json::Value>,
    ) -> Result<PluginRecord> {
        let text = config.map(serde_json::Value::to_string);
        if !self.db.set_plugin_config(name, text.as_deref()).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        self.forget(name);
        self.get(name).await
    }

    /// Deletes an uploaded plugin. A plugin of this replica's directory cannot be deleted.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if self.local.read().contains_key(name) {
            return Err(Error::FromDirectory(name.to_owned()));
        }
        if !self.db.delete_plugin(name).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        self.forget(name);
        let keep: Vec<String> = self
            .db
            .plugins()
            .await?
            .into_iter()
            .map(|p| p.digest)
            .collect();
        self.host.retain(&keep);
        tracing::info!(plugin = name, "plugin deleted");
        Ok(())
    }

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
                    let Prepared::Inspector(pre) = prepared else {
                        return Err(wasmtime::Error::msg("not an inspector"));
                    };
                    let instance = pre.instantiate(&mut *store)?;
                    instance.call_inspect(&mut *store, &target)
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
            let roots = parse_ca_pem(pem).map_err(invalid)?;
            context.http_clients.scoped = Some(
                ScopedTrust::new(&repository.url, &roots, &context.http_clients.policy)
                    .map_err(invalid)?,
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
                    let Prepared::RepoSync(pre) = prepared else {
                        return Err(wasmtime::Error::msg("not a repo-sync plugin"));
                    };
                    let instance = pre.instantiate(&mut *store)?;
                    instance.call_sync(&mut *store, &repo)
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
                    let Prepared::LifecycleHook(pre) = prepared else {
                        return Err(wasmtime::Error::msg("not a lifecycle hook"));
                    };
                    let instance = pre.instantiate(&mut *store)?;
                    if connected {
                        instance.call_on_connect(&mut *store, &target)
                    } else {
                        instance.call_on_disconnect(&mut *store, &target)
                    }
                },
            )
            .await
    }

    /// The row of plugin `name` with its parsed manifest: from the cache when read within
    /// [`ROW_CACHE_TTL`], else from the database.
    async fn row(&self, name: &str) -> Result<(Arc<PluginRow>, Arc<Manifest>)> {
        if let Some(cached) = self.rows.lock().get(name)
            && cached.read_at.elapsed() < ROW_CACHE_TTL
        {
            return Ok((cached.row.clone(), cached.manifest.clone()));
        }
        let read_at = Instant::now();
        let row = self
            .db
            .plugin(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        // Held to today's ceilings, which may be lower than when it was stored.
        let manifest = Arc::new(self.check_manifest(&row.manifest).map_err(|e| match e {
            Error::Manifest(m) => Error::Manifest(format!("plugin `{name}`: {m}")),
            other => other,
        })?);
        let row = Arc::new(row);
        self.rows.lock().insert(
            name.to_owned(),
            CachedRow {
                read_at,
                row: row.clone(),
                manifest: manifest.clone(),
            },
        );
        Ok((row, manifest))
    }

    /// Drops the cached row of `name` after this replica changed it.
    fn forget(&self, name: &str) {
        self.rows.lock().remove(name);
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
        let (row, manifest) = self.row(name).await?;
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
        let loader = {
            let db = self.db.clone();
            let local = self.local.read().get(name).cloned();
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
                if local.digest != row.digest {
                    return Err(missing(format!(
                        "component with digest {} (its file has {})",
                        row.digest, local.digest
                    )));
                }
                let wasm = std::fs::read(&local.path)
                    .map_err(|e| missing(format!("readable file {}: {e}", local.path.display())))?;
                if digest(&wasm) != row.digest {
                    return Err(missing(format!(
                        "component with digest {} (the file changed since start)",
                        row.digest
                    )));
                }
                Ok(Bytes::from(wasm))
            }
        };
        let prepared = self.host.prepare(&row.digest, world, loader).await?;
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
            runtime: tokio::runtime::Handle::current(),
            deadline: Instant::now(),
        };
        Ok((manifest, prepared, context))
    }

    fn record(&self, row: PluginRow) -> Result<PluginRecord> {
        // Without ceilings: a plugin stored before they were lowered is still listed (and can
        // be disabled or replaced); calling it fails, naming the limit over its ceiling.
        let manifest = Manifest::parse(&row.manifest, LimitCeilings::NONE)
            .map_err(|e| Error::Host(format!("stored manifest of `{}`: {e}", row.name)))?;
        let config = match &row.config {
            Some(text) => serde_json::from_str(text).map_err(|_| {
                crate::storage::StorageError::Corrupt(format!("plugins.config of {}", row.name))
            })?,
            None => manifest.config.clone(),
        };
        Ok(PluginRecord {
            source: if row.source == PluginSource::Directory.as_str() {
                PluginSource::Directory
            } else {
                PluginSource::Upload
            },
            name: row.name,
            version: row.version,
            world: manifest.world,
            description: manifest.description,
            enabled: row.enabled,
            digest: row.digest,
            size: row.size,
            capabilities: manifest.capabilities,
            limits: manifest.limits,
            hook_scope: manifest.hook_scope,
            config,
            default_config: manifest.config,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Hex sha256.
pub(super) fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
