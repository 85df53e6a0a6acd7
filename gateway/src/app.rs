//! The state every request handler and background task shares.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::cluster::ClusterManager;
use crate::config::Config;
use crate::coord::{Coordinator, ReplicaStates};
use crate::crypto::SecretKey;
use crate::plugin::Plugins;
use crate::proxy::Proxy;
use crate::storage::Db;
use crate::telemetry::Metrics;
use crate::tls::ServerTls;

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub struct App(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub db: Db,
    pub secret_key: SecretKey,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    /// Installed wasm plugins and the host that runs them.
    pub plugins: Plugins,
    /// The cluster registry and this replica's connections.
    pub clusters: Arc<ClusterManager>,
    /// Leader election, cluster lease sync and membership (or standalone).
    pub coord: Coordinator,
    /// Every replica's published connection states (this replica publishes its own).
    pub replicas: ReplicaStates,
    /// The proxy's own state (`/k8s/clusters/…`), handed to it alone.
    pub proxy: Proxy,
    pub audit: Arc<AuditLog>,
    /// Webhook delivery (cluster events and job-run notifications): one HTTP client and one
    /// global cap on concurrent requests.
    pub webhooks: crate::hooks::WebhookSink,
    /// Scheduled and manual job runs.
    pub jobs: crate::jobs::Jobs,
    /// The listener's TLS (`None`: plain HTTP).
    pub tls: Option<ServerTls>,
    /// True once start-up work that readiness waits for is done (the first lease list).
    pub ready: watch::Receiver<bool>,
    /// Cancelled when the gateway stops; background work watches it.
    pub shutdown: CancellationToken,
    /// Background tasks, awaited on shutdown.
    pub tasks: TaskTracker,
}

impl App {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl axum::extract::FromRef<App> for Proxy {
    fn from_ref(app: &App) -> Self {
        app.proxy.clone()
    }
}

impl std::ops::Deref for App {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
