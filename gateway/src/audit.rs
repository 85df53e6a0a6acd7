//! The audit log of mutating proxied requests (POST, PUT, PATCH, DELETE, exec, attach,
//! port-forward).
//!
//! The proxy hands entries to a bounded channel and moves on; one background task writes them
//! in batches, so a slow database never slows the proxy. If the channel is full (the database
//! is down for long), entries are dropped and counted in `portico_audit_dropped_total`.

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::storage::Db;
use crate::telemetry::Metrics;

const QUEUE: usize = 10_000;
const BATCH: usize = 256;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    pub token_id: String,
    pub token_name: String,
    pub cluster: String,
    /// `post`, `put`, `patch`, `delete`, `exec`, `attach`, `portforward` or `upgrade`.
    pub verb: String,
    /// Path and query below the cluster.
    pub path: String,
    /// Upstream status, or Portico's (502/504) when the cluster did not answer.
    pub status: u16,
}

/// The producer side, cheap to call on the proxy path.
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEntry>,
    dropped: Counter,
}

impl AuditLog {
    /// Starts the writer task.
    pub fn start(db: Db, metrics: &Metrics, tasks: &TaskTracker, stop: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Counter::default();
        metrics.register(|registry| {
            registry.register(
                "audit_dropped",
                "Audit entries dropped because the writer fell behind",
                dropped.clone(),
            );
        });
        tasks.spawn(write_loop(db, rx, stop));
        Self { tx, dropped }
    }

    pub fn record(&self, entry: AuditEntry) {
        if self.tx.try_send(entry).is_err() {
            self.dropped.inc();
            tracing::warn!("audit queue full: entry dropped");
        }
    }
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<AuditEntry>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            () = stop.cancelled() => {
                // Drain what is queued, then stop.
                rx.close();
                rx.recv_many(&mut batch, QUEUE).await
            }
        };
        if received == 0 {
            return;
        }
        if let Err(e) = db.insert_audit(&batch).await {
            tracing::error!(error = %e, entries = batch.len(), "cannot write audit entries");
        }
        batch.clear();
        if stop.is_cancelled() && rx.is_empty() {
            return;
        }
    }
}
