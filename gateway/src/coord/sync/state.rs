//! What the lease sync of one replica knows, kept under one lock ([`SharedState`]). Nothing
//! awaits while holding it: every user takes what it needs and lets go before a lease call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use parking_lot::Mutex;

use crate::coord::lease::{Observations, holder};

/// The sync's state, shared by its parts.
pub(super) type SharedState = Arc<Mutex<SyncState>>;

/// A cluster lease as last listed, watched or written.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub cluster_id: String,
    pub lease: Lease,
}

/// Everything the sync remembers between calls.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    /// When this replica last saw each lease (cluster and instance) change.
    pub observations: Observations,
    /// Cluster leases by lease name, as last listed, watched or written. Changed only through
    /// [`SyncState::remember`] and [`SyncState::forget`], which keep `names` in step.
    pub known: HashMap<String, Known>,
    /// The name of each cluster's known lease, by cluster id: lookups by cluster (the holder
    /// shown for each of thousands of clusters in a list) without a scan of `known`.
    names: HashMap<String, String>,
    /// Cluster leases this replica holds and renews: cluster id → lease name.
    pub held: HashMap<String, String>,
    /// The name of this replica's own instance lease, renewed with the cluster leases once
    /// registered (`None`: none held — not registered yet, deleted, taken by another replica, or
    /// unregistered; the renew tick registers again unless unregistered).
    pub instance_lease: Option<String>,
    /// Clusters whose lease this replica deleted (its disconnect is the initiator's).
    pub deleting: HashSet<String>,
    /// Clusters being connected by an API call here (a resync must not undo that midway).
    pub pending: HashSet<String>,
    /// Clusters connected here whose lease could not be ensured yet (host apiserver down):
    /// retried on every renew tick, by config revision.
    pub unensured: HashMap<String, i64>,
    /// Clusters a lease event is connecting right now.
    pub connecting: HashSet<String>,
}

impl SyncState {
    /// Records a cluster lease as seen now (if it changed) and as the latest known.
    pub fn remember(&mut self, cluster_id: &str, lease: Lease) {
        self.observations.observe(&lease);
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.names.insert(cluster_id.to_owned(), name.clone());
        let before = self.known.insert(
            name.clone(),
            Known {
                cluster_id: cluster_id.to_owned(),
                lease,
            },
        );
        // The name was another cluster's lease before (deleted, then created for this one).
        if let Some(before) = before
            && before.cluster_id != cluster_id
            && self.names.get(&before.cluster_id) == Some(&name)
        {
            self.names.remove(&before.cluster_id);
        }
    }

    /// Drops a cluster lease that is gone.
    pub fn forget(&mut self, name: &str) {
        if let Some(known) = self.known.remove(name)
            && self.names.get(&known.cluster_id).map(String::as_str) == Some(name)
        {
            self.names.remove(&known.cluster_id);
        }
        self.observations.forget(name);
    }

    /// The name of the known lease of a cluster.
    pub fn lease_name_of(&self, cluster_id: &str) -> Option<String> {
        self.names.get(cluster_id).cloned()
    }

    /// The holder of a cluster's lease, as last seen.
    pub fn holder_of(&self, cluster_id: &str) -> Option<String> {
        let name = self.names.get(cluster_id)?;
        self.known
            .get(name)
            .and_then(|k| holder(&k.lease).map(str::to_owned))
    }

    /// How many valid cluster leases each holder has.
    pub fn held_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for known in self.known.values() {
            if self.observations.is_valid(&known.lease)
                && let Some(h) = holder(&known.lease)
            {
                *counts.entry(h.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Known cluster leases that this replica has not seen change for their duration.
    pub fn expired(&self) -> Vec<Known> {
        self.known
            .values()
            .filter(|k| self.observations.is_expired(&k.lease))
            .cloned()
            .collect()
    }
}
