use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::crypto::SecretKey;

/// Bound on waiting for background work in these tests (never reached when things work).
const WAIT: Duration = Duration::from_secs(10);

fn event(kind: ClusterEventKind, initiator: bool) -> ClusterEvent {
    ClusterEvent {
        cluster_id: "prod".to_owned(),
        kind,
        initiator: if initiator {
            Initiator::ThisReplica
        } else {
            Initiator::OtherReplica
        },
        instance_id: "replica-a".to_owned(),
        at: 1,
        server_version: None,
    }
}

/// A sink with one `cluster`- and one `replica`-scoped hook; each run reports its name.
struct FakeSink {
    ran: mpsc::UnboundedSender<String>,
}

impl HookSink for FakeSink {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn plan<'a>(&'a self, _event: &'a ClusterEvent) -> BoxFuture<'a, Result<Vec<Planned>>> {
        let planned = [
            ("per-cluster", HookScope::Cluster),
            ("per-replica", HookScope::Replica),
        ]
        .into_iter()
        .map(|(name, scope)| {
            let ran = self.ran.clone();
            Planned {
                hook: name.to_owned(),
                scope,
                run: Box::pin(async move {
                    ran.send(name.to_owned()).unwrap();
                    Outcome::Delivered
                }),
            }
        })
        .collect();
        Box::pin(async move { Ok(planned) })
    }
}

fn dispatcher() -> (Hooks, mpsc::UnboundedReceiver<String>, TaskTracker, Metrics) {
    let (ran, rx) = mpsc::unbounded_channel();
    let metrics = Metrics::new();
    let tasks = TaskTracker::new();
    let hooks = Hooks::new(
        vec![Arc::new(FakeSink { ran })],
        &metrics,
        tasks.clone(),
        CancellationToken::new(),
    );
    (hooks, rx, tasks, metrics)
}

async fn ran(tasks: &TaskTracker, rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("the deliveries finish");
    let mut names = Vec::new();
    while let Ok(name) = rx.try_recv() {
        names.push(name);
    }
    names.sort();
    names
}

#[test]
fn cluster_scope_needs_the_initiator() {
    let mine = event(ClusterEventKind::Connected, true);
    let theirs = event(ClusterEventKind::Connected, false);
    assert!(fires(HookScope::Cluster, &mine));
    assert!(!fires(HookScope::Cluster, &theirs));
    assert!(fires(HookScope::Replica, &mine));
    assert!(fires(HookScope::Replica, &theirs));
}

#[tokio::test]
async fn an_event_another_replica_initiated_fires_only_replica_scoped_hooks() {
    let (hooks, mut rx, tasks, metrics) = dispatcher();
    let started = hooks
        .dispatch(&event(ClusterEventKind::Disconnected, false))
        .await;
    assert_eq!(started, 1);
    assert_eq!(ran(&tasks, &mut rx).await, ["per-replica"]);
    let text = metrics.encode();
    assert!(
        text.contains(r#"portico_hook_deliveries_total{kind="fake",result="delivered"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn an_event_this_replica_initiated_fires_every_hook() {
    let (hooks, mut rx, tasks, _metrics) = dispatcher();
    let started = hooks
        .dispatch(&event(ClusterEventKind::Connected, true))
        .await;
    assert_eq!(started, 2);
    assert_eq!(ran(&tasks, &mut rx).await, ["per-cluster", "per-replica"]);
}

#[tokio::test]
async fn the_listener_dispatches_broadcast_events_until_shutdown() {
    let (ran, mut rx) = mpsc::unbounded_channel();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let hooks = Hooks::new(
        vec![Arc::new(FakeSink { ran })],
        &Metrics::new(),
        tasks.clone(),
        shutdown.clone(),
    );
    let (sender, receiver) = broadcast::channel(16);
    hooks.listen(receiver);
    sender
        .send(event(ClusterEventKind::Connected, false))
        .unwrap();
    let name = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery runs")
        .unwrap();
    assert_eq!(name, "per-replica");
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("the listener stops on shutdown");
}

fn webhook() -> Webhook {
    Webhook {
        id: "w1".to_owned(),
        name: "audit".to_owned(),
        url: "https://hooks.example.com/portico".to_owned(),
        sealed_secret: Vec::new(),
        events: vec![EventKind::Connected],
        scope: HookScope::Cluster,
        clusters: None,
        enabled: true,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn a_webhook_wants_its_events_and_clusters_only() {
    let connected = event(ClusterEventKind::Connected, true);
    let disconnected = event(ClusterEventKind::Disconnected, true);
    let mut hook = webhook();
    assert!(hook.wants(&connected));
    assert!(!hook.wants(&disconnected));
    hook.clusters = Some(vec!["staging".to_owned()]);
    assert!(!hook.wants(&connected));
    hook.clusters = Some(vec!["staging".to_owned(), "prod".to_owned()]);
    assert!(hook.wants(&connected));
    hook.enabled = false;
    assert!(!hook.wants(&connected));
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        webhook::signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn a_sealed_secret_opens_only_for_its_webhook() {
    let key = SecretKey::generate();
    let mut hook = webhook();
    hook.sealed_secret = Webhook::seal_secret(&key, "w1", "s3cret");
    assert_eq!(hook.open_secret(&key).unwrap(), b"s3cret");
    hook.id = "w2".to_owned();
    assert!(matches!(
        hook.open_secret(&key),
        Err(HookError::Sealed(id, _)) if id == "w2"
    ));
}

#[test]
fn backoff_doubles_from_the_base_delay_up_to_a_cap() {
    let options = DeliveryOptions {
        retry_delay: Duration::from_secs(1),
        ..DeliveryOptions::default()
    };
    let waits: Vec<u64> = (1..=4).map(|n| options.backoff(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8]);
    assert_eq!(options.backoff(40), MAX_BACKOFF);
    let fast = DeliveryOptions {
        retry_delay: Duration::from_millis(1),
        ..options
    };
    assert_eq!(fast.backoff(3), Duration::from_millis(4));
}
