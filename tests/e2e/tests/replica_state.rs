//! Every replica's local connection state, readable on every replica: the storage on SQLite
//! and PostgreSQL, and three replicas sharing PostgreSQL where one replica's connection fails,
//! one stops cleanly and one is killed.

use std::collections::BTreeMap;
use std::time::Duration;

use portico::config::DatabaseUrl;
use portico::testing::{ClusterRecord, Db, DesiredState, PublishedState, now_millis};
use portico_e2e::fleet::{self, Fleet};
use portico_e2e::gateway::TestGateway;
use portico_e2e::postgres::TestPostgres;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);
const ADMIN: &str = "replica-state-admin-token";

fn cluster(id: &str) -> ClusterRecord {
    ClusterRecord {
        id: id.to_owned(),
        name: id.to_owned(),
        server: "https://example.invalid".to_owned(),
        context: None,
        namespace: None,
        sealed_credentials: vec![1, 2, 3],
        labels: BTreeMap::new(),
        desired_state: DesiredState::Connected,
        config_revision: 1,
        created_at: now_millis(),
        updated_at: now_millis(),
    }
}

fn published(id: &str, state: &'static str, error: Option<&str>) -> PublishedState {
    PublishedState {
        cluster_id: id.to_owned(),
        state,
        last_error: error.map(str::to_owned),
        since: 1_000,
    }
}

/// The same checks on both back ends.
async fn exercise_replica_states(db: &Db) {
    // More clusters than one upsert statement takes (500 rows), so the batch spans statements.
    let ids: Vec<String> = (0..1_200).map(|i| format!("c{i:04}")).collect();
    for id in &ids {
        db.insert_cluster(&cluster(id)).await.unwrap();
    }
    let burst: Vec<PublishedState> = ids
        .iter()
        .map(|id| published(id, "connected", None))
        .collect();
    // First publication: the replica had no heartbeat yet.
    assert!(!db.publish_replica_states("a", &burst, 5).await.unwrap());
    assert!(
        db.publish_replica_states("a", &burst[..3], 6)
            .await
            .unwrap()
    );
    assert!(
        !db.publish_replica_states("b", &[published("c0000", "failed", Some("refused"))], 7)
            .await
            .unwrap()
    );

    let all = db.replica_states(None, 30_000).await.unwrap();
    assert_eq!(all.len(), 1_200);
    assert!(all.values().flatten().all(|r| !r.stale));
    let first = &all["c0000"];
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(
        (
            first[0].instance.as_str(),
            first[0].state.as_str(),
            first[0].updated_at
        ),
        ("a", "connected", 6)
    );
    assert_eq!(
        (first[1].instance.as_str(), first[1].state.as_str()),
        ("b", "failed")
    );
    assert_eq!(first[1].error.as_deref(), Some("refused"));
    assert_eq!(first[1].since, 1_000);

    // One cluster's rows only; a later write replaces the replica's row.
    db.publish_replica_states("a", &[published("c0001", "failed", Some("timeout"))], 8)
        .await
        .unwrap();
    let one = db.replica_states(Some(&["c0001"]), 30_000).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one["c0001"].len(), 1);
    assert_eq!(one["c0001"][0].state, "failed");
    assert_eq!(one["c0001"][0].error.as_deref(), Some("timeout"));
    // A page of clusters: exactly those asked for, in one query; an empty page reads nothing.
    let page = db
        .replica_states(Some(&["c0000", "c0001", "c1199", "absent"]), 30_000)
        .await
        .unwrap();
    let mut keys: Vec<&str> = page.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["c0000", "c0001", "c1199"]);
    assert_eq!(page["c0000"].len(), 2);
    assert!(
        db.replica_states(Some(&[]), 30_000)
            .await
            .unwrap()
            .is_empty()
    );

    // A replica silent for longer than the stale window is shown stale; the others are not.
    db.age_replica_heartbeat("b", 60_000).await.unwrap();
    let first = &db.replica_states(Some(&["c0000"]), 30_000).await.unwrap()["c0000"];
    assert!(!first[0].stale && first[1].stale, "{first:?}");

    // The leader's cleanup: nothing within the retention, then the silent replica's rows.
    assert_eq!(db.prune_replica_states(120_000).await.unwrap(), 0);
    assert_eq!(db.prune_replica_states(30_000).await.unwrap(), 1);
    let first = &db.replica_states(Some(&["c0000"]), 30_000).await.unwrap()["c0000"];
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].instance, "a");
    // Its heartbeat went too: a replica that comes back publishes everything again.
    assert!(!db.replica_heartbeat("b").await.unwrap());
    assert!(db.replica_heartbeat("a").await.unwrap());

    // Rows of a deleted cluster are not shown, and the cleanup deletes them.
    assert!(db.delete_cluster("c0002").await.unwrap());
    assert!(
        !db.replica_states(None, 30_000)
            .await
            .unwrap()
            .contains_key("c0002")
    );
    assert_eq!(db.prune_replica_states(120_000).await.unwrap(), 1);

    // A clean shutdown deletes the replica's rows.
    db.unpublish_replica("a").await.unwrap();
    assert!(db.replica_states(None, 30_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn replica_states_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("portico.db")))
        .await
        .unwrap();
    exercise_replica_states(&db).await;
}

#[tokio::test]
async fn replica_states_on_postgres() {
    let Some(pg) = TestPostgres::start_or_skip("replica_states_on_postgres") else {
        return;
    };
    let url = DatabaseUrl::Postgres(pg.create_database("replicas").unwrap());
    let db = Db::connect(&url).await.unwrap();
    exercise_replica_states(&db).await;
}

async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet::eventually(what, WAIT, check).await
}

