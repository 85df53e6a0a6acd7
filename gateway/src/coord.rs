//! Multi-replica coordination through Kubernetes Leases on a host cluster: leader election,
//! cluster lease sync and instance membership. Standalone (no host cluster) this replica is the
//! leader and nothing is synced.
//!
//! ```text
//!             ┌──────────── host cluster, lease namespace ─────────────┐
//!             │ portico-leader-lock      holder: B   (client-go rules) │
//!             │ portico-cluster-1a2b3c4d holder: A   rev 3             │
//!             │ portico-instance-…       holder: A / B / C             │
//!             └───────▲──────────────────▲─────────────────▲───────────┘
//!        conditional  │ renew      watch │ (every replica) │ cleanup of expired
//!        writes       │                  │                 │ leases (leader only)
//!                ┌────┴───┐         ┌────┴───┐        ┌────┴───┐
//!                │   A    │         │   B    │        │   C    │  every replica serves
//!                └────────┘         └────────┘        └────────┘  every cluster
//! ```

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{ClusterError, ClusterManager, Initiator};
use crate::config::Config;
use crate::storage::Db;
use crate::telemetry::Metrics;

#[cfg(test)]
mod fake;
mod host;
pub mod leader;
mod leader_work;
pub mod lease;
pub mod names;
pub mod replicas;
pub mod sync;
mod views;

use host::host_client;
use leader::{LeaderElector, Leadership};
pub use leader_work::LeaderWork;
use leader_work::{leader_work, register_leader_gauge};
use lease::Leases;
pub use replicas::ReplicaStates;
use sync::LeaseSync;
pub use views::{InstanceView, LeaderView};

