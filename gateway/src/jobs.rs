//! Scheduled jobs: inspections run through wasm plugins, on the leader only.
//!
//! ```text
//!  /api/v1/jobs (any replica) ──▶ table `jobs` (revision bumped on every edit)
//!                                     │ polled every --job-poll-interval-ms
//!  leadership watch ──gained──▶ Scheduler (leader only) ──claim (job, scheduled time)──▶ job_runs
//!                  ──lost────▶ cancelled, in-flight plugin calls included      UNIQUE, + fencing token
//!                                     │
//!                                     ▼ per target cluster, bounded concurrency
//!                          Plugins::inspect ─▶ run_targets + findings ─▶ run status and counts
//! ```
//!
//! A scheduled occurrence runs at most once across all replicas and leader changes: the leader
//! claims it in the database by (job, scheduled time), a UNIQUE key, before it starts, and the
//! claim records the leader's instance id and fencing token (`leaseTransitions`). A claim fails
//! as well when a run of the job carries a newer fencing token, so a deposed leader that has not
//! noticed yet cannot start work. An occurrence that falls due while the job's previous run
//! is still in flight on the leader is skipped: runs of one job never overlap. Manual runs (`POST /api/v1/jobs/{id}/run`) run on the replica
//! that receives them.
//!
//! After a run, the job's webhooks get a JSON summary (job, run with counts, per-cluster
//! results, up to 100 failed findings) as event `run.finished`, through the hooks'
//! [`WebhookSink`](crate::hooks::WebhookSink): HMAC-signed, retried, logged in the delivery log. With
//! `notifyOnlyOnFailure` only runs that failed or found failed checks notify.
//!
//! Cron expressions have 5 fields (minute granularity) or 6, the first being seconds; times
//! are UTC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::clock::now_millis;
use crate::cluster::ClusterManager;
use crate::crypto::SecretKey;
use crate::hooks::WebhookSink;
use crate::hooks::{EventKind, Message};
use crate::ids::random_id;
use crate::plugin::Plugins;
use crate::plugin::{ClusterInfo, KubeApi, PoolKubeApi};
use crate::storage::Db;
use crate::storage::StorageError;
use crate::storage::runs::FindingFilter;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod helm;
mod scheduler;

pub use crate::records::jobs::{
    FindingRecord, Job, JobKind, Run, RunStatus, RunTarget, TargetStatus, Targets, Trigger,
};
pub use scheduler::start;

/// What jobs work with: the database, the plugins, this replica's connections and the webhook
/// sink that notifies about runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Jobs(Arc<JobsShared>);

#[derive(Debug)]
pub struct JobsShared {
    pub db: Db,
    pub plugins: Plugins,
    pub clusters: Arc<ClusterManager>,
    pub webhooks: WebhookSink,
    /// Opens Helm repositories' credentials.
    pub secret_key: SecretKey,
    pub instance_id: String,
    /// How often the leader reads the jobs table (`--job-poll-interval-ms`).
    pub poll_interval: Duration,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl Jobs {
    pub fn new(shared: JobsShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for Jobs {
    type Target = JobsShared;

    fn deref(&self) -> &JobsShared {
        &self.0
    }
}

/// Runs kept per job (with their findings); older ones are deleted after each run.
const KEEP_RUNS: i64 = 500;

/// Clusters inspected at once by one run.
const TARGET_CONCURRENCY: usize = 4;

/// A job operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{expr}`: {reason}")]
    Cron {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// A label selector that does not parse.
    #[error(
        "invalid label selector `{0}`: use `key=value`, `key!=value` or `key`, comma-separated"
    )]
    Selector(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;

impl Targets {
    /// Checks a selector's syntax.
    pub fn validate(&self) -> Result<()> {
        if let Self::Selector(selector) = self {
            parse_selector(selector)?;
        }
        Ok(())
    }

    /// Whether the cluster with `id` and `labels` is a target.
    pub fn matches(&self, id: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::All => true,
            Self::Clusters(ids) => ids.iter().any(|i| i == id),
            Self::Selector(selector) => parse_selector(selector)
                .map(|terms| terms.iter().all(|t| t.matches(labels)))
                .unwrap_or(false),
        }
    }
}

enum SelectorTerm {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
}

impl SelectorTerm {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::Exists(k) => labels.contains_key(k),
        }
    }
}

fn parse_selector(selector: &str) -> Result<Vec<SelectorTerm>> {
    let bad = || JobError::Selector(selector.to_owned());
    let mut terms = Vec::new();
    for part in selector.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad());
        }
        let term = if let Some((k, v)) = part.split_once("!=") {
            SelectorTerm::NotEquals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            SelectorTerm::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else {
            SelectorTerm::Exists(part.to_owned())
        };
        let key = match &term {
            SelectorTerm::Equals(k, _)
            | SelectorTerm::NotEquals(k, _)
            | SelectorTerm::Exists(k) => k,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad());
        }
        terms.push(term);
    }
    Ok(terms)
}

