//! The publisher against SQLite: a burst of changes is one batch, a clean stop deletes this
//! replica's rows and a crash leaves them.

use std::time::Duration;

use super::*;
use crate::cluster::{ClusterEvents, ClusterOptions};
use crate::config::DatabaseUrl;
use crate::crypto::SecretKey;
use crate::telemetry::Metrics;

const INSTANCE: &str = "replica-a";

async fn setup() -> (Db, Arc<ClusterManager>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("portico.db")))
        .await
        .unwrap();
    let clusters = Arc::new(ClusterManager::new(
        db.clone(),
        SecretKey::generate(),
        ClusterOptions::default(),
        &Metrics::new(),
        ClusterEvents::new(INSTANCE),
        CancellationToken::new(),
        TaskTracker::new(),
    ));
    (db, clusters, dir)
}

fn start(db: &Db, clusters: &Arc<ClusterManager>, shutdown: &CancellationToken) -> ReplicaStates {
    let (_, leadership) = watch::channel(Leadership::default());
    ReplicaStates::start(
        db.clone(),
        clusters.clone(),
        INSTANCE,
        ReplicaStateTimings {
            interval: Duration::from_secs(3600),
            retention: Duration::from_secs(36_000),
        },
        leadership,
        shutdown,
        &TaskTracker::new(),
    )
}

/// (rows of this replica, distinct write stamps among them).
async fn rows(db: &Db) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT updated_at) FROM replica_states WHERE instance_id = $1",
    )
    .bind(INSTANCE)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

async fn heartbeats(db: &Db) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM replica_heartbeats")
        .fetch_one(db.pool())
        .await
        .unwrap();
    n
}

async fn wait_for_rows(db: &Db, want: i64) -> (i64, i64) {
    for _ in 0..200 {
        let found = rows(db).await;
        if found.0 == want {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "never saw {want} published rows (last: {:?})",
        rows(db).await
    );
}

#[tokio::test]
async fn a_burst_of_changes_is_published_in_one_batch_and_a_clean_stop_deletes_it() {
    let (db, clusters, _dir) = setup().await;
    let shutdown = CancellationToken::new();
    let states = start(&db, &clusters, &shutdown);
    // 5,000 clusters change, three times each, before the publisher runs.
    let changes = clusters.state_changes();
    for _ in 0..3 {
        for i in 0..5_000 {
            changes.mark(&format!("c{i}"));
        }
    }
    // One flush wrote them all: every row carries the same write stamp.
    let (count, stamps) = wait_for_rows(&db, 5_000).await;
    assert_eq!((count, stamps), (5_000, 1));
    assert_eq!(heartbeats(&db).await, 1);

    states.shutdown().await;
    assert_eq!(rows(&db).await.0, 0);
    assert_eq!(heartbeats(&db).await, 0);
}

#[tokio::test]
async fn a_crash_leaves_the_rows_for_the_leader_to_judge() {
    let (db, clusters, _dir) = setup().await;
    let shutdown = CancellationToken::new();
    let _states = start(&db, &clusters, &shutdown);
    clusters.state_changes().mark("c1");
    wait_for_rows(&db, 1).await;
    // What `Gateway::crash` does: the shared shutdown token, no clean stop.
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rows(&db).await.0, 1);
    assert_eq!(heartbeats(&db).await, 1);
}
