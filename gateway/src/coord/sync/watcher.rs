//! Every replica's list + watch of the cluster leases: a valid lease of a cluster not connected
//! here (or connected at an older config revision) → connect; a deleted lease → disconnect; a
//! full list every resync period also closes local connections whose lease is gone (a delete
//! event missed while the watch was down).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::core::WatchEvent;
use tokio_util::sync::CancellationToken;

use super::LeaseSync;
use super::cluster_leases::cluster_id_of;
use crate::cluster::Initiator;
use crate::coord::leader::sleep_or_stop;
use crate::coord::lease::{LeaseApi, annotation};
use crate::coord::names;

impl<L: LeaseApi> LeaseSync<L> {
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
            if let Some(id) = cluster_id_of(&lease) {
                seen.insert(id);
            }
            self.on_lease(lease);
        }
        // Clusters that keep their local connection without a lease in the list.
        let keep: HashSet<String> = {
            let mut state = self.state.lock();
            let gone: Vec<String> = state
                .known
                .keys()
                .filter(|name| !names_now.contains(*name))
                .cloned()
                .collect();
            for name in &gone {
                state.forget(name);
            }
            (state.pending.iter())
                .chain(state.held.keys())
                .chain(state.unensured.keys())
                .cloned()
                .collect()
        };
        for id in self.clusters.local_ids() {
            if !seen.contains(&id) && !keep.contains(&id) {
                tracing::info!(cluster = %id, "no lease for a local connection; disconnecting");
                self.clusters.disconnect_local(&id, Initiator::OtherReplica);
            }
        }
    }

    fn on_lease(&self, lease: Lease) {
        let Some(cluster_id) = cluster_id_of(&lease) else {
            return;
        };
        let valid = {
            let mut state = self.state.lock();
            state.remember(&cluster_id, lease.clone());
            state.observations.is_valid(&lease)
        };
        if !valid {
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
        if !reconnect {
            return;
        }
        {
            let mut state = self.state.lock();
            if state.pending.contains(&cluster_id) || !state.connecting.insert(cluster_id.clone()) {
                return;
            }
        }
        // Connect off the watch loop: a slow cluster must not hold up other events.
        let clusters = self.clusters.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            match clusters
                .connect_local(&cluster_id, Initiator::OtherReplica)
                .await
            {
                Ok(local) => {
                    tracing::info!(cluster = %cluster_id, state = ?local.phase, "connected from the cluster lease")
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster_id, error = %e, "cannot connect from the cluster lease")
                }
            }
            state.lock().connecting.remove(&cluster_id);
        });
    }

    fn on_deleted(&self, lease: &Lease) {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.state.lock().forget(&name);
        let Some(cluster_id) = cluster_id_of(lease) else {
            return;
        };
        let deleted_here = {
            let mut state = self.state.lock();
            state.held.remove(&cluster_id);
            state.deleting.remove(&cluster_id)
        };
        let initiator = if deleted_here {
            Initiator::ThisReplica
        } else {
            Initiator::OtherReplica
        };
        self.clusters.disconnect_local(&cluster_id, initiator);
    }
}
