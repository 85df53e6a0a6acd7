//! The cluster leases this replica writes: ensured on connect (create, keep, or take over an
//! expired one), renewed while held, carrying the config revision, deleted on disconnect, and
//! taken over or deleted by the leader's cleanup when expired.
//!
//! Every write is conditional on the resourceVersion just read; a 409 means "re-read and decide
//! again". Two ids whose 4-byte name prefixes collide: the second uses the 8-byte name.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::state::{Known, SharedState};
use super::{Renewal, renew_held};
use crate::coord::lease::{LeaseApi, LeaseError, annotation, claim, holder, now, set_annotation};
use crate::coord::names;

/// Attempts at one decision before giving up for now (the lease kept changing under us).
const ATTEMPTS: usize = 5;

/// What the leader's cleanup did with an expired lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cleanup {
    /// The lease is gone already.
    Gone,
    /// Renewed meanwhile: left alone.
    Renewed,
    /// Taken over: this replica holds it now.
    TookOver,
    /// Deleted (the cluster is no longer wanted).
    Deleted,
}

/// Cluster lease writes of one replica.
#[derive(Debug)]
pub(super) struct ClusterLeases<L> {
    leases: L,
    product: String,
    identity: String,
    duration_seconds: i32,
    state: SharedState,
}

impl<L: LeaseApi> ClusterLeases<L> {
    pub(super) fn new(
        leases: L,
        product: &str,
        identity: &str,
        duration_seconds: i32,
        state: SharedState,
    ) -> Self {
        Self {
            leases,
            product: product.to_owned(),
            identity: identity.to_owned(),
            duration_seconds,
            state,
        }
    }

