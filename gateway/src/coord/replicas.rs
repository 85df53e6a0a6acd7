//! Every replica's local connection state, readable by every replica.
//!
//! Each replica publishes its own state per cluster in the shared database (`replica_states`)
//! and refreshes a heartbeat (`replica_heartbeats`, stamped with the database's clock):
//!
//! ```text
//!  Connection::set ──mark id──▶ StateChanges ──wake──▶ publisher ──one transaction──▶ database
//!  (heartbeat, reconnect,        (a set: a burst       (waits `COALESCE`, takes the set,
//!   connect, disconnect)          of 5,000 changes      reads each cluster's state now,
//!                                 is 5,000 ids)         upserts 500 rows per statement)
//! ```
//!
//! Nothing on the proxy's request path writes: a state change marks an id in a set, and this
//! task writes. Readers get every replica's rows in one query; a row whose replica has not
//! refreshed its heartbeat for three intervals is `stale`. A clean shutdown deletes this
//! replica's rows; the leader deletes the rows of replicas silent for the retention period
//! and rows of deleted clusters.
//!
//! The heartbeat lives in the database rather than in the instance leases on purpose: it
//! measures exactly what readers need (whether this data is being kept fresh), works
//! standalone, and costs readers no apiserver call (the console lists 1,000 clusters with
//! one query).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::leader::{Leadership, sleep_or_stop};
use crate::clock;
use crate::cluster::{ClusterManager, Phase};
use crate::config::ReplicaStateTimings;
use crate::storage::replica_states::{PublishedState, ReplicaState};
use crate::storage::{Db, StorageError};

/// How long the publisher lets changes gather after the first one before it writes them.
pub const COALESCE: Duration = Duration::from_millis(200);

/// Bound on deleting this replica's rows at shutdown.
const UNPUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// This replica's publisher of its connection states, and the reader of every replica's.
#[derive(Debug)]
pub struct ReplicaStates {
    db: Db,
    instance_id: String,
    timings: ReplicaStateTimings,
    stop: CancellationToken,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl ReplicaStates {
    /// Starts publishing. The task ends without deleting anything when `shutdown` is
    /// cancelled (what a crash looks like); [`ReplicaStates::shutdown`] ends it cleanly.
    pub fn start(
        db: Db,
        clusters: Arc<ClusterManager>,
        instance_id: &str,
        timings: ReplicaStateTimings,
        leadership: watch::Receiver<Leadership>,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) -> Self {
        let stop = shutdown.child_token();
        let publisher = Publisher {
            db: db.clone(),
            clusters,
            instance_id: instance_id.to_owned(),
            timings,
            leadership,
        };
        let task = tasks.spawn(publisher.run(stop.clone()));
        Self {
            db,
            instance_id: instance_id.to_owned(),
            timings,
            stop,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    fn stale_after_ms(&self) -> i64 {
        i64::try_from(self.timings.stale_after().as_millis()).unwrap_or(i64::MAX)
    }

    /// Every replica's state of every cluster, by cluster id: one query.
    pub async fn all(&self) -> Result<HashMap<String, Vec<ReplicaState>>, StorageError> {
        self.db.replica_states(None, self.stale_after_ms()).await
    }

    /// Every replica's state of the clusters in `ids`, by cluster id: one query.
    pub async fn of_many(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<ReplicaState>>, StorageError> {
        self.db
            .replica_states(Some(ids), self.stale_after_ms())
            .await
    }

    /// Every replica's state of one cluster.
    pub async fn of(&self, cluster_id: &str) -> Result<Vec<ReplicaState>, StorageError> {
        Ok(self
            .db
            .replica_states(Some(&[cluster_id]), self.stale_after_ms())
            .await?
            .remove(cluster_id)
            .unwrap_or_default())
    }

    /// Clean stop: the publisher ends, then this replica's rows are deleted so that nobody
    /// shows a replica that is gone.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // Bounded: with the database away, shutdown does not wait the pool's acquire timeout;
        // the rows then go stale and the leader deletes them after the retention.
        match tokio::time::timeout(
            UNPUBLISH_TIMEOUT,
            self.db.unpublish_replica(&self.instance_id),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot delete this replica's published states");
            }
            Err(_) => tracing::warn!(
                "deleting this replica's published states took too long; the leader deletes them later"
            ),
        }
    }
}

/// The publishing task's handles.
struct Publisher {
    db: Db,
    clusters: Arc<ClusterManager>,
    instance_id: String,
    timings: ReplicaStateTimings,
    leadership: watch::Receiver<Leadership>,
}

impl Publisher {
    async fn run(self, stop: CancellationToken) {
        let changes = self.clusters.state_changes().clone();
        let mut heartbeat = tokio::time::interval(self.timings.interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = heartbeat.tick() => self.heartbeat().await,
                () = changes.changed() => {
                    // Let a burst gather into one batch.
                    if sleep_or_stop(&stop, COALESCE).await {
                        return;
                    }
                    if !self.flush().await && sleep_or_stop(&stop, self.timings.interval).await {
                        return;
                    }
                }
            }
        }
    }

    /// Writes the current state of every changed cluster; on failure the ids are marked again
    /// for the next attempt. Returns whether the write succeeded.
    async fn flush(&self) -> bool {
        let changes = self.clusters.state_changes();
        let ids = changes.take();
        if ids.is_empty() {
            return true;
        }
        let states: Vec<PublishedState> = ids
            .iter()
            .map(|id| {
                let local = self.clusters.local_state(id);
                PublishedState {
                    cluster_id: id.clone(),
                    state: phase_name(local.phase),
                    last_error: local.last_error,
                    since: local.since,
                }
            })
            .collect();
        match self
            .db
            .publish_replica_states(&self.instance_id, &states, clock::now_millis())
            .await
        {
            Ok(had_heartbeat) => {
                tracing::debug!(clusters = states.len(), "published replica states");
                if !had_heartbeat {
                    self.republish_all();
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, clusters = ids.len(), "cannot publish replica states; retrying");
                changes.mark_all(ids);
                false
            }
        }
    }

    /// Refreshes the heartbeat; the leader also deletes the rows of replicas gone for good.
    async fn heartbeat(&self) {
        match self.db.replica_heartbeat(&self.instance_id).await {
            // First start, or pruned while this replica could not write: publish everything.
            Ok(false) => self.republish_all(),
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "cannot refresh the replica state heartbeat"),
        }
        if self.leadership.borrow().is_leader {
            let retention = i64::try_from(self.timings.retention.as_millis()).unwrap_or(i64::MAX);
            match self.db.prune_replica_states(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "deleted states of replicas that are gone"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete states of replicas that are gone")
                }
            }
        }
    }

    fn republish_all(&self) {
        self.clusters
            .state_changes()
            .mark_all(self.clusters.local_ids());
    }
}

/// The stored name of a phase.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Connecting => "connecting",
        Phase::Connected => "connected",
        Phase::Failed => "failed",
        Phase::Disconnected => "disconnected",
    }
}

#[cfg(test)]
mod tests;
