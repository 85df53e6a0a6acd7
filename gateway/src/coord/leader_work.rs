//! Leader-only work, run for each term this replica leads and stopped when the term ends,
//! and the leadership gauge.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::leader::Leadership;
use super::sync::LeaseSync;
use crate::telemetry::Metrics;

/// Intervals of leader-only work.
#[derive(Debug, Clone, Copy)]
pub struct LeaderWork {
    pub cleanup_interval: Duration,
}

/// Runs leader-only work on each term: started when leadership is gained, cancelled when lost.
pub(super) async fn leader_work(
    sync: Arc<LeaseSync>,
    mut leadership: watch::Receiver<Leadership>,
    work: LeaderWork,
    stop: CancellationToken,
) {
    loop {
        // Wait to lead.
        loop {
            if leadership.borrow_and_update().is_leader {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                changed = leadership.changed() => if changed.is_err() { return },
            }
        }
        let fencing = leadership.borrow().term.unwrap_or_default();
        let row = match sync.db().start_term(sync.identity(), fencing).await {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the leader term");
                None
            }
        };
        // Leader work runs inside this task (not spawned), so it can never outlive the term,
        // not even when the task is aborted.
        let lead = async {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = leadership.changed() => {
                        if changed.is_err() || !leadership.borrow_and_update().is_leader {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            () = lead => {}
            () = sync.cleanup_loop(work.cleanup_interval, row) => {}
        }
        if let Some(row) = row
            && let Err(e) = sync.db().end_term(row).await
        {
            tracing::warn!(error = %e, "cannot record the end of the leader term");
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

pub(super) fn register_leader_gauge(metrics: &Metrics, leadership: watch::Receiver<Leadership>) {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct NameLabel {
        name: String,
    }
    let family = Family::<NameLabel, Gauge>::default();
    metrics.register(|registry| {
        // client-go's metric name, without our prefix, so existing dashboards work.
        registry.register(
            "leader_election_master_status",
            "1 when this replica is the leader",
            family.clone(),
        );
    });
    let gauge = family
        .get_or_create(&NameLabel {
            name: "portico".to_owned(),
        })
        .clone();
    tokio::spawn(async move {
        let mut leadership = leadership;
        loop {
            gauge.set(i64::from(leadership.borrow_and_update().is_leader));
            if leadership.changed().await.is_err() {
                return;
            }
        }
    });
}