/// Coordination could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The host cluster's configuration cannot be used.
    #[error("host cluster: {0}")]
    Host(String),
    /// A lease call failed.
    #[error("lease: {0}")]
    Lease(#[from] lease::LeaseError),
    /// A cluster operation failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Coordination of this replica.
#[derive(Debug)]
pub struct Coordinator {
    instance_id: String,
    leadership: watch::Receiver<Leadership>,
    /// True once the first cluster lease list is done (at once, standalone).
    listed: watch::Receiver<bool>,
    coordinated: Option<Coordinated>,
    /// Standalone: the senders of the fixed leadership and readiness, kept so that their
    /// receivers stay open.
    _fixed: Option<(watch::Sender<Leadership>, watch::Sender<bool>)>,
}

#[derive(Debug)]
struct Coordinated {
    elector: Arc<LeaderElector>,
    sync: Arc<LeaseSync>,
    /// Stops leader work, the watch and the renewals; the elector has its own token so it can
    /// release the lease after leader work ended.
    stop: CancellationToken,
    stop_elector: CancellationToken,
    tasks: TaskTracker,
    /// The same tasks, to abort them (see [`Coordinator::abandon`]).
    handles: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Coordinator {
    /// Standalone: this replica always leads.
    pub fn standalone(instance_id: &str) -> Self {
        let (tx, rx) = watch::channel(Leadership {
            is_leader: true,
            term: Some(0),
            holder: Some(instance_id.to_owned()),
        });
        let (listed_tx, listed) = watch::channel(true);
        Self {
            instance_id: instance_id.to_owned(),
            leadership: rx,
            listed,
            coordinated: None,
            _fixed: Some((tx, listed_tx)),
        }
    }

    /// Connects to the host cluster and starts election, lease sync and membership. Returns
    /// once the tasks run; readiness waits for [`Coordinator::listed`].
    pub async fn start(
        config: &Config,
        db: Db,
        clusters: Arc<ClusterManager>,
        metrics: &Metrics,
        work: LeaderWork,
    ) -> Result<Self, CoordError> {
        let client = host_client(config, &clusters).await?;
        let api: Api<Lease> = Api::namespaced(client, &config.lease_namespace);
        let call_timeout = config.leader.retry_period.max(Duration::from_secs(1));
        let leases = Leases::new(api, call_timeout, metrics);
        let elector = Arc::new(LeaderElector::new(
            leases.clone(),
            names::leader(&config.product_name),
            config.instance_id.clone(),
            config.leader,
        ));
        let sync = Arc::new(LeaseSync::new(
            leases,
            &config.product_name,
            &config.instance_id,
            config.lease,
            config.resync_period,
            db,
            clusters,
        ));
        let leadership = elector.subscribe();
        register_leader_gauge(metrics, leadership.clone());

        let started = jiff::Timestamp::now().to_string();
        if let Err(e) = sync
            .register_instance(&config.advertise_address, &started)
            .await
        {
            tracing::warn!(error = %e, "cannot create the instance lease; retrying on the next renew tick");
        }
        let stop = CancellationToken::new();
        let stop_elector = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut handles = vec![tasks.spawn(sync.clone().watch_loop(stop.clone()))];
        {
            let sync = sync.clone();
            let stop = stop.clone();
            handles.push(tasks.spawn(async move { sync.renew_loop(stop).await }));
        }
        {
            let elector = elector.clone();
            let stop = stop_elector.clone();
            handles.push(tasks.spawn(async move { elector.run(stop).await }));
        }
        handles.push(tasks.spawn(leader_work(
            sync.clone(),
            leadership.clone(),
            work,
            stop.clone(),
        )));
        tracing::info!(
            namespace = %config.lease_namespace,
            identity = %config.instance_id,
            "coordinating through leases"
        );
        Ok(Self {
            instance_id: config.instance_id.clone(),
            leadership,
            listed: sync.listed(),
            coordinated: Some(Coordinated {
                elector,
                sync,
                stop,
                stop_elector,
                tasks,
                handles: parking_lot::Mutex::new(handles),
            }),
            _fixed: None,
        })
    }

    /// Leadership as it changes.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// True once the first cluster lease list is done (always, standalone).
    pub fn listed(&self) -> watch::Receiver<bool> {
        self.listed.clone()
    }

    /// Connect requested on this replica.
    pub async fn connect(&self, clusters: &ClusterManager, id: &str) -> Result<(), CoordError> {
        match &self.coordinated {
            Some(c) => Ok(c.sync.connect(id).await?),
            None => {
                clusters.connect_local(id, Initiator::ThisReplica).await?;
                Ok(())
            }
        }
    }

    /// Disconnect requested on this replica.
    pub async fn disconnect(&self, clusters: &ClusterManager, id: &str) -> Result<(), CoordError> {
        match &self.coordinated {
            Some(c) => Ok(c.sync.disconnect(id).await?),
            None => {
                clusters.disconnect_local(id, Initiator::ThisReplica);
                Ok(())
            }
        }
    }

    /// A cluster's configuration changed on this replica: tell the others.
    pub async fn config_changed(&self, id: &str, revision: i64) {
        if let Some(c) = &self.coordinated {
            c.sync.config_changed(id, revision).await;
        }
    }

    /// The holder of a cluster's lease, as last seen.
    pub fn lease_holder(&self, id: &str) -> Option<String> {
        self.coordinated.as_ref().and_then(|c| c.sync.holder_of(id))
    }

    /// Stops every coordination task at once without releasing or deleting anything: what a
    /// crash (or a partition) looks like to the other replicas. For tests and fault drills.
    pub fn abandon(&self) {
        if let Some(c) = &self.coordinated {
            for handle in c.handles.lock().drain(..) {
                handle.abort();
            }
        }
    }

    /// Graceful stop: leader work and sync end, the instance lease is deleted, then the leader
    /// lease is released.
    pub async fn shutdown(&self) {
        let Some(c) = &self.coordinated else { return };
        c.stop.cancel();
        c.sync.unregister_instance().await;
        c.stop_elector.cancel();
        c.tasks.close();
        c.tasks.wait().await;
    }
}
