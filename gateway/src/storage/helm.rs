//! Helm repositories (credentials sealed) and the chart versions their syncs found.

use std::collections::BTreeSet;

use sqlx::FromRow;

use super::{Db, Result, StorageError, conflict};
use crate::clock::now_millis;
use crate::records::helm::{ChartVersion, Repository};
use crate::records::plugin::Chart;

#[derive(FromRow)]
struct RepositoryRow {
    id: String,
    name: String,
    url: String,
    sealed_auth: Option<Vec<u8>>,
    auth_type: Option<String>,
    ca_pem: Option<String>,
    etag: Option<String>,
    last_sync_run: Option<String>,
    last_change_run: Option<String>,
    last_sync_at: Option<i64>,
    last_sync_status: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

macro_rules! repository_columns {
    () => {
        "id, name, url, sealed_auth, auth_type, ca_pem, etag, last_sync_run, last_change_run, \
         last_sync_at, last_sync_status, last_error, created_at, updated_at"
    };
}

impl From<RepositoryRow> for Repository {
    fn from(row: RepositoryRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            url: row.url,
            sealed_auth: row.sealed_auth,
            auth_type: row.auth_type,
            ca_pem: row.ca_pem,
            etag: row.etag,
            last_sync_run: row.last_sync_run,
            last_change_run: row.last_change_run,
            last_sync_at: row.last_sync_at,
            last_sync_status: row.last_sync_status,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(FromRow)]
struct VersionRow {
    repository: String,
    last_change_run: Option<String>,
    name: String,
    version: String,
    app_version: Option<String>,
    description: Option<String>,
    digest: Option<String>,
    urls: String,
    created: Option<String>,
    deprecated: String,
    icon: Option<String>,
    keywords: Option<String>,
    first_seen_run: String,
    first_seen_at: i64,
}

impl TryFrom<VersionRow> for ChartVersion {
    type Error = StorageError;

