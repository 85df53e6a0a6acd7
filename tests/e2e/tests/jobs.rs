//! Scheduled jobs on three replicas sharing one PostgreSQL, the simulator as host cluster and
//! a second simulator as the managed cluster. Crons have a seconds field (6 fields), the
//! scheduler re-reads the jobs every 200 ms, leader timings are short (3/2/1 s).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use kube_sim::KubeSim;
use portico_e2e::fleet::{self, Fleet, is_leader};
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{gateway_builder, plugin_dir, upload, wasm};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "jobs-admin-token-0123";

/// A deployment without the labels `require-labels` asks for, and one with them.
const SEED: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: unlabelled
  namespace: default
spec:
  replicas: 1
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec: {containers: [{name: c, image: 'nginx:1.27'}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: labelled
  namespace: default
  labels: {app.kubernetes.io/name: web, team: core}
spec:
  replicas: 1
  selector: {matchLabels: {app: b}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: 'nginx:1.27'}]}
";

/// A fleet whose managed cluster holds [`SEED`].
async fn start_fleet(test: &str) -> Option<Fleet> {
    let fleet = Fleet::start(test).await?;
    fleet.managed.load_yaml(SEED).unwrap();
    Some(fleet)
}

/// A started replica of `fleet` with the plugin directory, fast job polling and webhook
/// retries.
async fn replica(fleet: &Fleet, name: &str) -> TestGateway {
    fleet
        .replica(name, ADMIN)
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .env("JOB_POLL_INTERVAL_MS", "200")
        .env("WEBHOOK_RETRY_DELAY_MS", "20")
        .start()
        .await
}

