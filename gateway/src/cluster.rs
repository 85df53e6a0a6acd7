//! The cluster registry and this replica's connections to the clusters.
//!
//! The registry lives in the database (shared by replicas); connections are local. A connection
//! counts as connected only after `GET /version` answered. A supervisor task per connection
//! then sends a heartbeat; after a few failures in a row the cluster is marked failed and
//! reconnected with capped exponential backoff, and the proxy answers 503 for it meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::crypto::{OpenError, SecretKey};
use crate::storage::clusters::{ClusterRecord, DesiredState};
use crate::storage::{Db, StorageError};
use crate::telemetry::Metrics;

mod backoff;
pub mod credentials;
pub mod spec;
pub mod upstream;

use backoff::Backoff;
use spec::{ClusterSpec, Origin, ServerPolicy, SpecError};
use upstream::{PoolOptions, Upstream, UpstreamError};

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

/// This replica's connection state for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Connecting,
    Connected,
    Failed,
    Disconnected,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    pub phase: Phase,
    pub last_error: Option<String>,
    pub server_version: Option<String>,
    /// Unix milliseconds of the last phase change.
    pub since: i64,
}

impl LocalState {
    fn new(phase: Phase) -> Self {
        Self {
            phase,
            last_error: None,
            server_version: None,
            since: clock::now_millis(),
        }
    }
}

/// A local connect or disconnect: what hooks (webhooks, lifecycle plugins) react to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    pub cluster_id: String,
    pub kind: ClusterEventKind,
    /// This replica made the change (the API call or lease change happened here, or the
    /// gateway runs standalone): `cluster`-scoped hooks fire only where this is true, so once
    /// per change; `replica`-scoped hooks fire on every replica's own local change.
    pub initiator: bool,
    /// The replica the event happened on.
    pub instance_id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The apiserver's version (connects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterEventKind {
    Connected,
    Disconnected,
}

/// Publishes [`ClusterEvent`]s; subscribers that lag lose the oldest events (logged).
#[derive(Debug, Clone)]
pub struct ClusterEvents {
    sender: tokio::sync::broadcast::Sender<ClusterEvent>,
    instance_id: String,
}

impl ClusterEvents {
    pub fn new(instance_id: &str) -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(1024).0,
            instance_id: instance_id.to_owned(),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ClusterEvent> {
        self.sender.subscribe()
    }

    fn send(
        &self,
        cluster_id: &str,
        kind: ClusterEventKind,
        initiator: bool,
        version: Option<String>,
    ) {
        // No subscriber is fine: nothing to notify.
        let _ = self.sender.send(ClusterEvent {
            cluster_id: cluster_id.to_owned(),
            kind,
            initiator,
            instance_id: self.instance_id.clone(),
            at: clock::now_millis(),
            server_version: version,
        });
    }
}

/// A local connection: the pooled client plus its state.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    /// The configuration revision this connection was built from.
    pub revision: i64,
    pub upstream: Upstream,
    state: Mutex<LocalState>,
    stop: CancellationToken,
    /// Whether this connection's first successful check was announced as a connect event.
    announced: std::sync::atomic::AtomicBool,
    initiator: bool,
}

impl Connection {
    /// Sends the connect event once per connection, on its first successful check (a later
    /// reconnect after failed heartbeats is health, not a lifecycle change).
    fn announce(&self, events: &ClusterEvents) {
        if !self
            .announced
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let version = self.state().server_version;
            events.send(
                &self.id,
                ClusterEventKind::Connected,
                self.initiator,
                version,
            );
        }
    }

    pub fn state(&self) -> LocalState {
        self.state.lock().clone()
    }

    /// True when requests may be proxied.
    pub fn is_connected(&self) -> bool {
        self.state.lock().phase == Phase::Connected
    }

    fn set(&self, update: impl FnOnce(&mut LocalState)) {
        let mut state = self.state.lock();
        let before = state.phase;
        update(&mut state);
        if state.phase != before {
            state.since = clock::now_millis();
        }
    }
}

/// What `GET /api/v1/clusters` shows for one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub id: String,
    pub name: String,
    pub server: String,
    pub context: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub desired_state: DesiredState,
    /// This replica's connection.
    pub state: Phase,
    pub last_error: Option<String>,
    pub server_version: Option<String>,
    /// The replica holding the cluster's lease (multi-replica mode).
    pub lease_holder: Option<String>,
    pub config_revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new cluster from a kubeconfig.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub id: String,
    pub name: Option<String>,
    pub kubeconfig: String,
    pub context: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Changes to a cluster; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ClusterUpdate {
    pub name: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster: String,
}