    /// Creates, keeps or takes over the cluster's lease.
    pub(super) async fn ensure(&self, cluster_id: &str, revision: i64) -> Result<(), LeaseError> {
        for long in [false, true] {
            let name = names::cluster(&self.product, cluster_id, long);
            for _ in 0..ATTEMPTS {
                match self.leases.get(&name).await? {
                    None => {
                        let lease = self.new_lease(&name, cluster_id, revision);
                        match self.leases.create(&lease).await {
                            Ok(created) => {
                                self.hold(cluster_id, &name, created);
                                return Ok(());
                            }
                            Err(LeaseError::Conflict(_)) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    Some(lease) => {
                        let owner = cluster_id_of(&lease);
                        if owner.as_deref() != Some(cluster_id) {
                            tracing::warn!(cluster = %cluster_id, lease = %name, other = ?owner, "lease name collision; using the 8-byte name");
                            break;
                        }
                        let valid = {
                            let mut state = self.state.lock();
                            state.observations.observe(&lease);
                            state.observations.is_valid(&lease)
                        };
                        let current = holder(&lease).map(str::to_owned);
                        let mine = current.as_deref() == Some(self.identity.as_str());
                        let stale_revision = annotation(&lease, names::REVISION_ANNOTATION)
                            != Some(revision.to_string().as_str());
                        if !mine && valid {
                            tracing::info!(cluster = %cluster_id, holder = ?current, "already connected by {}", current.as_deref().unwrap_or("?"));
                            if stale_revision {
                                self.set_revision(lease, revision).await?;
                            }
                            return Ok(());
                        }
                        if mine && !stale_revision {
                            self.hold(cluster_id, &name, lease);
                            return Ok(());
                        }
                        // Ours with an old revision, or expired/released: take it (over).
                        let mut lease = lease;
                        claim(&mut lease, &self.identity, self.duration_seconds);
                        set_annotation(
                            &mut lease,
                            names::REVISION_ANNOTATION,
                            &revision.to_string(),
                        );
                        match self.leases.replace(&lease).await {
                            Ok(updated) => {
                                self.hold(cluster_id, &name, updated);
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

    fn new_lease(&self, name: &str, cluster_id: &str, revision: i64) -> Lease {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(names::cluster_labels(&self.product, cluster_id)),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds),
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

    /// Remembers the lease and renews it from now on.
    fn hold(&self, cluster_id: &str, name: &str, lease: Lease) {
        let mut state = self.state.lock();
        state.remember(cluster_id, lease);
        state.held.insert(cluster_id.to_owned(), name.to_owned());
    }

    async fn set_revision(&self, mut lease: Lease, revision: i64) -> Result<(), LeaseError> {
        set_annotation(
            &mut lease,
            names::REVISION_ANNOTATION,
            &revision.to_string(),
        );
        self.leases.replace(&lease).await.map(|_| ())
    }

    /// Writes a new config revision on the cluster's known lease, whoever holds it, so that
    /// every replica reconnects with the new configuration.
    pub(super) async fn publish_revision(&self, cluster_id: &str, revision: i64) {
        let Some(name) = self.state.lock().lease_name_of(cluster_id) else {
            return;
        };
        for _ in 0..ATTEMPTS {
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

    /// Deletes the cluster's lease (either name) with preconditions, re-reading on a conflict.
    pub(super) async fn delete(&self, cluster_id: &str) -> Result<(), LeaseError> {
        for long in [false, true] {
            let name = names::cluster(&self.product, cluster_id, long);
            for _ in 0..ATTEMPTS {
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
        Ok(())
    }

    /// One renewal of a held cluster lease; a lease that is gone or held by another now is no
    /// longer renewed.
    ///
    /// The write goes first on the lease as last seen here (written by this replica, or seen on
    /// the watch), when that shows this replica as the holder: one call instead of a read and a
    /// write, for each lease on every renew tick. The write is conditional on that
    /// resourceVersion, so a lease that changed meanwhile answers 409, and the renewal is then
    /// decided again on a fresh read.
    pub(super) async fn renew(&self, cluster_id: &str, name: &str) -> Result<(), LeaseError> {
        let last_seen = self
            .state
            .lock()
            .known
            .get(name)
            .map(|k| k.lease.clone())
            .filter(|lease| holder(lease) == Some(self.identity.as_str()));
        if let Some(mut lease) = last_seen {
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now());
            }
            match self.leases.replace(&lease).await {
                Ok(updated) => {
                    self.state.lock().remember(cluster_id, updated);
                    return Ok(());
                }
                Err(LeaseError::NotFound) => {
                    self.state.lock().held.remove(cluster_id);
                    return Ok(());
                }
                Err(LeaseError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let renewal = renew_held(
            &self.leases,
            &self.state,
            name,
            &self.identity,
            self.duration_seconds,
        )
        .await?;
        let mut state = self.state.lock();
        match renewal {
            Renewal::Gone | Renewal::Taken => {
                state.held.remove(cluster_id);
            }
            Renewal::Renewed(updated) => state.remember(cluster_id, *updated),
        }
        Ok(())
    }

    /// The leader's decision on an expired lease, made on the current object: taken over
    /// (holder = this replica) when the cluster is still `wanted`, else deleted.
    pub(super) async fn clean(&self, known: &Known, wanted: bool) -> Result<Cleanup, LeaseError> {
        let name = known.lease.metadata.name.clone().unwrap_or_default();
        let Some(mut lease) = self.leases.get(&name).await? else {
            return Ok(Cleanup::Gone);
        };
        let expired = {
            let mut state = self.state.lock();
            state.observations.observe(&lease);
            state.observations.is_expired(&lease)
        };
        if !expired {
            return Ok(Cleanup::Renewed);
        }
        if wanted {
            tracing::info!(cluster = %known.cluster_id, from = ?holder(&lease), "taking over the expired lease of a wanted cluster");
            claim(&mut lease, &self.identity, self.duration_seconds);
            let updated = self.leases.replace(&lease).await?;
            self.hold(&known.cluster_id, &name, updated);
            Ok(Cleanup::TookOver)
        } else {
            tracing::info!(cluster = %known.cluster_id, "deleting the expired lease of an unwanted cluster");
            self.state.lock().deleting.insert(known.cluster_id.clone());
            self.leases.delete(&lease).await?;
            Ok(Cleanup::Deleted)
        }
    }
}

/// The cluster id a lease is for: its annotation, else its `clusterID` label.
pub(super) fn cluster_id_of(lease: &Lease) -> Option<String> {
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

#[cfg(test)]
mod tests;
