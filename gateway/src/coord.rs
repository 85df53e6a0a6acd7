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
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::spec::{self, Origin};
use crate::cluster::{ClusterError, ClusterManager};
use crate::config::{Config, HostCluster};
use crate::storage::Db;
use crate::telemetry::Metrics;

#[cfg(test)]
mod fake;
pub mod leader;
pub mod lease;
pub mod names;
pub mod sync;

use leader::{LeaderElector, Leadership};
use lease::{Leases, annotation, holder};
use sync::LeaseSync;

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

/// One row of `GET /api/v1/instances`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub id: String,
    pub address: Option<String>,
    pub version: Option<String>,
    pub started: Option<String>,
    pub leader: bool,
    pub clusters_held: usize,
    /// Renewed recently, as this replica sees it.
    pub alive: bool,
}

/// `GET /api/v1/leader`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderView {
    pub mode: &'static str,
    pub lease: Option<String>,
    pub holder: Option<String>,
    /// This replica leads.
    pub is_leader: bool,
    /// `leaseTransitions`: the fencing token of the current term.
    pub transitions: Option<i64>,
    pub acquire_time: Option<String>,
    pub renew_time: Option<String>,
    pub instance_id: String,
    /// Why the lease could not be read just now (host apiserver unreachable): `holder` is then
    /// the holder as last seen and `isLeader` this replica's own view, which is what matters
    /// during an outage (a leader that cannot renew steps down on its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_error: Option<String>,
}

/// Coordination of this replica.
#[derive(Debug)]
pub struct Coordinator {
    instance_id: String,
    leadership: watch::Receiver<Leadership>,
    coordinated: Option<Coordinated>,
    /// Standalone: fixed leadership and readiness (senders kept so receivers stay open).
    fixed: Option<(watch::Sender<Leadership>, watch::Sender<bool>)>,
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

/// Intervals of leader-only work.
#[derive(Debug, Clone, Copy)]
pub struct LeaderWork {
    pub cleanup_interval: Duration,
}

impl Coordinator {
    /// Standalone: this replica always leads.
    pub fn standalone(instance_id: &str) -> Self {
        let (tx, rx) = watch::channel(Leadership {
            is_leader: true,
            term: Some(0),
            holder: Some(instance_id.to_owned()),
        });
        Self {
            instance_id: instance_id.to_owned(),
            leadership: rx,
            coordinated: None,
            fixed: Some((tx, watch::channel(true).0)),
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
            coordinated: Some(Coordinated {
                elector,
                sync,
                stop,
                stop_elector,
                tasks,
                handles: parking_lot::Mutex::new(handles),
            }),
            fixed: None,
        })
    }

    /// Leadership as it changes.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// True once the first cluster lease list is done (always, standalone).
    pub fn listed(&self) -> watch::Receiver<bool> {
        match (&self.coordinated, &self.fixed) {
            (Some(c), _) => c.sync.listed(),
            (None, Some((_, listed))) => listed.subscribe(),
            (None, None) => unreachable!("a coordinator is standalone or coordinated"),
        }
    }

    pub fn is_coordinated(&self) -> bool {
        self.coordinated.is_some()
    }

    /// Connect requested on this replica.
    pub async fn connect(&self, clusters: &ClusterManager, id: &str) -> Result<(), CoordError> {
        match &self.coordinated {
            Some(c) => Ok(c.sync.connect(id).await?),
            None => {
                clusters.connect_local(id, true).await?;
                Ok(())
            }
        }
    }

