//! Helm repositories and their charts, synchronised by `repo-sync` jobs (the built-in one runs
//! the `helm-index` plugin every six hours).

use std::cmp::Ordering;
use std::time::Duration;

pub use crate::records::helm::{ChartVersion, Repository};

use super::{Job, JobKind, Jobs, Run, RunStatus, Targets};
use crate::clock::now_millis;
use crate::crypto::SecretKey;
use crate::plugin::{RepositoryAuth, RepositoryInfo, SyncOutcome};

/// Id and name of the built-in repository sync job.
pub const BUILTIN_JOB_ID: &str = "builtin-helm-repo-sync";
pub const BUILTIN_JOB_NAME: &str = "helm-repo-sync";
/// Its default schedule: every six hours.
pub const BUILTIN_JOB_CRON: &str = "0 */6 * * *";
/// The plugin it calls.
pub const BUILTIN_PLUGIN: &str = "helm-index";

impl Repository {
    /// Seals `auth` for the repository with id `id`.
    pub fn seal_auth(key: &SecretKey, id: &str, auth: &RepositoryAuth) -> Vec<u8> {
        let plain = serde_json::to_vec(auth).expect("credentials serialize");
        key.seal(&auth_context(id), &plain)
    }

    /// The credentials, opened.
    pub fn open_auth(&self, key: &SecretKey) -> Result<Option<RepositoryAuth>, SyncError> {
        let Some(sealed) = &self.sealed_auth else {
            return Ok(None);
        };
        let plain = key
            .open(&auth_context(&self.id), sealed)
            .map_err(|e| SyncError::Sealed(self.name.clone(), e))?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| SyncError::Credentials(self.name.clone(), e))
    }
}

