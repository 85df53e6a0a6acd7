//! The built-in plugins (`plugins/builtin/*`), compiled into the binary by `gateway/build.rs`.
//!
//! On every start each one is recorded in the database with source `builtin` and the binary's
//! version (keeping its enabled flag and configuration), its component stays in memory, and it
//! is compiled in the background so the first call does not wait for the compiler. Each replica
//! runs the component of its own binary, so during a rolling upgrade every replica runs the
//! version it was built with.
//!
//! A built-in plugin's name is reserved: an upload or a plugin-directory plugin of that name
//! is refused. The one exception is an upload stored before the name became built in: it keeps
//! the name (a warning says so at every start) until it is deleted; then the built-in is
//! installed at once.

use std::sync::OnceLock;

use bytes::Bytes;

use super::{LocalComponent, PluginSource, Plugins, digest};
use crate::clock::now_millis;
use crate::plugin::manifest::{LimitCeilings, Manifest};
use crate::plugin::{Error, Result};
use crate::storage::plugins::PluginRow;

/// One built-in plugin: its manifest and its component.
pub(super) struct Builtin {
    pub(super) manifest: &'static str,
    pub(super) component: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// The names of the built-in plugins, in build order.
pub fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|b| {
                Manifest::parse(b.manifest, LimitCeilings::NONE)
                    .map(|m| m.name)
                    .unwrap_or_default()
            })
            .collect()
    })
}

/// The built-in plugin named `name`.
pub(super) fn find(name: &str) -> Option<&'static Builtin> {
    names()
        .iter()
        .position(|n| n == name)
        .map(|index| &BUILTIN[index])
}

impl Plugins {
    /// Installs every built-in plugin (see the module's documentation).
    pub async fn load_builtins(&self) -> Result<()> {
        for builtin in BUILTIN {
            self.load_builtin(builtin).await?;
        }
        Ok(())
    }

    /// Records one built-in plugin, keeps its component and compiles it in the background.
    pub(super) async fn load_builtin(&self, builtin: &'static Builtin) -> Result<()> {
        let manifest = self.check_manifest(builtin.manifest).map_err(|e| {
            Error::Host(format!(
                "a built-in plugin does not fit this gateway's limits: {e}"
            ))
        })?;
        let name = manifest.name.clone();
        let digest = digest(builtin.component);
        let now = now_millis();
        let row = PluginRow {
            name: name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            world: manifest.world.as_str().to_owned(),
            manifest: builtin.manifest.to_owned(),
            digest: digest.clone(),
            size: builtin.component.len() as i64,
            source: PluginSource::Builtin.as_str().to_owned(),
            enabled: true,
            config: None,
            created_at: now,
            updated_at: now,
        };
        if !self
            .record_local(row, LocalComponent::Embedded(builtin.component))
            .await?
        {
            tracing::warn!(
                plugin = %name,
                "an uploaded plugin has the name of a built-in plugin and keeps it; delete \
                 the upload to use the built-in"
            );
            return Ok(());
        }

        let component = async { Ok(Bytes::from_static(builtin.component)) };
        self.compile_in_background(name, digest, manifest.world, component);
        Ok(())
    }

    /// Resolves once no plugin is compiling in the background any more (built-in ones, the
    /// plugin directory's and the uploads found at start).
    pub async fn builtins_compiled(&self) {
        let mut pending = self.compiling.subscribe();
        // The sender lives in `self`, so the channel stays open while this waits.
        let _ = pending.wait_for(|n| *n == 0).await;
    }
}
