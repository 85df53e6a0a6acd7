//! Conversions between the guest's values and the gateway's: an export's output, measured
//! against the call's `max-output-bytes`, and the call arguments.

use super::{
    Chart, ChartIndex, ClusterInfo, Finding, ObjectRef, RepositoryAuth, RepositoryInfo, Severity,
    SyncOutcome,
};
use crate::plugin::bindings::types;
use crate::plugin::{Error, Result};

/// Converts and measures an export's output.
pub(crate) struct Output {
    plugin: String,
    limit: usize,
    size: usize,
}

impl Output {
    pub fn new(plugin: &str, limit: usize) -> Self {
        Self {
            plugin: plugin.to_owned(),
            limit,
            size: 0,
        }
    }

    fn add(&mut self, bytes: usize) -> Result<()> {
        self.size += bytes;
        if self.size > self.limit {
            return Err(Error::OutputTooLarge {
                plugin: self.plugin.clone(),
                size: self.size,
                limit: self.limit,
            });
        }
        Ok(())
    }

    fn add_str(&mut self, s: &str) -> Result<()> {
        self.add(s.len())
    }

    fn add_opt(&mut self, s: &Option<String>) -> Result<()> {
        self.add(s.as_ref().map_or(0, String::len))
    }

    /// Every string counts, plus a fixed overhead per list element.
    pub fn findings(&mut self, findings: Vec<types::Finding>) -> Result<Vec<Finding>> {
        // Measure everything first: a too-large output is refused before any conversion.
        for f in &findings {
            self.add(16)?;
            self.add_str(&f.check_id)?;
            self.add_str(&f.message)?;
            self.add_str(&f.extra)?;
            if let Some(t) = &f.target {
                self.add_str(&t.kind)?;
                self.add_opt(&t.namespace)?;
                self.add_str(&t.name)?;
            }
        }
        findings
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let extra = if f.extra.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(&f.extra).map_err(|e| Error::InvalidOutput {
                        plugin: self.plugin.clone(),
                        detail: format!("finding {i} (`{}`): extra is not JSON: {e}", f.check_id),
                    })?
                };
                Ok(Finding {
                    check_id: f.check_id,
                    severity: match f.severity {
                        types::Severity::Info => Severity::Info,
                        types::Severity::Low => Severity::Low,
                        types::Severity::Medium => Severity::Medium,
                        types::Severity::High => Severity::High,
                        types::Severity::Critical => Severity::Critical,
                    },
                    passed: f.passed,
                    message: f.message,
                    target: f.target.map(|t| ObjectRef {
                        kind: t.kind,
                        namespace: t.namespace,
                        name: t.name,
                    }),
                    extra,
                })
            })
            .collect()
    }

    pub fn sync(&mut self, outcome: types::SyncOutcome) -> Result<SyncOutcome> {
        let index = match outcome {
            types::SyncOutcome::Unchanged => return Ok(SyncOutcome::Unchanged),
            types::SyncOutcome::Updated(index) => index,
        };
        self.add_opt(&index.etag)?;
        for c in &index.charts {
            self.add(16)?;
            self.add_str(&c.name)?;
            self.add_str(&c.version)?;
            self.add_opt(&c.app_version)?;
            self.add_opt(&c.description)?;
            self.add_opt(&c.digest)?;
            self.add_opt(&c.created)?;
            self.add_opt(&c.icon)?;
            for text in c.urls.iter().chain(&c.keywords) {
                self.add_str(text)?;
            }
        }
        Ok(SyncOutcome::Updated(ChartIndex {
            etag: index.etag,
            charts: index
                .charts
                .into_iter()
                .map(|c| Chart {
                    name: c.name,
                    version: c.version,
                    app_version: c.app_version,
                    description: c.description,
                    digest: c.digest,
                    urls: c.urls,
                    created: c.created,
                    deprecated: c.deprecated,
                    icon: c.icon,
                    keywords: c.keywords,
                })
                .collect(),
        }))
    }
}

impl From<&ClusterInfo> for types::Cluster {
    fn from(c: &ClusterInfo) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl From<&RepositoryInfo> for types::Repository {
    fn from(r: &RepositoryInfo) -> Self {
        Self {
            name: r.name.clone(),
            url: r.url.clone(),
            auth: r.auth.as_ref().map(|a| match a {
                RepositoryAuth::Basic { username, password } => {
                    types::RepositoryAuth::Basic(types::BasicAuth {
                        username: username.clone(),
                        password: password.clone(),
                    })
                }
                RepositoryAuth::Bearer { token } => types::RepositoryAuth::Bearer(token.clone()),
            }),
            etag: r.etag.clone(),
        }
    }
}

/// The guest's error kind as text.
pub(crate) fn error_kind(kind: types::ErrorKind) -> &'static str {
    match kind {
        types::ErrorKind::Denied => "denied",
        types::ErrorKind::NotFound => "not-found",
        types::ErrorKind::Timeout => "timeout",
        types::ErrorKind::TooLarge => "too-large",
        types::ErrorKind::Invalid => "invalid",
        types::ErrorKind::Unavailable => "unavailable",
        types::ErrorKind::Internal => "internal",
    }
}
