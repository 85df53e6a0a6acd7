//! Every replica's local connection state per cluster, published in the shared database so
//! that any replica can answer with all of them.
//!
//! A replica writes only its own rows (batched: one transaction of multi-row upserts however
//! many clusters changed) and refreshes its heartbeat. The heartbeat is stamped with the
//! database's clock and judged against the database's clock, so a row's staleness never
//! depends on two machines agreeing on the time.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{AssertSqlSafe, FromRow};

use super::{Backend, Db, Result, StorageError};

/// Rows per upsert statement: 6 parameters each stays far below SQLite's and PostgreSQL's
/// parameter limits (32,766 and 65,535).
const ROWS_PER_STATEMENT: usize = 500;

/// The states a replica publishes (its local connection phases).
pub const STATES: [&str; 4] = ["connecting", "connected", "failed", "disconnected"];

/// One replica's state for a cluster, as a replica publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedState {
    pub cluster_id: String,
    /// One of [`STATES`].
    pub state: &'static str,
    pub last_error: Option<String>,
    /// Unix milliseconds of the last state change.
    pub since: i64,
}

/// One replica's state for a cluster, as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaState {
    /// The replica's instance id.
    pub instance: String,
    /// `connecting`, `connected`, `failed` or `disconnected`.
    pub state: String,
    pub error: Option<String>,
    /// Unix milliseconds of the replica's last state change.
    pub since: i64,
    /// Unix milliseconds of the replica's last write of this row.
    pub updated_at: i64,
    /// The replica has not refreshed its heartbeat within the stale window (it crashed, hangs
    /// or lost the database): the row is its last word, not its present state.
    pub stale: bool,
}

#[derive(FromRow)]
struct Row {
    cluster_id: String,
    instance_id: String,
    state: String,
    last_error: Option<String>,
    since: i64,
    updated_at: i64,
    heartbeat_at: Option<i64>,
    db_now: i64,
}

impl Db {
    /// The database's clock in unix milliseconds, as an SQL expression.
    fn now_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Writes `states` of replica `instance` and refreshes its heartbeat, in one transaction
    /// of `ceil(len / 500)` upserts plus one heartbeat statement. Returns whether the replica
    /// had a heartbeat (see [`Db::replica_heartbeat`]).
    pub async fn publish_replica_states(
        &self,
        instance: &str,
        states: &[PublishedState],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        for chunk in states.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO replica_states \
                 (instance_id, cluster_id, state, last_error, since, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6
                ));
            }
            sql.push_str(
                " ON CONFLICT (instance_id, cluster_id) DO UPDATE SET state = excluded.state, \
                 last_error = excluded.last_error, since = excluded.since, \
                 updated_at = excluded.updated_at",
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(instance)
                    .bind(&row.cluster_id)
                    .bind(row.state)
                    .bind(&row.last_error)
                    .bind(row.since)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        let had_heartbeat = self.heartbeat_in(&mut tx, instance).await?;
        tx.commit().await?;
        Ok(had_heartbeat)
    }

    /// Refreshes replica `instance`'s heartbeat; returns `false` when it had none (first
    /// start, or the leader pruned it as gone), so the replica publishes everything again.
    pub async fn replica_heartbeat(&self, instance: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let existed = self.heartbeat_in(&mut tx, instance).await?;
        tx.commit().await?;
        Ok(existed)
    }

    async fn heartbeat_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        instance: &str,
    ) -> Result<bool> {
        let now = self.now_sql();
        let updated = sqlx::query(AssertSqlSafe(format!(
            "UPDATE replica_heartbeats SET heartbeat_at = {now} WHERE instance_id = $1"
        )))
        .bind(instance)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(true);
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO replica_heartbeats (instance_id, heartbeat_at) VALUES ($1, {now}) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
        )))
        .bind(instance)
        .execute(&mut **tx)
        .await?;
        Ok(false)
    }

    /// Every replica's state of the clusters in `clusters` (all clusters with `None`; rows
    /// of deleted clusters left out), in one query, grouped by cluster id and sorted by
    /// instance. Rows whose replica's heartbeat is older than `stale_after_ms` (by the
    /// database's clock) are marked stale.
    pub async fn replica_states(
        &self,
        clusters: Option<&[&str]>,
        stale_after_ms: i64,
    ) -> Result<HashMap<String, Vec<ReplicaState>>> {
        let filter = match clusters {
            None => String::new(),
            Some([]) => return Ok(HashMap::new()),
            Some(ids) => {
                let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                format!("WHERE s.cluster_id IN ({}) ", marks.join(", "))
            }
        };
        let sql = format!(
            "SELECT s.cluster_id, s.instance_id, s.state, s.last_error, s.since, s.updated_at, \
             h.heartbeat_at, {now} AS db_now FROM replica_states s \
             JOIN clusters c ON c.id = s.cluster_id \
             LEFT JOIN replica_heartbeats h ON h.instance_id = s.instance_id {filter}\
             ORDER BY s.cluster_id, s.instance_id",
            now = self.now_sql()
        );
        let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql));
        for id in clusters.unwrap_or_default() {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut by_cluster: HashMap<String, Vec<ReplicaState>> = HashMap::new();
        for row in rows {
            if !STATES.contains(&row.state.as_str()) {
                return Err(StorageError::Corrupt(format!(
                    "replica_states.state of {} on {}",
                    row.cluster_id, row.instance_id
                )));
            }
            let stale = row
                .heartbeat_at
                .is_none_or(|at| row.db_now.saturating_sub(at) > stale_after_ms);
            by_cluster
                .entry(row.cluster_id)
                .or_default()
                .push(ReplicaState {
                    instance: row.instance_id,
                    state: row.state,
                    error: row.last_error,
                    since: row.since,
                    updated_at: row.updated_at,
                    stale,
                });
        }
        Ok(by_cluster)
    }

    /// Moves replica `instance`'s heartbeat `by_ms` into the past: a replica that went silent
    /// that long ago, for tests.
    #[cfg(any(test, feature = "testing"))]
    pub async fn age_replica_heartbeat(&self, instance: &str, by_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE replica_heartbeats SET heartbeat_at = heartbeat_at - $1 WHERE instance_id = $2",
        )
        .bind(by_ms)
        .bind(instance)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes replica `instance`'s rows and heartbeat (its clean shutdown).
    pub async fn unpublish_replica(&self, instance: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM replica_states WHERE instance_id = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM replica_heartbeats WHERE instance_id = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The leader's cleanup: deletes the rows and heartbeats of replicas silent for longer
    /// than `retention_ms` (database clock), rows without a heartbeat, and rows of clusters
    /// that no longer exist. Returns the number of state rows deleted.
    pub async fn prune_replica_states(&self, retention_ms: i64) -> Result<u64> {
        let now = self.now_sql();
        let mut tx = self.begin_write().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM replica_heartbeats WHERE heartbeat_at < {now} - $1"
        )))
        .bind(retention_ms)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "DELETE FROM replica_states WHERE instance_id NOT IN \
             (SELECT instance_id FROM replica_heartbeats) \
             OR cluster_id NOT IN (SELECT id FROM clusters)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}
