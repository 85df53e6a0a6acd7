//! Cluster lease sync: one Lease per connected cluster keeps every replica's connection set the
//! same, and instance Leases give the membership list.
//!
//! - Connect on a replica: connect locally, then ensure the lease (create; a valid lease held by
//!   another replica → "already connected by X"; an expired one → take it over).
//! - The holder renews its leases every renew interval; a failed renewal is retried on the next
//!   tick and never ends the loop; a conflict that shows another holder drops the lease.
//! - Every replica lists + watches cluster leases (re-listing every resync period): a valid
//!   lease it is not connected to → connect; a newer config revision → reconnect; a deleted
//!   lease → disconnect.
//! - Disconnect: desired state recorded, lease deleted with preconditions.
//! - The leader, every cleanup interval, takes over expired leases of clusters still wanted and
//!   deletes the others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::WatchEvent;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::leader::sleep_or_stop;
use super::lease::{
    LeaseApi, LeaseError, Leases, Observations, annotation, holder, now, set_annotation,
};
use super::names;
use crate::cluster::ClusterManager;
use crate::config::LeaseTimings;
use crate::storage::Db;
use crate::storage::clusters::DesiredState;

/// What the sync knows about one cluster lease.
#[derive(Debug, Clone)]
struct Known {
    cluster_id: String,
    lease: Lease,
}

/// The cluster lease sync of one replica.
#[derive(Debug)]
pub struct LeaseSync {
    pub(super) leases: Leases,
    product: String,
    identity: String,
    timings: LeaseTimings,
    resync: Duration,
    db: Db,
    clusters: Arc<ClusterManager>,
    observations: Observations,
    /// Cluster leases by lease name, as last listed or watched.
    known: Mutex<HashMap<String, Known>>,
    /// Leases this replica holds and renews: cluster id (or "" for the instance lease) → name.
    held: Mutex<HashMap<String, String>>,
    /// Clusters whose lease this replica deleted (its disconnect is the initiator's).
    deleting: Mutex<HashSet<String>>,
    /// Clusters being connected by an API call here (a resync must not undo that midway).
    pending: Mutex<HashSet<String>>,
    /// Clusters connected here whose lease could not be ensured yet (host apiserver down):
    /// retried on every renew tick, by config revision.
    unensured: Mutex<HashMap<String, i64>>,
    /// Clusters a lease event is connecting right now.
    connecting: Arc<Mutex<HashSet<String>>>,
    listed: watch::Sender<bool>,
}

