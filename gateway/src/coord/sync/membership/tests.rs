//! Instance leases against the in-memory lease API, in paused time (lease duration 60 s).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::coord::fake::{FakeLeases, Op};
use crate::coord::lease::annotation;

const DURATION: Duration = Duration::from_secs(60);

fn membership(fake: &FakeLeases, identity: &str) -> (Membership<FakeLeases>, SharedState) {
    let state = SharedState::default();
    let membership = Membership::new(
        fake.clone(),
        "portico",
        identity,
        DURATION.as_secs() as i32,
        state.clone(),
    );
    (membership, state)
}

fn holder_of(lease: &Lease) -> Option<&str> {
    holder(lease)
}

#[tokio::test(start_paused = true)]
async fn register_creates_the_annotated_instance_lease_and_holds_it() {
    let fake = FakeLeases::new();
    let (a, state) = membership(&fake, "replica-a");
    a.register("10.0.0.1:3618", "2030-01-01T00:00:00Z")
        .await
        .unwrap();

    let name = names::instance("portico", "replica-a", false);
    assert_eq!(a.held().as_deref(), Some(name.as_str()));
    assert_eq!(state.lock().instance_lease.as_deref(), Some(name.as_str()));
    let lease = fake.stored(&name).unwrap();
    assert_eq!(holder_of(&lease), Some("replica-a"));
    assert_eq!(
        lease.spec.as_ref().unwrap().lease_duration_seconds,
        Some(60)
    );
    assert_eq!(
        annotation(&lease, names::ADDRESS_ANNOTATION),
        Some("10.0.0.1:3618")
    );
    assert_eq!(
        annotation(&lease, names::VERSION_ANNOTATION),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        annotation(&lease, names::STARTED_ANNOTATION),
        Some("2030-01-01T00:00:00Z")
    );
    assert_eq!(lease.metadata.labels.unwrap()["type"], "instance");
}

#[tokio::test(start_paused = true)]
async fn renew_writes_the_instance_lease_again() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();
    let before = fake.stored(&name).unwrap();
    tokio::time::advance(Duration::from_secs(20)).await;

    a.renew(&name).await.unwrap();
    let after = fake.stored(&name).unwrap();
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_ne!(
        after.spec.as_ref().unwrap().renew_time,
        before.spec.as_ref().unwrap().renew_time
    );
    assert_eq!(a.held(), Some(name));
}

#[tokio::test(start_paused = true)]
async fn a_short_name_held_by_another_replica_sends_registration_to_the_long_name() {
    let fake = FakeLeases::new();
    let short = names::instance("portico", "replica-a", false);
    // Another replica's lease sits on replica-a's short name (a hash prefix collision).
    fake.insert(Lease {
        metadata: ObjectMeta {
            name: Some(short.clone()),
            labels: Some(names::instance_labels("portico")),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-z".to_owned()),
            lease_duration_seconds: Some(60),
            ..LeaseSpec::default()
        }),
    });

    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let long = names::instance("portico", "replica-a", true);
    assert_eq!(a.held().as_deref(), Some(long.as_str()));
    assert_eq!(holder_of(&fake.stored(&long).unwrap()), Some("replica-a"));
    assert_eq!(holder_of(&fake.stored(&short).unwrap()), Some("replica-z"));
}

#[tokio::test(start_paused = true)]
async fn a_restarted_replica_takes_its_own_instance_lease_back() {
    let fake = FakeLeases::new();
    let (first, _) = membership(&fake, "replica-a");
    first.register("old-addr", "start-1").await.unwrap();
    let name = first.held().unwrap();

    let (second, _) = membership(&fake, "replica-a");
    second.register("new-addr", "start-2").await.unwrap();
    assert_eq!(fake.calls(Op::Create), 1, "the existing lease is updated");
    let lease = fake.stored(&name).unwrap();
    assert_eq!(
        annotation(&lease, names::ADDRESS_ANNOTATION),
        Some("new-addr")
    );
    assert_eq!(
        annotation(&lease, names::STARTED_ANNOTATION),
        Some("start-2")
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_lease_validly_held_by_another_is_no_longer_renewed() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();
    fake.write_as_other(&name, |lease| {
        lease.spec.as_mut().unwrap().holder_identity = Some("replica-z".to_owned());
    });

    a.renew(&name).await.unwrap();
    assert_eq!(a.held(), None);
    assert_eq!(holder_of(&fake.stored(&name).unwrap()), Some("replica-z"));
}

#[tokio::test(start_paused = true)]
async fn unregister_deletes_the_instance_lease_and_stops_renewing_it() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();

    a.unregister().await;
    assert!(fake.stored(&name).is_none());
    assert_eq!(a.held(), None);
}