/// A parsed cron expression: 5 fields, or 6 with seconds first; UTC.
#[derive(Debug, Clone)]
pub struct Schedule(croner::Cron);

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self> {
        let fields = expr.split_whitespace().count();
        let err = |reason: String| JobError::Cron {
            expr: expr.to_owned(),
            reason,
        };
        if !(5..=6).contains(&fields) {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with \
                 seconds first, got {fields}"
            )));
        }
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(expr)
            .map(Self)
            .map_err(|e| err(e.to_string()))
    }

    /// The first occurrence strictly after `after` (unix ms), in unix ms.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let ts = jiff::Timestamp::from_millisecond(after).ok()?;
        let zoned = ts.to_zoned(jiff::tz::TimeZone::UTC);
        self.0
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    }
}

/// Failed findings a notification carries at most.
const NOTIFY_MAX_FINDINGS: i64 = 100;

/// Whether a finished run counts as failed for `notifyOnlyOnFailure`.
pub fn run_failed(run: &Run) -> bool {
    run.status == RunStatus::Failed || run.findings_failed > 0
}

/// Sends the run's summary to the job's webhooks in the background (signed, retried and
/// logged by [`WebhookSink`](crate::hooks::WebhookSink)); they outlive the leader term that ran the job.
async fn notify(app: &Jobs, job: &Job, run: &Run) {
    if job.webhooks.is_empty() || (job.notify_only_on_failure && !run_failed(run)) {
        return;
    }
    let targets = app.db.run_targets(&run.id).await.unwrap_or_default();
    let failed = app
        .db
        .findings(&FindingFilter {
            run_id: Some(run.id.clone()),
            passed: Some(false),
            limit: NOTIFY_MAX_FINDINGS,
            ..FindingFilter::default()
        })
        .await
        .unwrap_or_default();
    let cluster_id = match targets.as_slice() {
        [only] => only.cluster_id.clone(),
        _ => "*".to_owned(),
    };
    let body = serde_json::json!({
        "event": EventKind::RunFinished.as_str(),
        "instanceId": app.instance_id,
        "job": {"id": job.id, "name": job.name, "kind": job.kind},
        "run": run,
        "clusters": targets,
        "failedFindings": failed,
    });
    // The gateway's one sink: its global cap on concurrent requests covers these too.
    let sink = app.webhooks.clone();
    for id in &job.webhooks {
        let webhook = match app.db.webhook(id).await {
            Ok(Some(webhook)) if webhook.enabled => webhook,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(webhook = %id, error = %e, "cannot read a job's webhook");
                continue;
            }
        };
        let message = Message {
            event: EventKind::RunFinished,
            cluster_id: cluster_id.clone(),
            instance_id: app.instance_id.clone(),
            body: body.clone(),
        };
        let sink = sink.clone();
        app.tasks.spawn(async move {
            sink.send(webhook, message).await;
        });
    }
}

/// Starts a manual run of `job` on this replica; returns the run as recorded at its start.
/// The run continues in the background until it ends or the gateway stops.
pub async fn run_now(app: &Jobs, job: Job) -> Result<Run> {
    let run_id = random_id();
    app.db
        .insert_manual_run(&run_id, &job.id, &app.instance_id)
        .await?;
    let run = app
        .db
        .run(&run_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("job_runs row {run_id} vanished")))?;
    let app2 = app.clone();
    let cancel = app.shutdown.child_token();
    let started = run.clone();
    app.tasks.spawn(async move {
        let outcome = tokio::select! {
            finished = execute(&app2, &job, started) => Some(finished),
            () = cancel.cancelled() => None,
        };
        if outcome.is_none()
            && let Ok(Some(mut run)) = app2.db.run(&run_id).await
        {
            run.status = RunStatus::Failed;
            run.error = Some("cancelled: the gateway stopped".to_owned());
            run.finished_at = Some(now_millis());
            let _ = app2.db.finish_run(&run).await;
        }
    });
    Ok(run)
}

