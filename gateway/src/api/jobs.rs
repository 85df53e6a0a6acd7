//! `/api/v1/jobs`, `/api/v1/runs`, `/api/v1/findings`: scheduled jobs, their runs and the
//! findings of inspections. Admin only. Edits reach the leader's scheduler through the
//! database within `--job-poll-interval-ms`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::clock::now_millis;
use crate::ids::random_id;
use crate::jobs::{self, Job, JobError, JobKind, Schedule, Targets};
use crate::plugin::World;
use crate::storage::runs::{FindingFilter, RunFilter};

const DEFAULT_TIMEOUT_SECONDS: u64 = 300;
const MAX_TIMEOUT_SECONDS: u64 = 24 * 3600;
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/jobs", get(list).post(create))
        .route("/jobs/{id}", get(show).put(update).delete(delete))
        .route("/jobs/{id}/run", post(run_now))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/findings", get(findings))
        .route("/findings/summary", get(summary))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Storage(e) => e.into(),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// Body of `POST /api/v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateJob {
    name: String,
    #[serde(default = "inspection")]
    kind: JobKind,
    plugins: Vec<String>,
    cron: String,
    #[serde(default)]
    targets: Targets,
    #[serde(default = "yes")]
    enabled: bool,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    webhooks: Vec<String>,
    #[serde(default)]
    notify_only_on_failure: bool,
}

fn inspection() -> JobKind {
    JobKind::Inspection
}

fn yes() -> bool {
    true
}

/// Body of `PUT /api/v1/jobs/{id}`: absent fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateJob {
    name: Option<String>,
    plugins: Option<Vec<String>>,
    cron: Option<String>,
    targets: Option<Targets>,
    enabled: Option<bool>,
    timeout_seconds: Option<u64>,
    webhooks: Option<Vec<String>>,
    notify_only_on_failure: Option<bool>,
}

async fn validate(app: &App, job: &Job) -> ApiResult<()> {
    if job.name.is_empty()
        || job.name.len() > 63
        || !job
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::bad_request(
            "`name` must be 1-63 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    Schedule::parse(&job.cron)?;
    job.targets.validate()?;
    if job.plugins.is_empty() {
        return Err(ApiError::bad_request(
            "`plugins` must name at least one plugin",
        ));
    }
    for name in &job.plugins {
        let plugin =
            app.plugins.get(name).await.map_err(|_| {
                ApiError::bad_request(format!("`plugins`: no plugin named `{name}`"))
            })?;
        let (world, kind) = match job.kind {
            JobKind::Inspection => (World::Inspector, "an inspection"),
            JobKind::RepoSync => (World::RepoSync, "a repo-sync job"),
        };
        if plugin.world != world {
            return Err(ApiError::bad_request(format!(
                "`plugins`: `{name}` implements world `{}`, {kind} needs `{world}`",
                plugin.world
            )));
        }
    }
    if job.timeout_seconds == 0 || job.timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(ApiError::bad_request(format!(
            "`timeoutSeconds` must be between 1 and {MAX_TIMEOUT_SECONDS}"
        )));
    }
    for id in &job.webhooks {
        if app.db.webhook(id).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "`webhooks`: no webhook with id `{id}`"
            )));
        }
    }
    Ok(())
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateJob>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let Json(body) = body?;
    let now = now_millis();
    let job = Job {
        id: random_id(),
        name: body.name,
        kind: body.kind,
        plugins: body.plugins,
        cron: body.cron.trim().to_owned(),
        targets: body.targets,
        enabled: body.enabled,
        timeout_seconds: body.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        webhooks: body.webhooks,
        notify_only_on_failure: body.notify_only_on_failure,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    validate(&app, &job).await?;
    app.db.insert_job(&job).await?;
    tracing::info!(job = %job.name, cron = %job.cron, "job created");
    Ok((StatusCode::CREATED, Json(job)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "items": app.db.jobs().await? })))
}

async fn find(app: &App, id: &str) -> ApiResult<Job> {
    app.db
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id `{id}`")))
}

async fn show(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    Ok(Json(find(&app, &id).await?))
}

async fn update(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
    body: Result<Json<UpdateJob>, JsonRejection>,
) -> ApiResult<Json<Job>> {
    let Json(body) = body?;
    let mut job = find(&app, &id).await?;
    if let Some(name) = body.name {
        job.name = name;
    }
    if let Some(plugins) = body.plugins {
        job.plugins = plugins;
    }
    if let Some(cron) = body.cron {
        job.cron = cron.trim().to_owned();
    }
    if let Some(targets) = body.targets {
        job.targets = targets;
    }
    if let Some(enabled) = body.enabled {
        job.enabled = enabled;
    }
    if let Some(timeout) = body.timeout_seconds {
        job.timeout_seconds = timeout;
    }
    if let Some(webhooks) = body.webhooks {
        job.webhooks = webhooks;
    }
    if let Some(only) = body.notify_only_on_failure {
        job.notify_only_on_failure = only;
    }
    validate(&app, &job).await?;
    let job = app
        .db
        .update_job(&job)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id `{id}`")))?;
    tracing::info!(job = %job.name, revision = job.revision, "job updated");
    Ok(Json(job))
}

async fn delete(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if app.db.delete_job(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no job with id `{id}`")))
    }
}

/// `POST /api/v1/jobs/{id}/run`: runs the job now on this replica (any replica); 202 with
/// the run as started.
async fn run_now(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<jobs::Run>)> {
    let job = find(&app, &id).await?;
    let run = jobs::run_now(&app.jobs, job).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

fn limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunQuery {
    job: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn runs(
    State(app): State<App>,
    Admin(_): Admin,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(status) = &query.status
        && jobs::RunStatus::parse(status).is_none()
    {
        return Err(ApiError::bad_request(
            "`status` must be running, success, failed or skipped",
        ));
    }
    let filter = RunFilter {
        job_id: query.job,
        status: query.status,
        limit: limit(query.limit)?,
    };
    Ok(Json(json!({ "items": app.db.runs(&filter).await? })))
}

/// One run with its per-cluster results.
async fn run(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let run = app
        .db
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id `{id}`")))?;
    let targets = app.db.run_targets(&id).await?;
    let mut body = serde_json::to_value(run).expect("plain data");
    body["targets"] = serde_json::to_value(targets).expect("plain data");
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FindingQuery {
    run: Option<String>,
    cluster: Option<String>,
    check: Option<String>,
    severity: Option<String>,
    passed: Option<bool>,
    limit: Option<i64>,
}

async fn findings(
    State(app): State<App>,
    Admin(_): Admin,
    query: Result<Query<FindingQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(severity) = &query.severity
        && !matches!(
            severity.as_str(),
            "info" | "low" | "medium" | "high" | "critical"
        )
    {
        return Err(ApiError::bad_request(
            "`severity` must be info, low, medium, high or critical",
        ));
    }
    let filter = FindingFilter {
        run_id: query.run,
        cluster_id: query.cluster,
        check_id: query.check,
        severity: query.severity,
        passed: query.passed,
        limit: limit(query.limit)?,
    };
    Ok(Json(json!({ "items": app.db.findings(&filter).await? })))
}

/// The latest result per cluster.
async fn summary(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "items": app.db.latest_targets().await? })))
}