#[tokio::test(start_paused = true)]
async fn instances_are_alive_while_seen_changing_within_their_duration() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    let (b, _) = membership(&fake, "replica-b");
    a.register("addr-a", "start").await.unwrap();
    b.register("addr-b", "start").await.unwrap();
    let a_name = a.held().unwrap();

    let alive = |rows: Vec<(Lease, bool)>| -> Vec<(String, bool)> {
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|(l, alive)| (holder(&l).unwrap().to_owned(), alive))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        alive(a.instances().await.unwrap()),
        [
            ("replica-a".to_owned(), true),
            ("replica-b".to_owned(), true)
        ]
    );
    // a renews, b has stopped: after b's duration, only a is alive as a sees it.
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(20)).await;
        a.renew(&a_name).await.unwrap();
    }
    assert_eq!(
        alive(a.instances().await.unwrap()),
        [
            ("replica-a".to_owned(), true),
            ("replica-b".to_owned(), false)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn no_tick_registers_before_registration_was_asked_for() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.tick().await.unwrap();
    assert_eq!(fake.calls(Op::Get) + fake.calls(Op::Create), 0);
    assert_eq!(a.held(), None);
}

#[tokio::test(start_paused = true)]
async fn a_tick_registers_again_under_the_long_name_when_another_replica_now_holds_the_short_one() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let short = a.held().unwrap();
    // Another replica whose short name is the same (a hash prefix collision) holds it now.
    fake.write_as_other(&short, |lease| {
        lease.spec.as_mut().unwrap().holder_identity = Some("replica-z".to_owned());
    });

    a.tick().await.unwrap();
    let long = names::instance("portico", "replica-a", true);
    assert_eq!(a.held().as_deref(), Some(long.as_str()));
    let lease = fake.stored(&long).unwrap();
    assert_eq!(holder_of(&lease), Some("replica-a"));
    assert_eq!(annotation(&lease, names::ADDRESS_ANNOTATION), Some("addr"));
    assert_eq!(annotation(&lease, names::STARTED_ANNOTATION), Some("start"));
    assert_eq!(holder_of(&fake.stored(&short).unwrap()), Some("replica-z"));
}

#[tokio::test(start_paused = true)]
async fn a_tick_takes_back_its_own_lease_it_had_lost_track_of() {
    let fake = FakeLeases::new();
    let (a, state) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();
    // The lease was written, but this replica did not learn it (its answer timed out).
    state.lock().instance_lease = None;

    a.tick().await.unwrap();
    assert_eq!(a.held(), Some(name.clone()));
    assert_eq!(fake.calls(Op::Create), 1, "the existing lease is updated");
    assert_eq!(holder_of(&fake.stored(&name).unwrap()), Some("replica-a"));
}

#[tokio::test(start_paused = true)]
async fn after_unregister_no_tick_registers_again() {
    let fake = FakeLeases::new();
    let (a, _) = membership(&fake, "replica-a");
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();
    a.unregister().await;

    a.tick().await.unwrap();
    assert!(fake.stored(&name).is_none());
    assert_eq!(a.held(), None);
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_during_a_tick_leaves_no_instance_lease_behind() {
    let fake = FakeLeases::new();
    let a = Arc::new(membership(&fake, "replica-a").0);
    a.register("addr", "start").await.unwrap();
    let name = a.held().unwrap();
    fake.remove(&name);
    // A slow apiserver: the tick's create is in flight when the stop begins.
    fake.delay(Op::Create, Duration::from_secs(2));
    let tick = tokio::spawn({
        let a = a.clone();
        async move { a.tick().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls(Op::Create), 1, "only the registration so far");

    a.unregister().await;
    tick.await.unwrap().unwrap();
    assert_eq!(fake.calls(Op::Create), 2, "the tick's create went through");
    assert!(
        fake.stored(&name).is_none(),
        "deleted after the tick's create"
    );
    assert_eq!(a.held(), None);
}
