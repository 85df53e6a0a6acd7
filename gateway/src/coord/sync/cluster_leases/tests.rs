//! Cluster lease writes against the in-memory lease API, in paused time (lease duration 60 s).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

use super::*;
use crate::coord::fake::{FakeLeases, Op};

const DURATION: Duration = Duration::from_secs(60);
/// `portico-cluster-<hex sha1("prod")[..4 bytes]>`.
const PROD: &str = "portico-cluster-f6c433ac";

fn cluster_leases(fake: &FakeLeases, identity: &str) -> (ClusterLeases<FakeLeases>, SharedState) {
    let state = SharedState::default();
    let leases = ClusterLeases::new(
        fake.clone(),
        "portico",
        identity,
        DURATION.as_secs() as i32,
        state.clone(),
    );
    (leases, state)
}

fn at(text: &str) -> MicroTime {
    MicroTime(text.parse().expect("a timestamp"))
}

/// The lease another replica would have created for `cluster_id`.
fn held_by(holder: &str, name: &str, cluster_id: &str, revision: i64) -> Lease {
    let mut lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(names::cluster_labels("portico", cluster_id)),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(DURATION.as_secs() as i32),
            acquire_time: Some(at("2020-01-01T00:00:00Z")),
            // Far ahead: only this replica's clock may expire the lease.
            renew_time: Some(at("2999-01-01T00:00:00Z")),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }),
    };
    set_annotation(&mut lease, names::CLUSTER_ID_ANNOTATION, cluster_id);
    set_annotation(
        &mut lease,
        names::REVISION_ANNOTATION,
        &revision.to_string(),
    );
    lease
}

fn spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

fn stored(fake: &FakeLeases, name: &str) -> Lease {
    fake.stored(name).expect("the lease exists")
}

fn holder_of(fake: &FakeLeases, name: &str) -> Option<String> {
    spec(&stored(fake, name)).holder_identity
}

fn revision_of(lease: &Lease) -> Option<&str> {
    annotation(lease, names::REVISION_ANNOTATION)
}

fn writes(fake: &FakeLeases) -> usize {
    fake.calls(Op::Create) + fake.calls(Op::Replace) + fake.calls(Op::Delete)
}

/// Another replica renews: the lease changes (its renewTime stays far ahead).
fn renew_as_other(fake: &FakeLeases, name: &str) {
    fake.write_as_other(name, |lease| {
        let spec = lease.spec.as_mut().unwrap();
        spec.lease_duration_seconds = Some(spec.lease_duration_seconds.unwrap() + 1);
    });
}

// ---- ensure ----