    /// Disconnect requested on this replica.
    pub async fn disconnect(&self, clusters: &ClusterManager, id: &str) -> Result<(), CoordError> {
        match &self.coordinated {
            Some(c) => Ok(c.sync.disconnect(id).await?),
            None => {
                clusters.disconnect_local(id, true);
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

    pub async fn leader(&self) -> Result<LeaderView, CoordError> {
        let state = self.leadership.borrow().clone();
        let Some(c) = &self.coordinated else {
            return Ok(LeaderView {
                mode: "standalone",
                lease: None,
                holder: Some(self.instance_id.clone()),
                is_leader: true,
                transitions: None,
                acquire_time: None,
                renew_time: None,
                instance_id: self.instance_id.clone(),
                lease_error: None,
            });
        };
        let lease = match c.elector.lease().await {
            Ok(lease) => lease,
            Err(e) => {
                // The host apiserver is down or frozen: this replica's own view still answers.
                return Ok(LeaderView {
                    mode: "leases",
                    lease: Some(c.elector.name().to_owned()),
                    holder: state.holder,
                    is_leader: state.is_leader,
                    transitions: state.term,
                    acquire_time: None,
                    renew_time: None,
                    instance_id: self.instance_id.clone(),
                    lease_error: Some(e.to_string()),
                });
            }
        };
        let spec = lease
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        Ok(LeaderView {
            mode: "leases",
            lease: Some(c.elector.name().to_owned()),
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            is_leader: state.is_leader,
            transitions: spec.lease_transitions.map(i64::from),
            acquire_time: spec.acquire_time.map(|t| t.0.to_string()),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            instance_id: self.instance_id.clone(),
            lease_error: None,
        })
    }

    pub async fn instances(&self, local_clusters: usize) -> Result<Vec<InstanceView>, CoordError> {
        let Some(c) = &self.coordinated else {
            return Ok(vec![InstanceView {
                id: self.instance_id.clone(),
                address: None,
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                started: None,
                leader: true,
                clusters_held: local_clusters,
                alive: true,
            }]);
        };
        let leader = c
            .elector
            .lease()
            .await?
            .as_ref()
            .and_then(|l| holder(l).map(str::to_owned));
        let counts = c.sync.held_counts();
        let mut rows: Vec<InstanceView> = c
            .sync
            .instances()
            .await?
            .into_iter()
            .filter_map(|(lease, alive)| {
                let id = holder(&lease)?.to_owned();
                Some(InstanceView {
                    address: annotation(&lease, names::ADDRESS_ANNOTATION).map(str::to_owned),
                    version: annotation(&lease, names::VERSION_ANNOTATION).map(str::to_owned),
                    started: annotation(&lease, names::STARTED_ANNOTATION).map(str::to_owned),
                    leader: leader.as_deref() == Some(id.as_str()),
                    clusters_held: counts.get(&id).copied().unwrap_or(0),
                    alive,
                    id,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
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

/// Runs leader-only work on each term: started when leadership is gained, cancelled when lost.
async fn leader_work(
    sync: Arc<LeaseSync>,
    mut leadership: watch::Receiver<Leadership>,
    work: LeaderWork,
    stop: CancellationToken,
) {
    loop {
        // Wait to lead.
        loop {
            if leadership.borrow_and_update().is_leader {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                changed = leadership.changed() => if changed.is_err() { return },
            }
        }
        let fencing = leadership.borrow().term.unwrap_or_default();
        let row = match sync.db().start_term(sync.identity(), fencing).await {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the leader term");
                None
            }
        };
        // Leader work runs inside this task (not spawned), so it can never outlive the term,
        // not even when the task is aborted.
        let lead = async {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = leadership.changed() => {
                        if changed.is_err() || !leadership.borrow_and_update().is_leader {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            () = lead => {}
            () = sync.cleanup_loop(work.cleanup_interval, row) => {}
        }
        if let Some(row) = row
            && let Err(e) = sync.db().end_term(row).await
        {
            tracing::warn!(error = %e, "cannot record the end of the leader term");
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

fn register_leader_gauge(metrics: &Metrics, leadership: watch::Receiver<Leadership>) {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct NameLabel {
        name: String,
    }
    let family = Family::<NameLabel, Gauge>::default();
    metrics.register(|registry| {
        // client-go's metric name, without our prefix, so existing dashboards work.
        registry.register(
            "leader_election_master_status",
            "1 when this replica is the leader",
            family.clone(),
        );
    });
    let gauge = family
        .get_or_create(&NameLabel {
            name: "portico".to_owned(),
        })
        .clone();
    tokio::spawn(async move {
        let mut leadership = leadership;
        loop {
            gauge.set(i64::from(leadership.borrow_and_update().is_leader));
            if leadership.changed().await.is_err() {
                return;
            }
        }
    });
}

/// A kube client for the host cluster from the configuration's choice.
async fn host_client(
    config: &Config,
    clusters: &ClusterManager,
) -> Result<kube::Client, CoordError> {
    let host = |e: String| CoordError::Host(e);
    let spec = match &config.host {
        HostCluster::Standalone => return Err(host("standalone has no host cluster".to_owned())),
        HostCluster::ClusterId(id) => {
            let record = clusters
                .record(id)
                .await
                .map_err(|e| host(format!("--host-cluster-id `{id}`: {e} (register it first)")))?;
            clusters.open(&record)?
        }
        HostCluster::InCluster => spec::in_cluster(
            std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount"),
            std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
        )
        .map_err(|e| host(e.to_string()))?,
        HostCluster::Kubeconfig(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| host(format!("--host-kubeconfig `{}`: {e}", path.display())))?;
            let kubeconfig = spec::parse_kubeconfig(&text).map_err(|e| host(e.to_string()))?;
            let origin = Origin {
                base_dir: path.parent(),
                allow_files: true,
                allow_exec: true,
            };
            spec::resolve(&kubeconfig, None, origin)
                .map_err(|e| host(e.to_string()))?
                .spec
        }
    };
    kube_client(&spec, &config.lease_namespace).map_err(host)
}

/// A kube client from a cluster spec (same credentials model as the proxy).
fn kube_client(spec: &spec::ClusterSpec, namespace: &str) -> Result<kube::Client, String> {
    use base64::Engine;
    use kube::config::{AuthInfo, ExecConfig};
    use secrecy::SecretString;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);

    let url = spec
        .server
        .parse()
        .map_err(|e| format!("server URL: {e}"))?;
    let mut config = kube::Config::new(url);
    config.default_namespace = namespace.to_owned();
    config.accept_invalid_certs = spec.insecure_skip_tls_verify;
    config.tls_server_name = spec.tls_server_name.clone();
    if let Some(pem) = &spec.ca_pem {
        let certs = spec::parse_certs(pem, "certificate-authority").map_err(|e| e.to_string())?;
        config.root_cert = Some(certs.iter().map(|c| c.to_vec()).collect());
    }
    let mut auth = AuthInfo::default();
    if let Some(cert) = &spec.client_cert {
        auth.client_certificate_data = Some(b64(&cert.cert_pem));
        auth.client_key_data = Some(SecretString::from(b64(&cert.key_pem)));
    }
    match &spec.auth {
        spec::RequestAuth::None => {}
        spec::RequestAuth::Token { token } => auth.token = Some(SecretString::from(token.clone())),
        spec::RequestAuth::TokenFile { path } => auth.token_file = Some(path.clone()),
        spec::RequestAuth::Basic { username, password } => {
            auth.username = Some(username.clone());
            auth.password = Some(SecretString::from(password.clone()));
        }
        spec::RequestAuth::Exec(exec) => {
            auth.exec = Some(ExecConfig {
                api_version: Some(exec.api_version.clone()),
                command: Some(exec.command.clone()),
                args: Some(exec.args.clone()),
                env: Some(
                    exec.env
                        .iter()
                        .map(|(k, v)| {
                            std::collections::HashMap::from([
                                ("name".to_owned(), k.clone()),
                                ("value".to_owned(), v.clone()),
                            ])
                        })
                        .collect(),
                ),
                drop_env: None,
                install_hint: None,
                interactive_mode: None,
                provide_cluster_info: false,
                cluster: None,
                other: Default::default(),
            })
        }
    }
    config.auth_info = auth;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}
