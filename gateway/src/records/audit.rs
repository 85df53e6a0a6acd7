//! Audit log entries.

use serde::Serialize;

/// Where an audited request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditKind {
    /// `/k8s/clusters/{id}/…`.
    Proxy,
    /// The admin API, `/api/v1/…`.
    Api,
    /// The admin API called by the console (`/ui`) for its signed-in user, and console
    /// sign-ins and sign-outs.
    Console,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Api => "api",
            Self::Console => "console",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "proxy" => Some(Self::Proxy),
            "api" => Some(Self::Api),
            "console" => Some(Self::Console),
            _ => None,
        }
    }
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    pub kind: AuditKind,
    /// Empty when the caller did not authenticate.
    pub token_id: String,
    pub token_name: String,
    /// The proxied cluster (empty for the admin API).
    pub cluster: String,
    /// `post`, `put`, `patch`, `delete`, `exec`, `attach`, `portforward` or `upgrade`; for
    /// refused reads, their method (`get`, …).
    pub verb: String,
    /// Proxy: path and query below the cluster. Admin API: the request path.
    pub path: String,
    /// Upstream status, or Portico's (401/403/429, 502/504) when it answered itself.
    pub status: u16,
    /// The client's address (the TCP peer).
    pub source: String,
}