#[tokio::test(start_paused = true)]
async fn ensure_creates_the_lease_and_holds_it() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();

    let lease = stored(&fake, PROD);
    let spec = spec(&lease);
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(
        annotation(&lease, names::CLUSTER_ID_ANNOTATION),
        Some("prod")
    );
    assert_eq!(revision_of(&lease), Some("3"));
    let labels = lease.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "portico");
    assert_eq!(labels["type"], "cluster-sync");
    assert_eq!(labels["clusterID"], "cHJvZA");

    let state = state.lock();
    assert_eq!(state.held.get("prod").map(String::as_str), Some(PROD));
    assert_eq!(state.holder_of("prod").as_deref(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn ensure_keeps_its_own_current_lease_without_writing() {
    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    let before = stored(&fake, PROD);
    let written = writes(&fake);

    leases.ensure("prod", 3).await.unwrap();
    assert_eq!(writes(&fake), written);
    assert_eq!(stored(&fake, PROD), before);
}

#[tokio::test(start_paused = true)]
async fn ensure_with_a_newer_revision_rewrites_its_own_lease_in_the_same_term() {
    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    let before = stored(&fake, PROD);

    leases.ensure("prod", 4).await.unwrap();
    let after = stored(&fake, PROD);
    assert_eq!(revision_of(&after), Some("4"));
    assert_eq!(spec(&after).holder_identity.as_deref(), Some("a"));
    assert_eq!(spec(&after).lease_transitions, Some(0));
    assert_eq!(spec(&after).acquire_time, spec(&before).acquire_time);
}

#[tokio::test(start_paused = true)]
async fn ensure_leaves_a_valid_lease_of_another_replica_and_only_publishes_a_newer_revision() {
    let fake = FakeLeases::new();
    fake.insert(held_by("b", PROD, "prod", 3));
    let (leases, state) = cluster_leases(&fake, "a");

    leases.ensure("prod", 3).await.unwrap();
    assert_eq!(writes(&fake), 0, "already connected by b: nothing written");
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert!(state.lock().held.is_empty());

    leases.ensure("prod", 4).await.unwrap();
    let lease = stored(&fake, PROD);
    assert_eq!(revision_of(&lease), Some("4"));
    assert_eq!(spec(&lease).holder_identity.as_deref(), Some("b"));
    assert_eq!(spec(&lease).lease_transitions, Some(2));
    assert!(state.lock().held.is_empty());
}

#[tokio::test(start_paused = true)]
async fn ensure_takes_over_a_lease_unchanged_for_its_duration_on_this_replicas_clock() {
    let fake = FakeLeases::new();
    fake.insert(held_by("b", PROD, "prod", 3));
    let (leases, state) = cluster_leases(&fake, "a");

    // First seen now: valid for its duration, whatever its renewTime says.
    leases.ensure("prod", 3).await.unwrap();
    tokio::time::advance(DURATION - Duration::from_secs(1)).await;
    leases.ensure("prod", 3).await.unwrap();
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));

    tokio::time::advance(Duration::from_secs(1)).await;
    leases.ensure("prod", 3).await.unwrap();
    let lease = stored(&fake, PROD);
    let spec = spec(&lease);
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_ne!(spec.acquire_time, Some(at("2020-01-01T00:00:00Z")));
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert_eq!(
        state.lock().held.get("prod").map(String::as_str),
        Some(PROD)
    );
}

