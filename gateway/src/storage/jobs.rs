//! Scheduled jobs (their runs, results and findings: `runs.rs`).

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};
use crate::clock::now_millis;
use crate::records::jobs::{Job, JobKind, Targets};

#[derive(FromRow)]
struct JobRow {
    id: String,
    name: String,
    kind: String,
    plugins: String,
    cron: String,
    targets: String,
    enabled: String,
    timeout_seconds: i64,
    webhooks: String,
    notify_only_on_failure: String,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

macro_rules! job_columns {
    () => {
        "id, name, kind, plugins, cron, targets, enabled, timeout_seconds, webhooks, \
         notify_only_on_failure, revision, created_at, updated_at"
    };
}

pub(super) fn flag(text: &str, corrupt: impl Fn() -> StorageError) -> Result<bool> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(corrupt()),
    }
}

pub(super) fn flag_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

impl TryFrom<JobRow> for Job {
    type Error = StorageError;

    fn try_from(row: JobRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("jobs.{what} of {}", row.id));
        let kind = JobKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?;
        let plugins: Vec<String> =
            serde_json::from_str(&row.plugins).map_err(|_| corrupt("plugins"))?;
        let targets: Targets =
            serde_json::from_str(&row.targets).map_err(|_| corrupt("targets"))?;
        let webhooks: Vec<String> =
            serde_json::from_str(&row.webhooks).map_err(|_| corrupt("webhooks"))?;
        Ok(Job {
            enabled: flag(&row.enabled, || corrupt("enabled"))?,
            notify_only_on_failure: flag(&row.notify_only_on_failure, || {
                corrupt("notify_only_on_failure")
            })?,
            timeout_seconds: u64::try_from(row.timeout_seconds)
                .map_err(|_| corrupt("timeout_seconds"))?,
            id: row.id,
            name: row.name,
            kind,
            plugins,
            cron: row.cron,
            targets,
            webhooks,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(super) fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

impl Db {
    pub async fn insert_job(&self, job: &Job) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO jobs (",
            job_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&job.id)
        .bind(&job.name)
        .bind(job.kind.as_str())
        .bind(json(&job.plugins))
        .bind(&job.cron)
        .bind(json(&job.targets))
        .bind(flag_str(job.enabled))
        .bind(i64::try_from(job.timeout_seconds).unwrap_or(i64::MAX))
        .bind(json(&job.webhooks))
        .bind(flag_str(job.notify_only_on_failure))
        .bind(job.revision)
        .bind(job.created_at)
        .bind(job.updated_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| format!("a job named `{}`", job.name)))?;
        Ok(())
    }

    /// Stores an edited job, bumping its revision; `None` when it no longer exists.
    pub async fn update_job(&self, job: &Job) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "UPDATE jobs SET name = $2, plugins = $3, cron = $4, targets = $5, enabled = $6, \
             timeout_seconds = $7, webhooks = $8, notify_only_on_failure = $9, \
             revision = revision + 1, updated_at = $10 WHERE id = $1 RETURNING ",
            job_columns!()
        ))
        .bind(&job.id)
        .bind(&job.name)
        .bind(json(&job.plugins))
        .bind(&job.cron)
        .bind(json(&job.targets))
        .bind(flag_str(job.enabled))
        .bind(i64::try_from(job.timeout_seconds).unwrap_or(i64::MAX))
        .bind(json(&job.webhooks))
        .bind(flag_str(job.notify_only_on_failure))
        .bind(now_millis())
        .fetch_optional(self.pool())
        .await
        .map_err(conflict(|| format!("a job named `{}`", job.name)))?;
        row.map(Job::try_from).transpose()
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Job::try_from).transpose()
    }

    pub async fn jobs(&self) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    pub async fn delete_job(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
