//! Start-up, the listener, and graceful shutdown.
//!
//! Start: open the database (migrations), settle the secret key, bootstrap the admin token, bind.
//! Stop: stop accepting, let in-flight requests finish within `--shutdown-timeout-seconds`
//! (watches included, so the bound matters), then stop background work and close the database.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::app::{App, Shared};
use crate::audit::AuditLog;
use crate::auth::{self, Authenticator};
use crate::cluster::{ClusterEvents, ClusterManager, ClusterOptions};
use crate::config::{Config, HostCluster, TlsMode};
use crate::coord::{CoordError, Coordinator, LeaderWork, ReplicaStates};
use crate::crypto::KeyError;
use crate::hooks::{Hooks, LifecyclePlugins};
use crate::jobs::{Jobs, JobsShared};
use crate::proxy::{Drain, Proxy, ProxyMetrics};
use crate::storage::{Db, StorageError};
use crate::telemetry::Metrics;
use crate::tls::{ServerTls, TlsError};

mod conn;
mod listener;
mod startup;

use listener::{ConnectionMetrics, Listener, ProxyRoute, serve_connections};
pub use startup::{SECRET_KEY_FILE, settle_secret_key};
use startup::{certificate_names, register_in_cluster};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The secret key could not be read or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database was set up with another secret key.
    #[error(
        "the secret key does not match the one this database's credentials were encrypted with; \
         start with the original --secret-key / SECRET_KEY{0}"
    )]
    WrongKey(String),
    /// The plugin host could not start.
    #[error(transparent)]
    Plugins(#[from] crate::plugin::Error),
    /// Coordination through leases could not start.
    #[error(transparent)]
    Coord(#[from] CoordError),
    /// Webhooks and lifecycle hooks could not start.
    #[error(transparent)]
    Hooks(#[from] crate::hooks::HookError),
    /// The listener's TLS cannot be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The configuration asks for something only a SQLite data folder provides (a generated
    /// secret key or self-signed certificate) while the database is PostgreSQL. `Config`
    /// refuses this; a hand-built `Config` gets this error rather than a panic.
    #[error("{0} needs a data folder, which only a SQLite database has; set {1}")]
    NoDataFolder(&'static str, &'static str),
    /// The listen address could not be bound.
    #[error("OIDC: {0}")]
    Oidc(#[from] auth::OidcSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    app: App,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    generated_admin_token: Option<String>,
    /// Stops accepting, ends watches, then closes every open connection and stream.
    drain: Drain,
    /// The accept loops (the main listener, and the metrics listener if any).
    servers: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Starts serving; returns once the listener is bound.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let db = Db::connect(&config.database).await?;
        tracing::info!(database = %config.database.redacted(), "database ready");
        let secret_key =
            settle_secret_key(&config.database, config.secret_key.as_ref(), &db).await?;
        let generated_admin_token =
            auth::bootstrap_admin(&db, config.admin_token.as_deref()).await?;

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;

        let tls = match &config.tls {
            TlsMode::Files { cert, key } => Some(ServerTls::from_files(cert, key)?),
            TlsMode::SelfSigned => {
                let dir = config.database.data_dir().ok_or(StartError::NoDataFolder(
                    "a self-signed certificate",
                    "--tls-cert-file and --tls-key-file, or --plain-http",
                ))?;
                Some(ServerTls::self_signed(dir, &certificate_names(&config))?)
            }
            TlsMode::Off => {
                tracing::warn!(
                    "serving plain HTTP (--plain-http): kubectl sends tokens only over TLS, so \
                     terminate TLS in front of the gateway and set --public-url https://…"
                );
                None
            }
        };
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let clusters = Arc::new(ClusterManager::new(
            db.clone(),
            secret_key.clone(),
            ClusterOptions {
                heartbeat_interval: config.heartbeat_interval,
                allow_exec_credentials: config.allow_exec_credentials,
                allow_insecure_credentials: config.allow_insecure_cluster_credentials,
                deny_local_servers: config.deny_local_cluster_servers,
                ..ClusterOptions::default()
            },
            &metrics,
            ClusterEvents::new(&config.instance_id),
            shutdown.clone(),
            tasks.clone(),
        ));
        // Subscribed before anything can connect, so hooks see every event.
        let hook_events = clusters.events().subscribe();
        let coord = match config.host {
            HostCluster::Standalone => Coordinator::standalone(&config.instance_id),
            _ => {
                Coordinator::start(
                    &config,
                    db.clone(),
                    clusters.clone(),
                    &metrics,
                    LeaderWork {
                        cleanup_interval: config.lease_cleanup_interval,
                    },
                )
                .await?
            }
        };
        let ready = coord.listed();
        let replicas = ReplicaStates::start(
            db.clone(),
            clusters.clone(),
            &config.instance_id,
            config.replica_state,
            coord.leadership(),
            &shutdown,
            &tasks,
        );
        let audit = Arc::new(AuditLog::start(
            db.clone(),
            config.audit_retention,
            &metrics,
            &tasks,
            shutdown.clone(),
        ));
        let plugins = crate::plugin::Plugins::start(
            crate::plugin::HostSettings::for_config(&config),
            db.clone(),
            &config.plugin_dir,
            shutdown.clone(),
        )
        .await?;
        let mut auth = Authenticator::new(db.clone(), config.max_streams_per_token)
            .with_cluster_labels(Arc::new(ConnectedLabels(clusters.clone())));
        if let Some(oidc) = &config.oidc {
            auth = auth.with_oidc(Arc::new(auth::Oidc::new(oidc.clone())?));
        }
        if let Some(oidc) = auth.oidc() {
            tracing::info!(
                issuer = oidc.issuer(),
                client_id = oidc.client_id(),
                "ID tokens accepted as bearer tokens"
            );
        }
        let auth = Arc::new(auth);
        let drain = Drain::new();
        let proxy = Proxy::new(
            auth.clone(),
            clusters.clone(),
            audit.clone(),
            ProxyMetrics::new(&metrics),
            config.upstream_timeout,
            drain.clone(),
        );
        let webhooks = crate::hooks::WebhookSink::new(
            db.clone(),
            secret_key.clone(),
            config.hook_delivery,
            shutdown.clone(),
        )?;
        let jobs = Jobs::new(JobsShared {
            db: db.clone(),
            plugins: plugins.clone(),
            clusters: clusters.clone(),
            webhooks: webhooks.clone(),
            secret_key: secret_key.clone(),
            instance_id: config.instance_id.clone(),
            poll_interval: config.job_poll_interval,
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        });
        let app = App::new(Shared {
            jobs,
            auth,
            proxy,
            clusters,
            coord,
            replicas,
            audit,
            webhooks,
            plugins,
            tls,
            config,
            db,
            secret_key,
            metrics,
            ready,
            shutdown,
            tasks,
        });
        {
            let app = app.clone();
            app.tasks
                .clone()
                .spawn(async move { app.auth.watch_streams(app.shutdown.clone()).await });
        }
        let hooks = Hooks::new(
            vec![
                Arc::new(app.webhooks.clone()),
                Arc::new(LifecyclePlugins::new(
                    app.plugins.clone(),
                    app.clusters.clone(),
                    app.db.clone(),
                )),
            ],
            &app.metrics,
            app.tasks.clone(),
            app.shutdown.clone(),
        );
        hooks.listen(hook_events);
        crate::jobs::start(&app.jobs, app.coord.leadership());
        if app.config.in_cluster {
            register_in_cluster(&app).await;
        }
        if app.config.connect_cluster {
            match app.clusters.connect_desired().await {
                Ok(n) => tracing::info!(clusters = n, "connected clusters at start-up"),
                Err(e) => tracing::warn!(error = %e, "cannot connect clusters at start-up"),
            }
        }

        let stop_accepting = drain.stopping();
        let force_close = drain.closing();
        let connection_metrics = ConnectionMetrics::new(&app.metrics);
        let limits = app.config.connections;
        let mut servers = Vec::new();
        let mut metrics_addr = None;
        if let Some(addr) = app.config.metrics_listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            tracing::info!(address = %bound, "metrics listening");
            metrics_addr = Some(bound);
            servers.push(tokio::spawn(serve_connections(
                listener,
                Listener {
                    tls: None,
                    router: api::metrics_router(app.metrics.clone()),
                    proxy: None,
                    limits,
                    slots: Arc::new(Semaphore::new(METRICS_CONNECTIONS)),
                    metrics: connection_metrics.clone(),
                },
                stop_accepting.clone(),
                force_close.clone(),
            )));
        }
        servers.push(tokio::spawn(serve_connections(
            listener,
            Listener {
                tls: app.tls.clone(),
                router: api::router(app.clone(), crate::console::router(app.clone())),
                proxy: Some(Arc::new(ProxyRoute {
                    proxy: app.proxy.clone(),
                    metrics: app.metrics.clone(),
                })),
                limits,
                slots: Arc::new(Semaphore::new(limits.max_connections)),
                metrics: connection_metrics,
            },
            stop_accepting.clone(),
            force_close.clone(),
        )));
        tracing::info!(
            address = %local_addr,
            instance = %app.config.instance_id,
            "portico listening"
        );
        Ok(Self {
            app,
            local_addr,
            metrics_addr,
            generated_admin_token,
            drain,
            servers,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the `/metrics` listener (`--metrics-listen`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The admin token generated by this start, if it was the first.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    /// The shared state, for the workspace's tests (the `testing` feature).
    #[cfg(feature = "testing")]
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Stops at once, like a killed process: no lease is released, no request finishes.
    pub async fn crash(self) {
        self.drain.close();
        for server in &self.servers {
            server.abort();
        }
        self.app.coord.abandon();
        self.app.shutdown.cancel();
        self.app.tasks.close();
        self.app.tasks.wait().await;
        tracing::info!("crashed (on purpose)");
    }

    /// Graceful stop: no new connections, in-flight requests get the configured bound, then
    /// background work stops and the database closes.
    pub async fn shutdown(self) {
        let timeout = self.app.config.shutdown_timeout;
        tracing::info!(?timeout, "shutting down: no longer accepting connections");
        // Watches end now (clients resume them elsewhere); other requests, followed logs and
        // upgraded streams get the bound.
        self.drain.stop();
        let drain = self.drain.clone();
        let finished = async move {
            futures::future::join_all(self.servers).await;
            drain.upgrades_finished().await;
        };
        if tokio::time::timeout(timeout, finished).await.is_err() {
            tracing::warn!(
                ?timeout,
                "in-flight requests and streams did not finish in time; closing them"
            );
        }
        self.drain.close();
        // Nobody should show this replica once it is gone.
        self.app.replicas.shutdown().await;
        // Leader work stops, then the leader lease is released and the instance lease deleted.
        self.app.coord.shutdown().await;
        self.app.shutdown.cancel();
        self.app.tasks.close();
        self.app.tasks.wait().await;
        self.app.db.close().await;
        tracing::info!("stopped");
    }
}

/// Open connections at most on the metrics listener.
const METRICS_CONNECTIONS: usize = 64;

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// The labels of the clusters this replica is connected to, for grants with label selectors.
#[derive(Debug)]
struct ConnectedLabels(Arc<ClusterManager>);

impl auth::ClusterLabels for ConnectedLabels {
    fn labels(&self, cluster_id: &str) -> Option<Arc<std::collections::BTreeMap<String, String>>> {
        self.0.connection(cluster_id).map(|c| c.labels.clone())
    }
}
