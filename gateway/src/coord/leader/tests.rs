//! Leader election against the in-memory lease API, in paused time. Timings are client-go's
//! defaults: lease 15 s, renew deadline 10 s, retry period 2 s (jittered retries: 2–4.4 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::coord::fake::{FakeLeases, Op};

const NAME: &str = "portico-leader-lock";
const LEASE: Duration = Duration::from_secs(15);
const DEADLINE: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two campaign attempts (jitter factor 1.2).
const MAX_RETRY: Duration = Duration::from_millis(4_400);

fn timings() -> LeaderTimings {
    LeaderTimings {
        lease_duration: LEASE,
        renew_deadline: DEADLINE,
        retry_period: RETRY,
    }
}

/// A replica running the election until its token fires.
struct Replica {
    elector: Arc<LeaderElector<FakeLeases>>,
    leadership: watch::Receiver<Leadership>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Replica {
    fn start(fake: &FakeLeases, identity: &str) -> Self {
        let elector = Arc::new(LeaderElector::new(
            fake.clone(),
            NAME.to_owned(),
            identity.to_owned(),
            timings(),
        ));
        let leadership = elector.subscribe();
        let stop = CancellationToken::new();
        let task = {
            let elector = elector.clone();
            let stop = stop.clone();
            tokio::spawn(async move { elector.run(stop).await })
        };
        Self {
            elector,
            leadership,
            stop,
            task,
        }
    }

    /// Waits (paused time) until leadership satisfies `want`.
    async fn until(&mut self, within: Duration, want: impl Fn(&Leadership) -> bool) -> Leadership {
        tokio::time::timeout(within, self.leadership.wait_for(|l| want(l)))
            .await
            .expect("leadership reached the expected state in time")
            .expect("the elector is running")
            .clone()
    }

    fn is_leader(&self) -> bool {
        self.leadership.borrow().is_leader
    }

    /// Graceful stop: waits for the release.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("the elector ends cleanly");
    }
}

fn spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

fn stored(fake: &FakeLeases) -> Lease {
    fake.stored(NAME).expect("the leader lease exists")
}

fn at(text: &str) -> MicroTime {
    MicroTime(text.parse().expect("a timestamp"))
}

