//! Leader election with client-go `leaderelection` semantics on the `<product>-leader-lock`
//! Lease.
//!
//! Acquire and renew are conditional updates; `acquireTime` and `leaseTransitions` change only
//! when the holder changes. A leader renews every retry period; a failed renewal, a 409 included,
//! is tried again at the next one (after a 409 the lease is re-read at once and, still this
//! replica's, renewed), and a leader that could not renew for the renew deadline steps down and
//! campaigns again. It steps down at once only on seeing another replica validly hold the lease.
//! On graceful shutdown the lease is released (no holder, duration 1 s) after leader work
//! stopped. Leadership is published on a `watch` channel: leader-only work starts and stops on
//! its edges. The leader's `leaseTransitions` is the fencing token.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{LeaseApi, LeaseError, Leases, Observations, holder, now};
use crate::config::LeaderTimings;

/// What this replica knows about leadership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leadership {
    /// This replica leads.
    pub is_leader: bool,
    /// The fencing token of this replica's current term (`leaseTransitions`), when leading.
    pub term: Option<i64>,
    /// The holder as last seen.
    pub holder: Option<String>,
}

/// Runs the election for one identity.
#[derive(Debug)]
pub struct LeaderElector<L = Leases> {
    leases: L,
    name: String,
    identity: String,
    timings: LeaderTimings,
    state: watch::Sender<Leadership>,
}

impl<L: LeaseApi> LeaderElector<L> {
    pub fn new(leases: L, name: String, identity: String, timings: LeaderTimings) -> Self {
        Self {
            leases,
            name,
            identity,
            timings,
            state: watch::channel(Leadership::default()).0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.state.subscribe()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Campaigns, leads, steps down and campaigns again until `stop`; then releases the lease
    /// if held. The caller stops leader work before firing `stop`, so the lease is released
    /// only after that work ended.
    pub async fn run(&self, stop: CancellationToken) {
        // When this replica saw the lease change: expiry is judged on this clock only.
        let mut observations = Observations::default();
        loop {
            // Campaign.
            let term = loop {
                match self.try_acquire_or_renew(&mut observations).await {
                    Ok(Some(term)) => break term,
                    Ok(None) => {}
                    // A conflict too: someone else wrote first; decided again at the next retry.
                    Err(e) => tracing::debug!(error = %e, "leader election attempt failed"),
                }
                if sleep_or_stop(&stop, self.jittered_retry()).await {
                    return;
                }
            };
            tracing::info!(identity = %self.identity, term, "became the leader");
            self.publish(true, Some(term), Some(self.identity.clone()));

            // Lead: renew every retry period; step down after the renew deadline, as client-go's
            // `renew` polls `tryAcquireOrRenew` until its deadline.
            let mut renewed = Instant::now();
            loop {
                if sleep_or_stop(&stop, self.timings.retry_period).await {
                    self.publish(false, None, Some(self.identity.clone()));
                    self.release().await;
                    return;
                }
                let attempt = match self.try_acquire_or_renew(&mut observations).await {
                    // Written by someone else since the read: re-read and decide again at once,
                    // as client-go falls back from its optimistic update to a fresh read.
                    Err(LeaseError::Conflict(e)) => {
                        tracing::debug!(
                            error = %e,
                            "leader lease renewal conflicted; reading it again"
                        );
                        self.try_acquire_or_renew(&mut observations).await
                    }
                    attempt => attempt,
                };
                match attempt {
                    Ok(Some(_)) => renewed = Instant::now(),
                    Ok(None) => {
                        tracing::warn!("leader lease taken by another replica; stepping down");
                        break;
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "leader lease renewal failed; trying again until the renew deadline"
                    ),
                }
                if renewed.elapsed() >= self.timings.renew_deadline {
                    tracing::warn!(
                        deadline = ?self.timings.renew_deadline,
                        "could not renew the leader lease in time; stepping down"
                    );
                    break;
                }
            }
            self.publish(false, None, None);
        }
    }

    fn publish(&self, is_leader: bool, term: Option<i64>, holder: Option<String>) {
        self.state.send_if_modified(|state| {
            let next = Leadership {
                is_leader,
                term,
                holder: holder.or_else(|| state.holder.clone()),
            };
            let changed = *state != next;
            *state = next;
            changed
        });
    }

    fn jittered_retry(&self) -> Duration {
        // client-go's JitterFactor 1.2: wait between 1 and 2.2 retry periods.
        let factor = 1.0 + rand::rng().random_range(0.0..1.2);
        self.timings.retry_period.mul_f64(factor)
    }

    /// One client-go `tryAcquireOrRenew`: returns the term (leaseTransitions) when this replica
    /// holds the lease afterwards, `None` when another replica validly holds it, and
    /// [`LeaseError::Conflict`] when someone else wrote between the read and this write (the
    /// lease may still be this replica's: read again to decide).
    async fn try_acquire_or_renew(
        &self,
        observations: &mut Observations,
    ) -> Result<Option<i64>, LeaseError> {
        let duration = i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.leases.get(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            let created = self.leases.create(&lease).await?;
            observations.observe(&created);
            return Ok(Some(0));
        };
        observations.observe(&lease);
        let current = holder(&lease).map(str::to_owned);
        if current.as_deref() != Some(self.identity.as_str()) && observations.is_valid(&lease) {
            self.publish(false, None, current);
            return Ok(None);
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let transitions = spec.lease_transitions.unwrap_or(0);
        if current.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(transitions + 1);
        }
        spec.lease_duration_seconds = Some(duration);
        spec.renew_time = Some(now());
        let updated = self.leases.replace(&lease).await?;
        observations.observe(&updated);
        Ok(Some(i64::from(
            updated
                .spec
                .and_then(|s| s.lease_transitions)
                .unwrap_or_default(),
        )))
    }

    /// Clears the holder (duration 1 s) so another replica takes over at its next retry.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.leases.get(&self.name).await else {
            return;
        };
        if holder(&lease) != Some(self.identity.as_str()) {
            return;
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        spec.acquire_time = Some(now());
        match self.leases.replace(&lease).await {
            Ok(_) => tracing::info!("released the leader lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the leader lease"),
        }
    }

    /// The leader lease as stored, for `GET /api/v1/leader`.
    pub async fn lease(&self) -> Result<Option<Lease>, LeaseError> {
        self.leases.get(&self.name).await
    }
}

/// Sleeps; returns true when `stop` fired first.
pub(super) async fn sleep_or_stop(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests;