/// Three replicas, A leading; `managed` connected everywhere, `ghost` registered but never
/// connected.
async fn three(fleet: &Fleet) -> [TestGateway; 3] {
    let a = replica(fleet, "replica-a").await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = replica(fleet, "replica-b").await;
    let c = replica(fleet, "replica-c").await;
    a.register_cluster("managed", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    a.register_cluster("ghost", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    ok(&a, Method::POST, "/api/v1/clusters/managed/connect", None).await;
    for gw in [&a, &b, &c] {
        eventually("managed is connected everywhere", || async {
            let view = ok(gw, Method::GET, "/api/v1/clusters/managed", None).await;
            (view["state"] == "connected").then_some(())
        })
        .await;
    }
    [a, b, c]
}

/// Polls `check` until it returns `Some`, failing after [`WAIT`] with `what`.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet::eventually(what, WAIT, check).await
}

fn term(gw: &TestGateway) -> Option<i64> {
    gw.gateway().app().coord.leadership().borrow().term
}

fn instance(gw: &TestGateway) -> String {
    gw.gateway().app().config.instance_id.clone()
}

async fn runs(gw: &TestGateway, job: &str) -> Vec<Value> {
    let body = ok(
        gw,
        Method::GET,
        &format!("/api/v1/runs?job={job}&limit=1000"),
        None,
    )
    .await;
    body["items"].as_array().unwrap().clone()
}

fn finished(runs: &[Value]) -> Vec<&Value> {
    runs.iter().filter(|r| r["status"] != "running").collect()
}

/// Every scheduled run has its own scheduled time, and a later term never precedes an
/// earlier one.
fn assert_no_duplicates(runs: &[Value]) {
    let scheduled: Vec<i64> = runs
        .iter()
        .filter(|r| r["trigger"] == "schedule")
        .map(|r| r["scheduledAt"].as_i64().unwrap())
        .collect();
    let distinct: BTreeSet<i64> = scheduled.iter().copied().collect();
    assert_eq!(distinct.len(), scheduled.len(), "duplicate runs: {runs:#?}");
    let mut by_time: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == "schedule").collect();
    by_time.sort_by_key(|r| r["scheduledAt"].as_i64().unwrap());
    for pair in by_time.windows(2) {
        assert!(
            pair[0]["fencingToken"].as_i64() <= pair[1]["fencingToken"].as_i64(),
            "a later occurrence ran in an older term: {pair:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_runs_inspections_and_follower_edits_reach_it() {
    let Some(fleet) = start_fleet("only_the_leader_runs_inspections").await else {
        return;
    };
    let [a, b, c] = three(&fleet).await;
    let leader_term = term(&a).expect("A leads");

    // Validation: a bad cron is a clear 400.
    let response = b
        .as_admin(Method::POST, "/api/v1/jobs")
        .json(&json!({"name": "bad", "plugins": ["require-labels"], "cron": "61 * * * *"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid cron expression `61 * * * *`"),
        "{body}"
    );

    // Created through follower B; the leader A runs it and notifies.
    let (receiver, url) = Receiver::start().await;
    let webhook = ok(
        &c,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"name": "runs", "url": url, "secret": SECRET, "clusters": ["nowhere"]})),
    )
    .await;
    let job = ok(
        &b,
        Method::POST,
        "/api/v1/jobs",
        Some(json!({
            "name": "labels",
            "plugins": ["require-labels"],
            "cron": "* * * * * *",
            "targets": {"clusters": ["managed", "ghost"]},
            "timeoutSeconds": 30,
            "webhooks": [webhook["id"]],
        })),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["kind"], "inspection");
    let done = eventually("three finished runs", || async {
        let all = runs(&c, &id).await;
        (finished(&all).len() >= 3).then_some(all)
    })
    .await;
    for run in finished(&done) {
        assert_eq!(run["instanceId"], "replica-a", "{run}");
        assert_eq!(run["fencingToken"], leader_term, "{run}");
        assert_eq!(run["trigger"], "schedule");
        assert_eq!(run["status"], "success", "{run}");
        assert_eq!(run["clustersTotal"], 2, "{run}");
        assert_eq!(run["clustersSkipped"], 1, "{run}");
        assert_eq!(run["findingsTotal"], 2, "{run}");
        assert_eq!(run["findingsFailed"], 1, "{run}");
    }
    assert_no_duplicates(&done);
    let notified = eventually("three notifications", || async {
        let received = receiver.received.lock().await.clone();
        (received.len() >= 3).then_some(received)
    })
    .await;
    for (headers, body) in &notified {
        assert_eq!(
            headers["x-portico-signature"].to_str().unwrap(),
            signature(body)
        );
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            body["instanceId"], "replica-a",
            "sent by the leader: {body}"
        );
        assert_eq!(body["run"]["instanceId"], "replica-a");
        assert_eq!(body["job"]["id"], id.as_str());
    }

    // One run in detail: `ghost` skipped, `managed` inspected.
    let run_id = finished(&done)[0]["id"].as_str().unwrap().to_owned();
    let detail = ok(&b, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
    let targets = detail["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{detail}");
    assert_eq!(targets[0]["clusterId"], "ghost");
    assert_eq!(targets[0]["status"], "skipped");
    assert_eq!(targets[1]["clusterId"], "managed");
    assert_eq!(targets[1]["status"], "success");

    // Findings, filtered.
    let failed = ok(
        &c,
        Method::GET,
        &format!("/api/v1/findings?run={run_id}&passed=false"),
        None,
    )
    .await;
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{failed}");
    assert_eq!(items[0]["checkId"], "required-labels");
    assert_eq!(items[0]["severity"], "low");
    assert_eq!(items[0]["clusterId"], "managed");
    assert_eq!(items[0]["plugin"], "require-labels");
    assert_eq!(items[0]["target"]["name"], "unlabelled");
    let low = ok(
        &c,
        Method::GET,
        &format!(
            "/api/v1/findings?run={run_id}&severity=low&check=required-labels&cluster=managed"
        ),
        None,
    )
    .await;
    assert_eq!(low["items"].as_array().unwrap().len(), 1, "{low}");
    let none = ok(
        &c,
        Method::GET,
        &format!("/api/v1/findings?run={run_id}&cluster=ghost"),
        None,
    )
    .await;
    assert!(none["items"].as_array().unwrap().is_empty(), "{none}");
    let summary = ok(&a, Method::GET, "/api/v1/findings/summary", None).await;
    let rows = summary["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary}");
    assert_eq!(rows[0]["clusterId"], "ghost");
    assert_eq!(rows[0]["status"], "skipped");
    assert_eq!(rows[1]["clusterId"], "managed");
    assert_eq!(rows[1]["findingsFailed"], 1);

    // An edit through follower C (only the unconnected cluster) reaches the leader.
    let edited = ok(
        &c,
        Method::PUT,
        &format!("/api/v1/jobs/{id}"),
        Some(json!({"targets": {"clusters": ["ghost"]}})),
    )
    .await;
    assert_eq!(edited["revision"], 2);
    eventually("a run after the edit: skipped", || async {
        let all = runs(&a, &id).await;
        all.iter()
            .any(|r| r["status"] == "skipped" && r["clustersTotal"] == 1)
            .then_some(())
    })
    .await;

    // Disabled through B: the leader stops claiming (a run in flight may still finish).
    ok(
        &b,
        Method::PUT,
        &format!("/api/v1/jobs/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;

    // Manual run on a follower runs there.
    let manual = ok(&b, Method::POST, &format!("/api/v1/jobs/{id}/run"), None).await;
    assert_eq!(manual["trigger"], "manual");
    assert_eq!(manual["instanceId"], "replica-b");
    let manual_id = manual["id"].as_str().unwrap().to_owned();
    let manual = eventually("the manual run finishes", || async {
        let run = ok(&c, Method::GET, &format!("/api/v1/runs/{manual_id}"), None).await;
        (run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(manual["status"], "skipped", "{manual}");
    assert_eq!(manual["targets"][0]["clusterId"], "ghost");

    // Through all of it, only A ran scheduled occurrences, each once.
    let all = runs(&a, &id).await;
    assert_no_duplicates(&all);
    for run in all.iter().filter(|r| r["trigger"] == "schedule") {
        assert_eq!(run["instanceId"], "replica-a", "{run}");
    }

    // Retention: old runs go with their results and findings.
    a.gateway().app().db.prune_runs(&id, 2).await.unwrap();
    let kept = runs(&b, &id).await;
    assert!(finished(&kept).len() <= 2, "{kept:#?}");
    assert!(kept.iter().all(|r| r["id"] != run_id.as_str()));
    let gone = ok(
        &b,
        Method::GET,
        &format!("/api/v1/findings?run={run_id}"),
        None,
    )
    .await;
    assert!(gone["items"].as_array().unwrap().is_empty(), "{gone}");
    let response = b
        .as_admin(Method::GET, &format!("/api/v1/runs/{run_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for gw in [a, b, c] {
        gw.stop().await;
    }
}

/// A manifest for the `misbehave` test plugin looping until its 20 s deadline: a run that is
/// in flight for as long as the test needs.
const SLOW_MANIFEST: &str = r#"
name = "slow"
version = "0.1.0"
world = "inspector"

[capabilities]
config = true

[limits]
timeout-ms = 20000

[config]
mode = "loop"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_killed_mid_run_is_replaced_without_duplicate_runs() {
    let Some(fleet) = start_fleet("a_leader_killed_mid_run").await else {
        return;
    };
    let [a, b, c] = three(&fleet).await;
    let response = upload(&a, SLOW_MANIFEST, wasm("misbehave")).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    let job = ok(
        &c,
        Method::POST,
        "/api/v1/jobs",
        Some(json!({
            "name": "slow",
            "plugins": ["slow"],
            "cron": "* * * * * *",
            "targets": {"clusters": ["managed"]},
            "timeoutSeconds": 20,
        })),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();

    // A's run is in flight: kill A.
    let a_run = eventually("A runs the job", || async {
        runs(&b, &id)
            .await
            .into_iter()
            .find(|r| r["status"] == "running")
    })
    .await;
    assert_eq!(a_run["instanceId"], "replica-a", "{a_run}");
    let a_term = a_run["fencingToken"].as_i64().unwrap();
    a.gateway_crash().await;

    // The new leader claims a later occurrence, in a newer term.
    let new_run = eventually("a run on the new leader", || async {
        runs(&b, &id)
            .await
            .into_iter()
            .find(|r| r["instanceId"] != "replica-a")
    })
    .await;
    let leaders: Vec<&TestGateway> = [&b, &c].into_iter().filter(|g| is_leader(g)).collect();
    assert_eq!(leaders.len(), 1, "exactly one leader");
    assert_eq!(new_run["instanceId"], instance(leaders[0]), "{new_run}");
    assert!(
        new_run["fencingToken"].as_i64().unwrap() > a_term,
        "{new_run}"
    );
    assert!(
        new_run["scheduledAt"].as_i64().unwrap() > a_run["scheduledAt"].as_i64().unwrap(),
        "{new_run} after {a_run}"
    );

    // A's run did not finish as a success, and no occurrence ran twice.
    let all = runs(&b, &id).await;
    let a_final = all.iter().find(|r| r["id"] == a_run["id"]).unwrap();
    assert_ne!(a_final["status"], "success", "{a_final}");
    assert_no_duplicates(&all);
    let instances: BTreeSet<&str> = all
        .iter()
        .map(|r| r["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(
        instances,
        BTreeSet::from(["replica-a", new_run["instanceId"].as_str().unwrap()]),
        "only the two leaders ran the job"
    );

    // A deposed leader cannot claim: its term is older than the newest run's.
    let db = &b.gateway().app().db;
    let claimed = db
        .claim_scheduled_run("stale", &id, i64::MAX / 2, "replica-a", a_term)
        .await
        .unwrap();
    assert!(!claimed, "a stale term's claim must fail");
    // And nobody claims an occurrence twice.
    let again = db
        .claim_scheduled_run(
            "again",
            &id,
            new_run["scheduledAt"].as_i64().unwrap(),
            new_run["instanceId"].as_str().unwrap(),
            new_run["fencingToken"].as_i64().unwrap(),
        )
        .await
        .unwrap();
    assert!(!again, "an occurrence is claimed once");
    b.stop().await;
    c.stop().await;
}

/// A webhook receiver that answers 503 to its first two requests, then 204.
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<(HeaderMap, Bytes)>>,
    calls: AtomicUsize,
}

impl Receiver {
    async fn start() -> (Arc<Self>, String) {
        let receiver = Arc::new(Self::default());
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (receiver, format!("http://{addr}/hook"))
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.received.lock().await.push((headers, body));
    if receiver.calls.fetch_add(1, Ordering::SeqCst) < 2 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

const SECRET: &str = "job-notification-secret";

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_are_notified_signed_with_retries_and_only_on_failure() {
    let managed = KubeSim::start().await.unwrap();
    managed.load_yaml(SEED).unwrap();
    let gw = gateway_builder("jobs-notifications")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .env("JOB_POLL_INTERVAL_MS", "200")
        .env("WEBHOOK_RETRY_DELAY_MS", "20")
        .start()
        .await;
    gw.add_cluster("managed", &managed.kubeconfig())
        .await
        .unwrap();
    gw.register_cluster("ghost", &managed.kubeconfig())
        .await
        .unwrap();
    let (receiver, url) = Receiver::start().await;
    // Subscribed to no real cluster's events: only job notifications reach it.
    let webhook = ok(
        &gw,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({"name": "runs", "url": url, "secret": SECRET, "clusters": ["nowhere"]})),
    )
    .await;
    let webhook_id = webhook["id"].as_str().unwrap().to_owned();
    let response = gw
        .as_admin(Method::POST, "/api/v1/webhooks")
        .json(&json!({"name": "x", "url": url, "secret": SECRET, "events": ["run.finished"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = gw
        .as_admin(Method::POST, "/api/v1/jobs")
        .json(
            &json!({"name": "x", "plugins": ["require-labels"], "cron": "* * * * *",
                      "webhooks": ["no-such-webhook"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // `failing` finds a missing label; `quiet` only skips: with notifyOnlyOnFailure only
    // `failing` notifies.
    let failing = ok(
        &gw,
        Method::POST,
        "/api/v1/jobs",
        Some(
            json!({"name": "failing", "plugins": ["require-labels"], "cron": "* * * * * *",
                    "targets": {"clusters": ["managed"]}, "webhooks": [webhook_id],
                    "notifyOnlyOnFailure": true}),
        ),
    )
    .await;
    let quiet = ok(
        &gw,
        Method::POST,
        "/api/v1/jobs",
        Some(
            json!({"name": "quiet", "plugins": ["require-labels"], "cron": "* * * * * *",
                    "targets": {"clusters": ["ghost"]}, "webhooks": [webhook_id],
                    "notifyOnlyOnFailure": true}),
        ),
    )
    .await;
    let quiet_id = quiet["id"].as_str().unwrap().to_owned();

    // Three delivered notifications (the first after two 503s) while `quiet` ran too.
    let got = eventually("three notifications delivered", || async {
        let received = receiver.received.lock().await.clone();
        (received.len() >= 5).then_some(received)
    })
    .await;
    eventually("quiet ran three times", || async {
        (finished(&runs(&gw, &quiet_id).await).len() >= 3).then_some(())
    })
    .await;
    for (headers, body) in &got {
        assert_eq!(
            headers["x-portico-signature"].to_str().unwrap(),
            signature(body)
        );
        assert_eq!(headers["x-portico-event"], "run.finished");
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["job"]["name"], "failing", "{body}");
        assert_eq!(body["job"]["id"], failing["id"]);
        assert_eq!(body["event"], "run.finished");
        assert_eq!(body["webhookId"], webhook_id.as_str());
        assert_eq!(body["run"]["status"], "success");
        assert_eq!(body["run"]["findingsFailed"], 1);
        assert_eq!(body["run"]["clustersTotal"], 1);
        assert_eq!(body["clusters"][0]["clusterId"], "managed");
        let failed = body["failedFindings"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{body}");
        assert_eq!(failed[0]["checkId"], "required-labels");
        assert_eq!(failed[0]["target"]["name"], "unlabelled");
    }
    // The first delivery got a 503 and was retried under the same delivery id.
    let bodies: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    let delivery = bodies[0]["delivery"].clone();
    let attempts: Vec<i64> = bodies
        .iter()
        .filter(|b| b["delivery"] == delivery)
        .map(|b| b["attempt"].as_i64().unwrap())
        .collect();
    assert!(attempts.len() >= 2, "retried: {attempts:?}");
    assert_eq!(attempts, (1..=attempts.len() as i64).collect::<Vec<_>>());

    // The delivery log has it.
    let log = eventually("the delivery log", || async {
        let log = ok(
            &gw,
            Method::GET,
            &format!("/api/v1/webhooks/{webhook_id}/deliveries"),
            None,
        )
        .await;
        let items = log["items"].as_array().unwrap().clone();
        items
            .iter()
            .find(|d| d["id"] == delivery && d["state"] == "delivered")
            .cloned()
    })
    .await;
    assert_eq!(log["attempts"], attempts.len(), "{log}");
    assert_eq!(log["event"], "run.finished");
    assert_eq!(log["clusterId"], "managed");
    gw.stop().await;
}
