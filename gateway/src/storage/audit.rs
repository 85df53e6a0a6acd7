//! Audit entries: proxied requests and admin API changes.

use sqlx::FromRow;

use super::{Db, Result};
use crate::records::audit::{AuditEntry, AuditKind};

#[derive(FromRow)]
struct AuditRow {
    at: i64,
    kind: String,
    source: String,
    token_id: String,
    token_name: String,
    cluster: String,
    verb: String,
    path: String,
    status: i64,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub kind: Option<AuditKind>,
    pub cluster: Option<String>,
    pub token_name: Option<String>,
    /// Entries strictly older than this (unix ms): paging backwards.
    pub before: Option<i64>,
    pub limit: i64,
}

impl Db {
    /// Appends entries in one transaction.
    pub async fn insert_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO audit_log \
                 (at, token_id, token_name, cluster, verb, path, status, kind, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(e.at)
            .bind(&e.token_id)
            .bind(&e.token_name)
            .bind(&e.cluster)
            .bind(&e.verb)
            .bind(&e.path)
            .bind(i64::from(e.status))
            .bind(e.kind.as_str())
            .bind(&e.source)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, kind, source, token_id, token_name, cluster, verb, path, status \
             FROM audit_log \
             WHERE (CAST($1 AS TEXT) IS NULL OR cluster = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR token_name = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR at < $3) \
             AND (CAST($5 AS TEXT) IS NULL OR kind = $5) \
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(&query.cluster)
        .bind(&query.token_name)
        .bind(query.before)
        .bind(query.limit)
        .bind(query.kind.map(AuditKind::as_str))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: r.at,
                kind: AuditKind::parse(&r.kind).unwrap_or(AuditKind::Proxy),
                source: r.source,
                token_id: r.token_id,
                token_name: r.token_name,
                cluster: r.cluster,
                verb: r.verb,
                path: r.path,
                status: u16::try_from(r.status).unwrap_or(0),
            })
            .collect())
    }

    /// Deletes entries older than `cutoff` (unix ms); returns how many.
    pub async fn delete_audit_before(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
