//! One local connection to a cluster: its state (phase, last error, server version), the
//! `/version` check, and the supervisor task that heartbeats and reconnects it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::events::{ClusterEventKind, ClusterEvents, Initiator};
use super::upstream::{Upstream, UpstreamError};
use super::{ClusterOptions, Result};
use crate::clock;

/// This replica's connection state for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Connecting,
    Connected,
    Failed,
    Disconnected,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    pub phase: Phase,
    pub last_error: Option<String>,
    pub server_version: Option<String>,
    /// Unix milliseconds of the last phase change.
    pub since: i64,
}

impl LocalState {
    pub(super) fn new(phase: Phase) -> Self {
        Self {
            phase,
            last_error: None,
            server_version: None,
            since: clock::now_millis(),
        }
    }
}

/// A local connection: the pooled client plus its state.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    /// The configuration revision this connection was built from.
    pub revision: i64,
    /// The cluster's labels at that revision (grants with label selectors read them).
    pub labels: Arc<BTreeMap<String, String>>,
    pub upstream: Upstream,
    state: Mutex<LocalState>,
    stop: CancellationToken,
    /// Whether this connection's first successful check was announced as a connect event.
    announced: AtomicBool,
    initiator: Initiator,
}

impl Connection {
    /// A connection that starts `connecting`; `stop` ends its supervisor.
    pub(super) fn new(
        id: &str,
        revision: i64,
        labels: BTreeMap<String, String>,
        upstream: Upstream,
        stop: CancellationToken,
        initiator: Initiator,
    ) -> Self {
        Self {
            id: id.to_owned(),
            revision,
            labels: Arc::new(labels),
            upstream,
            state: Mutex::new(LocalState::new(Phase::Connecting)),
            stop,
            announced: AtomicBool::new(false),
            initiator,
        }
    }

    /// Takes over from `previous` (a connection to the same cluster being rebuilt): stops it,
    /// and a rebuilt connection (new configuration) is no new connect.
    pub(super) fn replace(&self, previous: &Connection) {
        previous.close();
        if previous.announced.load(Ordering::SeqCst) {
            self.announced.store(true, Ordering::SeqCst);
        }
    }

    /// Stops the connection's supervisor.
    pub(super) fn close(&self) {
        self.stop.cancel();
    }

    /// Sends the connect event once per connection, on its first successful check (a later
    /// reconnect after failed heartbeats is health, not a lifecycle change).
    pub(super) fn announce(&self, events: &ClusterEvents) {
        if !self.announced.swap(true, Ordering::SeqCst) {
            let version = self.state().server_version;
            events.send(
                &self.id,
                ClusterEventKind::Connected,
                self.initiator,
                version,
            );
        }
    }

    pub fn state(&self) -> LocalState {
        self.state.lock().clone()
    }

    /// True when requests may be proxied.
    pub fn is_connected(&self) -> bool {
        self.state.lock().phase == Phase::Connected
    }

    pub(super) fn set(&self, update: impl FnOnce(&mut LocalState)) {
        let mut state = self.state.lock();
        let before = state.phase;
        update(&mut state);
        if state.phase != before {
            state.since = clock::now_millis();
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ClusterLabel {
    pub(super) cluster: String,
}

pub(super) fn apply_check(
    connection: &Connection,
    result: Result<String, UpstreamError>,
    failures: &Family<ClusterLabel, Counter>,
) -> bool {
    match result {
        Ok(version) => {
            connection.set(|s| {
                s.phase = Phase::Connected;
                s.server_version = Some(version);
                s.last_error = None;
            });
            true
        }
        Err(e) => {
            failures
                .get_or_create(&ClusterLabel {
                    cluster: connection.id.clone(),
                })
                .inc();
            let message = e.to_string();
            connection.set(|s| {
                if s.phase != Phase::Connected {
                    s.phase = Phase::Failed;
                }
                s.last_error = Some(message);
            });
            false
        }
    }
}

/// Heartbeats a connected cluster; reconnects a failed one with capped exponential backoff.
pub(super) struct Supervisor {
    pub(super) connection: Arc<Connection>,
    pub(super) events: ClusterEvents,
    pub(super) options: ClusterOptions,
    pub(super) failures: Counter,
}

impl Supervisor {
    pub(super) async fn run(self, mut healthy: bool) {
        let stop = self.connection.stop.clone();
        let mut consecutive = 0u32;
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        loop {
            let wait = if healthy {
                self.options.heartbeat_interval
            } else {
                backoff.delay()
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let result = self
                .connection
                .upstream
                .version(self.options.check_timeout)
                .await;
            if stop.is_cancelled() {
                return;
            }
            match result {
                Ok(version) => {
                    if !healthy {
                        tracing::info!(cluster = %self.connection.id, "cluster reconnected");
                    }
                    self.connection.set(|s| {
                        s.phase = Phase::Connected;
                        s.server_version = Some(version);
                        s.last_error = None;
                    });
                    self.connection.announce(&self.events);
                    healthy = true;
                    consecutive = 0;
                    backoff.reset();
                }
                Err(e) => {
                    self.failures.inc();
                    let message = e.to_string();
                    if healthy {
                        consecutive += 1;
                        tracing::warn!(
                            cluster = %self.connection.id,
                            failures = consecutive,
                            error = %message,
                            "heartbeat failed"
                        );
                        if consecutive >= self.options.heartbeat_failures {
                            healthy = false;
                            self.connection.upstream.invalidate_credentials();
                            let text = format!(
                                "unhealthy after {consecutive} failed heartbeats: {message}"
                            );
                            self.connection.set(|s| {
                                s.phase = Phase::Failed;
                                s.last_error = Some(text);
                            });
                        } else {
                            self.connection.set(|s| s.last_error = Some(message));
                        }
                    } else {
                        backoff.failed();
                        self.connection.set(|s| {
                            s.phase = Phase::Failed;
                            s.last_error = Some(message);
                        });
                    }
                }
            }
        }
    }
}
