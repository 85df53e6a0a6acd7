//! The cluster registry and this replica's connections to the clusters.
//!
//! The registry lives in the database (shared by replicas); connections are local. A connection
//! counts as connected only after `GET /version` answered. A supervisor task per connection
//! then sends a heartbeat; after a few failures in a row the cluster is marked failed and
//! reconnected with capped exponential backoff, and the proxy answers 503 for it meanwhile.

use std::time::Duration;

use crate::crypto::OpenError;
use crate::storage::StorageError;

mod backoff;
mod changes;
mod connection;
pub mod credentials;
mod events;
mod manager;
pub mod spec;
pub mod upstream;

pub use connection::{Connection, LocalState, Phase};
pub use events::{ClusterEvent, ClusterEventKind, ClusterEvents, Initiator};
pub use manager::{ClusterManager, ClusterUpdate, ClusterView, NewCluster};
use spec::SpecError;
use upstream::{PoolOptions, UpstreamError};

/// A cluster operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No cluster with that id.
    #[error("cluster `{0}` not found")]
    NotFound(String),
    /// An id that cannot be used.
    #[error(
        "invalid cluster id `{0}`: use 1-253 letters, digits, '-', '_', '.' or ':', starting \
         with a letter or digit"
    )]
    InvalidId(String),
    /// The kubeconfig cannot be used.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The stored credentials do not open (another secret key?).
    #[error("credentials of cluster `{0}` cannot be decrypted: {1}")]
    Sealed(String, OpenError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The cluster could not be reached or refused us.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// Heartbeat and reconnection settings.
#[derive(Debug, Clone, Copy)]
pub struct ClusterOptions {
    pub heartbeat_interval: Duration,
    /// Consecutive heartbeat failures that mark a cluster failed.
    pub heartbeat_failures: u32,
    /// Bound on one `/version` check.
    pub check_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub pool: PoolOptions,
    /// Accept exec credential plugins in kubeconfigs sent to the API.
    pub allow_exec_credentials: bool,
    /// Accept credentials for `http://` servers (`--allow-insecure-cluster-credentials`).
    pub allow_insecure_credentials: bool,
    /// Refuse loopback, link-local and unspecified servers, at registration and at every
    /// connection (`--deny-local-cluster-servers`).
    pub deny_local_servers: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_failures: 3,
            check_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            pool: PoolOptions::default(),
            allow_exec_credentials: false,
            allow_insecure_credentials: false,
            deny_local_servers: false,
        }
    }
}

/// Cluster ids appear in URLs, lease annotations and labels: keep them plain.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = (1..=253).contains(&id.len())
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ClusterError::InvalidId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests;