/// Another replica's leader lease, as it would have written it.
fn held_by(holder: &str, renew_time: &str, transitions: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(LEASE.as_secs() as i32),
            acquire_time: Some(at("2020-01-01T00:00:00Z")),
            renew_time: Some(at(renew_time)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// Records whether `replica` ever leads, at any change of its leadership.
fn watch_for_leadership(replica: &Replica) -> Arc<AtomicBool> {
    let ever = Arc::new(AtomicBool::new(false));
    let mut leadership = replica.leadership.clone();
    let flag = ever.clone();
    tokio::spawn(async move {
        loop {
            if leadership.borrow_and_update().is_leader {
                flag.store(true, Ordering::SeqCst);
            }
            if leadership.changed().await.is_err() {
                return;
            }
        }
    });
    ever
}

/// Records whether `replica`, leading now, ever stops leading, at any change of its leadership.
fn watch_for_step_down(replica: &Replica) -> Arc<AtomicBool> {
    assert!(replica.is_leader(), "leads when the watch starts");
    let stepped_down = Arc::new(AtomicBool::new(false));
    let mut leadership = replica.leadership.clone();
    let flag = stepped_down.clone();
    tokio::spawn(async move {
        loop {
            if !leadership.borrow_and_update().is_leader {
                flag.store(true, Ordering::SeqCst);
            }
            if leadership.changed().await.is_err() {
                return;
            }
        }
    });
    stepped_down
}

#[tokio::test(start_paused = true)]
async fn acquires_a_missing_lease_at_once() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    let state = a.until(Duration::from_millis(1), |l| l.is_leader).await;
    assert_eq!(state.term, Some(0));
    assert_eq!(state.holder.as_deref(), Some("a"));

    let spec = spec(&stored(&fake));
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
    assert_eq!(a.elector.name(), NAME);
    assert_eq!(a.elector.lease().await.unwrap(), Some(stored(&fake)));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn acquires_a_released_lease_at_once_counting_a_transition() {
    let fake = FakeLeases::new();
    let mut released = held_by("b", "2020-01-01T00:00:00Z", 4);
    let spec_mut = released.spec.as_mut().unwrap();
    spec_mut.holder_identity = None;
    spec_mut.lease_duration_seconds = Some(1);
    fake.insert(released);

    let mut a = Replica::start(&fake, "a");
    let state = a.until(Duration::from_millis(1), |l| l.is_leader).await;
    assert_eq!(state.term, Some(5));
    let spec = spec(&stored(&fake));
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(5));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_ne!(spec.acquire_time, Some(at("2020-01-01T00:00:00Z")));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn renews_every_retry_period_without_changing_acquire_time_or_transitions() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let acquired = stored(&fake);

    tokio::time::sleep(RETRY * 3 + Duration::from_millis(100)).await;
    let renewed = stored(&fake);
    assert_eq!(fake.calls(Op::Replace), 3, "one renewal per retry period");
    assert_ne!(
        renewed.metadata.resource_version,
        acquired.metadata.resource_version
    );
    assert_ne!(spec(&renewed).renew_time, spec(&acquired).renew_time);
    assert_eq!(spec(&renewed).acquire_time, spec(&acquired).acquire_time);
    assert_eq!(spec(&renewed).lease_transitions, Some(0));
    assert_eq!(spec(&renewed).holder_identity.as_deref(), Some("a"));
    assert!(a.is_leader());
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn steps_down_at_the_renew_deadline_when_renewals_fail() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let acquired = Instant::now();
    fake.fail_all(LeaseError::Timeout(Duration::from_secs(2)));

    // Failed renewals alone do not end the term before the deadline…
    tokio::time::sleep(DEADLINE - Duration::from_millis(500)).await;
    assert!(a.is_leader(), "still leading before the renew deadline");
    // …and the first failed attempt after it does.
    let state = a.until(RETRY * 2, |l| !l.is_leader).await;
    let after = acquired.elapsed();
    assert!(
        after >= DEADLINE && after < DEADLINE + RETRY,
        "stepped down after {after:?}"
    );
    assert_eq!(state.term, None);
    // Nothing was written: the lease still names this replica until it expires.
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("a"));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn campaigns_again_after_stepping_down_and_reacquires() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    fake.fail_all(LeaseError::Other("apiserver away".to_owned()));
    a.until(DEADLINE + RETRY, |l| !l.is_leader).await;

    // Still campaigning while the apiserver is away.
    let gets = fake.calls(Op::Get);
    tokio::time::sleep(MAX_RETRY * 3).await;
    assert!(fake.calls(Op::Get) >= gets + 3, "campaign attempts go on");
    assert!(!a.is_leader());

    fake.heal();
    let state = a
        .until(MAX_RETRY + Duration::from_millis(1), |l| l.is_leader)
        .await;
    // Its own lease, so the same term: no transition.
    assert_eq!(state.term, Some(0));
    assert_eq!(spec(&stored(&fake)).lease_transitions, Some(0));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn steps_down_when_another_replica_holds_the_lease() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    fake.write_as_other(NAME, |lease| {
        let spec = lease.spec.as_mut().unwrap();
        spec.holder_identity = Some("b".to_owned());
        spec.lease_transitions = Some(1);
    });
    let state = a
        .until(RETRY + Duration::from_millis(1), |l| !l.is_leader)
        .await;
    assert_eq!(state.holder.as_deref(), Some("b"));
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("b"));
    a.stop().await;
    // A stopping non-leader releases nothing.
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn releases_the_lease_on_graceful_stop_and_another_takes_over_at_its_next_retry() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let mut b = Replica::start(&fake, "b");
    tokio::time::sleep(RETRY * 2).await;
    assert!(!b.is_leader());

    let mut a_leadership = a.leadership.clone();
    a.stop().await;
    assert!(!a_leadership.borrow_and_update().is_leader);
    let released = stored(&fake);
    assert_eq!(spec(&released).holder_identity, None);
    assert_eq!(spec(&released).lease_duration_seconds, Some(1));
    assert_eq!(spec(&released).lease_transitions, Some(0));

    let state = b
        .until(MAX_RETRY + Duration::from_millis(1), |l| l.is_leader)
        .await;
    assert_eq!(state.term, Some(1));
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("b"));
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn never_takes_a_valid_lease_held_by_another() {
    let fake = FakeLeases::new();
    // Another replica holds the lease and renews it every 5 s; its renewTime is ancient (its
    // wall clock is off): only the changes count.
    fake.insert(held_by("b", "2001-01-01T00:00:00Z", 7));
    let renewer = {
        let fake = fake.clone();
        tokio::spawn(async move {
            for i in 1.. {
                tokio::time::sleep(Duration::from_secs(5)).await;
                fake.write_as_other(NAME, |lease| {
                    lease.spec.as_mut().unwrap().renew_time =
                        Some(at(&format!("2001-01-01T00:00:{:02}Z", i % 60)));
                });
            }
        })
    };
    let a = Replica::start(&fake, "a");
    let led = watch_for_leadership(&a);
    tokio::time::sleep(Duration::from_secs(120)).await;

    assert!(!led.load(Ordering::SeqCst), "never led");
    assert_eq!(fake.calls(Op::Replace) + fake.calls(Op::Create), 0);
    let spec = spec(&stored(&fake));
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(7));
    assert_eq!(a.leadership.borrow().holder.as_deref(), Some("b"));
    renewer.abort();
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn takes_over_a_lease_unchanged_for_its_duration_on_its_own_clock() {
    let fake = FakeLeases::new();
    // renewTime far in the future: a comparison with the wall clock would never expire it.
    fake.insert(held_by("b", "2999-01-01T00:00:00Z", 2));
    let first_seen = Instant::now();
    let mut a = Replica::start(&fake, "a");

    tokio::time::sleep(LEASE - Duration::from_millis(100)).await;
    assert!(!a.is_leader(), "not before the lease duration");
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("b"));

    let state = a
        .until(MAX_RETRY + Duration::from_millis(1), |l| l.is_leader)
        .await;
    assert!(first_seen.elapsed() >= LEASE);
    assert_eq!(state.term, Some(3));
    let spec = spec(&stored(&fake));
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_ne!(spec.acquire_time, Some(at("2020-01-01T00:00:00Z")));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_old_renew_time_does_not_expire_a_lease_first_seen_just_now() {
    let fake = FakeLeases::new();
    // renewTime long past: a comparison with the wall clock would take it at once.
    fake.insert(held_by("b", "2001-01-01T00:00:00Z", 2));
    let a = Replica::start(&fake, "a");
    let led = watch_for_leadership(&a);
    tokio::time::sleep(LEASE - Duration::from_millis(100)).await;
    assert!(!led.load(Ordering::SeqCst));
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("b"));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn transitions_and_acquire_time_change_only_with_the_holder() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let first = spec(&stored(&fake));
    tokio::time::sleep(RETRY * 5).await;
    let renewed = spec(&stored(&fake));
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(0));

    // b waits for a's lease to expire after a stops renewing (a crash: no release).
    a.task.abort();
    let mut b = Replica::start(&fake, "b");
    let state = b.until(LEASE + MAX_RETRY, |l| l.is_leader).await;
    assert_eq!(state.term, Some(1));
    let taken = spec(&stored(&fake));
    assert_eq!(taken.lease_transitions, Some(1));
    assert_ne!(taken.acquire_time, first.acquire_time);

    tokio::time::sleep(RETRY * 5).await;
    let kept = spec(&stored(&fake));
    assert_eq!(kept.lease_transitions, Some(1));
    assert_eq!(kept.acquire_time, taken.acquire_time);
    assert_ne!(kept.renew_time, taken.renew_time);
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn two_replicas_never_lead_at_once() {
    let fake = FakeLeases::new();
    let a = Replica::start(&fake, "a");
    let b = Replica::start(&fake, "b");
    let mut a_rx = a.leadership.clone();
    let mut b_rx = b.leadership.clone();
    let overlap = Arc::new(AtomicBool::new(false));
    let monitor = {
        let overlap = overlap.clone();
        tokio::spawn(async move {
            loop {
                if a_rx.borrow_and_update().is_leader && b_rx.borrow_and_update().is_leader {
                    overlap.store(true, Ordering::SeqCst);
                }
                tokio::select! {
                    r = a_rx.changed() => if r.is_err() { return },
                    r = b_rx.changed() => if r.is_err() { return },
                }
            }
        })
    };
    // Outages of the apiserver now and then make the leader step down.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(30)).await;
        fake.fail_times(Op::Replace, 6, LeaseError::Timeout(Duration::from_secs(2)));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!overlap.load(Ordering::SeqCst), "both led at once");
    assert!(a.is_leader() != b.is_leader(), "one of them leads");
    monitor.abort();
    a.stop().await;
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_renewal_rereads_the_lease_and_renews_it_while_still_ours() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let stepped_down = watch_for_step_down(&a);
    // Reads take 10 ms, as over a network: a step-down followed at once by a new campaign that
    // takes the lease back would show on the leadership channel.
    fake.delay(Op::Get, Duration::from_millis(10));
    // Someone else writes the lease just before the next renewal (an annotation, holder kept):
    // that renewal's update is a 409.
    fake.before(Op::Replace, |f| {
        f.write_as_other(NAME, |lease| {
            lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert("example.com/note".to_owned(), "touched".to_owned());
        });
    });

    tokio::time::sleep(RETRY + Duration::from_millis(100)).await;
    // Re-read at once and renewed within the same retry period.
    assert_eq!(
        fake.calls(Op::Replace),
        2,
        "the conflicting update, then the renewal"
    );
    let lease = stored(&fake);
    assert_eq!(
        lease.metadata.annotations.as_ref().unwrap()["example.com/note"],
        "touched",
        "renewed on top of the other write"
    );
    assert_eq!(spec(&lease).holder_identity.as_deref(), Some("a"));
    assert_eq!(spec(&lease).lease_transitions, Some(0));

    tokio::time::sleep(DEADLINE * 2).await;
    assert!(!stepped_down.load(Ordering::SeqCst), "never stepped down");
    assert_eq!(a.leadership.borrow().term, Some(0));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn conflicts_on_every_renewal_make_the_leader_step_down_only_at_the_renew_deadline() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let acquired = Instant::now();
    let stepped_down = watch_for_step_down(&a);
    fake.delay(Op::Get, Duration::from_millis(10));
    fake.fail(
        Op::Replace,
        LeaseError::Conflict("the object has been modified".to_owned()),
    );

    // Each retry period re-reads (the lease is still a's) and tries again…
    tokio::time::sleep(DEADLINE - Duration::from_millis(500)).await;
    assert!(
        !stepped_down.load(Ordering::SeqCst),
        "still leading before the renew deadline"
    );
    assert!(fake.calls(Op::Replace) >= 4, "renewal attempts go on");
    // …until the deadline passes without a renewal.
    let state = a.until(RETRY * 2, |l| !l.is_leader).await;
    let after = acquired.elapsed();
    assert!(
        after >= DEADLINE && after < DEADLINE + RETRY,
        "stepped down after {after:?}"
    );
    assert_eq!(state.term, None);
    assert_eq!(spec(&stored(&fake)).holder_identity.as_deref(), Some("a"));
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_conflict_because_another_replica_took_the_lease_steps_down_at_once() {
    let fake = FakeLeases::new();
    let mut a = Replica::start(&fake, "a");
    a.until(Duration::from_millis(1), |l| l.is_leader).await;
    let acquired = Instant::now();
    // b takes the lease between a's read and a's update (as after an expiry on b's clock).
    fake.before(Op::Replace, |f| {
        f.write_as_other(NAME, |lease| {
            let spec = lease.spec.as_mut().unwrap();
            spec.holder_identity = Some("b".to_owned());
            spec.lease_transitions = Some(1);
        });
    });

    let state = a.until(DEADLINE, |l| !l.is_leader).await;
    assert!(
        acquired.elapsed() < RETRY + Duration::from_millis(100),
        "stepped down at the renewal that found b, after {:?}",
        acquired.elapsed()
    );
    assert_eq!(state.holder.as_deref(), Some("b"));
    let spec = spec(&stored(&fake));
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    a.stop().await;
}