#[tokio::test(start_paused = true)]
async fn ensure_does_not_take_over_a_lease_that_keeps_changing() {
    let fake = FakeLeases::new();
    fake.insert(held_by("b", PROD, "prod", 3));
    let (leases, _) = cluster_leases(&fake, "a");
    for _ in 0..6 {
        leases.ensure("prod", 3).await.unwrap();
        tokio::time::advance(DURATION / 2).await;
        renew_as_other(&fake, PROD);
    }
    leases.ensure("prod", 3).await.unwrap();
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn ensure_takes_a_released_lease_at_once() {
    let fake = FakeLeases::new();
    let mut released = held_by("b", PROD, "prod", 3);
    released.spec.as_mut().unwrap().holder_identity = None;
    fake.insert(released);
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("a"));
    assert_eq!(spec(&stored(&fake, PROD)).lease_transitions, Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_create_that_conflicts_rereads_and_decides_again() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    // b creates the lease between a's read and a's create.
    fake.before(Op::Create, |f| {
        f.insert(held_by("b", PROD, "prod", 3));
    });
    leases.ensure("prod", 3).await.unwrap();

    assert_eq!(fake.calls(Op::Create), 1);
    assert_eq!(fake.calls(Op::Get), 2, "read again after the 409");
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert!(state.lock().held.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_takeover_that_conflicts_rereads_and_leaves_a_lease_renewed_meanwhile() {
    let fake = FakeLeases::new();
    fake.insert(held_by("b", PROD, "prod", 3));
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    tokio::time::advance(DURATION).await;

    // b renews between a's read and a's takeover.
    fake.before(Op::Replace, |f| renew_as_other(f, PROD));
    leases.ensure("prod", 3).await.unwrap();

    assert_eq!(fake.calls(Op::Replace), 1);
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert_eq!(spec(&stored(&fake, PROD)).lease_transitions, Some(2));
    assert!(state.lock().held.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_write_that_conflicts_is_decided_again_on_the_new_version() {
    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    // Someone touches a's lease between a's read and a's revision update.
    fake.before(Op::Replace, |f| {
        f.write_as_other(PROD, |lease| set_annotation(lease, "example.com/note", "x"));
    });
    leases.ensure("prod", 4).await.unwrap();

    assert_eq!(fake.calls(Op::Replace), 2);
    let lease = stored(&fake, PROD);
    assert_eq!(revision_of(&lease), Some("4"));
    assert_eq!(annotation(&lease, "example.com/note"), Some("x"));
    assert_eq!(spec(&lease).lease_transitions, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_keeps_changing_is_given_up_for_now() {
    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    fake.fail(Op::Create, LeaseError::Conflict("raced".to_owned()));
    let result = leases.ensure("prod", 3).await;
    assert!(matches!(result, Err(LeaseError::Conflict(_))), "{result:?}");
    assert_eq!(fake.calls(Op::Create), ATTEMPTS * 2, "both names, bounded");
}

#[tokio::test(start_paused = true)]
async fn another_clusters_lease_on_the_short_name_sends_it_to_the_eight_byte_name() {
    let fake = FakeLeases::new();
    // The 4-byte name of "prod" is taken by a colliding id.
    fake.insert(held_by("b", PROD, "other", 9));
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();

    let long = names::cluster("portico", "prod", true);
    assert_ne!(long, PROD);
    let lease = stored(&fake, &long);
    assert_eq!(
        annotation(&lease, names::CLUSTER_ID_ANNOTATION),
        Some("prod")
    );
    assert_eq!(spec(&lease).holder_identity.as_deref(), Some("a"));
    // The other cluster's lease is untouched.
    assert_eq!(
        annotation(&stored(&fake, PROD), names::CLUSTER_ID_ANNOTATION),
        Some("other")
    );
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert_eq!(
        state.lock().held.get("prod").map(String::as_str),
        Some(long.as_str())
    );

    // Renewal and delete find the long name; the colliding lease stays.
    tokio::time::advance(Duration::from_secs(20)).await;
    let before = stored(&fake, &long);
    leases.renew("prod", &long).await.unwrap();
    assert_ne!(
        stored(&fake, &long).metadata.resource_version,
        before.metadata.resource_version
    );
    leases.delete("prod").await.unwrap();
    assert!(fake.stored(&long).is_none());
    assert!(fake.stored(PROD).is_some());
}

#[tokio::test]
async fn two_real_ids_with_one_short_name_get_two_leases() {
    // Ids whose SHA-1 hashes share their first 4 bytes (brute force, ~80 000 ids).
    let (first, second) = {
        use sha1::{Digest, Sha1};
        let mut seen = std::collections::HashMap::new();
        let mut found = None;
        for i in 0u64.. {
            let id = format!("c{i}");
            let digest = Sha1::digest(id.as_bytes());
            if let Some(other) =
                seen.insert([digest[0], digest[1], digest[2], digest[3]], id.clone())
            {
                found = Some((other, id));
                break;
            }
        }
        found.unwrap()
    };
    let short = names::cluster("portico", &first, false);
    assert_eq!(short, names::cluster("portico", &second, false));

    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure(&first, 1).await.unwrap();
    leases.ensure(&second, 1).await.unwrap();
    let long = names::cluster("portico", &second, true);
    assert_eq!(
        annotation(&stored(&fake, &short), names::CLUSTER_ID_ANNOTATION),
        Some(first.as_str())
    );
    assert_eq!(
        annotation(&stored(&fake, &long), names::CLUSTER_ID_ANNOTATION),
        Some(second.as_str())
    );
}

// ---- renew ----

#[tokio::test(start_paused = true)]
async fn renew_writes_a_new_renew_time_in_the_same_term() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    let before = stored(&fake, PROD);
    tokio::time::advance(Duration::from_secs(20)).await;

    leases.renew("prod", PROD).await.unwrap();
    let after = stored(&fake, PROD);
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_ne!(spec(&after).renew_time, spec(&before).renew_time);
    assert_eq!(spec(&after).acquire_time, spec(&before).acquire_time);
    assert_eq!(spec(&after).lease_transitions, Some(0));
    let state = state.lock();
    assert!(state.held.contains_key("prod"));
    assert_eq!(
        state.known[PROD].lease.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_an_error_and_the_lease_stays_held_for_the_next_tick() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    fake.fail_times(Op::Replace, 1, LeaseError::Timeout(Duration::from_secs(10)));

    assert!(matches!(
        leases.renew("prod", PROD).await,
        Err(LeaseError::Timeout(_))
    ));
    assert!(state.lock().held.contains_key("prod"));
    let before = stored(&fake, PROD);
    leases.renew("prod", PROD).await.unwrap();
    assert_ne!(
        stored(&fake, PROD).metadata.resource_version,
        before.metadata.resource_version
    );
}

#[tokio::test(start_paused = true)]
async fn renewal_stops_for_a_lease_now_validly_held_by_another() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    let taken = fake.write_as_other(PROD, |lease| {
        lease.spec.as_mut().unwrap().holder_identity = Some("b".to_owned());
    });

    leases.renew("prod", PROD).await.unwrap();
    // The write on the lease as last seen here answered 409: nothing was written.
    assert_eq!(
        stored(&fake, PROD).metadata.resource_version,
        taken.metadata.resource_version
    );
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert!(!state.lock().held.contains_key("prod"));
}

#[tokio::test(start_paused = true)]
async fn renewing_a_lease_unchanged_since_this_replica_wrote_it_is_one_write_and_no_read() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    let (gets, replaces) = (fake.calls(Op::Get), fake.calls(Op::Replace));

    for tick in 1..=3 {
        tokio::time::advance(Duration::from_secs(20)).await;
        leases.renew("prod", PROD).await.unwrap();
        assert_eq!(fake.calls(Op::Get), gets, "tick {tick}");
        assert_eq!(fake.calls(Op::Replace), replaces + tick, "tick {tick}");
    }
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("a"));
    // What the next tick writes on: the lease as this tick left it.
    let known = state.lock().known[PROD].lease.clone();
    assert_eq!(known, stored(&fake, PROD));
}

#[tokio::test(start_paused = true)]
async fn a_renewal_whose_lease_changed_meanwhile_reads_it_and_renews_it_if_still_held() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    // A change this replica has not seen (say, a new revision published by another replica).
    renew_as_other(&fake, PROD);
    let changed = stored(&fake, PROD);

    leases.renew("prod", PROD).await.unwrap();
    let renewed = stored(&fake, PROD);
    let version = |lease: &Lease| -> u64 {
        let version = lease.metadata.resource_version.as_deref();
        version
            .and_then(|v| v.parse().ok())
            .expect("a numeric resourceVersion")
    };
    assert!(
        version(&renewed) > version(&changed)
            && spec(&renewed).renew_time != spec(&changed).renew_time,
        "written again with a new renewTime: {renewed:?}"
    );
    assert_eq!(spec(&renewed).holder_identity.as_deref(), Some("a"));
    assert!(state.lock().held.contains_key("prod"));
}

#[tokio::test(start_paused = true)]
async fn renewal_claims_back_a_lease_whose_other_holder_let_it_expire() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    fake.write_as_other(PROD, |lease| {
        lease.spec.as_mut().unwrap().holder_identity = Some("b".to_owned());
    });
    leases.renew("prod", PROD).await.unwrap();
    // Held again (say by a new connect), and b never renewed for the lease's duration.
    state.lock().held.insert("prod".to_owned(), PROD.to_owned());
    tokio::time::advance(DURATION).await;

    leases.renew("prod", PROD).await.unwrap();
    let spec = spec(&stored(&fake, PROD));
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test(start_paused = true)]
async fn renewal_stops_for_a_deleted_lease() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    fake.remove(PROD);
    leases.renew("prod", PROD).await.unwrap();
    assert!(!state.lock().held.contains_key("prod"));
    assert!(fake.stored(PROD).is_none(), "not created again");
}

// ---- revision, delete ----

#[tokio::test(start_paused = true)]
async fn a_new_revision_is_published_on_the_known_lease_whoever_holds_it() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    let lease = fake.insert(held_by("b", PROD, "prod", 3));
    state.lock().remember("prod", lease);
    // A racing renewal of b's: re-read and write again.
    fake.before(Op::Replace, |f| renew_as_other(f, PROD));

    leases.publish_revision("prod", 7).await;
    let lease = stored(&fake, PROD);
    assert_eq!(revision_of(&lease), Some("7"));
    assert_eq!(spec(&lease).holder_identity.as_deref(), Some("b"));
    assert_eq!(fake.calls(Op::Replace), 2);
}