/// How long the end of a run is retried while the database cannot be written.
const RECORD_END_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Records the end of a run, retrying (1 s, doubling to 15 s, for up to [`RECORD_END_FOR`] or
/// until the gateway stops) while the database is away, so a run never stays `running` because
/// of a database restart.
async fn record_end(app: &Jobs, run: &Run) {
    let started = tokio::time::Instant::now();
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        let Err(e) = app.db.finish_run(run).await else {
            return;
        };
        if started.elapsed() >= RECORD_END_FOR || app.shutdown.is_cancelled() {
            tracing::error!(run = %run.id, error = %e, "cannot record the end of a run; giving up");
            return;
        }
        tracing::warn!(run = %run.id, error = %e, "cannot record the end of a run; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = app.shutdown.cancelled() => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(15));
    }
}

/// Executes a claimed run to its end and records the result. Dropping the future cancels the
/// in-flight plugin calls.
pub async fn execute(app: &Jobs, job: &Job, mut run: Run) -> Run {
    match job.kind {
        JobKind::Inspection => inspect(app, job, &mut run).await,
        JobKind::RepoSync => helm::sync(app, job, &mut run).await,
    }
    run.finished_at = Some(now_millis());
    record_end(app, &run).await;
    notify(app, job, &run).await;
    if let Err(e) = app.db.prune_runs(&job.id, KEEP_RUNS).await {
        tracing::debug!(job = %job.name, error = %e, "cannot prune old runs");
    }
    tracing::info!(
        job = %job.name,
        run = %run.id,
        status = run.status.as_str(),
        clusters = run.clusters_total,
        skipped = run.clusters_skipped,
        findings_failed = run.findings_failed,
        "job run finished"
    );
    run
}

async fn inspect(app: &Jobs, job: &Job, run: &mut Run) {
    let clusters = match app.db.clusters().await {
        Ok(clusters) => clusters,
        Err(e) => {
            run.status = RunStatus::Failed;
            run.error = Some(format!("cannot list clusters: {e}"));
            return;
        }
    };
    let targets: Vec<ClusterInfo> = clusters
        .into_iter()
        .filter(|c| job.targets.matches(&c.id, &c.labels))
        .map(|c| ClusterInfo {
            id: c.id,
            name: c.name,
            labels: c.labels,
        })
        .collect();
    let results: Vec<RunTarget> = futures::stream::iter(targets)
        .map(|cluster| inspect_cluster(app, job, &run.id, cluster))
        .buffer_unordered(TARGET_CONCURRENCY)
        .collect()
        .await;
    run.clusters_total = i64::try_from(results.len()).unwrap_or(i64::MAX);
    for target in &results {
        match target.status {
            TargetStatus::Skipped => run.clusters_skipped += 1,
            TargetStatus::Failed => run.clusters_failed += 1,
            TargetStatus::Success => {}
        }
        run.findings_total += target.findings_total;
        run.findings_failed += target.findings_failed;
    }
    run.status = if run.clusters_failed > 0 {
        RunStatus::Failed
    } else if run.clusters_skipped == run.clusters_total {
        RunStatus::Skipped
    } else {
        RunStatus::Success
    };
}

async fn inspect_cluster(app: &Jobs, job: &Job, run_id: &str, cluster: ClusterInfo) -> RunTarget {
    let mut target = RunTarget {
        run_id: run_id.to_owned(),
        cluster_id: cluster.id.clone(),
        status: TargetStatus::Success,
        findings_total: 0,
        findings_failed: 0,
        error: None,
        finished_at: 0,
    };
    let mut findings = Vec::new();
    match app.clusters.connection(&cluster.id) {
        None => {
            target.status = TargetStatus::Skipped;
            target.error = Some("not connected on this replica".to_owned());
        }
        Some(connection) => {
            let timeout = Duration::from_secs(job.timeout_seconds.max(1));
            let mut errors = Vec::new();
            for plugin in &job.plugins {
                let max_body = app
                    .plugins
                    .get(plugin)
                    .await
                    .map(|p| p.limits.max_kube_response_bytes)
                    .unwrap_or(16 << 20);
                let kube: Arc<dyn KubeApi> =
                    Arc::new(PoolKubeApi::new(connection.clone(), max_body));
                let call = app.plugins.inspect(plugin, &cluster, kube);
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(report)) => {
                        let now = now_millis();
                        findings.extend(report.value.into_iter().map(|f| FindingRecord {
                            id: random_id(),
                            run_id: run_id.to_owned(),
                            job_id: job.id.clone(),
                            cluster_id: cluster.id.clone(),
                            plugin: plugin.clone(),
                            check_id: f.check_id,
                            severity: f.severity,
                            passed: f.passed,
                            message: f.message,
                            target: f.target,
                            extra: f.extra,
                            created_at: now,
                        }));
                    }
                    Ok(Err(e)) => errors.push(format!("{plugin}: {e}")),
                    Err(_) => {
                        errors.push(format!("{plugin}: timed out after {} s", timeout.as_secs()))
                    }
                }
            }
            if !errors.is_empty() {
                target.status = TargetStatus::Failed;
                target.error = Some(errors.join("; "));
            }
        }
    }
    target.findings_total = i64::try_from(findings.len()).unwrap_or(i64::MAX);
    target.findings_failed =
        i64::try_from(findings.iter().filter(|f| !f.passed).count()).unwrap_or(i64::MAX);
    target.finished_at = now_millis();
    if let Err(e) = app.db.insert_run_target(&target, &findings).await {
        tracing::error!(run = run_id, cluster = %cluster.id, error = %e, "cannot store findings");
        target.status = TargetStatus::Failed;
        target.error = Some(format!("cannot store findings: {e}"));
    }
    target
}

#[cfg(test)]
mod tests;