/// The registry plus this replica's connections.
#[derive(Debug)]
pub struct ClusterManager {
    db: Db,
    key: SecretKey,
    options: ClusterOptions,
    connections: RwLock<HashMap<String, Arc<Connection>>>,
    connect_failures: Family<ClusterLabel, Counter>,
    events: ClusterEvents,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl ClusterManager {
    /// Connect and disconnect events of this replica.
    pub fn events(&self) -> &ClusterEvents {
        &self.events
    }

    pub fn new(
        db: Db,
        key: SecretKey,
        options: ClusterOptions,
        metrics: &Metrics,
        events: ClusterEvents,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        let connect_failures = Family::<ClusterLabel, Counter>::default();
        metrics.register(|registry| {
            registry.register(
                "cluster_connect_failures",
                "Failed connection checks (connect, heartbeat, reconnect) by cluster",
                connect_failures.clone(),
            );
        });
        Self {
            db,
            key,
            options,
            connections: RwLock::new(HashMap::new()),
            connect_failures,
            events,
            shutdown,
            tasks,
        }
    }

    /// The local connection, if any: the proxy's lookup, a read lock and an `Arc` clone.
    pub fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections.read().get(id).cloned()
    }

    /// Ids of the clusters connected (or connecting) here.
    pub fn local_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.connections.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Registers a cluster from a kubeconfig sent to the API.
    pub async fn create(&self, new: NewCluster) -> Result<(ClusterRecord, Vec<String>)> {
        self.create_from(new, Origin::api(self.options.allow_exec_credentials))
            .await
    }

    /// Registers a cluster, resolving file references as `origin` allows.
    pub async fn create_from(
        &self,
        new: NewCluster,
        origin: Origin<'_>,
    ) -> Result<(ClusterRecord, Vec<String>)> {
        validate_id(&new.id)?;
        let config = spec::parse_kubeconfig(&new.kubeconfig)?;
        let resolved = spec::resolve(&config, new.context.as_deref(), origin)?;
        spec::check_policy(&resolved.spec, self.policy())?;
        let now = clock::now_millis();
        let record = ClusterRecord {
            sealed_credentials: self.seal(&new.id, &resolved.spec),
            id: new.id.clone(),
            name: new.name.filter(|n| !n.is_empty()).unwrap_or(new.id),
            server: resolved.spec.server.clone(),
            context: Some(resolved.context),
            labels: new.labels,
            desired_state: DesiredState::Disconnected,
            config_revision: 1,
            created_at: now,
            updated_at: now,
        };
        self.db.insert_cluster(&record).await?;
        Ok((record, resolved.warnings))
    }

