//! The fake keeps the apiserver's rules, or the coordination tests built on it prove nothing.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn lease(name: &str, holder: &str, kind: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                ("app".to_owned(), "portico".to_owned()),
                ("type".to_owned(), kind.to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(60),
            ..LeaseSpec::default()
        }),
    }
}

fn rv(lease: &Lease) -> u64 {
    lease
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

fn with_holder(mut lease: Lease, holder: &str) -> Lease {
    lease.spec.as_mut().unwrap().holder_identity = Some(holder.to_owned());
    lease
}

#[tokio::test]
async fn create_assigns_uid_and_version_and_refuses_an_existing_name() {
    let fake = FakeLeases::new();
    let created = fake.create(&lease("l", "a", "x")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(rv(&created), 1);
    assert!(matches!(
        fake.create(&lease("l", "b", "x")).await,
        Err(LeaseError::Conflict(_))
    ));
    let mut with_version = lease("m", "a", "x");
    with_version.metadata.resource_version = Some("5".to_owned());
    assert!(matches!(
        fake.create(&with_version).await,
        Err(LeaseError::Other(_))
    ));
    assert_eq!(fake.get("missing").await.unwrap(), None);
}

#[tokio::test]
async fn replace_is_conditional_on_the_resource_version() {
    let fake = FakeLeases::new();
    let created = fake.create(&lease("l", "a", "x")).await.unwrap();
    let updated = fake
        .replace(&with_holder(created.clone(), "b"))
        .await
        .unwrap();
    assert!(rv(&updated) > rv(&created), "every write bumps the version");
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    // A write based on the old version loses.
    assert!(matches!(
        fake.replace(&with_holder(created.clone(), "c")).await,
        Err(LeaseError::Conflict(_))
    ));
    // No version at all: refused (422 on a real apiserver).
    let mut unversioned = with_holder(updated.clone(), "c");
    unversioned.metadata.resource_version = None;
    assert!(matches!(
        fake.replace(&unversioned).await,
        Err(LeaseError::Other(_))
    ));
    // Another object's uid: a conflict.
    let mut other_uid = with_holder(updated.clone(), "c");
    other_uid.metadata.uid = Some("someone-else".to_owned());
    assert!(matches!(
        fake.replace(&other_uid).await,
        Err(LeaseError::Conflict(_))
    ));
    // Missing: 404.
    let mut missing = updated.clone();
    missing.metadata.name = Some("missing".to_owned());
    assert!(matches!(
        fake.replace(&missing).await,
        Err(LeaseError::NotFound)
    ));
    // A write that changes nothing keeps the version (a no-op on etcd).
    let same = fake.replace(&updated).await.unwrap();
    assert_eq!(rv(&same), rv(&updated));
    assert_eq!(
        fake.stored("l")
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn delete_honours_uid_and_version_preconditions() {
    let fake = FakeLeases::new();
    let created = fake.create(&lease("l", "a", "x")).await.unwrap();
    let renewed = fake
        .replace(&with_holder(created.clone(), "b"))
        .await
        .unwrap();

    assert!(matches!(
        fake.delete(&created).await,
        Err(LeaseError::Conflict(_))
    ));
    let mut wrong_uid = renewed.clone();
    wrong_uid.metadata.uid = Some("someone-else".to_owned());
    assert!(matches!(
        fake.delete(&wrong_uid).await,
        Err(LeaseError::Conflict(_))
    ));
    assert!(fake.stored("l").is_some());

    fake.delete(&renewed).await.unwrap();
    assert!(fake.stored("l").is_none());
    assert!(matches!(
        fake.delete(&renewed).await,
        Err(LeaseError::NotFound)
    ));
}

#[tokio::test]
async fn list_filters_by_labels_and_returns_the_store_version() {
    let fake = FakeLeases::new();
    fake.create(&lease("c1", "a", "cluster-sync"))
        .await
        .unwrap();
    fake.create(&lease("i1", "a", "instance")).await.unwrap();
    let (items, version) = fake.list("app=portico,type=cluster-sync").await.unwrap();
    let names: Vec<_> = items
        .iter()
        .filter_map(|l| l.metadata.name.clone())
        .collect();
    assert_eq!(names, ["c1"]);
    assert_eq!(version, "2");
}

#[tokio::test(start_paused = true)]
async fn watch_replays_after_its_version_follows_live_changes_and_ends_at_its_timeout() {
    let fake = FakeLeases::new();
    let first = fake
        .create(&lease("c1", "a", "cluster-sync"))
        .await
        .unwrap();
    let (_, version) = fake.list("type=cluster-sync").await.unwrap();
    let renewed = fake.replace(&with_holder(first, "b")).await.unwrap();
    fake.create(&lease("i1", "a", "instance")).await.unwrap();

    let mut events = fake
        .watch("type=cluster-sync", &version, Duration::from_secs(30))
        .await
        .unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Modified(l))) => assert_eq!(rv(&l), rv(&renewed)),
        other => panic!("expected the replayed change, got {other:?}"),
    }
    fake.delete(&renewed).await.unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Deleted(l))) => assert_eq!(l.metadata.name.as_deref(), Some("c1")),
        other => panic!("expected the live delete, got {other:?}"),
    }
    // Nothing more: the stream ends at its timeout (the instance lease never shows).
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn injected_failures_and_hooks() {
    let fake = FakeLeases::new();
    fake.fail_times(Op::Get, 2, LeaseError::Timeout(Duration::from_secs(1)));
    assert!(matches!(fake.get("l").await, Err(LeaseError::Timeout(_))));
    assert!(matches!(fake.get("l").await, Err(LeaseError::Timeout(_))));
    assert!(matches!(fake.get("l").await, Ok(None)));
    assert_eq!(fake.calls(Op::Get), 3);

    // Another writer gets in between: the create now conflicts.
    fake.before(Op::Create, |f| {
        f.insert(lease("l", "b", "x"));
    });
    assert!(matches!(
        fake.create(&lease("l", "a", "x")).await,
        Err(LeaseError::Conflict(_))
    ));

    fake.fail_all(LeaseError::Other("away".to_owned()));
    assert!(fake.list("type=x").await.is_err());
    fake.heal();
    assert_eq!(fake.list("type=x").await.unwrap().0.len(), 1);

    // Another replica's writes go through the same rules.
    let before = fake.stored("l").unwrap();
    let after = fake.write_as_other("l", |l| {
        l.spec.as_mut().unwrap().lease_duration_seconds = Some(1);
    });
    assert!(rv(&after) > rv(&before));
    assert!(matches!(
        fake.replace(&before).await,
        Err(LeaseError::Conflict(_))
    ));
    fake.remove("l");
    assert_eq!(fake.get("l").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_call_is_served_after_its_latency_on_the_store_as_it_is_then() {
    let fake = FakeLeases::new();
    fake.delay(Op::Get, Duration::from_secs(3));
    let start = tokio::time::Instant::now();
    let get = tokio::spawn({
        let fake = fake.clone();
        async move { fake.get("l").await }
    });
    // Another writer while the get is in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    fake.insert(lease("l", "b", "x"));
    let got = get.await.unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        got.and_then(|l| l.spec).unwrap().holder_identity.as_deref(),
        Some("b")
    );
    // Other operations are not slowed.
    let before = tokio::time::Instant::now();
    fake.list("type=x").await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}