/// Why one repository's sync failed; its text goes into the run's error and the repository's
/// last error.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the credentials of repository `{0}`: {1}")]
    Sealed(String, #[source] crate::crypto::OpenError),
    #[error("the credentials of repository `{0}`: {1}")]
    Credentials(String, #[source] serde_json::Error),
    #[error("{plugin}: timed out after {seconds} s")]
    Timeout { plugin: String, seconds: u64 },
    #[error(transparent)]
    Plugin(#[from] crate::plugin::Error),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

fn auth_context(id: &str) -> Vec<u8> {
    format!("helm-repository:{id}").into_bytes()
}

/// The kind of `auth`, as the API shows it.
pub fn auth_type(auth: &RepositoryAuth) -> &'static str {
    match auth {
        RepositoryAuth::Basic { .. } => "basic",
        RepositoryAuth::Bearer { .. } => "bearer",
    }
}

/// A chart version read the way Helm reads one (Helm parses chart versions with the lenient
/// `NewVersion` of its SemVer library, not strictly):
///
/// - one optional leading lower-case `v` (`v1.2.3`);
/// - a major number, then optionally `.minor` and `.patch`; a missing part is 0, so `1.2` is
///   `1.2.0` and `v1` is `1.0.0`; these numbers are ASCII digits that fit 64 bits, leading
///   zeros tolerated (`01.2.3` is `1.2.3`);
/// - then an optional pre-release (`-rc.1`) and optional build metadata (`+build.5`), each
///   held to SemVer 2.0's rules (non-empty dot-separated identifiers of `[0-9A-Za-z-]`; a
///   numeric pre-release identifier without leading zeros).
///
/// `None` for anything else (`latest`, `1.2.3.4`, `1.0.0-rc.01`, `1.0.0-`, an empty string).
pub fn parse_version(text: &str) -> Option<semver::Version> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let (rest, build) = match text.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let mut numbers = [0u64; 3];
    let mut parts = core.split('.');
    for (slot, part) in numbers.iter_mut().zip(parts.by_ref()) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let [major, minor, patch] = numbers;
    let mut version = semver::Version::new(major, minor, patch);
    if let Some(pre) = pre {
        // `Prerelease::new("")` is the empty pre-release: a bare `-` is not one.
        if pre.is_empty() {
            return None;
        }
        version.pre = semver::Prerelease::new(pre).ok()?;
    }
    if let Some(build) = build {
        if build.is_empty() {
            return None;
        }
        version.build = semver::BuildMetadata::new(build).ok()?;
    }
    Some(version)
}

/// SemVer 2.0 precedence of two chart versions as [`parse_version`] reads them: major, minor
/// and patch numerically; a release above its pre-releases; pre-release identifiers one by
/// one, numeric ones as numbers (`rc.10` > `rc.9`) and below alphanumeric ones, a longer list
/// above its prefix; build metadata ignored (`1.0.0+a` and `1.0.0+b` are equal).
///
/// A version that does not parse ranks below every version that does (Helm's own index sort
/// pushes those to the end of its newest-first lists too); two of them rank as equal.
pub fn precedence(a: &str, b: &str) -> Ordering {
    match (parse_version(a), parse_version(b)) {
        (Some(a), Some(b)) => a.cmp_precedence(&b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

/// The total order chart versions are listed in: [`precedence`], and versions of equal
/// precedence (`1.0.0+a` and `1.0.0+b`, `v1.2` and `1.2.0`, two unparseable ones) by their
/// text, so that a sort gives the same order whatever order it was given. `Equal` only for
/// the same text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    precedence(a, b).then_with(|| a.cmp(b))
}

/// Sorts `versions` by repository and chart name, each chart's versions newest first.
pub fn sort_newest_first(versions: &mut [ChartVersion]) {
    versions.sort_by(|a, b| {
        (&a.repository, &a.name)
            .cmp(&(&b.repository, &b.name))
            .then_with(|| compare_versions(&b.version, &a.version))
    });
}

/// The newest version of every chart (per repository and name) among `versions`.
pub fn newest(mut versions: Vec<ChartVersion>) -> Vec<ChartVersion> {
    sort_newest_first(&mut versions);
    versions
        .dedup_by(|later, first| later.repository == first.repository && later.name == first.name);
    versions
}

/// The built-in job as first created.
pub fn builtin_job() -> Job {
    let now = now_millis();
    Job {
        id: BUILTIN_JOB_ID.to_owned(),
        name: BUILTIN_JOB_NAME.to_owned(),
        kind: JobKind::RepoSync,
        plugins: vec![BUILTIN_PLUGIN.to_owned()],
        cron: BUILTIN_JOB_CRON.to_owned(),
        targets: Targets::All,
        enabled: true,
        timeout_seconds: 300,
        webhooks: Vec::new(),
        notify_only_on_failure: false,
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Creates the built-in repo-sync job unless it exists (every replica tries; one wins).
pub async fn ensure_builtin_job(app: &Jobs) {
    if let Err(e) = app.db.insert_job_if_absent(&builtin_job()).await {
        tracing::warn!(error = %e, "cannot create the built-in Helm repository sync job");
    }
}

/// A repo-sync run: every repository through each of the job's plugins.
pub(super) async fn sync(app: &Jobs, job: &Job, run: &mut Run) {
    let repositories = match app.db.helm_repositories().await {
        Ok(repositories) => repositories,
        Err(e) => {
            run.status = RunStatus::Failed;
            run.error = Some(format!("cannot list repositories: {e}"));
            return;
        }
    };
    let timeout = Duration::from_secs(job.timeout_seconds.max(1));
    let mut failures = Vec::new();
    for repository in repositories {
        for plugin in &job.plugins {
            if let Err(e) = sync_one(app, plugin, &repository, &run.id, timeout).await {
                failures.push(format!("{}: {e}", repository.name));
                let _ = app
                    .db
                    .record_helm_sync(
                        &repository.id,
                        &run.id,
                        "failed",
                        Some(&e.to_string()),
                        None,
                    )
                    .await;
            }
        }
    }
    if failures.is_empty() {
        run.status = RunStatus::Success;
    } else {
        run.status = RunStatus::Failed;
        run.error = Some(failures.join("; "));
    }
}

async fn sync_one(
    app: &Jobs,
    plugin: &str,
    repository: &Repository,
    run_id: &str,
    timeout: Duration,
) -> Result<(), SyncError> {
    let info = RepositoryInfo {
        name: repository.name.clone(),
        url: repository.url.clone(),
        auth: repository.open_auth(&app.secret_key)?,
        etag: repository.etag.clone(),
        ca_pem: repository.ca_pem.clone(),
    };
    let report = tokio::time::timeout(timeout, app.plugins.sync_repository(plugin, &info))
        .await
        .map_err(|_| SyncError::Timeout {
            plugin: plugin.to_owned(),
            seconds: timeout.as_secs(),
        })??;
    match report.value {
        SyncOutcome::Unchanged => app
            .db
            .record_helm_sync(&repository.id, run_id, "unchanged", None, None)
            .await
            .map_err(SyncError::from),
        SyncOutcome::Updated(index) => {
            let new = app
                .db
                .replace_chart_versions(&repository.id, run_id, &index.charts)
                .await?;
            tracing::info!(
                repository = %repository.name,
                versions = index.charts.len(),
                new,
                "Helm repository synced"
            );
            app.db
                .record_helm_sync(
                    &repository.id,
                    run_id,
                    "success",
                    None,
                    Some(index.etag.as_deref()),
                )
                .await
                .map_err(SyncError::from)
        }
    }
}
