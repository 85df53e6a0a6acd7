//! The audit log: mutating proxied requests (POST, PUT, PATCH, DELETE, exec, attach,
//! port-forward), proxied requests Portico refused (401, 403, 429), and every change through the
//! admin API (refused ones included).
//!
//! Callers hand entries to a bounded channel and move on; one background task writes them in
//! batches, so a slow database never slows the proxy. If the channel is full (the database is
//! down for long), entries are dropped: each drop is counted in `portico_audit_dropped_total`
//! and logged. Entries older than the retention (`--audit-retention-days`) are deleted hourly.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::storage::Db;
use crate::telemetry::Metrics;

const QUEUE: usize = 10_000;
const BATCH: usize = 256;
/// Attempts to write one batch before its entries are dropped (and counted).
const WRITE_ATTEMPTS: u32 = 10;
const WRITE_RETRY_DELAY: Duration = Duration::from_secs(1);

pub use crate::records::audit::{AuditEntry, AuditKind};

/// The producer side, cheap to call on the proxy path.
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEntry>,
    dropped: Counter,
}

impl AuditLog {
    /// Starts the writer task, which also deletes entries older than `retention`.
    pub fn start(
        db: Db,
        retention: Duration,
        metrics: &Metrics,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Counter::default();
        metrics.register(|registry| {
            registry.register(
                "audit_dropped",
                "Audit entries dropped because the writer fell behind",
                dropped.clone(),
            );
        });
        tasks.spawn(prune_loop(db.clone(), retention, stop.clone()));
        tasks.spawn(write_loop(db, rx, dropped.clone(), stop));
        Self { tx, dropped }
    }

    pub fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.tx.try_send(entry) {
            self.dropped.inc();
            let entry = match e {
                mpsc::error::TrySendError::Full(entry)
                | mpsc::error::TrySendError::Closed(entry) => entry,
            };
            tracing::warn!(
                kind = entry.kind.as_str(),
                token = %entry.token_name,
                cluster = %entry.cluster,
                verb = %entry.verb,
                path = %entry.path,
                status = entry.status,
                "audit queue full: entry dropped"
            );
        }
    }
}

/// How often entries past the retention are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

async fn prune_loop(db: Db, retention: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::clock::now_millis().saturating_sub(retention_ms);
        match db.delete_audit_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "deleted audit entries past the retention"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old audit entries"),
        }
    }
}

async fn write_loop(
    db: Db,
    mut rx: mpsc::Receiver<AuditEntry>,
    dropped: Counter,
    stop: CancellationToken,
) {
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
        // A database that is briefly away (a restart, a failover) loses nothing: the batch is
        // retried while new entries wait in the queue.
        let mut attempt = 1;
        while let Err(e) = db.insert_audit(&batch).await {
            if attempt == WRITE_ATTEMPTS || stop.is_cancelled() {
                dropped.inc_by(batch.len() as u64);
                tracing::error!(error = %e, entries = batch.len(), "cannot write audit entries: dropped");
                break;
            }
            tracing::warn!(error = %e, attempt, "cannot write audit entries; retrying");
            attempt += 1;
            tokio::time::sleep(WRITE_RETRY_DELAY).await;
        }
        batch.clear();
        if stop.is_cancelled() && rx.is_empty() {
            return;
        }
    }
}
