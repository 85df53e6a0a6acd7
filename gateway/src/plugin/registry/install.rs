//! Installing plugins: loading the plugin directory into the database, and uploads.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{LocalComponent, LocalPlugin, PluginRecord, PluginSource, Plugins, builtin, digest};
use crate::clock::now_millis;
use crate::plugin::{Error, Result};
use crate::storage::plugins::PluginRow;

impl Plugins {
    /// Loads every `NAME.toml` manifest of `dir` with its component (`NAME.wasm` unless the
    /// manifest names one) and records it in the database. A plugin that fails is logged and
    /// skipped; returns the names loaded. Components are compiled and checked against their
    /// world in the background (a failure is logged; calls report it).
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
        if builtin::find(&manifest.name).is_some() {
            return Err(Error::Builtin(manifest.name));
        }
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
        // Compiled in the background (from the disk cache after a restart), not here:
        // starting stays fast however many plugins the directory holds.
        let expected = digest(&wasm);
        let now = now_millis();
        let row = PluginRow {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            world: manifest.world.as_str().to_owned(),
            manifest: text,
            digest: expected.clone(),
            size: wasm.len() as i64,
            source: PluginSource::Directory.as_str().to_owned(),
            enabled: true,
            config: None,
            created_at: now,
            updated_at: now,
        };
        if !self
            .record_local(row, LocalComponent::File(wasm_path.clone()))
            .await?
        {
            return Err(Error::Host(format!(
                "an uploaded plugin named `{}` exists; the directory's is ignored",
                manifest.name
            )));
        }
        drop(wasm);
        let check = expected.clone();
        let component = async move {
            // Read again rather than held: the file may be large, and the compile waits its
            // turn. A file changed since is not compiled under the old digest.
            let wasm = std::fs::read(&wasm_path)
                .map_err(|e| Error::Host(format!("{}: {e}", wasm_path.display())))?;
            if digest(&wasm) != check {
                return Err(Error::Host(format!(
                    "{} changed since start",
                    wasm_path.display()
                )));
            }
            Ok(Bytes::from(wasm))
        };
        self.compile_in_background(manifest.name.clone(), expected, manifest.world, component);
        Ok(manifest.name)
    }

    /// Records a plugin whose component this replica holds itself (built in, or from its
    /// plugin directory): inserts its row, or replaces one that differs (the enabled flag and
    /// configuration stay), then keeps the component. An uploaded plugin of that name keeps
    /// it: nothing is recorded and this returns `false`.
    pub(super) async fn record_local(
        &self,
        row: PluginRow,
        component: LocalComponent,
    ) -> Result<bool> {
        match self.db.plugin(&row.name).await? {
            Some(existing) if existing.source == PluginSource::Upload.as_str() => return Ok(false),
            Some(existing) => {
                let same = existing.source == row.source
                    && existing.digest == row.digest
                    && existing.version == row.version
                    && existing.manifest == row.manifest;
                if !same {
                    self.db.replace_plugin(&row, None).await?;
                }
            }
            None => match self.db.insert_plugin(&row, None).await {
                Ok(()) | Err(crate::storage::StorageError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            },
        }
        self.local.write().insert(
            row.name.clone(),
            LocalPlugin {
                component,
                digest: row.digest,
            },
        );
        self.forget(&row.name);
        Ok(true)
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
        // A built-in's name is reserved, unless an upload held it before it was built in.
        if builtin::find(&manifest.name).is_some()
            && self
                .db
                .plugin(&manifest.name)
                .await?
                .is_none_or(|p| p.source != PluginSource::Upload.as_str())
        {
            return Err(Error::Builtin(manifest.name));
        }
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
}
