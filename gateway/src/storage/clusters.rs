//! Managed clusters. Credentials arrive and leave sealed: this module never sees them in clear.

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};

/// What the user wants for a cluster, shared by every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Connected,
    Disconnected,
}

impl DesiredState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// A stored cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    pub id: String,
    pub name: String,
    /// The apiserver URL (not secret; shown in lists).
    pub server: String,
    /// The kubeconfig context the credentials came from.
    pub context: Option<String>,
    /// The namespace exported kubeconfigs name in the cluster's context.
    pub namespace: Option<String>,
    /// The kubeconfig, sealed with the secret key and bound to the cluster id.
    pub sealed_credentials: Vec<u8>,
    pub labels: BTreeMap<String, String>,
    pub desired_state: DesiredState,
    /// Bumped on every configuration change; replicas reconnect when it moves.
    pub config_revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(FromRow)]
struct ClusterRow {
    #[sqlx(flatten)]
    entry: EntryRow,
    credentials: Vec<u8>,
}

/// The columns of a [`ClusterEntry`]; [`cluster_columns`] adds the credentials.
macro_rules! entry_columns {
    () => {
        "id, name, server, context, namespace, labels, desired_state, config_revision, created_at, updated_at"
    };
}

macro_rules! cluster_columns {
    () => {
        concat!(entry_columns!(), ", credentials")
    };
}

impl TryFrom<ClusterRow> for ClusterRecord {
    type Error = StorageError;

    fn try_from(row: ClusterRow) -> Result<Self> {
        let entry = ClusterEntry::try_from(row.entry)?;
        Ok(Self {
            id: entry.id,
            name: entry.name,
            server: entry.server,
            context: entry.context,
            namespace: entry.namespace,
            sealed_credentials: row.credentials,
            labels: entry.labels,
            desired_state: entry.desired_state,
            config_revision: entry.config_revision,
            created_at: entry.created_at,
            updated_at: entry.updated_at,
        })
    }
}

/// A stored cluster without its credentials: what lists show. A list never opens
/// credentials, and at thousands of clusters reading them would move megabytes per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    pub id: String,
    pub name: String,
    pub server: String,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub desired_state: DesiredState,
    pub config_revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<ClusterRecord> for ClusterEntry {
    fn from(record: ClusterRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            server: record.server,
            context: record.context,
            namespace: record.namespace,
            labels: record.labels,
            desired_state: record.desired_state,
            config_revision: record.config_revision,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

#[derive(FromRow)]
struct EntryRow {
    id: String,
    name: String,
    server: String,
    context: Option<String>,
    namespace: Option<String>,
    labels: String,
    desired_state: String,
    config_revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<EntryRow> for ClusterEntry {
    type Error = StorageError;

    fn try_from(row: EntryRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("clusters.{what} of {}", row.id));
        let labels = serde_json::from_str(&row.labels).map_err(|_| corrupt("labels"))?;
        let desired_state = match row.desired_state.as_str() {
            "connected" => DesiredState::Connected,
            "disconnected" => DesiredState::Disconnected,
            _ => return Err(corrupt("desired_state")),
        };
        Ok(Self {
            id: row.id,
            name: row.name,
            server: row.server,
            context: row.context,
            namespace: row.namespace,
            labels,
            desired_state,
            config_revision: row.config_revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl Db {
    /// Stores a new cluster; an existing id is a conflict.
    pub async fn insert_cluster(&self, cluster: &ClusterRecord) -> Result<()> {
        let id = cluster.id.clone();
        sqlx::query(
            "INSERT INTO clusters (id, name, server, context, credentials, labels, desired_state, \
             config_revision, created_at, updated_at, namespace) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&cluster.id)
        .bind(&cluster.name)
        .bind(&cluster.server)
        .bind(&cluster.context)
        .bind(&cluster.sealed_credentials)
        .bind(serde_json::to_string(&cluster.labels).expect("labels serialize"))
        .bind(cluster.desired_state.as_str())
        .bind(cluster.config_revision)
        .bind(cluster.created_at)
        .bind(cluster.updated_at)
        .bind(&cluster.namespace)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("cluster `{id}`")))?;
        Ok(())
    }

    /// One cluster by id.
    pub async fn cluster(&self, id: &str) -> Result<Option<ClusterRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            cluster_columns!(),
            " FROM clusters WHERE id = $1"
        );
        let row: Option<ClusterRow> = sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(ClusterRecord::try_from).transpose()
    }

    /// Every cluster, by id.
    pub async fn clusters(&self) -> Result<Vec<ClusterRecord>> {
        const SQL: &str = concat!("SELECT ", cluster_columns!(), " FROM clusters ORDER BY id");
        let rows: Vec<ClusterRow> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(ClusterRecord::try_from).collect()
    }

    /// Every cluster, by id, without credentials ([`ClusterEntry`]).
    pub async fn cluster_entries(&self) -> Result<Vec<ClusterEntry>> {
        const SQL: &str = concat!("SELECT ", entry_columns!(), " FROM clusters ORDER BY id");
        let rows: Vec<EntryRow> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(ClusterEntry::try_from).collect()
    }

    /// Replaces a cluster's configuration and bumps its revision; returns the new record, or
    /// `None` when the cluster does not exist.
    pub async fn update_cluster(&self, cluster: &ClusterRecord) -> Result<Option<ClusterRecord>> {
        let done = sqlx::query(
            "UPDATE clusters SET name = $2, server = $3, context = $4, credentials = $5, \
             labels = $6, config_revision = config_revision + 1, updated_at = $7, \
             namespace = $8 WHERE id = $1",
        )
        .bind(&cluster.id)
        .bind(&cluster.name)
        .bind(&cluster.server)
        .bind(&cluster.context)
        .bind(&cluster.sealed_credentials)
        .bind(serde_json::to_string(&cluster.labels).expect("labels serialize"))
        .bind(crate::clock::now_millis())
        .bind(&cluster.namespace)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.cluster(&cluster.id).await
    }

    /// Records what the user wants for a cluster; returns whether the cluster exists.
    pub async fn set_desired_state(&self, id: &str, state: DesiredState) -> Result<bool> {
        let done =
            sqlx::query("UPDATE clusters SET desired_state = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(state.as_str())
                .bind(crate::clock::now_millis())
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a cluster; returns whether it existed.
    pub async fn delete_cluster(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM clusters WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