#[tokio::test(start_paused = true)]
async fn delete_carries_preconditions_and_rereads_on_a_conflict() {
    let fake = FakeLeases::new();
    let (leases, _) = cluster_leases(&fake, "a");
    leases.ensure("prod", 3).await.unwrap();
    // A renewal lands between the read and the delete: the precondition fails once.
    fake.before(Op::Delete, |f| renew_as_other(f, PROD));

    leases.delete("prod").await.unwrap();
    assert_eq!(fake.calls(Op::Delete), 2);
    assert!(fake.stored(PROD).is_none());
}

// ---- the leader's cleanup ----

/// b's lease, known here and unchanged for its duration.
async fn expired_lease_of_b(fake: &FakeLeases, state: &SharedState) -> Known {
    let lease = fake.insert(held_by("b", PROD, "prod", 3));
    state.lock().remember("prod", lease);
    tokio::time::advance(DURATION).await;
    let expired = state.lock().expired();
    assert_eq!(expired.len(), 1);
    expired.into_iter().next().unwrap()
}

#[tokio::test(start_paused = true)]
async fn cleanup_takes_over_the_expired_lease_of_a_wanted_cluster() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    let known = expired_lease_of_b(&fake, &state).await;

    assert_eq!(leases.clean(&known, true).await.unwrap(), Cleanup::TookOver);
    let spec = spec(&stored(&fake, PROD));
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(
        state.lock().held.get("prod").map(String::as_str),
        Some(PROD)
    );
    assert!(state.lock().expired().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cleanup_deletes_the_expired_lease_of_an_unwanted_cluster() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    let known = expired_lease_of_b(&fake, &state).await;

    assert_eq!(leases.clean(&known, false).await.unwrap(), Cleanup::Deleted);
    assert!(fake.stored(PROD).is_none());
    assert!(state.lock().deleting.contains("prod"));
}

#[tokio::test(start_paused = true)]
async fn cleanup_leaves_a_lease_renewed_since_it_was_listed() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    let known = expired_lease_of_b(&fake, &state).await;
    renew_as_other(&fake, PROD);

    assert_eq!(leases.clean(&known, true).await.unwrap(), Cleanup::Renewed);
    assert_eq!(leases.clean(&known, false).await.unwrap(), Cleanup::Renewed);
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    fake.remove(PROD);
    assert_eq!(leases.clean(&known, true).await.unwrap(), Cleanup::Gone);
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_takeover_that_conflicts_takes_nothing() {
    let fake = FakeLeases::new();
    let (leases, state) = cluster_leases(&fake, "a");
    let known = expired_lease_of_b(&fake, &state).await;
    fake.before(Op::Replace, |f| renew_as_other(f, PROD));

    assert!(matches!(
        leases.clean(&known, true).await,
        Err(LeaseError::Conflict(_))
    ));
    assert_eq!(holder_of(&fake, PROD).as_deref(), Some("b"));
    assert!(!state.lock().held.contains_key("prod"));
}
