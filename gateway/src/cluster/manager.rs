//! The [`ClusterManager`]: the registry in the database (create, update, delete, seal and open
//! credentials) and this replica's connections to the clusters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::changes::StateChanges;
use super::connection::{ClusterLabel, Connection, LocalState, Phase, Supervisor, apply_check};
use super::events::{ClusterEventKind, ClusterEvents, Initiator};
use super::spec::{self, ClusterSpec, Origin, ServerPolicy, SpecError};
use super::upstream::{PoolOptions, Upstream};
use super::{ClusterError, ClusterOptions, Result, validate_id};
use crate::clock;
use crate::crypto::SecretKey;
use crate::storage::clusters::{ClusterEntry, ClusterRecord, DesiredState};
use crate::storage::replica_states::ReplicaState;
use crate::storage::{Db, StorageError};
use crate::telemetry::Metrics;

/// What `GET /api/v1/clusters` shows for one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub id: String,
    pub name: String,
    pub server: String,
    pub context: Option<String>,
    /// The namespace exported kubeconfigs name in the cluster's context.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub desired_state: DesiredState,
    /// This replica's connection.
    pub state: Phase,
    pub last_error: Option<String>,
    pub server_version: Option<String>,
    /// The replica holding the cluster's lease (multi-replica mode).
    pub lease_holder: Option<String>,
    /// Every replica's published state for this cluster (this one included), so any replica
    /// answers with all of them.
    pub replicas: Vec<ReplicaState>,
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
    /// Default: the context's namespace. `Some("")`: none.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Changes to a cluster; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ClusterUpdate {
    pub name: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    /// `Some("")` clears it; a new kubeconfig without one brings its context's namespace.
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
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
    /// Clusters whose local state changed, for the publisher of replica states.
    changes: StateChanges,
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
            changes: StateChanges::default(),
            shutdown,
            tasks,
        }
    }

    /// Clusters whose local state changed since the publisher last took them.
    pub fn state_changes(&self) -> &StateChanges {
        &self.changes
    }

    /// This replica's state for a cluster (`disconnected` without a local connection).
    pub fn local_state(&self, id: &str) -> LocalState {
        self.connection(id)
            .map(|c| c.state())
            .unwrap_or_else(|| LocalState::new(Phase::Disconnected))
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
        let namespace = new.namespace.map(valid_namespace).transpose()?;
        let config = spec::parse_kubeconfig(&new.kubeconfig)?;
        let resolved = spec::resolve(&config, new.context.as_deref(), origin)?;
        spec::check_policy(&resolved.spec, self.policy())?;
        let namespace = match namespace {
            Some(given) => given,
            None => resolved
                .namespace
                .clone()
                .map(valid_namespace)
                .transpose()?
                .flatten(),
        };
        let now = clock::now_millis();
        let record = ClusterRecord {
            sealed_credentials: self.seal(&new.id, &resolved.spec),
            id: new.id.clone(),
            name: new.name.filter(|n| !n.is_empty()).unwrap_or(new.id),
            server: resolved.spec.server.clone(),
            context: Some(resolved.context),
            namespace,
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
            namespace: None,
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
        let namespace = update.namespace.map(valid_namespace).transpose()?;
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
            if namespace.is_none() {
                record.namespace = resolved
                    .namespace
                    .map(valid_namespace)
                    .transpose()?
                    .flatten();
            }
            warnings = resolved.warnings;
        }
        if let Some(namespace) = namespace {
            record.namespace = namespace;
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
            self.connect_record(&record, Initiator::ThisReplica).await?;
        }
        Ok(warnings)
    }

    /// Deletes a cluster after closing its local connection.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.disconnect_local(id, Initiator::ThisReplica);
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
    /// `initiator`: who made the change (see
    /// [`ClusterEvent::initiator`](super::ClusterEvent::initiator)).
    pub async fn connect_local(&self, id: &str, initiator: Initiator) -> Result<LocalState> {
        let record = self.record(id).await?;
        self.connect_record(&record, initiator).await
    }

    /// [`ClusterManager::connect_local`] for a record the caller has read already.
    pub async fn connect_record(
        &self,
        record: &ClusterRecord,
        initiator: Initiator,
    ) -> Result<LocalState> {
        let spec = self.open(record)?;
        let pool = PoolOptions {
            deny_local_servers: self.options.deny_local_servers,
            ..self.options.pool
        };
        let upstream = Upstream::new(&spec, pool)?;
        let connection = Arc::new(Connection::new(
            &record.id,
            record.config_revision,
            record.labels.clone(),
            upstream,
            self.shutdown.child_token(),
            initiator,
            self.changes.clone(),
        ));
        let previous = self
            .connections
            .write()
            .insert(record.id.clone(), connection.clone());
        if let Some(previous) = &previous {
            connection.replace(previous);
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
    pub fn disconnect_local(&self, id: &str, initiator: Initiator) -> bool {
        let removed = self.connections.write().remove(id);
        match removed {
            Some(connection) => {
                connection.close();
                self.changes.mark(id);
                tracing::info!(cluster = %id, "cluster disconnected");
                self.events
                    .send(id, ClusterEventKind::Disconnected, initiator, None);
                true
            }
            None => false,
        }
    }

    /// The view of one stored cluster with `local`, this replica's state of it.
    pub fn view_with(record: ClusterEntry, local: LocalState) -> ClusterView {
        ClusterView {
            id: record.id,
            name: record.name,
            server: record.server,
            context: record.context,
            namespace: record.namespace,
            labels: record.labels,
            desired_state: record.desired_state,
            state: local.phase,
            last_error: local.last_error,
            server_version: local.server_version,
            lease_holder: None,
            replicas: Vec::new(),
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
                match self.connect_record(&record, Initiator::ThisReplica).await {
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
        // Strings, bools and string-keyed maps: serde_json has nothing to refuse here.
        let json = serde_json::to_vec(spec).expect("a ClusterSpec serializes to JSON");
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

/// A namespace name as Kubernetes takes it (an RFC 1123 label); `""` means none.
fn valid_namespace(name: String) -> Result<Option<String>> {
    if name.is_empty() {
        return Ok(None);
    }
    let label = name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !label {
        return Err(SpecError::Malformed(format!(
            "namespace `{name}` is not a valid namespace name (at most 63 of a-z, 0-9 and `-`, \
             starting and ending with a letter or digit)"
        ))
        .into());
    }
    Ok(Some(name))
}
