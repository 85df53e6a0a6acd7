//! The record of leader terms: evidence that leader work never ran on two replicas at once.

use serde::Serialize;
use sqlx::FromRow;

use super::{Db, Result};
use crate::clock::now_millis;

/// One term of leader work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LeaderTerm {
    pub id: i64,
    pub instance_id: String,
    /// The fencing token (`leaseTransitions`).
    pub term: i64,
    pub started_at: i64,
    pub active_at: i64,
    pub ended_at: Option<i64>,
}

impl Db {
    /// Records the start of a term; returns its row id.
    pub async fn start_term(&self, instance_id: &str, term: i64) -> Result<i64> {
        let now = now_millis();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO leader_terms (instance_id, term, started_at, active_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(instance_id)
        .bind(term)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Leader work ran now in term `id`.
    pub async fn touch_term(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE leader_terms SET active_at = $1 WHERE id = $2")
            .bind(now_millis())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn end_term(&self, id: i64) -> Result<()> {
        let now = now_millis();
        sqlx::query("UPDATE leader_terms SET active_at = $1, ended_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest terms first.
    pub async fn leader_terms(&self, limit: i64) -> Result<Vec<LeaderTerm>> {
        Ok(sqlx::query_as(
            "SELECT id, instance_id, term, started_at, active_at, ended_at FROM leader_terms \
             ORDER BY started_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