    fn try_from(row: VersionRow) -> Result<Self> {
        let corrupt = |what: &str| {
            StorageError::Corrupt(format!(
                "helm_chart_versions.{what} of {} {}",
                row.name, row.version
            ))
        };
        let urls: Vec<String> = serde_json::from_str(&row.urls).map_err(|_| corrupt("urls"))?;
        let keywords: Vec<String> = match &row.keywords {
            Some(text) => serde_json::from_str(text).map_err(|_| corrupt("keywords"))?,
            None => Vec::new(),
        };
        Ok(ChartVersion {
            new: row.last_change_run.as_deref() == Some(row.first_seen_run.as_str()),
            deprecated: row.deprecated == "true",
            repository: row.repository,
            name: row.name,
            version: row.version,
            app_version: row.app_version,
            description: row.description,
            icon: row.icon,
            keywords,
            digest: row.digest,
            urls,
            created: row.created,
            first_seen_run: row.first_seen_run,
            first_seen_at: row.first_seen_at,
        })
    }
}

impl Db {
    pub async fn insert_helm_repository(&self, repository: &Repository) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO helm_repositories (",
            repository_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL, NULL, NULL, $7, $7)"
        ))
        .bind(&repository.id)
        .bind(&repository.name)
        .bind(&repository.url)
        .bind(&repository.sealed_auth)
        .bind(&repository.auth_type)
        .bind(&repository.ca_pem)
        .bind(repository.created_at)
        .execute(self.pool())
        .await
        .map_err(conflict(|| {
            format!("a Helm repository named `{}`", repository.name)
        }))?;
        Ok(())
    }

    /// Stores an edited repository; a changed URL or credentials forget the ETag. `false`
    /// when it no longer exists.
    pub async fn update_helm_repository(&self, repository: &Repository) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE helm_repositories SET name = $2, url = $3, sealed_auth = $4, auth_type = $5, \
             ca_pem = $6, etag = NULL, updated_at = $7 WHERE id = $1",
        )
        .bind(&repository.id)
        .bind(&repository.name)
        .bind(&repository.url)
        .bind(&repository.sealed_auth)
        .bind(&repository.auth_type)
        .bind(&repository.ca_pem)
        .bind(now_millis())
        .execute(self.pool())
        .await
        .map_err(conflict(|| {
            format!("a Helm repository named `{}`", repository.name)
        }))?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn helm_repository(&self, id: &str) -> Result<Option<Repository>> {
        let row: Option<RepositoryRow> = sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM helm_repositories WHERE id = $1 OR name = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Repository::from))
    }

    pub async fn helm_repositories(&self) -> Result<Vec<Repository>> {
        let rows: Vec<RepositoryRow> = sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM helm_repositories ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Repository::from).collect())
    }

    /// Deletes a repository and its chart versions.
    pub async fn delete_helm_repository(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM helm_chart_versions WHERE repository_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM helm_repositories WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a sync attempt; `etag` is `Some` when the index changed (it replaces the
    /// stored ETag, and this run becomes the one whose new versions are `new`).
    pub async fn record_helm_sync(
        &self,
        id: &str,
        run_id: &str,
        status: &str,
        error: Option<&str>,
        etag: Option<Option<&str>>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE helm_repositories SET last_sync_run = $2, last_sync_at = $3, \
             last_sync_status = $4, last_error = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(run_id)
        .bind(now_millis())
        .bind(status)
        .bind(error)
        .execute(self.pool())
        .await?;
        if let Some(etag) = etag {
            sqlx::query(
                "UPDATE helm_repositories SET etag = $2, last_change_run = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(etag)
            .bind(run_id)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Makes `charts` the repository's chart versions: versions no longer listed go, new
    /// ones are recorded as first seen by `run_id`, known ones keep when they were first seen.
    /// Returns how many are new.
    pub async fn replace_chart_versions(
        &self,
        repository_id: &str,
        run_id: &str,
        charts: &[Chart],
    ) -> Result<usize> {
        let mut tx = self.begin_write().await?;
        let known: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, version FROM helm_chart_versions WHERE repository_id = $1",
        )
        .bind(repository_id)
        .fetch_all(&mut *tx)
        .await?;
        let known: BTreeSet<(String, String)> = known.into_iter().collect();
        let listed: BTreeSet<(String, String)> = charts
            .iter()
            .map(|c| (c.name.clone(), c.version.clone()))
            .collect();
        for (name, version) in known.difference(&listed) {
            sqlx::query(
                "DELETE FROM helm_chart_versions WHERE repository_id = $1 AND name = $2 \
                 AND version = $3",
            )
            .bind(repository_id)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        let now = now_millis();
        let mut new = 0;
        let mut seen = BTreeSet::new();
        for chart in charts {
            let key = (chart.name.clone(), chart.version.clone());
            if !seen.insert(key.clone()) {
                continue;
            }
            let urls = serde_json::to_string(&chart.urls).expect("strings serialize");
            let deprecated = if chart.deprecated { "true" } else { "false" };
            let keywords = serde_json::to_string(&chart.keywords).expect("strings serialize");
            if known.contains(&key) {
                sqlx::query(
                    "UPDATE helm_chart_versions SET app_version = $4, description = $5, \
                     digest = $6, urls = $7, created = $8, deprecated = $9, icon = $10, \
                     keywords = $11 WHERE repository_id = $1 AND name = $2 AND version = $3",
                )
                .bind(repository_id)
                .bind(&chart.name)
                .bind(&chart.version)
                .bind(&chart.app_version)
                .bind(&chart.description)
                .bind(&chart.digest)
                .bind(urls)
                .bind(&chart.created)
                .bind(deprecated)
                .bind(&chart.icon)
                .bind(keywords)
                .execute(&mut *tx)
                .await?;
            } else {
                new += 1;
                sqlx::query(
                    "INSERT INTO helm_chart_versions (repository_id, name, version, \
                     app_version, description, digest, urls, created, deprecated, icon, \
                     keywords, first_seen_run, first_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(repository_id)
                .bind(&chart.name)
                .bind(&chart.version)
                .bind(&chart.app_version)
                .bind(&chart.description)
                .bind(&chart.digest)
                .bind(urls)
                .bind(&chart.created)
                .bind(deprecated)
                .bind(&chart.icon)
                .bind(keywords)
                .bind(run_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Every stored chart version, optionally of one repository (id or name) and chart name.
    pub async fn chart_versions(
        &self,
        repository: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<ChartVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT r.name AS repository, r.last_change_run, v.name, v.version, v.app_version, \
             v.description, v.digest, v.urls, v.created, v.deprecated, v.icon, v.keywords, \
             v.first_seen_run, v.first_seen_at \
             FROM helm_chart_versions v JOIN helm_repositories r ON r.id = v.repository_id \
             WHERE ($1 IS NULL OR r.id = $1 OR r.name = $1) AND ($2 IS NULL OR v.name = $2) \
             ORDER BY r.name, v.name, v.version",
        )
        .bind(repository)
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ChartVersion::try_from).collect()
    }

    /// Inserts `job` unless a job with its id exists; `true` when inserted.
    pub async fn insert_job_if_absent(&self, job: &crate::records::jobs::Job) -> Result<bool> {
        if self.job(&job.id).await?.is_some() {
            return Ok(false);
        }
        match self.insert_job(job).await {
            Ok(()) => Ok(true),
            Err(StorageError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
