//! Jobs, their runs, per-cluster results and stored findings.

use serde::{Deserialize, Serialize};

use super::plugin::{ObjectRef, Severity};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Runs inspector plugins against target clusters.
    Inspection,
    /// Syncs Helm repositories through repo-sync plugins.
    RepoSync,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inspection => "inspection",
            Self::RepoSync => "repo-sync",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "inspection" => Some(Self::Inspection),
            "repo-sync" => Some(Self::RepoSync),
            _ => None,
        }
    }
}

/// Which clusters a job targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Targets {
    /// Every registered cluster.
    #[default]
    All,
    /// These cluster ids.
    Clusters(Vec<String>),
    /// Clusters whose labels match (`k=v`, `k!=v`, `k`, comma-separated).
    Selector(String),
}

/// A scheduled job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub name: String,
    pub kind: JobKind,
    /// The plugins each run calls, in order.
    pub plugins: Vec<String>,
    pub cron: String,
    pub targets: Targets,
    pub enabled: bool,
    /// Bound on one plugin call against one target.
    pub timeout_seconds: u64,
    /// Webhook ids notified after each run.
    pub webhooks: Vec<String>,
    /// Notify only when a run failed or found failed checks.
    pub notify_only_on_failure: bool,
    /// Bumped on every edit.
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Success,
    Failed,
    /// No target cluster was connected (or there was none).
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub job_id: String,
    /// The cron occurrence (unix ms); `None` for manual runs.
    pub scheduled_at: Option<i64>,
    pub trigger: Trigger,
    /// The replica that ran it.
    pub instance_id: String,
    /// The leader term's fencing token (scheduled runs).
    pub fencing_token: Option<i64>,
    pub status: RunStatus,
    pub clusters_total: i64,
    pub clusters_skipped: i64,
    pub clusters_failed: i64,
    pub findings_total: i64,
    pub findings_failed: i64,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// How one cluster fared in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStatus {
    Success,
    Failed,
    /// Not connected on the replica that ran the job.
    Skipped,
}

impl TargetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
}

/// One cluster's result in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTarget {
    pub run_id: String,
    pub cluster_id: String,
    pub status: TargetStatus,
    pub findings_total: i64,
    pub findings_failed: i64,
    pub error: Option<String>,
    pub finished_at: i64,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingRecord {
    pub id: String,
    pub run_id: String,
    pub job_id: String,
    pub cluster_id: String,
    pub plugin: String,
    pub check_id: String,
    pub severity: Severity,
    pub passed: bool,
    pub message: String,
    pub target: Option<ObjectRef>,
    pub extra: serde_json::Value,
    pub created_at: i64,
}

impl FindingRecord {
    pub fn severity_str(&self) -> &'static str {
        match self.severity {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}
