//! Cluster lease sync: one Lease per connected cluster keeps every replica's connection set the
//! same, and instance Leases give the membership list.
//!
//! - Connect on a replica: connect locally, then ensure the lease (create; a valid lease held by
//!   another replica → "already connected by X"; an expired one → take it over).
//! - The holder renews its leases every renew interval; a failed renewal is retried on the next
//!   tick and never ends the loop; a conflict that shows another holder drops the lease.
//! - The same tick renews this replica's instance lease, or registers it again when none is
//!   held (deleted, taken, or never created because registration failed at start-up).
//! - Every replica lists + watches cluster leases (re-listing every resync period): a valid
//!   lease it is not connected to → connect; a newer config revision → reconnect; a deleted
//!   lease → disconnect.
//! - Disconnect: desired state recorded, lease deleted with preconditions.
//! - The leader, every cleanup interval, takes over expired leases of clusters still wanted and
//!   deletes the others.
//!
//! The parts, each on the one `SyncState` lock: `cluster_leases` (the writes of
//! cluster leases), `membership` (instance leases), `watcher` (list + watch); this file wires
//! them to the cluster manager and the database and runs the renew and cleanup loops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::leader::sleep_or_stop;
use super::lease::{LeaseApi, LeaseError, Leases, claim, holder, now};
use crate::cluster::{ClusterManager, Initiator};
use crate::config::LeaseTimings;
use crate::storage::Db;
use crate::storage::clusters::DesiredState;

mod cluster_leases;
mod membership;
mod state;
mod watcher;

use cluster_leases::{Cleanup, ClusterLeases};
use membership::Membership;
use state::{Known, SharedState};

/// The cluster lease sync of one replica.
#[derive(Debug)]
pub struct LeaseSync<L = Leases> {
    leases: L,
    product: String,
    timings: LeaseTimings,
    resync: Duration,
    identity: String,
    db: Db,
    clusters: Arc<ClusterManager>,
    cluster_leases: ClusterLeases<L>,
    membership: Membership<L>,
    state: SharedState,
    listed: watch::Sender<bool>,
}

