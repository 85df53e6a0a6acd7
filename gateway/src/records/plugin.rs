//! What plugins return and are called with: clusters, repositories, findings, charts, log
//! lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The cluster a plugin is called for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Credentials of a Helm repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryAuth {
    Basic { username: String, password: String },
    Bearer { token: String },
}

/// A Helm repository to synchronise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryInfo {
    pub name: String,
    pub url: String,
    pub auth: Option<RepositoryAuth>,
    /// The ETag the last successful sync saw.
    pub etag: Option<String>,
    /// PEM of a private CA the repository's host is trusted with (besides the web PKI).
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// How serious a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check_id: String,
    pub severity: Severity,
    pub passed: bool,
    pub message: String,
    pub target: Option<ObjectRef>,
    pub extra: serde_json::Value,
}

/// One reason a plugin's `config-check` export gave to refuse a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigIssue {
    /// Where in the configuration, such as `rules[2].expression`; empty for the whole document.
    pub field: String,
    pub message: String,
    /// 1-based line within the value at `field` (an expression), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column within that line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// One chart version of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub description: Option<String>,
    pub digest: Option<String>,
    pub urls: Vec<String>,
    pub created: Option<String>,
    pub deprecated: bool,
    pub icon: Option<String>,
    pub keywords: Vec<String>,
}

/// A repository's charts and the index's ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartIndex {
    pub charts: Vec<Chart>,
    pub etag: Option<String>,
}

/// The result of a repository sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum SyncOutcome {
    /// The index did not change since the ETag given.
    Unchanged,
    /// The index, read anew.
    Updated(ChartIndex),
}

/// A line the plugin logged (or wrote to stdout/stderr, as level `stdio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}
