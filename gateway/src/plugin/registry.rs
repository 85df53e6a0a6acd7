//! The plugin registry: plugins from the plugin directory and uploads, kept in the database
//! (so every replica sees the same set, enabled flags and configuration), and the calls that
//! run them. This file holds the registry's state and its reads and edits; installing is in
//! `registry/install.rs`, the calls in `registry/calls.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::engine::{HostSettings, PluginHost};
use super::manifest::{Capabilities, HookScope, LimitCeilings, Limits, Manifest, World};
use super::{Error, Result};
use crate::storage::Db;
use crate::storage::plugins::PluginRow;

mod builtin;
mod calls;
mod install;

/// Where a plugin was installed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    /// Compiled into the `portico` binary; versioned with it.
    Builtin,
    /// `POST /api/v1/plugins`; the component is in the database.
    Upload,
    /// The plugin directory of each replica.
    Directory,
}

impl PluginSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Upload => "upload",
            Self::Directory => "directory",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "builtin" => Self::Builtin,
            "directory" => Self::Directory,
            _ => Self::Upload,
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
    /// Compiled into the binary: can be disabled and configured, not deleted or replaced.
    pub built_in: bool,
    pub enabled: bool,
    /// Hex sha256 of the component.
    pub digest: String,
    /// The component's size in bytes (as `component_bytes`; kept for older clients).
    pub size: i64,
    /// The component's size in bytes.
    pub component_bytes: i64,
    /// How long this replica took to compile the component (from the disk cache: to load
    /// it), in milliseconds; `None` until it has been compiled here. Uploads are compiled at
    /// upload; built-in, plugin-directory and stored uploaded plugins in the background at
    /// start.
    pub compiled_in_ms: Option<u64>,
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

/// A plugin whose component this replica holds itself: built in, or from its plugin
/// directory.
#[derive(Debug, Clone)]
struct LocalPlugin {
    component: LocalComponent,
    digest: String,
}

#[derive(Debug, Clone)]
enum LocalComponent {
    /// A file of the plugin directory, read when the component is compiled.
    File(PathBuf),
    /// Compiled into the binary.
    Embedded(&'static [u8]),
}

/// The registry and the host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Plugins {
    host: PluginHost,
    db: Db,
    /// Built-in plugins and those of this replica's plugin directory, by name.
    local: Arc<RwLock<HashMap<String, LocalPlugin>>>,
    /// Cancelled when the gateway stops: in-flight calls end at the next epoch tick.
    shutdown: CancellationToken,
    /// Rows and parsed manifests calls used lately, by name (see [`ROW_CACHE_TTL`]).
    rows: Arc<Mutex<HashMap<String, CachedRow>>>,
    /// Built-in plugins still compiling in the background.
    compiling: Arc<tokio::sync::watch::Sender<usize>>,
    /// Compile components in the background as they are found (a gateway); off for one-shot
    /// commands, which compile only the plugin they call, when they call it.
    precompile: bool,
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
    /// Starts the host, installs the built-in plugins (compiling them in the background) and
    /// loads `plugin_dir` (a missing folder is no error).
    pub async fn start(
        settings: HostSettings,
        db: Db,
        plugin_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let plugins = Self::new(settings, db, shutdown)?;
        plugins.load_builtins().await?;
        plugins.load_directory(plugin_dir).await?;
        plugins.compile_uploads().await?;
        Ok(plugins)
    }

    /// Compiles the enabled uploads the database holds in the background, so the first
    /// scheduled call after a start does not wait for the compiler (from the disk cache when
    /// this machine compiled them before). Uploads another replica stores later are compiled
    /// by that replica at upload, and here on first use.
    async fn compile_uploads(&self) -> Result<()> {
        for row in self.db.plugins().await? {
            if row.source != PluginSource::Upload.as_str() || !row.enabled {
                continue;
            }
            let Ok(manifest) = Manifest::parse(&row.manifest, LimitCeilings::NONE) else {
                continue; // Listed with its error; calls report it.
            };
            let db = self.db.clone();
            let (name, digest) = (row.name.clone(), row.digest.clone());
            let component = async move {
                db.plugin_component(&name, &digest)
                    .await?
                    .map(Bytes::from)
                    .ok_or_else(|| Error::NotFound(name))
            };
            self.compile_in_background(row.name, row.digest, manifest.world, component);
        }
        Ok(())
    }