impl LeaseSync {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        leases: Leases,
        product: &str,
        identity: &str,
        timings: LeaseTimings,
        resync: Duration,
        db: Db,
        clusters: Arc<ClusterManager>,
    ) -> Self {
        Self {
            leases,
            product: product.to_owned(),
            identity: identity.to_owned(),
            timings,
            resync,
            db,
            clusters,
            observations: Observations::default(),
            known: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            deleting: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashSet::new()),
            unensured: Mutex::new(HashMap::new()),
            connecting: Arc::new(Mutex::new(HashSet::new())),
            listed: watch::channel(false).0,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Resolves to true once the first full list of cluster leases is done.
    pub fn listed(&self) -> watch::Receiver<bool> {
        self.listed.subscribe()
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.timings.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// The holder of a cluster's lease, as last seen.
    pub fn holder_of(&self, cluster_id: &str) -> Option<String> {
        self.known
            .lock()
            .expect("known lock")
            .values()
            .find(|k| k.cluster_id == cluster_id)
            .and_then(|k| holder(&k.lease).map(str::to_owned))
    }

    /// How many valid cluster leases each holder has.
    pub fn held_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for known in self.known.lock().expect("known lock").values() {
            if self.observations.is_valid(&known.lease)
                && let Some(h) = holder(&known.lease)
            {
                *counts.entry(h.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    // ---- connect / disconnect / config change (API side) ----

    /// Connect on this replica: connect locally, then ensure the lease.
    pub async fn connect(&self, cluster_id: &str) -> crate::cluster::Result<()> {
        self.pending
            .lock()
            .expect("pending lock")
            .insert(cluster_id.to_owned());
        let result = async {
            let record = self.clusters.record(cluster_id).await?;
            self.clusters.connect_local(cluster_id, true).await?;
            if let Err(e) = self.ensure(cluster_id, record.config_revision).await {
                tracing::warn!(cluster = %cluster_id, error = %e, "cannot ensure the cluster lease; retrying on the next renew tick");
                self.unensured
                    .lock()
                    .expect("unensured lock")
                    .insert(cluster_id.to_owned(), record.config_revision);
            }
            Ok(())
        }
        .await;
        self.pending
            .lock()
            .expect("pending lock")
            .remove(cluster_id);
        result
    }

    /// Creates, keeps or takes over the cluster's lease.
    async fn ensure(&self, cluster_id: &str, revision: i64) -> Result<(), LeaseError> {
        for long in [false, true] {
            let name = names::cluster(&self.product, cluster_id, long);
            for _ in 0..5 {
                match self.leases.get(&name).await? {
                    None => {
                        let lease = self.new_cluster_lease(&name, cluster_id, revision);
                        match self.leases.create(&lease).await {
                            Ok(created) => {
                                self.remember(cluster_id, created);
                                self.hold(cluster_id, &name);
                                return Ok(());
                            }
                            Err(LeaseError::Conflict(_)) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    Some(lease) => {
                        let owner = self.cluster_id_of(&lease);
                        if owner.as_deref() != Some(cluster_id) {
                            tracing::warn!(cluster = %cluster_id, lease = %name, other = ?owner, "lease name collision; using the 8-byte name");
                            break;
                        }
                        self.observations.observe(&lease);
                        let current = holder(&lease).map(str::to_owned);
                        let mine = current.as_deref() == Some(self.identity.as_str());
                        let stale_revision = annotation(&lease, names::REVISION_ANNOTATION)
                            != Some(revision.to_string().as_str());
                        if !mine && self.observations.is_valid(&lease) {
                            tracing::info!(cluster = %cluster_id, holder = ?current, "already connected by {}", current.as_deref().unwrap_or("?"));
                            if stale_revision {
                                self.set_revision(lease, revision).await?;
                            }
                            return Ok(());
                        }
                        if mine && !stale_revision {
                            self.remember(cluster_id, lease);
                            self.hold(cluster_id, &name);
                            return Ok(());
                        }
                        // Ours with an old revision, or expired/released: take it (over).
                        let mut lease = lease;
                        self.claim(&mut lease);
                        set_annotation(
                            &mut lease,
                            names::REVISION_ANNOTATION,
                            &revision.to_string(),
                        );
                        match self.leases.replace(&lease).await {
                            Ok(updated) => {
                                self.remember(cluster_id, updated);
                                self.hold(cluster_id, &name);
                                return Ok(());
                            }
                            Err(LeaseError::Conflict(_)) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Err(LeaseError::Conflict(
            "lease kept changing; gave up for now".to_owned(),
        ))
    }

    fn new_cluster_lease(&self, name: &str, cluster_id: &str, revision: i64) -> Lease {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(names::cluster_labels(&self.product, cluster_id)),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        set_annotation(&mut lease, names::CLUSTER_ID_ANNOTATION, cluster_id);
        set_annotation(
            &mut lease,
            names::REVISION_ANNOTATION,
            &revision.to_string(),
        );
        lease
    }

    /// Makes this replica the holder (counting a transition when the holder changes).
    fn claim(&self, lease: &mut Lease) {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(self.duration_seconds());
        spec.renew_time = Some(now());
    }

    async fn set_revision(&self, mut lease: Lease, revision: i64) -> Result<(), LeaseError> {
        set_annotation(
            &mut lease,
            names::REVISION_ANNOTATION,
            &revision.to_string(),
        );
        self.leases.replace(&lease).await.map(|_| ())
    }

    /// A configuration change made on this replica reaches the others through the lease's
    /// revision annotation.
    pub async fn config_changed(&self, cluster_id: &str, revision: i64) {
        let name = self
            .known
            .lock()
            .expect("known lock")
            .iter()
            .find(|(_, k)| k.cluster_id == cluster_id)
            .map(|(name, _)| name.clone());
        let Some(name) = name else { return };
        for _ in 0..5 {
            match self.leases.get(&name).await {
                Ok(Some(lease)) => match self.set_revision(lease, revision).await {
                    Ok(()) => return,
                    Err(LeaseError::Conflict(_)) => continue,
                    Err(e) => {
                        tracing::warn!(cluster = %cluster_id, error = %e, "cannot publish the config revision");
                        return;
                    }
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(cluster = %cluster_id, error = %e, "cannot publish the config revision");
                    return;
                }
            }
        }
    }

    /// Disconnect on this replica: delete the lease with preconditions; every replica (this
    /// one included) disconnects on the delete event. This replica disconnects at once too.
    pub async fn disconnect(&self, cluster_id: &str) -> Result<(), LeaseError> {
        self.held.lock().expect("held lock").remove(cluster_id);
        self.unensured
            .lock()
            .expect("unensured lock")
            .remove(cluster_id);
        self.deleting
            .lock()
            .expect("deleting lock")
            .insert(cluster_id.to_owned());
        for long in [false, true] {
            let name = names::cluster(&self.product, cluster_id, long);
            for _ in 0..5 {
                let Some(lease) = self.leases.get(&name).await? else {
                    break;
                };
                if annotation(&lease, names::CLUSTER_ID_ANNOTATION) != Some(cluster_id) {
                    break;
                }
                match self.leases.delete(&lease).await {
                    Ok(()) | Err(LeaseError::NotFound) => break,
                    Err(LeaseError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        // This replica disconnects now; its own delete event then finds nothing to do.
        self.clusters.disconnect_local(cluster_id, true);
        self.deleting
            .lock()
            .expect("deleting lock")
            .remove(cluster_id);
        Ok(())
    }

    fn remember(&self, cluster_id: &str, lease: Lease) {
        self.observations.observe(&lease);
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.known.lock().expect("known lock").insert(
            name,
            Known {
                cluster_id: cluster_id.to_owned(),
                lease,
            },
        );
    }

    fn hold(&self, key: &str, name: &str) {
        self.held
            .lock()
            .expect("held lock")
            .insert(key.to_owned(), name.to_owned());
    }

    // ---- the holder's renew loop ----

    /// Renews every held lease each renew interval until `stop`.
    pub async fn renew_loop(&self, stop: CancellationToken) {
        loop {
            if sleep_or_stop(&stop, self.timings.renew_interval).await {
                return;
            }
            let held: Vec<(String, String)> = self
                .held
                .lock()
                .expect("held lock")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, name) in held {
                if let Err(e) = self.renew(&key, &name).await {
                    // Retried on the next tick; the loop never ends on an error.
                    tracing::warn!(lease = %name, error = %e, "lease renewal failed");
                }
            }
            let unensured: Vec<(String, i64)> = self
                .unensured
                .lock()
                .expect("unensured lock")
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            for (cluster_id, revision) in unensured {
                if self.clusters.connection(&cluster_id).is_none() {
                    self.unensured
                        .lock()
                        .expect("unensured lock")
                        .remove(&cluster_id);
                    continue;
                }
                match self.ensure(&cluster_id, revision).await {
                    Ok(()) => {
                        self.unensured
                            .lock()
                            .expect("unensured lock")
                            .remove(&cluster_id);
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %cluster_id, error = %e, "cannot ensure the cluster lease yet")
                    }
                }
            }
        }
    }

    async fn renew(&self, key: &str, name: &str) -> Result<(), LeaseError> {
        let Some(mut lease) = self.leases.get(name).await? else {
            if key.is_empty() {
                // Our instance lease vanished: recreate it on the next tick.
                return Err(LeaseError::NotFound);
            }
            self.held.lock().expect("held lock").remove(key);
            return Ok(());
        };
        self.observations.observe(&lease);
        if holder(&lease) != Some(self.identity.as_str()) {
            if self.observations.is_valid(&lease) {
                tracing::info!(lease = %name, holder = ?holder(&lease), "lease now held by another replica; no longer renewing");
                self.held.lock().expect("held lock").remove(key);
                return Ok(());
            }
            self.claim(&mut lease);
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        match self.leases.replace(&lease).await {
            Ok(updated) => {
                if !key.is_empty() {
                    self.remember(key, updated);
                } else {
                    self.observations.observe(&updated);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    // ---- instance lease ----

    /// Creates this replica's instance lease and holds it.
    pub async fn register_instance(&self, address: &str, started: &str) -> Result<(), LeaseError> {
        for long in [false, true] {
            let name = names::instance(&self.product, &self.identity, long);
            let mut lease = match self.leases.get(&name).await? {
                Some(lease)
                    if holder(&lease) != Some(self.identity.as_str())
                        && holder(&lease).is_some() =>
                {
                    // Another replica's (hash prefix collision): take the long name.
                    continue;
                }
                Some(lease) => lease,
                None => Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(names::instance_labels(&self.product)),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec::default()),
                },
            };
            self.claim(&mut lease);
            set_annotation(&mut lease, names::ADDRESS_ANNOTATION, address);
            set_annotation(
                &mut lease,
                names::VERSION_ANNOTATION,
                env!("CARGO_PKG_VERSION"),
            );
            set_annotation(&mut lease, names::STARTED_ANNOTATION, started);
            let stored = if lease.metadata.resource_version.is_some() {
                self.leases.replace(&lease).await?
            } else {
                self.leases.create(&lease).await?
            };
            self.observations.observe(&stored);
            self.hold("", &name);
            return Ok(());
        }
        Err(LeaseError::Conflict(
            "instance lease names taken".to_owned(),
        ))
    }

    /// Deletes this replica's instance lease (graceful stop).
    pub async fn unregister_instance(&self) {
        let name = self.held.lock().expect("held lock").remove("");
        if let Some(name) = name
            && let Ok(Some(lease)) = self.leases.get(&name).await
            && let Err(e) = self.leases.delete(&lease).await
        {
            tracing::warn!(error = %e, "cannot delete the instance lease");
        }
    }

    /// Instance leases, with whether each is still valid as seen here.
    pub async fn instances(&self) -> Result<Vec<(Lease, bool)>, LeaseError> {
        let (items, _) = self
            .leases
            .list(&names::selector(&self.product, "instance"))
            .await?;
        Ok(items
            .into_iter()
            .map(|lease| {
                self.observations.observe(&lease);
                let valid = self.observations.is_valid(&lease);
                (lease, valid)
            })
            .collect())
    }

    // ---- watching ----

    /// Lists and watches cluster leases until `stop`, re-listing every resync period.
    pub async fn watch_loop(self: Arc<Self>, stop: CancellationToken) {
        let selector = names::selector(&self.product, "cluster-sync");
        loop {
            let (items, version) = match self.leases.list(&selector).await {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list cluster leases");
                    if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            self.resync(items);
            self.listed.send_replace(true);

            let stream = tokio::select! {
                () = stop.cancelled() => return,
                stream = self.leases.watch(&selector, &version, self.resync) => stream,
            };
            let mut stream = match stream {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch cluster leases");
                    if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            // A stalled watch (frozen apiserver) must not outlive the resync period.
            let deadline = tokio::time::sleep(self.resync + Duration::from_secs(5));
            tokio::pin!(deadline);
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    () = &mut deadline => break,
                    event = stream.next() => event,
                };
                match event {
                    None => break,
                    Some(Ok(WatchEvent::Added(lease) | WatchEvent::Modified(lease))) => {
                        self.on_lease(lease)
                    }
                    Some(Ok(WatchEvent::Deleted(lease))) => self.on_deleted(&lease),
                    Some(Ok(WatchEvent::Bookmark(_))) => {}
                    Some(Ok(WatchEvent::Error(status))) => {
                        tracing::debug!(
                            code = status.code,
                            "cluster lease watch ended; re-listing"
                        );
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "cluster lease watch failed; re-listing");
                        break;
                    }
                }
            }
        }
    }

    /// A full list: every lease reconciled, and local connections without a lease closed
    /// (a delete event missed while the watch was down).
    fn resync(&self, items: Vec<Lease>) {
        let mut seen = HashSet::new();
        let mut names_now = HashSet::new();
        for lease in items {
            names_now.insert(lease.metadata.name.clone().unwrap_or_default());
            if let Some(id) = self.cluster_id_of(&lease) {
                seen.insert(id);
            }
            self.on_lease(lease);
        }
        let gone: Vec<(String, String)> = self
            .known
            .lock()
            .expect("known lock")
            .iter()
            .filter(|(name, _)| !names_now.contains(*name))
            .map(|(name, k)| (name.clone(), k.cluster_id.clone()))
            .collect();
        for (name, _) in &gone {
            self.known.lock().expect("known lock").remove(name);
            self.observations.forget(name);
        }
        let pending = self.pending.lock().expect("pending lock").clone();
        let held = self.held.lock().expect("held lock").clone();
        let unensured = self.unensured.lock().expect("unensured lock").clone();
        for id in self.clusters.local_ids() {
            if !seen.contains(&id)
                && !pending.contains(&id)
                && !held.contains_key(&id)
                && !unensured.contains_key(&id)
            {
                tracing::info!(cluster = %id, "no lease for a local connection; disconnecting");
                self.clusters.disconnect_local(&id, false);
            }
        }
    }

    fn cluster_id_of(&self, lease: &Lease) -> Option<String> {
        annotation(lease, names::CLUSTER_ID_ANNOTATION)
            .map(str::to_owned)
            .or_else(|| {
                lease
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("clusterID"))
                    .and_then(|v| names::cluster_id_from_label(v))
            })
    }

    fn on_lease(&self, lease: Lease) {
        let Some(cluster_id) = self.cluster_id_of(&lease) else {
            return;
        };
        self.remember(&cluster_id, lease.clone());
        if !self.observations.is_valid(&lease) {
            // Expired or released: the leader's cleanup decides; connections stay meanwhile.
            return;
        }
        let revision: i64 = annotation(&lease, names::REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let reconnect = match self.clusters.connection(&cluster_id) {
            None => true,
            Some(connection) => connection.revision < revision,
        };
        if !reconnect
            || self
                .pending
                .lock()
                .expect("pending lock")
                .contains(&cluster_id)
        {
            return;
        }
        if !self
            .connecting
            .lock()
            .expect("connecting lock")
            .insert(cluster_id.clone())
        {
            return;
        }
        // Connect off the watch loop: a slow cluster must not hold up other events.
        let clusters = self.clusters.clone();
        let connecting = self.connecting.clone();
        tokio::spawn(async move {
            match clusters.connect_local(&cluster_id, false).await {
                Ok(state) => {
                    tracing::info!(cluster = %cluster_id, state = ?state.phase, "connected from the cluster lease")
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster_id, error = %e, "cannot connect from the cluster lease")
                }
            }
            connecting
                .lock()
                .expect("connecting lock")
                .remove(&cluster_id);
        });
    }

    fn on_deleted(&self, lease: &Lease) {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.known.lock().expect("known lock").remove(&name);
        self.observations.forget(&name);
        let Some(cluster_id) = self.cluster_id_of(lease) else {
            return;
        };
        self.held.lock().expect("held lock").remove(&cluster_id);
        let initiator = self
            .deleting
            .lock()
            .expect("deleting lock")
            .remove(&cluster_id);
        self.clusters.disconnect_local(&cluster_id, initiator);
    }

    // ---- the leader's cleanup ----

    /// Every `interval`, forever (the caller drops it when the term ends): expired cluster
    /// leases of wanted clusters are taken over (holder = this replica), the others deleted.
    /// Each pass is recorded as activity of leader term `term_row` (see `leader_terms`).
    pub async fn cleanup_loop(&self, interval: Duration, term_row: Option<i64>) {
        loop {
            tokio::time::sleep(interval).await;
            if let Some(row) = term_row
                && let Err(e) = self.db.touch_term(row).await
            {
                tracing::warn!(error = %e, "cannot record leader activity");
            }
            let expired: Vec<Known> = self
                .known
                .lock()
                .expect("known lock")
                .values()
                .filter(|k| self.observations.is_expired(&k.lease))
                .cloned()
                .collect();
            for known in expired {
                if let Err(e) = self.clean(known).await {
                    tracing::warn!(error = %e, "expired lease cleanup failed");
                }
            }
        }
    }

    async fn clean(&self, known: Known) -> Result<(), LeaseError> {
        let wanted = match self.db.cluster(&known.cluster_id).await {
            Ok(Some(record)) => record.desired_state == DesiredState::Connected,
            Ok(None) => false,
            Err(e) => return Err(LeaseError::Other(e.to_string())),
        };
        let name = known.lease.metadata.name.clone().unwrap_or_default();
        // Decide on the current object, and only if it is still expired.
        let Some(mut lease) = self.leases.get(&name).await? else {
            return Ok(());
        };
        self.observations.observe(&lease);
        if !self.observations.is_expired(&lease) {
            return Ok(());
        }
        if wanted {
            tracing::info!(cluster = %known.cluster_id, from = ?holder(&lease), "taking over the expired lease of a wanted cluster");
            self.claim(&mut lease);
            let updated = self.leases.replace(&lease).await?;
            self.remember(&known.cluster_id, updated);
            self.hold(&known.cluster_id, &name);
            if self.clusters.connection(&known.cluster_id).is_none()
                && let Err(e) = self.clusters.connect_local(&known.cluster_id, true).await
            {
                tracing::warn!(cluster = %known.cluster_id, error = %e, "cannot connect a taken-over cluster");
            }
        } else {
            tracing::info!(cluster = %known.cluster_id, "deleting the expired lease of an unwanted cluster");
            self.deleting
                .lock()
                .expect("deleting lock")
                .insert(known.cluster_id.clone());
            self.leases.delete(&lease).await?;
        }
        Ok(())
    }
}
