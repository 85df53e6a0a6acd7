//! Instance leases (`<product>-instance-…`, `type=instance`): one per replica, annotated with its
//! advertised address, version and start time, renewed with its cluster leases. Listing them
//! gives `GET /api/v1/instances` without any broadcast between replicas.
//!
//! Once registration was asked for, every renew tick makes sure this replica holds an instance
//! lease: it renews the one it holds, and registers again (same name rules) when it holds none,
//! because the lease was deleted, taken, or never created (the apiserver was away at start-up).
//! A graceful stop deletes the lease and ends that.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::state::SharedState;
use super::{Renewal, renew_held};
use crate::coord::lease::{LeaseApi, LeaseError, claim, holder, set_annotation};
use crate::coord::names;

/// This replica's membership.
#[derive(Debug)]
pub(super) struct Membership<L> {
    leases: L,
    product: String,
    identity: String,
    duration_seconds: i32,
    state: SharedState,
    /// What the instance lease carries, from [`Membership::register`] until
    /// [`Membership::unregister`] (`None` outside). Locked across every registration, renewal and
    /// the final delete, so they never interleave: a renew tick cannot create the lease again
    /// just after a graceful stop deleted it.
    card: tokio::sync::Mutex<Option<Card>>,
}

/// The annotations of this replica's instance lease.
#[derive(Debug, Clone)]
struct Card {
    address: String,
    started: String,
}

impl<L: LeaseApi> Membership<L> {
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
            card: tokio::sync::Mutex::new(None),
        }
    }

    /// Creates (or takes back) this replica's instance lease and holds it. On failure nothing is
    /// held, and the next [`Membership::tick`] tries again.
    pub(super) async fn register(&self, address: &str, started: &str) -> Result<(), LeaseError> {
        let mut card = self.card.lock().await;
        let card = card.insert(Card {
            address: address.to_owned(),
            started: started.to_owned(),
        });
        self.claim_name(card).await
    }

    /// One renew tick: renews the instance lease this replica holds; holding none (deleted,
    /// taken by another replica, or never created), registers again. Nothing before
    /// [`Membership::register`] or after [`Membership::unregister`].
    pub(super) async fn tick(&self) -> Result<(), LeaseError> {
        let card = self.card.lock().await;
        let Some(card) = card.as_ref() else {
            return Ok(());
        };
        if let Some(name) = self.held() {
            self.renew(&name).await?;
        }
        if self.held().is_none() {
            self.claim_name(card).await?;
            tracing::info!(lease = ?self.held(), "registered the instance lease again");
        }
        Ok(())
    }

    /// Creates (or takes back) the instance lease under the first name that is not another
    /// replica's: the 4-byte name held by another replica (a hash prefix collision) sends it to
    /// the 8-byte one.
    async fn claim_name(&self, card: &Card) -> Result<(), LeaseError> {
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
            claim(&mut lease, &self.identity, self.duration_seconds);
            set_annotation(&mut lease, names::ADDRESS_ANNOTATION, &card.address);
            set_annotation(
                &mut lease,
                names::VERSION_ANNOTATION,
                env!("CARGO_PKG_VERSION"),
            );
            set_annotation(&mut lease, names::STARTED_ANNOTATION, &card.started);
            let stored = if lease.metadata.resource_version.is_some() {
                self.leases.replace(&lease).await?
            } else {
                self.leases.create(&lease).await?
            };
            let mut state = self.state.lock();
            state.observations.observe(&stored);
            state.instance_lease = Some(name);
            return Ok(());
        }
        Err(LeaseError::Conflict(
            "instance lease names taken".to_owned(),
        ))
    }

    /// The name of this replica's instance lease while it is renewed.
    pub(super) fn held(&self) -> Option<String> {
        self.state.lock().instance_lease.clone()
    }

    /// One renewal of this replica's instance lease `name`. Gone, or validly held by another
    /// replica now: no longer held (the tick registers again).
    async fn renew(&self, name: &str) -> Result<(), LeaseError> {
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
            Renewal::Gone => {
                tracing::warn!(lease = %name, "the instance lease is gone");
                state.observations.forget(name);
                state.instance_lease = None;
            }
            Renewal::Taken => state.instance_lease = None,
            Renewal::Renewed(updated) => state.observations.observe(&updated),
        }
        Ok(())
    }

    /// Deletes this replica's instance lease (graceful stop); renew ticks no longer register it.
    pub(super) async fn unregister(&self) {
        let mut card = self.card.lock().await;
        *card = None;
        let name = self.state.lock().instance_lease.take();
        if let Some(name) = name
            && let Ok(Some(lease)) = self.leases.get(&name).await
            && let Err(e) = self.leases.delete(&lease).await
        {
            tracing::warn!(error = %e, "cannot delete the instance lease");
        }
    }

    /// Instance leases, with whether each is still valid as seen here.
    pub(super) async fn instances(&self) -> Result<Vec<(Lease, bool)>, LeaseError> {
        let (items, _) = self
            .leases
            .list(&names::selector(&self.product, "instance"))
            .await?;
        let mut state = self.state.lock();
        Ok(items
            .into_iter()
            .map(|lease| {
                state.observations.observe(&lease);
                let valid = state.observations.is_valid(&lease);
                (lease, valid)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
