//! Three replicas, one shared PostgreSQL, the simulator as host cluster (leases) and a second
//! simulator as the managed cluster, with short lease timings (3 s leases, 1 s renewals,
//! leader 3/2/1 s, cleanup every second).

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::fleet::{self, Fleet, is_leader};
use portico_e2e::gateway::TestGateway;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);
const ADMIN: &str = "coordination-admin-token";

/// A started replica of `fleet`.
async fn replica(fleet: &Fleet, name: &str) -> TestGateway {
    fleet.replica(name, ADMIN).start().await
}

/// Polls `check` until it returns `Some`, failing after [`WAIT`] with `what`.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet::eventually(what, WAIT, check).await
}

async fn state(gw: &TestGateway, id: &str) -> Value {
    gw.as_admin(Method::GET, &format!("/api/v1/clusters/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_state(gws: &[&TestGateway], id: &str, want: &str) {
    for gw in gws {
        eventually(&format!("{} sees {id} {want}", gw.url), || async {
            (state(gw, id).await["state"] == want).then_some(())
        })
        .await;
    }
}

async fn post(gw: &TestGateway, path: &str) -> Value {
    let response = gw.as_admin(Method::POST, path).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn cluster_lease(sim: &KubeSim) -> Option<Value> {
    sim.list(
        "coordination.k8s.io/v1",
        "Lease",
        Some("default"),
        "type=cluster-sync",
    )
    .ok()?
    .into_iter()
    .next()
    .map(|o| (*o).clone())
}

/// No two terms of leader work overlap (each term's start is after the previous one's last
/// activity), judged on the recorded terms.
async fn assert_terms_never_overlap(gw: &TestGateway) {
    let mut terms = gw.gateway().app().db.leader_terms(1000).await.unwrap();
    terms.sort_by_key(|t| t.started_at);
    assert!(!terms.is_empty());
    for pair in terms.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_end = a.ended_at.unwrap_or(a.active_at);
        assert!(
            b.started_at >= a_end,
            "terms overlap: {a:?} and {b:?} (all: {terms:#?})"
        );
        assert!(
            b.term > a.term || b.instance_id == a.instance_id,
            "{terms:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_and_disconnect_reach_every_replica() {
    let Some(fleet) = Fleet::start("connect_and_disconnect_reach_every_replica").await else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    let b = replica(&fleet, "replica-b").await;
    let c = replica(&fleet, "replica-c").await;
    for gw in [&a, &b, &c] {
        eventually("ready", || async {
            let r = gw
                .request(Method::GET, "/health/ready")
                .send()
                .await
                .unwrap();
            (r.status() == StatusCode::OK).then_some(())
        })
        .await;
    }

    // Registered through A, connected through A: B and C connect from the lease.
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    let view = post(&a, "/api/v1/clusters/managed/connect").await;
    assert_eq!(view["state"], "connected", "{view}");
    wait_state(&[&a, &b, &c], "managed", "connected").await;
    let lease = cluster_lease(&fleet.host).expect("a cluster lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    assert_eq!(
        lease["metadata"]["annotations"]["portico.io/cluster-id"],
        "managed"
    );
    assert_eq!(
        lease["metadata"]["annotations"]["portico.io/config-revision"],
        "1"
    );
    assert_eq!(lease["metadata"]["labels"]["clusterID"], "bWFuYWdlZA");
    assert!(
        lease["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("portico-cluster-")
    );
    assert_eq!(state(&c, "managed").await["leaseHolder"], "replica-a");
    let response = c
        .as_admin(Method::GET, "/k8s/clusters/managed/api/v1/namespaces")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Membership: three instances, one leader, A holds one cluster.
    let instances: Value = b
        .as_admin(Method::GET, "/api/v1/instances")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = instances["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{instances}");
    assert_eq!(items.iter().filter(|i| i["leader"] == true).count(), 1);
    let a_row = items.iter().find(|i| i["id"] == "replica-a").unwrap();
    assert_eq!(a_row["clustersHeld"], 1, "{instances}");

    // A configuration change through C reaches A and B: point the cluster at another sim.
    let other = KubeSim::start().await.unwrap();
    other
        .create(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-in-other"}}),
        )
        .unwrap();
    let response = c
        .as_admin(Method::PUT, "/api/v1/clusters/managed")
        .json(&json!({"kubeconfig": other.kubeconfig()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for gw in [&a, &b, &c] {
        eventually("the new configuration is used", || async {
            let r = gw
                .as_admin(
                    Method::GET,
                    "/k8s/clusters/managed/api/v1/namespaces/only-in-other",
                )
                .send()
                .await
                .unwrap();
            (r.status() == StatusCode::OK).then_some(())
        })
        .await;
    }

    // Disconnect through B: the lease goes, every replica disconnects.
    let view = post(&b, "/api/v1/clusters/managed/disconnect").await;
    assert_eq!(view["state"], "disconnected");
    wait_state(&[&a, &b, &c], "managed", "disconnected").await;
    assert!(cluster_lease(&fleet.host).is_none());
    assert_terms_never_overlap(&a).await;
    for gw in [a, b, c] {
        gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_holder_and_leader_is_replaced_without_disconnecting() {
    let Some(fleet) = Fleet::start("a_killed_holder_and_leader_is_replaced").await else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = replica(&fleet, "replica-b").await;
    let c = replica(&fleet, "replica-c").await;
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    post(&a, "/api/v1/clusters/managed/connect").await;
    wait_state(&[&a, &b, &c], "managed", "connected").await;

    // A (leader and holder) dies without releasing anything.
    a.gateway_crash().await;

    // Exactly one new leader; its work (expired-lease cleanup) takes the cluster lease over.
    let holder = eventually("the lease is taken over", || async {
        let lease = cluster_lease(&fleet.host)?;
        let holder = lease["spec"]["holderIdentity"].as_str()?.to_owned();
        (holder != "replica-a").then_some(holder)
    })
    .await;
    let leaders: Vec<&TestGateway> = [&b, &c].into_iter().filter(|g| is_leader(g)).collect();
    assert_eq!(leaders.len(), 1, "exactly one leader");
    let leader_id = leaders[0].gateway().app().config.instance_id.clone();
    assert_eq!(holder, leader_id, "the leader took the lease over");
    for gw in [&b, &c] {
        let view = state(gw, "managed").await;
        assert_eq!(view["state"], "connected", "{view}");
    }
    let response = b
        .as_admin(Method::GET, "/k8s/clusters/managed/api/v1/namespaces")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_terms_never_overlap(&b).await;
    b.stop().await;
    c.stop().await;
}

/// The leader's cleanup runs once as its term starts, not only a cleanup interval later: when
/// the leader dies with cluster leases, they have expired by the time a new leader is elected,
/// and the new leader takes them over at once. Here the interval is an hour, and the cluster
/// leases (2 s) expire well before the leader lease (5 s), so only that first pass can take
/// the lease over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_takes_over_expired_leases_as_its_term_starts() {
    let Some(fleet) = Fleet::start("a_new_leader_takes_over_expired_leases_at_once").await else {
        return;
    };
    let start = |name: &'static str| {
        fleet
            .replica(name, ADMIN)
            .env("LEASE_DURATION_SECONDS", "2")
            .env("LEASE_RENEW_INTERVAL_SECONDS", "1")
            .env("LEADER_LEASE_DURATION_SECONDS", "5")
            .env("LEADER_RENEW_DEADLINE_SECONDS", "4")
            .env("LEADER_RETRY_PERIOD_SECONDS", "1")
            .env("LEASE_CLEANUP_INTERVAL_SECONDS", "3600")
            .start()
    };
    let a = start("replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = start("replica-b").await;
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    post(&a, "/api/v1/clusters/managed/connect").await;
    wait_state(&[&a, &b], "managed", "connected").await;

    // A (leader and holder) dies without releasing anything.
    a.gateway_crash().await;

    eventually("B leads", || async { is_leader(&b).then_some(()) }).await;
    eventually("B takes the lease over", || async {
        let lease = cluster_lease(&fleet.host)?;
        (lease["spec"]["holderIdentity"] == "replica-b").then_some(())
    })
    .await;
    assert_eq!(state(&b, "managed").await["state"], "connected");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_lease_of_an_unwanted_cluster_is_deleted() {
    let Some(fleet) = Fleet::start("an_expired_lease_of_an_unwanted_cluster_is_deleted").await
    else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = replica(&fleet, "replica-b").await;
    let c = replica(&fleet, "replica-c").await;
    c.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    post(&c, "/api/v1/clusters/managed/connect").await;
    wait_state(&[&a, &b, &c], "managed", "connected").await;

    // The cluster is no longer wanted, but its holder dies before deleting the lease.
    c.gateway()
        .app()
        .db
        .set_desired_state("managed", portico::testing::DesiredState::Disconnected)
        .await
        .unwrap();
    c.gateway_crash().await;

    // The leader deletes the expired lease, and every replica disconnects.
    eventually("the lease is deleted", || async {
        cluster_lease(&fleet.host).is_none().then_some(())
    })
    .await;
    wait_state(&[&a, &b], "managed", "disconnected").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_stop_releases_leadership() {
    let Some(fleet) = Fleet::start("graceful_stop_releases_leadership").await else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = replica(&fleet, "replica-b").await;
    let before = fleet
        .host
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "portico-leader-lock",
        )
        .unwrap();
    let transitions = before["spec"]["leaseTransitions"].as_i64().unwrap();

    a.stop().await;
    let lease = fleet
        .host
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "portico-leader-lock",
        )
        .unwrap();
    // Released (or already taken by B, if B retried in between).
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
    assert!(holder.is_empty() || holder == "replica-b", "{lease}");
    // A's instance lease is gone.
    let instances = fleet
        .host
        .list(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "type=instance",
        )
        .unwrap();
    assert_eq!(instances.len(), 1, "only B's instance lease is left");

    // B takes over at its next retry: a released lease is not waited out.
    eventually("B leads", || async { is_leader(&b).then_some(()) }).await;
    let after = fleet
        .host
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "portico-leader-lock",
        )
        .unwrap();
    assert_eq!(after["spec"]["holderIdentity"], "replica-b");
    assert_eq!(
        after["spec"]["leaseTransitions"].as_i64().unwrap(),
        transitions + 1
    );
    let view: Value = b
        .as_admin(Method::GET, "/api/v1/leader")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["holder"], "replica-b");
    assert_eq!(view["isLeader"], true);
    assert_terms_never_overlap(&b).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_host_apiserver_makes_the_leader_step_down_but_proxying_continues() {
    let Some(fleet) = Fleet::start("a_frozen_host_apiserver").await else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = replica(&fleet, "replica-b").await;
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    post(&a, "/api/v1/clusters/managed/connect").await;
    wait_state(&[&a, &b], "managed", "connected").await;

    fleet.host.faults().freeze();
    eventually("A steps down", || async { (!is_leader(&a)).then_some(()) }).await;
    assert!(!is_leader(&b), "nobody can lead without the host apiserver");
    for gw in [&a, &b] {
        let response = gw
            .as_admin(Method::GET, "/k8s/clusters/managed/api/v1/namespaces")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "proxying continues");
    }

    fleet.host.faults().unfreeze();
    eventually("a leader again", || async {
        (is_leader(&a) || is_leader(&b)).then_some(())
    })
    .await;
    assert!(!(is_leader(&a) && is_leader(&b)));
    assert_terms_never_overlap(&a).await;
    a.stop().await;
    b.stop().await;
}

/// Two cluster ids whose SHA-1 hashes share their first 4 bytes (found by brute force: with
/// 32-bit prefixes a collision turns up after ~80 000 ids).
fn colliding_ids() -> (String, String) {
    use sha1::{Digest, Sha1};
    let mut seen = std::collections::HashMap::new();
    for i in 0u64.. {
        let id = format!("c{i}");
        let digest = Sha1::digest(id.as_bytes());
        let prefix = [digest[0], digest[1], digest[2], digest[3]];
        if let Some(other) = seen.insert(prefix, id.clone()) {
            return (other, id);
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn colliding_lease_names_fall_back_to_eight_bytes() {
    let Some(fleet) = Fleet::start("colliding_lease_names_fall_back_to_eight_bytes").await else {
        return;
    };
    let (first, second) = colliding_ids();
    let a = replica(&fleet, "replica-a").await;
    let b = replica(&fleet, "replica-b").await;
    for id in [&first, &second] {
        a.register_cluster(id, &fleet.managed.kubeconfig())
            .await
            .unwrap();
        post(&a, &format!("/api/v1/clusters/{id}/connect")).await;
    }
    wait_state(&[&a, &b], &first, "connected").await;
    wait_state(&[&a, &b], &second, "connected").await;
    let leases = fleet
        .host
        .list(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "type=cluster-sync",
        )
        .unwrap();
    let mut names: Vec<(String, String)> = leases
        .iter()
        .map(|l| {
            (
                l["metadata"]["annotations"]["portico.io/cluster-id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                l["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let short = "portico-cluster-".len() + 8;
    let lengths: Vec<usize> = names.iter().map(|(_, n)| n.len()).collect();
    assert!(
        lengths.contains(&short) && lengths.contains(&(short + 8)),
        "{names:?}"
    );

    // Disconnecting the second one removes only its own (long-named) lease.
    post(&b, &format!("/api/v1/clusters/{second}/disconnect")).await;
    wait_state(&[&a, &b], &second, "disconnected").await;
    assert_eq!(state(&a, &first).await["state"], "connected");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_that_could_not_be_created_is_retried_and_delete_lets_go_everywhere() {
    let Some(fleet) = Fleet::start("a_lease_that_could_not_be_created_is_retried").await else {
        return;
    };
    let a = replica(&fleet, "replica-a").await;
    let b = replica(&fleet, "replica-b").await;
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();

    // The host apiserver is unreachable while A connects: A connects locally anyway and
    // creates the lease once the host is back, at which point B follows.
    fleet.host.refuse_connections().await;
    let view = post(&a, "/api/v1/clusters/managed/connect").await;
    assert_eq!(view["state"], "connected", "{view}");
    assert_eq!(state(&b, "managed").await["state"], "disconnected");
    fleet.host.accept_connections().await;
    wait_state(&[&a, &b], "managed", "connected").await;
    let lease = eventually("the lease exists", || async { cluster_lease(&fleet.host) }).await;
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");

    // Deleting the cluster through B removes the lease: A lets go too.
    let response = b
        .as_admin(Method::DELETE, "/api/v1/clusters/managed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    eventually("A lets go", || async {
        a.gateway()
            .app()
            .clusters
            .connection("managed")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(cluster_lease(&fleet.host).is_none());
    a.stop().await;
    b.stop().await;
}
