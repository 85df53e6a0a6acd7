//! Lease access with the protocol's rules: every call under a timeout, conditional writes, and
//! expiry judged on the local monotonic clock (client-go's way): a lease is expired when this
//! replica has not seen it change for `spec.leaseDurationSeconds` of that lease.
//!
//! [`LeaseApi`] is what leader election and the lease sync call; [`Leases`] implements it on the
//! host cluster's apiserver, and the unit tests implement it in memory (`coord::fake`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions, WatchParams};
use kube::core::WatchEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

/// A lease call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// 409: someone wrote first, or preconditions did not match. Re-read and decide again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404.
    #[error("not found")]
    NotFound,
    /// The host apiserver did not answer within the call timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Anything else (network, 5xx, 422…).
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = LeaseError> = std::result::Result<T, E>;

/// Events of a lease watch, until the server ends it.
pub type LeaseEvents = BoxStream<'static, Result<WatchEvent<Lease>>>;

/// The lease calls of the coordination protocol, on the lease namespace of the host cluster,
/// with the apiserver's semantics: every write bumps `metadata.resourceVersion`; `replace` and
/// `delete` are conditional (409 on a stale resourceVersion or uid), `create` of an existing
/// name is a 409, and a missing lease is a 404 (`None` for `get`).
pub trait LeaseApi: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The lease, or `None` when there is none.
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Lease>>> + Send;

    /// Creates `lease`; [`LeaseError::Conflict`] when its name exists.
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;

    /// Conditional update: `lease.metadata.resourceVersion` must be the current one.
    fn replace(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;

    /// Delete with `preconditions {uid, resourceVersion}` of `lease`.
    fn delete(&self, lease: &Lease) -> impl Future<Output = Result<()>> + Send;

    /// Leases matching the label `selector`, and the list's resourceVersion (to watch from).
    fn list(&self, selector: &str) -> impl Future<Output = Result<(Vec<Lease>, String)>> + Send;

    /// Changes of the leases matching `selector` after `version`; the server ends the stream
    /// after `timeout`.
    fn watch(
        &self,
        selector: &str,
        version: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<LeaseEvents>> + Send;
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
    result: &'static str,
}

/// The lease API of the host cluster's lease namespace.
#[derive(Clone)]
pub struct Leases {
    api: Api<Lease>,
    timeout: Duration,
    ops: Family<OpLabels, Counter>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Leases {
    /// Lease calls on `api`, each bounded by `timeout`, counted in
    /// `portico_lease_operations_total{op,result}`.
    pub fn new(api: Api<Lease>, timeout: Duration, metrics: &crate::telemetry::Metrics) -> Self {
        let ops = Family::<OpLabels, Counter>::default();
        metrics.register(|registry| {
            registry.register(
                "lease_operations",
                "Lease API calls by operation and result (ok, conflict, not_found, timeout, error)",
                ops.clone(),
            );
        });
        Self { api, timeout, ops }
    }

    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<T> {
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(LeaseError::Timeout(self.timeout)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                Err(LeaseError::Conflict(status.message.clone()))
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => Err(LeaseError::NotFound),
            Ok(Err(e)) => Err(LeaseError::Other(e.to_string())),
        };
        let label = match &result {
            Ok(_) => "ok",
            Err(LeaseError::Conflict(_)) => "conflict",
            Err(LeaseError::NotFound) => "not_found",
            Err(LeaseError::Timeout(_)) => "timeout",
            Err(LeaseError::Other(_)) => "error",
        };
        self.ops
            .get_or_create(&OpLabels { op, result: label })
            .inc();
        result
    }
}

impl LeaseApi for Leases {
    async fn get(&self, name: &str) -> Result<Option<Lease>> {
        self.call("get", self.api.get_opt(name)).await
    }

    async fn create(&self, lease: &Lease) -> Result<Lease> {
        self.call("create", self.api.create(&PostParams::default(), lease))
            .await
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.call(
            "update",
            self.api.replace(&name, &PostParams::default(), lease),
        )
        .await
    }

    async fn delete(&self, lease: &Lease) -> Result<()> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lease.metadata.uid.clone(),
                resource_version: lease.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        self.call("delete", self.api.delete(&name, &params))
            .await
            .map(|_| ())
    }

    async fn list(&self, selector: &str) -> Result<(Vec<Lease>, String)> {
        let list = self
            .call(
                "list",
                self.api.list(&ListParams::default().labels(selector)),
            )
            .await?;
        let version = list.metadata.resource_version.unwrap_or_default();
        Ok((list.items, version))
    }

    /// Not counted and not bounded by the call timeout: the caller bounds the whole watch.
    async fn watch(&self, selector: &str, version: &str, timeout: Duration) -> Result<LeaseEvents> {
        let params = WatchParams::default()
            .labels(selector)
            .timeout(u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX));
        let stream = self
            .api
            .watch(&params, version)
            .await
            .map_err(|e| LeaseError::Other(e.to_string()))?;
        Ok(stream
            .map(|event| event.map_err(|e| LeaseError::Other(e.to_string())))
            .boxed())
    }
}

/// When this replica last saw each lease change, by name.
#[derive(Debug, Default)]
pub struct Observations {
    seen: HashMap<String, Observed>,
}

#[derive(Debug, Clone)]
struct Observed {
    resource_version: String,
    at: Instant,
}

impl Observations {
    /// Records `lease` as seen now if its resourceVersion changed since the last look.
    pub fn observe(&mut self, lease: &Lease) {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        match self.seen.get_mut(&name) {
            Some(o) if o.resource_version == version => {}
            _ => {
                self.seen.insert(
                    name,
                    Observed {
                        resource_version: version,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Held by someone, and changed within its own duration as this replica saw it.
    pub fn is_valid(&self, lease: &Lease) -> bool {
        holder(lease).is_some() && !self.is_expired(lease)
    }

    /// Not seen to change for `leaseDurationSeconds`, or released (no holder).
    pub fn is_expired(&self, lease: &Lease) -> bool {
        if holder(lease).is_none() {
            return true;
        }
        let duration = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(0)
            .max(0) as u64;
        let name = lease.metadata.name.as_deref().unwrap_or_default();
        let version = lease
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default();
        match self.seen.get(name) {
            Some(o) if o.resource_version == version => {
                o.at.elapsed() >= Duration::from_secs(duration)
            }
            // Never observed at this version: it just changed, so it is fresh.
            _ => false,
        }
    }
}

/// The lease's holder, if any.
pub fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

pub fn annotation<'a>(lease: &'a Lease, key: &str) -> Option<&'a str> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn set_annotation(lease: &mut Lease, key: &str, value: &str) {
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), value.to_owned());
}

/// Makes `identity` the holder of `lease` for `duration_seconds` from now. `acquireTime` and
/// `leaseTransitions` change only when the holder does.
pub fn claim(lease: &mut Lease, identity: &str, duration_seconds: i32) {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(identity) {
        spec.holder_identity = Some(identity.to_owned());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(now());
}

/// Now, as the `MicroTime` lease fields carry it.
pub fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}