async fn get(gw: &TestGateway, path: &str) -> Value {
    let response = gw.as_admin(Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The `replicas` of cluster `id` as `gw` answers, by instance.
async fn replicas(gw: &TestGateway, id: &str) -> BTreeMap<String, Value> {
    let view = get(gw, &format!("/api/v1/clusters/{id}")).await;
    view["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("no replicas in {view}"))
        .iter()
        .map(|r| (r["instance"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// A fleet replica whose states are heartbeated every second (stale after 3 s, deleted by
/// the leader after 6 s) and whose cluster heartbeat runs every `cluster_heartbeat` seconds.
async fn replica(fleet: &Fleet, name: &str, cluster_heartbeat: &str) -> TestGateway {
    fleet
        .replica(name, ADMIN)
        .env("REPLICA_STATE_INTERVAL_SECONDS", "1")
        .env("REPLICA_STATE_RETENTION_SECONDS", "6")
        .env("HEARTBEAT_INTERVAL_SECONDS", cluster_heartbeat)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_shows_every_replicas_connection_state() {
    let Some(fleet) = Fleet::start("every_replica_shows_every_replicas_connection_state").await
    else {
        return;
    };
    // A checks the cluster every second; B and C every 30 s, so only A notices a failure
    // within this test.
    let a = replica(&fleet, "replica-a", "1").await;
    let b = replica(&fleet, "replica-b", "30").await;
    let c = replica(&fleet, "replica-c", "30").await;
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
    a.connect_sim("managed", &fleet.managed).await.unwrap();

    // B answers with all three replicas connected, read from the shared database.
    eventually("B shows all three replicas connected", || async {
        let rows = replicas(&b, "managed").await;
        let all = ["replica-a", "replica-b", "replica-c"].iter().all(|r| {
            rows.get(*r)
                .is_some_and(|v| v["state"] == "connected" && v["stale"] == false)
        });
        (rows.len() == 3 && all).then_some(())
    })
    .await;

    // The cluster fails for A only: B's answer shows A's failure and A's error.
    fleet
        .managed
        .faults()
        .set_path_prefix(Some("/version".into()));
    fleet.managed.faults().set_failure_rate(1.0, 503);
    let a_row = eventually("B shows A failed", || async {
        let rows = replicas(&b, "managed").await;
        let a_row = rows.get("replica-a")?.clone();
        (a_row["state"] == "failed").then_some(a_row)
    })
    .await;
    assert!(
        a_row["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed heartbeats")),
        "{a_row}"
    );
    assert_eq!(a_row["stale"], false, "{a_row}");
    let rows = replicas(&b, "managed").await;
    assert_eq!(rows["replica-b"]["state"], "connected", "{rows:?}");
    assert_eq!(rows["replica-c"]["state"], "connected", "{rows:?}");

    // The matrix for all clusters, from C, says the same.
    let matrix = get(&c, "/api/v1/replica-states").await;
    assert_eq!(
        matrix["instances"],
        serde_json::json!(["replica-a", "replica-b", "replica-c"]),
        "{matrix}"
    );
    let item = &matrix["items"][0];
    assert_eq!(item["cluster"], "managed", "{matrix}");
    let a_in_matrix = item["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == "replica-a")
        .unwrap();
    assert_eq!(a_in_matrix["state"], "failed", "{matrix}");
    // The list carries the same rows.
    let list = get(&c, "/api/v1/clusters").await;
    assert_eq!(
        list["items"][0]["replicas"].as_array().unwrap().len(),
        3,
        "{list}"
    );
    fleet.managed.faults().clear();

    // A clean stop deletes B's rows at once.
    b.stop().await;
    let rows = replicas(&a, "managed").await;
    assert!(!rows.contains_key("replica-b"), "{rows:?}");

    // A killed replica's rows stay, shown stale, until the leader deletes them.
    c.gateway_crash().await;
    eventually("A shows C stale", || async {
        let rows = replicas(&a, "managed").await;
        (rows.get("replica-c")?["stale"] == true).then_some(())
    })
    .await;
    eventually("C's rows are deleted", || async {
        let rows = replicas(&a, "managed").await;
        (!rows.contains_key("replica-c")).then_some(())
    })
    .await;
    assert!(replicas(&a, "managed").await.contains_key("replica-a"));
}

/// Standalone: the matrix and the list show only clusters the token has a grant for, and the
/// replica's own row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matrix_follows_grants() {
    let sim = kube_sim::KubeSim::start().await.unwrap();
    let gw = TestGateway::builder().start().await;
    gw.connect_sim("seen", &sim).await.unwrap();
    gw.connect_sim("hidden", &sim).await.unwrap();
    let token = gw
        .create_token(serde_json::json!({
            "name": "reader",
            "role": "user",
            "grants": [{"cluster": "seen", "access": "read"}],
        }))
        .await
        .unwrap();
    let instance = gw.gateway().app().config.instance_id.clone();
    // Both clusters are published (admin's matrix) before the reader looks.
    eventually("both clusters published", || async {
        let matrix = get(&gw, "/api/v1/replica-states").await;
        (matrix["items"].as_array()?.len() == 2).then_some(())
    })
    .await;
    let matrix: Value = gw
        .as_token(&token, Method::GET, "/api/v1/replica-states")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = matrix["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{matrix}");
    assert_eq!(items[0]["cluster"], "seen");
    assert_eq!(items[0]["replicas"][0]["instance"], instance.as_str());
    assert_eq!(items[0]["replicas"][0]["state"], "connected");
    assert_eq!(matrix["instances"], serde_json::json!([instance]));
    let list: Value = gw
        .as_token(&token, Method::GET, "/api/v1/clusters")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["replicas"][0]["state"], "connected", "{list}");
    // Without a token: 401.
    let response = gw
        .request(Method::GET, "/api/v1/replica-states")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