    /// Compiles a component in the background (one at a time, see
    /// [`PluginHost::prepare_in_background`]) so the first call does not wait for the
    /// compiler; [`Self::builtins_compiled`] waits for these.
    pub(super) fn compile_in_background(
        &self,
        name: String,
        digest: String,
        world: World,
        component: impl Future<Output = Result<Bytes>> + Send + 'static,
    ) {
        if !self.precompile {
            return;
        }
        let host = self.host.clone();
        let compiling = self.compiling.clone();
        compiling.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            match host.prepare_in_background(&digest, world, component).await {
                Ok(_) => tracing::info!(
                    plugin = %name,
                    elapsed_ms = host.compiled_in_ms(&digest),
                    "plugin compiled in the background"
                ),
                Err(e) => tracing::error!(plugin = %name, error = %e, "plugin does not compile"),
            }
            compiling.send_modify(|n| *n -= 1);
        });
    }

    /// For a one-shot command: nothing is compiled in the background.
    pub fn without_precompile(mut self) -> Self {
        self.precompile = false;
        self
    }

    /// Starts the host over the plugins `db` holds, loading no plugin directory.
    pub fn new(settings: HostSettings, db: Db, shutdown: CancellationToken) -> Result<Self> {
        Ok(Self {
            host: PluginHost::new(settings)?,
            db,
            local: Arc::default(),
            shutdown,
            rows: Arc::default(),
            compiling: Arc::new(tokio::sync::watch::Sender::new(0)),
            precompile: true,
        })
    }

    /// The wasmtime host.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Parses and validates manifest text under this host's ceilings.
    pub fn check_manifest(&self, text: &str) -> Result<Manifest> {
        Manifest::parse(text, self.host.settings().ceilings())
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

    /// Replaces the configuration calls get (`None`: back to the manifest's default). A new
    /// configuration is first put to the plugin's `config-check` export, when it has one:
    /// issues refuse it ([`Error::InvalidConfig`]), and so does a check that fails; either
    /// way nothing is stored.
    pub async fn set_config(
        &self,
        name: &str,
        config: Option<&serde_json::Value>,
    ) -> Result<PluginRecord> {
        if let Some(config) = config
            && let Some(issues) = self.check_config(name, config).await?
            && !issues.is_empty()
        {
            tracing::info!(
                plugin = name,
                issues = issues.len(),
                "plugin configuration refused"
            );
            return Err(Error::InvalidConfig {
                plugin: name.to_owned(),
                issues,
            });
        }
        let text = config.map(serde_json::Value::to_string);
        if !self.db.set_plugin_config(name, text.as_deref()).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        self.forget(name);
        self.get(name).await
    }

    /// Deletes an uploaded plugin. A built-in plugin or one of this replica's directory cannot
    /// be deleted. Deleting an upload that had taken a built-in's name installs the built-in.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let row = self
            .db
            .plugin(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        match PluginSource::parse(&row.source) {
            PluginSource::Builtin => return Err(Error::Builtin(name.to_owned())),
            PluginSource::Directory => return Err(Error::FromDirectory(name.to_owned())),
            PluginSource::Upload => {}
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
        if let Some(builtin) = builtin::find(name) {
            self.load_builtin(builtin).await?;
        }
        Ok(())
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
        let source = PluginSource::parse(&row.source);
        // A built-in runs (and was compiled as) this binary's component.
        let compiled_digest = match self.local.read().get(&row.name) {
            Some(LocalPlugin {
                component: LocalComponent::Embedded(_),
                digest,
            }) => digest.clone(),
            _ => row.digest.clone(),
        };
        Ok(PluginRecord {
            compiled_in_ms: self.host.compiled_in_ms(&compiled_digest),
            component_bytes: row.size,
            source,
            built_in: source == PluginSource::Builtin,
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
