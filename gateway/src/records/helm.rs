//! Helm repositories and the chart versions their syncs found.

use serde::Serialize;

/// A Helm repository. Its credentials stay sealed; the API shows only their kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub id: String,
    pub name: String,
    pub url: String,
    #[serde(skip)]
    pub sealed_auth: Option<Vec<u8>>,
    /// `basic`, `bearer` or none.
    pub auth_type: Option<String>,
    pub ca_pem: Option<String>,
    pub etag: Option<String>,
    pub last_sync_run: Option<String>,
    /// The last sync run that found the index changed: versions it first saw are `new`.
    pub last_change_run: Option<String>,
    pub last_sync_at: Option<i64>,
    /// `success`, `unchanged` or `failed`.
    pub last_sync_status: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One stored chart version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
    pub repository: String,
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub keywords: Vec<String>,
    pub deprecated: bool,
    pub digest: Option<String>,
    pub urls: Vec<String>,
    pub created: Option<String>,
    /// The sync run that first found this version.
    pub first_seen_run: String,
    pub first_seen_at: i64,
    /// First found by the latest sync that saw its repository's index change: new since the
    /// sync before (an unchanged index, ETag, keeps the mark).
    pub new: bool,
}
