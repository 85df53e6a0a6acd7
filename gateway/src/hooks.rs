//! Hooks: what the gateway calls when this replica connects to or disconnects from a cluster.
//!
//! ```text
//!  ClusterManager ── ClusterEvent ──▶ Hooks (listener task)
//!  (connect/disconnect;   broadcast,        │ one task per event
//!   never waits)                            ▼
//!                         every HookSink ─ plan(event) ─▶ [Planned { hook, scope, run }]
//!                                                              │ scope: `cluster` needs the initiator
//!                                                              ▼
//!                                     app.tasks ─▶ run: webhook POST with retries (WebhookSink)
//!                                                       lifecycle-hook plugin call (LifecyclePlugins)
//! ```
//!
//! A connect or disconnect only sends on a broadcast channel, which never waits. Reading the
//! configured hooks (a database query) and delivering happen in background tasks tracked by
//! `app.tasks`, so a slow, hanging or failing hook never delays the connect or disconnect. Work
//! ends when `app.shutdown` is cancelled.
//!
//! Scope: a `cluster`-scoped hook fires only for events whose [`ClusterEvent::initiator`] is
//! [`Initiator::ThisReplica`] (once per change, on the replica that made it; always in
//! standalone mode); a `replica`-scoped hook fires for every local connect and disconnect.
//!
//! A new kind of hook implements [`HookSink`] and joins the list in [`start`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{ClusterEvent, ClusterEventKind, Initiator};
use crate::crypto::OpenError;
use crate::storage::StorageError;
use crate::telemetry::Metrics;

pub mod lifecycle;
pub mod webhook;

pub use crate::records::hooks::{EventKind, HookScope, Webhook};
pub use lifecycle::LifecyclePlugins;
pub use webhook::{Message, WebhookSink};

/// A hook operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A webhook's secret does not open (the gateway runs with another secret key?).
    #[error("the secret of webhook `{0}` cannot be decrypted: {1}")]
    Sealed(String, OpenError),
    /// The plugin registry failed.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::Error),
    /// The HTTP client for webhooks could not be built.
    #[error("webhook HTTP client: {0}")]
    Client(String),
}

pub type Result<T, E = HookError> = std::result::Result<T, E>;

impl From<ClusterEventKind> for EventKind {
    fn from(kind: ClusterEventKind) -> Self {
        match kind {
            ClusterEventKind::Connected => Self::Connected,
            ClusterEventKind::Disconnected => Self::Disconnected,
        }
    }
}

/// Whether a hook of `scope` fires for `event`.
pub fn fires(scope: HookScope, event: &ClusterEvent) -> bool {
    match scope {
        HookScope::Cluster => event.initiator == Initiator::ThisReplica,
        HookScope::Replica => true,
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The hook accepted the event.
    Delivered,
    /// Every attempt failed, or the failure is not worth retrying.
    Failed,
    /// The gateway stopped first.
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One configured hook that wants an event: not started until the dispatcher spawns `run`.
pub struct Planned {
    /// The hook's name, for logs.
    pub hook: String,
    pub scope: HookScope,
    /// Delivers the event; ends soon after the gateway's shutdown token is cancelled.
    pub run: BoxFuture<'static, Outcome>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("hook", &self.hook)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A kind of hook (webhooks, lifecycle-hook plugins, …).
pub trait HookSink: Send + Sync + 'static {
    /// The kind's name in logs and metrics.
    fn kind(&self) -> &'static str;

    /// The hooks of this kind configured for `event` (enabled, subscribed to its kind and
    /// cluster), each with its scope and the work that delivers it. The dispatcher applies
    /// the scope and runs the work in the background.
    fn plan<'a>(&'a self, event: &'a ClusterEvent) -> BoxFuture<'a, Result<Vec<Planned>>>;
}

pub use crate::config::DeliveryOptions;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl DeliveryOptions {
    /// The wait after failed attempt `attempt` (1-based): `retry_delay × 2^(attempt-1)`, at
    /// most five minutes.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.retry_delay.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// `portico_hook_deliveries_total{kind,result}` and friends.
#[derive(Debug, Clone, Default)]
struct HookMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    plan_failures: Family<KindLabel, Counter>,
    lagged: Counter,
}

/// The dispatcher: turns cluster events into background deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    sinks: Vec<Arc<dyn HookSink>>,
    metrics: HookMetrics,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.inner.sinks.iter().map(|s| s.kind()).collect();
        f.debug_struct("Hooks").field("sinks", &kinds).finish()
    }
}

impl Hooks {
    /// A dispatcher over `sinks`; its metrics are registered in `metrics`.
    pub fn new(
        sinks: Vec<Arc<dyn HookSink>>,
        metrics: &Metrics,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let hook_metrics = HookMetrics::default();
        metrics.register(|registry| {
            registry.register(
                "hook_deliveries",
                "Hook deliveries (webhooks, lifecycle-hook plugins) by kind and result",
                hook_metrics.deliveries.clone(),
            );
            registry.register(
                "hook_plan_failures",
                "Events whose hooks could not be read (e.g. the database failed), by hook kind",
                hook_metrics.plan_failures.clone(),
            );
            registry.register(
                "hook_events_lagged",
                "Cluster events the hook dispatcher missed because it fell behind",
                hook_metrics.lagged.clone(),
            );
        });
        Self {
            inner: Arc::new(Inner {
                sinks,
                metrics: hook_metrics,
                tasks,
                shutdown,
            }),
        }
    }

    /// Starts the task that dispatches every event `events` receives, until shutdown.
    pub fn listen(&self, mut events: broadcast::Receiver<ClusterEvent>) {
        let hooks = self.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    received = events.recv() => received,
                };
                match event {
                    Ok(event) => {
                        // Planning reads the database: one task per event, so a slow read
                        // never holds up the next event.
                        let dispatcher = hooks.clone();
                        hooks.inner.tasks.spawn(async move {
                            dispatcher.dispatch(&event).await;
                        });
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        hooks.inner.metrics.lagged.inc_by(missed);
                        tracing::warn!(missed, "hook dispatcher fell behind: events missed");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Plans `event` with every sink and starts, in the background, the work of each hook its
    /// scope lets fire. Returns how many deliveries were started.
    pub async fn dispatch(&self, event: &ClusterEvent) -> usize {
        let mut started = 0;
        for sink in &self.inner.sinks {
            let kind = sink.kind();
            let planned = match sink.plan(event).await {
                Ok(planned) => planned,
                Err(e) => {
                    self.inner
                        .metrics
                        .plan_failures
                        .get_or_create(&KindLabel { kind })
                        .inc();
                    tracing::error!(
                        kind,
                        cluster = %event.cluster_id,
                        event = %EventKind::from(event.kind),
                        error = %e,
                        "cannot read the hooks for an event"
                    );
                    continue;
                }
            };
            for plan in planned {
                if !fires(plan.scope, event) {
                    tracing::debug!(
                        kind,
                        hook = %plan.hook,
                        cluster = %event.cluster_id,
                        "cluster-scoped hook skipped: another replica made the change"
                    );
                    continue;
                }
                let deliveries = self.inner.metrics.deliveries.clone();
                self.inner.tasks.spawn(async move {
                    let outcome = plan.run.await;
                    deliveries
                        .get_or_create(&DeliveryLabels {
                            kind,
                            result: outcome.as_str(),
                        })
                        .inc();
                });
                started += 1;
            }
        }
        started
    }
}

#[cfg(test)]
mod tests;
