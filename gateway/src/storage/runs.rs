//! Runs of jobs (claimed by job and scheduled time), their per-cluster results and findings.

use sqlx::FromRow;

use super::jobs::{flag, flag_str, json};
use super::{Db, Result, StorageError};
use crate::clock::now_millis;
use crate::records::jobs::{FindingRecord, Run, RunStatus, RunTarget, TargetStatus, Trigger};
use crate::records::plugin::{ObjectRef, Severity};

#[derive(FromRow)]
struct RunRow {
    id: String,
    job_id: String,
    scheduled_at: Option<i64>,
    trigger_kind: String,
    instance_id: String,
    fencing_token: Option<i64>,
    status: String,
    clusters_total: i64,
    clusters_skipped: i64,
    clusters_failed: i64,
    findings_total: i64,
    findings_failed: i64,
    error: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
}

macro_rules! run_columns {
    () => {
        "id, job_id, scheduled_at, trigger_kind, instance_id, fencing_token, status, \
         clusters_total, clusters_skipped, clusters_failed, findings_total, findings_failed, \
         error, started_at, finished_at"
    };
}

impl TryFrom<RunRow> for Run {
    type Error = StorageError;

    fn try_from(row: RunRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("job_runs.{what} of {}", row.id));
        Ok(Run {
            trigger: match row.trigger_kind.as_str() {
                "schedule" => Trigger::Schedule,
                "manual" => Trigger::Manual,
                _ => return Err(corrupt("trigger_kind")),
            },
            status: RunStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            id: row.id,
            job_id: row.job_id,
            scheduled_at: row.scheduled_at,
            instance_id: row.instance_id,
            fencing_token: row.fencing_token,
            clusters_total: row.clusters_total,
            clusters_skipped: row.clusters_skipped,
            clusters_failed: row.clusters_failed,
            findings_total: row.findings_total,
            findings_failed: row.findings_failed,
            error: row.error,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(FromRow)]
struct TargetRow {
    run_id: String,
    cluster_id: String,
    status: String,
    findings_total: i64,
    findings_failed: i64,
    error: Option<String>,
    finished_at: i64,
}

impl TryFrom<TargetRow> for RunTarget {
    type Error = StorageError;

    fn try_from(row: TargetRow) -> Result<Self> {
        Ok(RunTarget {
            status: TargetStatus::parse(&row.status).ok_or_else(|| {
                StorageError::Corrupt(format!("run_targets.status of {}", row.run_id))
            })?,
            run_id: row.run_id,
            cluster_id: row.cluster_id,
            findings_total: row.findings_total,
            findings_failed: row.findings_failed,
            error: row.error,
            finished_at: row.finished_at,
        })
    }
}

#[derive(FromRow)]
struct FindingRow {
    id: String,
    run_id: String,
    job_id: String,
    cluster_id: String,
    plugin: String,
    check_id: String,
    severity: String,
    passed: String,
    message: String,
    target: Option<String>,
    extra: String,
    created_at: i64,
}

impl TryFrom<FindingRow> for FindingRecord {
    type Error = StorageError;

    fn try_from(row: FindingRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("findings.{what} of {}", row.id));
        let severity: Severity = serde_json::from_value(serde_json::Value::String(row.severity))
            .map_err(|_| corrupt("severity"))?;
        let target: Option<ObjectRef> = match &row.target {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| corrupt("target"))?),
            None => None,
        };
        Ok(FindingRecord {
            passed: flag(&row.passed, || corrupt("passed"))?,
            extra: serde_json::from_str(&row.extra).map_err(|_| corrupt("extra"))?,
            id: row.id,
            run_id: row.run_id,
            job_id: row.job_id,
            cluster_id: row.cluster_id,
            plugin: row.plugin,
            check_id: row.check_id,
            severity,
            message: row.message,
            target,
            created_at: row.created_at,
        })
    }
}

/// Filters of `GET /api/v1/findings`.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub run_id: Option<String>,
    pub cluster_id: Option<String>,
    pub check_id: Option<String>,
    pub severity: Option<String>,
    pub passed: Option<bool>,
    pub limit: i64,
}

/// Filters of `GET /api/v1/runs`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub job_id: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
}

