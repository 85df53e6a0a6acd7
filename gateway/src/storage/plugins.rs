//! Installed plugins: manifest, component (uploads only), enabled flag and configuration.

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};

/// A stored plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub world: String,
    /// The manifest text (TOML).
    pub manifest: String,
    /// Hex sha256 of the component.
    pub digest: String,
    pub size: i64,
    /// `upload` or `directory`.
    pub source: String,
    pub enabled: bool,
    /// JSON configuration replacing the manifest's default.
    pub config: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(FromRow)]
struct Row {
    name: String,
    version: String,
    world: String,
    manifest: String,
    digest: String,
    size: i64,
    source: String,
    enabled: String,
    config: Option<String>,
    created_at: i64,
    updated_at: i64,
}

macro_rules! plugin_columns {
    () => {
        "name, version, world, manifest, digest, size, source, enabled, config, created_at, updated_at"
    };
}

impl TryFrom<Row> for PluginRow {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self> {
        let enabled = match row.enabled.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(StorageError::Corrupt(format!(
                    "plugins.enabled of {}",
                    row.name
                )));
            }
        };
        Ok(Self {
            name: row.name,
            version: row.version,
            world: row.world,
            manifest: row.manifest,
            digest: row.digest,
            size: row.size,
            source: row.source,
            enabled,
            config: row.config,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn flag(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

impl Db {
    /// Stores a new plugin; an existing name is a conflict.
    pub async fn insert_plugin(&self, plugin: &PluginRow, component: Option<&[u8]>) -> Result<()> {
        let name = plugin.name.clone();
        sqlx::query(
            "INSERT INTO plugins (name, version, world, manifest, component, digest, size, source, \
             enabled, config, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(&plugin.world)
        .bind(&plugin.manifest)
        .bind(component.map(<[u8]>::to_vec))
        .bind(&plugin.digest)
        .bind(plugin.size)
        .bind(&plugin.source)
        .bind(flag(plugin.enabled))
        .bind(&plugin.config)
        .bind(plugin.created_at)
        .bind(plugin.updated_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("a plugin named `{name}`")))?;
        Ok(())
    }

    /// Replaces a plugin's manifest and component (keeping its enabled flag and
    /// configuration); returns whether it existed.
    pub async fn replace_plugin(
        &self,
        plugin: &PluginRow,
        component: Option<&[u8]>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE plugins SET version = $2, world = $3, manifest = $4, component = $5, \
             digest = $6, size = $7, source = $8, updated_at = $9 WHERE name = $1",
        )
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(&plugin.world)
        .bind(&plugin.manifest)
        .bind(component.map(<[u8]>::to_vec))
        .bind(&plugin.digest)
        .bind(plugin.size)
        .bind(&plugin.source)
        .bind(plugin.updated_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One plugin by name.
    pub async fn plugin(&self, name: &str) -> Result<Option<PluginRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            plugin_columns!(),
            " FROM plugins WHERE name = $1"
        );
        let row: Option<Row> = sqlx::query_as(SQL)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(PluginRow::try_from).transpose()
    }

    /// Every plugin, by name.
    pub async fn plugins(&self) -> Result<Vec<PluginRow>> {
        const SQL: &str = concat!("SELECT ", plugin_columns!(), " FROM plugins ORDER BY name");
        let rows: Vec<Row> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(PluginRow::try_from).collect()
    }

    /// A stored component by its plugin's name and digest (`None` when absent or replaced).
    pub async fn plugin_component(&self, name: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT component FROM plugins WHERE name = $1 AND digest = $2")
                .bind(name)
                .bind(digest)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(component,)| component))
    }

    /// Enables or disables a plugin; returns whether it exists.
    pub async fn set_plugin_enabled(&self, name: &str, enabled: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE plugins SET enabled = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(flag(enabled))
            .bind(crate::clock::now_millis())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets (or, with `None`, clears) a plugin's configuration; returns whether it exists.
    pub async fn set_plugin_config(&self, name: &str, config: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE plugins SET config = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(config)
            .bind(crate::clock::now_millis())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a plugin; returns whether it existed.
    pub async fn delete_plugin(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM plugins WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
