//! The lease sync's renew loop against the in-memory lease API, in paused time (lease duration
//! 60 s, renew interval 20 s).

use std::time::Duration;

use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::cluster::{ClusterEvents, ClusterOptions};
use crate::config::DatabaseUrl;
use crate::coord::fake::{FakeLeases, Op};
use crate::coord::lease::annotation;
use crate::coord::names;
use crate::crypto::SecretKey;
use crate::telemetry::Metrics;

const DURATION: Duration = Duration::from_secs(60);
/// Ticks come every `RENEW` after the loop starts; the tests look halfway between two.
const RENEW: Duration = Duration::from_secs(20);
const ADDRESS: &str = "10.0.0.1:3618";
const STARTED: &str = "2030-01-01T00:00:00Z";

/// A lease sync of `identity` on `fake`, and the folder of its database.
///
/// The SQLite database is opened before time is paused (it works on threads of its own); the
/// renew loop needs it only for cluster leases, of which these tests have none.
async fn lease_sync(fake: &FakeLeases, identity: &str) -> (Arc<LeaseSync<FakeLeases>>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("portico.db")))
        .await
        .unwrap();
    let clusters = Arc::new(ClusterManager::new(
        db.clone(),
        SecretKey::generate(),
        ClusterOptions::default(),
        &Metrics::new(),
        ClusterEvents::new(identity),
        CancellationToken::new(),
        TaskTracker::new(),
    ));
    let sync = LeaseSync::new(
        fake.clone(),
        "portico",
        identity,
        LeaseTimings {
            duration: DURATION,
            renew_interval: RENEW,
        },
        Duration::from_secs(300),
        db,
        clusters,
    );
    tokio::time::pause();
    (Arc::new(sync), dir)
}

/// Runs the renew loop until the returned token fires.
fn renew_loop(sync: &Arc<LeaseSync<FakeLeases>>) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = {
        let sync = sync.clone();
        let stop = stop.clone();
        tokio::spawn(async move { sync.renew_loop(stop).await })
    };
    (stop, task)
}

/// Holders of the instance leases that `sync` lists, with whether each is alive.
async fn members(sync: &LeaseSync<FakeLeases>) -> Vec<(String, bool)> {
    let mut rows: Vec<_> = sync
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|(lease, alive)| (holder(&lease).unwrap_or_default().to_owned(), alive))
        .collect();
    rows.sort();
    rows
}

fn assert_registered(fake: &FakeLeases, name: &str, identity: &str) {
    let lease = fake.stored(name).expect("the instance lease exists");
    assert_eq!(holder(&lease), Some(identity));
    assert_eq!(annotation(&lease, names::ADDRESS_ANNOTATION), Some(ADDRESS));
    assert_eq!(annotation(&lease, names::STARTED_ANNOTATION), Some(STARTED));
    assert_eq!(lease.metadata.labels.unwrap()["type"], "instance");
}

#[tokio::test]
async fn the_renew_tick_creates_the_instance_lease_again_when_it_was_deleted() {
    let fake = FakeLeases::new();
    let (sync, _dir) = lease_sync(&fake, "replica-a").await;
    sync.register_instance(ADDRESS, STARTED).await.unwrap();
    let name = names::instance("portico", "replica-a", false);
    let (stop, task) = renew_loop(&sync);

    // Deleted from under the running replica (kubectl delete, a namespace cleanup…).
    tokio::time::sleep(RENEW / 2).await;
    fake.remove(&name);
    assert_eq!(members(&sync).await, []);

    // Checked halfway between ticks, as everywhere below.
    tokio::time::sleep(RENEW).await;
    assert_registered(&fake, &name, "replica-a");
    assert_eq!(members(&sync).await, [("replica-a".to_owned(), true)]);

    // Renewed from then on, like any held lease.
    let recreated = fake.stored(&name).unwrap();
    tokio::time::sleep(RENEW).await;
    assert_ne!(
        fake.stored(&name).unwrap().metadata.resource_version,
        recreated.metadata.resource_version
    );
    assert_eq!(fake.calls(Op::Create), 2, "created once more, then renewed");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn the_renew_tick_registers_an_instance_lease_that_failed_at_start_up() {
    let fake = FakeLeases::new();
    let (sync, _dir) = lease_sync(&fake, "replica-a").await;
    // The host apiserver refuses creates while this replica starts.
    fake.fail(Op::Create, LeaseError::Timeout(Duration::from_secs(2)));
    assert!(sync.register_instance(ADDRESS, STARTED).await.is_err());
    let name = names::instance("portico", "replica-a", false);
    let (stop, task) = renew_loop(&sync);

    // Still refused: each tick tries again, and the loop goes on.
    tokio::time::sleep(RENEW * 2 + RENEW / 2).await;
    assert_eq!(
        fake.calls(Op::Create),
        3,
        "start-up and one attempt per tick"
    );
    assert!(fake.stored(&name).is_none());

    fake.heal();
    tokio::time::sleep(RENEW).await;
    assert_registered(&fake, &name, "replica-a");
    assert_eq!(members(&sync).await, [("replica-a".to_owned(), true)]);
    stop.cancel();
    task.await.unwrap();
}