impl Db {
    /// Claims the scheduled occurrence `scheduled_at` of `job_id` for this leader term:
    /// `false` when it was claimed already (UNIQUE (job_id, scheduled_at)) or when a run of
    /// the job carries a newer fencing token (this replica is a deposed leader).
    pub async fn claim_scheduled_run(
        &self,
        run_id: &str,
        job_id: &str,
        scheduled_at: i64,
        instance_id: &str,
        fencing_token: i64,
    ) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, trigger_kind, instance_id, \
             fencing_token, status, started_at) \
             SELECT $1, $2, $3, 'schedule', $4, $5, 'running', $6 \
             WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE job_id = $2 AND fencing_token > $5)",
        )
        .bind(run_id)
        .bind(job_id)
        .bind(scheduled_at)
        .bind(instance_id)
        .bind(fencing_token)
        .bind(now_millis())
        .execute(self.pool())
        .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a manual run (no scheduled time, no fencing token).
    pub async fn insert_manual_run(
        &self,
        run_id: &str,
        job_id: &str,
        instance_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_runs (id, job_id, trigger_kind, instance_id, status, started_at) \
             VALUES ($1, $2, 'manual', $3, 'running', $4)",
        )
        .bind(run_id)
        .bind(job_id)
        .bind(instance_id)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores one cluster's result and its findings.
    pub async fn insert_run_target(
        &self,
        target: &RunTarget,
        findings: &[FindingRecord],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO run_targets (run_id, cluster_id, status, findings_total, \
             findings_failed, error, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&target.run_id)
        .bind(&target.cluster_id)
        .bind(target.status.as_str())
        .bind(target.findings_total)
        .bind(target.findings_failed)
        .bind(&target.error)
        .bind(target.finished_at)
        .execute(&mut *tx)
        .await?;
        for f in findings {
            sqlx::query(
                "INSERT INTO findings (id, run_id, job_id, cluster_id, plugin, check_id, \
                 severity, passed, message, target, extra, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&f.id)
            .bind(&f.run_id)
            .bind(&f.job_id)
            .bind(&f.cluster_id)
            .bind(&f.plugin)
            .bind(&f.check_id)
            .bind(f.severity_str())
            .bind(flag_str(f.passed))
            .bind(&f.message)
            .bind(f.target.as_ref().map(json))
            .bind(json(&f.extra))
            .bind(f.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Finishes a run with its status and counts.
    pub async fn finish_run(&self, run: &Run) -> Result<()> {
        sqlx::query(
            "UPDATE job_runs SET status = $2, clusters_total = $3, clusters_skipped = $4, \
             clusters_failed = $5, findings_total = $6, findings_failed = $7, error = $8, \
             finished_at = $9 WHERE id = $1",
        )
        .bind(&run.id)
        .bind(run.status.as_str())
        .bind(run.clusters_total)
        .bind(run.clusters_skipped)
        .bind(run.clusters_failed)
        .bind(run.findings_total)
        .bind(run.findings_failed)
        .bind(&run.error)
        .bind(run.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks the runs still running in a leader term as failed (the term ended under them).
    pub async fn abandon_term_runs(
        &self,
        instance_id: &str,
        fencing_token: i64,
        reason: &str,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE job_runs SET status = 'failed', error = $3, finished_at = $4 \
             WHERE instance_id = $1 AND fencing_token = $2 AND status = 'running'",
        )
        .bind(instance_id)
        .bind(fencing_token)
        .bind(reason)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Keeps the newest `keep` runs of `job_id` (with their results and findings); older
    /// finished ones go. Claims stay meaningful: old occurrences are never planned again, and
    /// the newest fencing token is among the kept runs.
    pub async fn prune_runs(&self, job_id: &str, keep: i64) -> Result<()> {
        macro_rules! old_runs {
            () => {
                "SELECT id FROM job_runs WHERE job_id = $1 AND status <> 'running' \
                 AND id NOT IN (SELECT id FROM job_runs WHERE job_id = $1 \
                 ORDER BY started_at DESC, id DESC LIMIT $2)"
            };
        }
        let mut tx = self.begin_write().await?;
        for query in [
            concat!("DELETE FROM findings WHERE run_id IN (", old_runs!(), ")"),
            concat!(
                "DELETE FROM run_targets WHERE run_id IN (",
                old_runs!(),
                ")"
            ),
            concat!("DELETE FROM job_runs WHERE id IN (", old_runs!(), ")"),
        ] {
            sqlx::query(query)
                .bind(job_id)
                .bind(keep)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn run(&self, id: &str) -> Result<Option<Run>> {
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM job_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Run::try_from).transpose()
    }

    /// Newest first.
    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM job_runs WHERE ($1 IS NULL OR job_id = $1) AND ($2 IS NULL OR status = $2) \
             ORDER BY started_at DESC, id LIMIT $3"
        ))
        .bind(&filter.job_id)
        .bind(&filter.status)
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    pub async fn run_targets(&self, run_id: &str) -> Result<Vec<RunTarget>> {
        let rows: Vec<TargetRow> = sqlx::query_as(
            "SELECT run_id, cluster_id, status, findings_total, findings_failed, error, \
             finished_at FROM run_targets WHERE run_id = $1 ORDER BY cluster_id",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(RunTarget::try_from).collect()
    }

    /// The newest result of every cluster that was ever a run target.
    pub async fn latest_targets(&self) -> Result<Vec<RunTarget>> {
        let rows: Vec<TargetRow> = sqlx::query_as(
            "SELECT t.run_id, t.cluster_id, t.status, t.findings_total, t.findings_failed, \
             t.error, t.finished_at FROM run_targets t \
             WHERE t.finished_at = (SELECT MAX(u.finished_at) FROM run_targets u \
                                    WHERE u.cluster_id = t.cluster_id) \
             ORDER BY t.cluster_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut targets: Vec<RunTarget> = rows
            .into_iter()
            .map(RunTarget::try_from)
            .collect::<Result<_>>()?;
        targets.dedup_by(|a, b| a.cluster_id == b.cluster_id);
        Ok(targets)
    }

    pub async fn findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRecord>> {
        let rows: Vec<FindingRow> = sqlx::query_as(
            "SELECT id, run_id, job_id, cluster_id, plugin, check_id, severity, passed, \
             message, target, extra, created_at FROM findings \
             WHERE ($1 IS NULL OR run_id = $1) AND ($2 IS NULL OR cluster_id = $2) \
             AND ($3 IS NULL OR check_id = $3) AND ($4 IS NULL OR severity = $4) \
             AND ($5 IS NULL OR passed = $5) \
             ORDER BY created_at DESC, id LIMIT $6",
        )
        .bind(&filter.run_id)
        .bind(&filter.cluster_id)
        .bind(&filter.check_id)
        .bind(&filter.severity)
        .bind(filter.passed.map(flag_str))
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(FindingRecord::try_from).collect()
    }
}