impl<L: LeaseApi> LeaseSync<L> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        leases: L,
        product: &str,
        identity: &str,
        timings: LeaseTimings,
        resync: Duration,
        db: Db,
        clusters: Arc<ClusterManager>,
    ) -> Self {
        let state = SharedState::default();
        let duration = i32::try_from(timings.duration.as_secs()).unwrap_or(i32::MAX);
        Self {
            cluster_leases: ClusterLeases::new(
                leases.clone(),
                product,
                identity,
                duration,
                state.clone(),
            ),
            membership: Membership::new(leases.clone(), product, identity, duration, state.clone()),
            leases,
            product: product.to_owned(),
            identity: identity.to_owned(),
            timings,
            resync,
            db,
            clusters,
            state,
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

    /// The holder of a cluster's lease, as last seen.
    pub fn holder_of(&self, cluster_id: &str) -> Option<String> {
        self.state.lock().holder_of(cluster_id)
    }

    /// How many valid cluster leases each holder has.
    pub fn held_counts(&self) -> HashMap<String, usize> {
        self.state.lock().held_counts()
    }

    // ---- connect / disconnect / config change (API side) ----

    /// Connect on this replica: connect locally, then ensure the lease.
    pub async fn connect(&self, cluster_id: &str) -> crate::cluster::Result<()> {
        self.state.lock().pending.insert(cluster_id.to_owned());
        let result = async {
            let record = self.clusters.record(cluster_id).await?;
            self.clusters
                .connect_record(&record, Initiator::ThisReplica)
                .await?;
            if let Err(e) = self
                .cluster_leases
                .ensure(cluster_id, record.config_revision)
                .await
            {
                tracing::warn!(cluster = %cluster_id, error = %e, "cannot ensure the cluster lease; retrying on the next renew tick");
                self.state
                    .lock()
                    .unensured
                    .insert(cluster_id.to_owned(), record.config_revision);
            }
            Ok(())
        }
        .await;
        self.state.lock().pending.remove(cluster_id);
        result
    }

    /// A configuration change made on this replica reaches the others through the lease's
    /// revision annotation.
    pub async fn config_changed(&self, cluster_id: &str, revision: i64) {
        self.cluster_leases
            .publish_revision(cluster_id, revision)
            .await;
    }

    /// Disconnect on this replica: delete the lease with preconditions; every replica (this
    /// one included) disconnects on the delete event. This replica disconnects at once too.
    pub async fn disconnect(&self, cluster_id: &str) -> Result<(), LeaseError> {
        {
            let mut state = self.state.lock();
            state.held.remove(cluster_id);
            state.unensured.remove(cluster_id);
            state.deleting.insert(cluster_id.to_owned());
        }
        self.cluster_leases.delete(cluster_id).await?;
        // This replica disconnects now; its own delete event then finds nothing to do.
        self.clusters
            .disconnect_local(cluster_id, Initiator::ThisReplica);
        self.state.lock().deleting.remove(cluster_id);
        Ok(())
    }

    // ---- the holder's renew loop ----

    /// Renews every held lease each renew interval until `stop`, registers the instance lease
    /// again when this replica holds none, and retries the leases of clusters connected here
    /// that could not be ensured yet.
    pub async fn renew_loop(&self, stop: CancellationToken) {
        loop {
            if sleep_or_stop(&stop, self.timings.renew_interval).await {
                return;
            }
            // Retried on the next tick; the loop never ends on an error.
            if let Err(e) = self.membership.tick().await {
                tracing::warn!(error = %e, "instance lease renewal or registration failed");
            }
            let held: Vec<(String, String)> = self
                .state
                .lock()
                .held
                .iter()
                .map(|(id, name)| (id.clone(), name.clone()))
                .collect();
            for (cluster_id, name) in held {
                if let Err(e) = self.cluster_leases.renew(&cluster_id, &name).await {
                    tracing::warn!(lease = %name, error = %e, "lease renewal failed");
                }
            }
            self.retry_unensured().await;
        }
    }

    async fn retry_unensured(&self) {
        let unensured: Vec<(String, i64)> = self
            .state
            .lock()
            .unensured
            .iter()
            .map(|(id, revision)| (id.clone(), *revision))
            .collect();
        for (cluster_id, revision) in unensured {
            if self.clusters.connection(&cluster_id).is_none() {
                self.state.lock().unensured.remove(&cluster_id);
                continue;
            }
            match self.cluster_leases.ensure(&cluster_id, revision).await {
                Ok(()) => {
                    self.state.lock().unensured.remove(&cluster_id);
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster_id, error = %e, "cannot ensure the cluster lease yet")
                }
            }
        }
    }

    // ---- instance lease ----

    /// Creates this replica's instance lease and holds it; on failure (as whenever the lease is
    /// gone later) the renew loop registers it on its next tick.
    pub async fn register_instance(&self, address: &str, started: &str) -> Result<(), LeaseError> {
        self.membership.register(address, started).await
    }

    /// Deletes this replica's instance lease (graceful stop).
    pub async fn unregister_instance(&self) {
        self.membership.unregister().await;
    }

    /// Instance leases, with whether each is still valid as seen here.
    pub async fn instances(&self) -> Result<Vec<(Lease, bool)>, LeaseError> {
        self.membership.instances().await
    }

    // ---- the leader's cleanup ----

    /// At once, then every `interval`, forever (the caller drops it when the term ends):
    /// expired cluster leases of wanted clusters are taken over (holder = this replica), the
    /// others deleted. Each pass is recorded as activity of leader term `term_row` (see
    /// `leader_terms`).
    ///
    /// The first pass runs as the term starts: a term often starts because the previous leader
    /// died, and the cluster leases it held expire about when its leader lease does. Waiting a
    /// whole interval first would add that interval to the takeover of every one of them. A
    /// replica that has just started sees no lease as expired yet (expiry counts from when this
    /// replica first saw each lease), so an early pass takes nothing over too soon.
    pub async fn cleanup_loop(&self, interval: Duration, term_row: Option<i64>) {
        loop {
            if let Some(row) = term_row
                && let Err(e) = self.db.touch_term(row).await
            {
                tracing::warn!(error = %e, "cannot record leader activity");
            }
            let expired = self.state.lock().expired();
            for known in expired {
                if let Err(e) = self.clean(known).await {
                    tracing::warn!(error = %e, "expired lease cleanup failed");
                }
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn clean(&self, known: Known) -> Result<(), LeaseError> {
        let wanted = match self.db.cluster(&known.cluster_id).await {
            Ok(Some(record)) => record.desired_state == DesiredState::Connected,
            Ok(None) => false,
            Err(e) => return Err(LeaseError::Other(e.to_string())),
        };
        if self.cluster_leases.clean(&known, wanted).await? == Cleanup::TookOver
            && self.clusters.connection(&known.cluster_id).is_none()
            && let Err(e) = self
                .clusters
                .connect_local(&known.cluster_id, Initiator::ThisReplica)
                .await
        {
            tracing::warn!(cluster = %known.cluster_id, error = %e, "cannot connect a taken-over cluster");
        }
        Ok(())
    }
}

/// What renewing a held lease found.
#[derive(Debug)]
enum Renewal {
    /// The lease is gone.
    Gone,
    /// Another replica holds it now, validly: no longer renewed.
    Taken,
    /// Written back with a new renewTime (claimed again if it had expired meanwhile).
    Renewed(Box<Lease>),
}

/// One renewal of a lease this replica holds: re-read, then a conditional write with a new
/// renewTime. A lease that expired meanwhile and was released or left by another holder is
/// claimed back; one validly held by another is left to it.
async fn renew_held<L: LeaseApi>(
    leases: &L,
    state: &SharedState,
    name: &str,
    identity: &str,
    duration_seconds: i32,
) -> Result<Renewal, LeaseError> {
    let Some(mut lease) = leases.get(name).await? else {
        return Ok(Renewal::Gone);
    };
    let valid = {
        let mut state = state.lock();
        state.observations.observe(&lease);
        state.observations.is_valid(&lease)
    };
    if holder(&lease) != Some(identity) {
        if valid {
            tracing::info!(lease = %name, holder = ?holder(&lease), "lease now held by another replica; no longer renewing");
            return Ok(Renewal::Taken);
        }
        claim(&mut lease, identity, duration_seconds);
    }
    if let Some(spec) = lease.spec.as_mut() {
        spec.renew_time = Some(now());
    }
    leases
        .replace(&lease)
        .await
        .map(|updated| Renewal::Renewed(Box::new(updated)))
}

#[cfg(test)]
mod tests;