    /// Registers (or replaces the configuration of) a cluster from a ready spec, e.g. the
    /// in-cluster service account.
    pub async fn upsert_spec(&self, id: &str, name: &str, spec: &ClusterSpec) -> Result<()> {
        validate_id(id)?;
        let now = clock::now_millis();
        let mut record = ClusterRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            server: spec.server.clone(),
            context: None,
            sealed_credentials: self.seal(id, spec),
            labels: BTreeMap::new(),
            desired_state: DesiredState::Disconnected,
            config_revision: 1,
            created_at: now,
            updated_at: now,
        };
        match self.db.insert_cluster(&record).await {
            Ok(()) => Ok(()),
            Err(StorageError::Conflict(_)) => {
                let existing = self.record(id).await?;
                if self.open(&existing).ok().as_ref() != Some(spec) {
                    record.labels = existing.labels;
                    self.db.update_cluster(&record).await?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a cluster's configuration; a local connection is rebuilt with it.
    pub async fn update(&self, id: &str, update: ClusterUpdate) -> Result<Vec<String>> {
        let mut record = self.record(id).await?;
        let mut warnings = Vec::new();
        if update.kubeconfig.is_some() || update.context.is_some() {
            let kubeconfig = match &update.kubeconfig {
                Some(text) => text.clone(),
                None => {
                    return Err(SpecError::Malformed(
                        "changing the context needs the kubeconfig too".to_owned(),
                    )
                    .into());
                }
            };
            let config = spec::parse_kubeconfig(&kubeconfig)?;
            let resolved = spec::resolve(
                &config,
                update.context.as_deref(),
                Origin::api(self.options.allow_exec_credentials),
            )?;
            spec::check_policy(&resolved.spec, self.policy())?;
            record.sealed_credentials = self.seal(id, &resolved.spec);
            record.server = resolved.spec.server.clone();
            record.context = Some(resolved.context);
            warnings = resolved.warnings;
        }
        if let Some(name) = update.name.filter(|n| !n.is_empty()) {
            record.name = name;
        }
        if let Some(labels) = update.labels {
            record.labels = labels;
        }
        let record = self
            .db
            .update_cluster(&record)
            .await?
            .ok_or_else(|| ClusterError::NotFound(id.to_owned()))?;
        if self.connection(id).is_some() {
            self.connect_record(&record, true).await?;
        }
        Ok(warnings)
    }

    /// Deletes a cluster after closing its local connection.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.disconnect_local(id, true);
        if !self.db.delete_cluster(id).await? {
            return Err(ClusterError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Records the user's wish.
    pub async fn set_desired(&self, id: &str, state: DesiredState) -> Result<()> {
        if !self.db.set_desired_state(id, state).await? {
            return Err(ClusterError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// The stored record.
    pub async fn record(&self, id: &str) -> Result<ClusterRecord> {
        self.db
            .cluster(id)
            .await?
            .ok_or_else(|| ClusterError::NotFound(id.to_owned()))
    }

    /// Connects this replica to the cluster (rebuilding an existing connection) and waits for
    /// the first `/version` check. A failed check leaves the cluster `failed` and retrying.
    /// `initiator`: this replica made the change (see [`ClusterEvent::initiator`]).
    pub async fn connect_local(&self, id: &str, initiator: bool) -> Result<LocalState> {
        let record = self.record(id).await?;
        self.connect_record(&record, initiator).await
    }

    async fn connect_record(&self, record: &ClusterRecord, initiator: bool) -> Result<LocalState> {
        let spec = self.open(record)?;
        let pool = PoolOptions {
            deny_local_servers: self.options.deny_local_servers,
            ..self.options.pool
        };
        let upstream = Upstream::new(&spec, pool)?;
        let connection = Arc::new(Connection {
            id: record.id.clone(),
            revision: record.config_revision,
            upstream,
            state: Mutex::new(LocalState::new(Phase::Connecting)),
            stop: self.shutdown.child_token(),
            announced: std::sync::atomic::AtomicBool::new(false),
            initiator,
        });
        let previous = self
            .connections
            .write()
            .insert(record.id.clone(), connection.clone());
        if let Some(previous) = &previous {
            previous.stop.cancel();
            // A rebuilt connection (new configuration) is no new connect.
            if previous.announced.load(std::sync::atomic::Ordering::SeqCst) {
                connection
                    .announced
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let healthy = self.check(&connection).await;
        if healthy {
            tracing::info!(cluster = %record.id, server = %record.server, "cluster connected");
            connection.announce(&self.events);
        }
        let supervisor = Supervisor {
            connection: connection.clone(),
            events: self.events.clone(),
            options: self.options,
            failures: self
                .connect_failures
                .get_or_create(&ClusterLabel {
                    cluster: record.id.clone(),
                })
                .clone(),
        };
        self.tasks.spawn(supervisor.run(healthy));
        Ok(connection.state())
    }

    /// One `/version` check that updates the state; returns whether it succeeded.
    async fn check(&self, connection: &Connection) -> bool {
        let result = connection
            .upstream
            .version(self.options.check_timeout)
            .await;
        apply_check(connection, result, &self.connect_failures)
    }

    /// Closes this replica's connection; returns whether there was one.
    pub fn disconnect_local(&self, id: &str, initiator: bool) -> bool {
        let removed = self.connections.write().remove(id);
        match removed {
            Some(connection) => {
                connection.stop.cancel();
                tracing::info!(cluster = %id, "cluster disconnected");
                self.events
                    .send(id, ClusterEventKind::Disconnected, initiator, None);
                true
            }
            None => false,
        }
    }

    /// The view of one stored cluster, with this replica's state.
    pub fn view(&self, record: ClusterRecord) -> ClusterView {
        let local = self
            .connection(&record.id)
            .map(|c| c.state())
            .unwrap_or_else(|| LocalState::new(Phase::Disconnected));
        ClusterView {
            id: record.id,
            name: record.name,
            server: record.server,
            context: record.context,
            labels: record.labels,
            desired_state: record.desired_state,
            state: local.phase,
            last_error: local.last_error,
            server_version: local.server_version,
            lease_holder: None,
            config_revision: record.config_revision,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }

    /// Connects every cluster whose desired state is `connected` (start-up with
    /// `--connect-cluster`).
    pub async fn connect_desired(&self) -> Result<usize> {
        let mut connected = 0;
        for record in self.db.clusters().await? {
            if record.desired_state == DesiredState::Connected {
                match self.connect_record(&record, true).await {
                    Ok(_) => connected += 1,
                    Err(e) => tracing::warn!(cluster = %record.id, error = %e, "cannot connect"),
                }
            }
        }
        Ok(connected)
    }

    /// What registration accepts as a cluster server.
    fn policy(&self) -> ServerPolicy {
        ServerPolicy {
            allow_insecure_credentials: self.options.allow_insecure_credentials,
            deny_local: self.options.deny_local_servers,
        }
    }

    fn seal(&self, id: &str, spec: &ClusterSpec) -> Vec<u8> {
        let json = serde_json::to_vec(spec).expect("spec serializes");
        self.key.seal(id.as_bytes(), &json)
    }

    /// Decrypts a record's spec.
    pub fn open(&self, record: &ClusterRecord) -> Result<ClusterSpec> {
        let json = self
            .key
            .open(record.id.as_bytes(), &record.sealed_credentials)
            .map_err(|e| ClusterError::Sealed(record.id.clone(), e))?;
        serde_json::from_slice(&json).map_err(|_| {
            ClusterError::Storage(StorageError::Corrupt(format!(
                "credentials of cluster {}",
                record.id
            )))
        })
    }
}

fn apply_check(
    connection: &Connection,
    result: Result<String, UpstreamError>,
    failures: &Family<ClusterLabel, Counter>,
) -> bool {
    match result {
        Ok(version) => {
            connection.set(|s| {
                s.phase = Phase::Connected;
                s.server_version = Some(version);
                s.last_error = None;
            });
            true
        }
        Err(e) => {
            failures
                .get_or_create(&ClusterLabel {
                    cluster: connection.id.clone(),
                })
                .inc();
            let message = e.to_string();
            connection.set(|s| {
                if s.phase != Phase::Connected {
                    s.phase = Phase::Failed;
                }
                s.last_error = Some(message);
            });
            false
        }
    }
}

/// Heartbeats a connected cluster; reconnects a failed one with capped exponential backoff.
struct Supervisor {
    connection: Arc<Connection>,
    events: ClusterEvents,
    options: ClusterOptions,
    failures: Counter,
}

impl Supervisor {
    async fn run(self, mut healthy: bool) {
        let stop = self.connection.stop.clone();
        let mut consecutive = 0u32;
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        loop {
            let wait = if healthy {
                self.options.heartbeat_interval
            } else {
                backoff.delay()
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let result = self
                .connection
                .upstream
                .version(self.options.check_timeout)
                .await;
            if stop.is_cancelled() {
                return;
            }
            match result {
                Ok(version) => {
                    if !healthy {
                        tracing::info!(cluster = %self.connection.id, "cluster reconnected");
                    }
                    self.connection.set(|s| {
                        s.phase = Phase::Connected;
                        s.server_version = Some(version);
                        s.last_error = None;
                    });
                    self.connection.announce(&self.events);
                    healthy = true;
                    consecutive = 0;
                    backoff.reset();
                }
                Err(e) => {
                    self.failures.inc();
                    let message = e.to_string();
                    if healthy {
                        consecutive += 1;
                        tracing::warn!(
                            cluster = %self.connection.id,
                            failures = consecutive,
                            error = %message,
                            "heartbeat failed"
                        );
                        if consecutive >= self.options.heartbeat_failures {
                            healthy = false;
                            self.connection.upstream.invalidate_credentials();
                            let text = format!(
                                "unhealthy after {consecutive} failed heartbeats: {message}"
                            );
                            self.connection.set(|s| {
                                s.phase = Phase::Failed;
                                s.last_error = Some(text);
                            });
                        } else {
                            self.connection.set(|s| s.last_error = Some(message));
                        }
                    } else {
                        backoff.failed();
                        self.connection.set(|s| {
                            s.phase = Phase::Failed;
                            s.last_error = Some(message);
                        });
                    }
                }
            }
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
