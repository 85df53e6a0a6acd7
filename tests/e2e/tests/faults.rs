//! Fault drills: the host apiserver frozen, PostgreSQL restarted under load, a managed cluster
//! that hangs, refuses connections or answers 5xx. Short lease timings (see `fleet`), bounded
//! waits, loopback only, ports chosen by the OS.
//!
//! Every request the drills send is bounded by [`HANG`]: an answer that takes longer is a hang
//! and fails the test, whatever the status would have been.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube_sim::KubeSim;
use portico::testing::{ClusterEventKind, Connection};
use portico_e2e::fleet::{self, FLEET_KEY, Fleet, is_leader};
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::plugin_dir;
use portico_e2e::postgres::TestPostgres;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);
const ADMIN: &str = "faults-admin-token-0123";
/// Bound on one request. The gateway's own bounds are shorter (database pool acquire timeout,
/// lease call timeout, heartbeat check timeout), so reaching it means something hangs.
const HANG: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, failing after [`WAIT`] with `what`.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet::eventually(what, WAIT, check).await
}

/// A request's outcome: the status and the body as JSON (`null` when it is not JSON), or a
/// panic when there is no answer within [`HANG`].
async fn send(request: reqwest::RequestBuilder, what: &str) -> (StatusCode, Value) {
    let response = request
        .timeout(HANG)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admin_get(gw: &TestGateway, path: &str) -> (StatusCode, Value) {
    send(gw.as_admin(Method::GET, path), path).await
}

async fn post(gw: &TestGateway, path: &str) -> Value {
    let (status, body) = send(gw.as_admin(Method::POST, path), path).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn wait_state(gws: &[&TestGateway], id: &str, want: &str) {
    for gw in gws {
        eventually(&format!("{} sees {id} {want}", gw.url), || async {
            let (_, view) = admin_get(gw, &format!("/api/v1/clusters/{id}")).await;
            (view["state"] == want).then_some(())
        })
        .await;
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// 1. The host apiserver (Leases) frozen for longer than the leader lease.
// ---------------------------------------------------------------------------------------------

/// How long the host apiserver stays frozen: longer than every lease (3 s) and the resync
/// period (5 s) of the fleet's timings.
const HOST_FREEZE: Duration = Duration::from_secs(8);
/// How long the connections are still watched after the host is back: a full resync period
/// (5 s) and then some, so a re-list that would drop a connection is seen.
const AFTER_THAW: Duration = Duration::from_secs(7);

fn cluster_leases(sim: &KubeSim) -> BTreeMap<String, Value> {
    sim.list(
        "coordination.k8s.io/v1",
        "Lease",
        Some("default"),
        "type=cluster-sync",
    )
    .unwrap_or_default()
    .into_iter()
    .map(|l| {
        let id = l["metadata"]["annotations"]["portico.io/cluster-id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (id, (*l).clone())
    })
    .collect()
}

/// Watches, every 20 ms until `stop`, that each replica keeps the very connection it had for
/// every cluster (not a rebuilt one) and that it stays `connected`, and that at most one replica
/// leads. Returns what went wrong, with the time since the watch started.
fn watch_connections(
    replicas: Vec<(String, portico::testing::App)>,
    expected: Vec<Vec<(String, Arc<Connection>)>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut problems = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let mut leaders = Vec::new();
            for ((name, app), clusters) in replicas.iter().zip(&expected) {
                for (id, original) in clusters {
                    let at = started.elapsed();
                    match app.clusters.connection(id) {
                        None => problems.push(format!("{at:?}: {name} lost {id}")),
                        Some(now) if !Arc::ptr_eq(&now, original) => {
                            problems.push(format!("{at:?}: {name} rebuilt {id}"))
                        }
                        Some(now) if !now.is_connected() => {
                            problems.push(format!("{at:?}: {name}: {id} is {:?}", now.state()))
                        }
                        Some(_) => {}
                    }
                }
                if app.coord.leadership().borrow().is_leader {
                    leaders.push(name.clone());
                }
            }
            if leaders.len() > 1 {
                problems.push(format!("{:?}: two leaders {leaders:?}", started.elapsed()));
            }
            if problems.len() > 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        problems
    })
}

/// No two terms of leader work overlap, judged on the recorded terms.
async fn assert_terms_never_overlap(gw: &TestGateway) {
    let mut terms = gw.gateway().app().db.leader_terms(1000).await.unwrap();
    terms.sort_by_key(|t| t.started_at);
    for pair in terms.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_end = a.ended_at.unwrap_or(a.active_at);
        assert!(
            b.started_at >= a_end,
            "terms overlap: {a:?} and {b:?} (all: {terms:#?})"
        );
    }
}

/// Three replicas, two managed clusters whose leases A and B hold; the host apiserver freezes
/// for [`HOST_FREEZE`]. Throughout, every replica proxies to both clusters and lists them as
/// connected, and keeps the very same connections (watched every 20 ms, and no disconnect event);
/// A steps down and GET /api/v1/leader says so; nobody leads while frozen. After the thaw: one
/// leader that every replica reports, both cluster leases renewed again by live replicas, three
/// live instances, still nothing disconnected through a full resync, no overlapping terms.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_host_apiserver_disconnects_nothing_and_leadership_recovers() {
    let Some(fleet) = Fleet::start("a_frozen_host_apiserver_disconnects_nothing").await else {
        return;
    };
    let a = fleet.replica("replica-a", ADMIN).start().await;
    eventually("A leads", || async { is_leader(&a).then_some(()) }).await;
    let b = fleet.replica("replica-b", ADMIN).start().await;
    let c = fleet.replica("replica-c", ADMIN).start().await;
    let replicas = [&a, &b, &c];
    let names = ["replica-a", "replica-b", "replica-c"];

    // Two managed clusters, their leases held by different replicas.
    let other = KubeSim::start().await.unwrap();
    let ids = ["one", "two"];
    a.register_cluster("one", &fleet.managed.kubeconfig())
        .await
        .unwrap();
    a.register_cluster("two", &other.kubeconfig())
        .await
        .unwrap();
    post(&a, "/api/v1/clusters/one/connect").await;
    post(&b, "/api/v1/clusters/two/connect").await;
    for id in ids {
        wait_state(&replicas, id, "connected").await;
    }
    let leases = eventually("both cluster leases", || async {
        let leases = cluster_leases(&fleet.host);
        (leases.len() == 2).then_some(leases)
    })
    .await;
    assert_eq!(leases["one"]["spec"]["holderIdentity"], "replica-a");
    assert_eq!(leases["two"]["spec"]["holderIdentity"], "replica-b");

    // From here on, every replica must keep both connections, untouched.
    let mut events: Vec<_> = replicas
        .iter()
        .map(|gw| gw.gateway().app().clusters.events().subscribe())
        .collect();
    let expected: Vec<Vec<(String, Arc<Connection>)>> = replicas
        .iter()
        .map(|gw| {
            ids.iter()
                .map(|id| {
                    let connection = gw.gateway().app().clusters.connection(id).unwrap();
                    ((*id).to_owned(), connection)
                })
                .collect()
        })
        .collect();
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = watch_connections(
        names
            .iter()
            .zip(replicas)
            .map(|(n, gw)| ((*n).to_owned(), gw.gateway().app().clone()))
            .collect(),
        expected,
        stop_watch.clone(),
    );

    // Freeze the host apiserver. Throughout: every replica proxies to both clusters and lists
    // both as connected; A sees itself step down and says so on GET /api/v1/leader.
    let frozen_at = Instant::now();
    fleet.host.faults().freeze();
    let mut step_down_seen: Option<(Duration, Value)> = None;
    let mut rounds = 0;
    while frozen_at.elapsed() < HOST_FREEZE {
        for (gw, name) in replicas.iter().zip(names) {
            for id in ids {
                let path = format!("/k8s/clusters/{id}/version");
                let (status, body) = admin_get(gw, &path).await;
                assert_eq!(status, StatusCode::OK, "{name} {path} while frozen: {body}");
            }
            let (status, list) = admin_get(gw, "/api/v1/clusters").await;
            assert_eq!(status, StatusCode::OK, "{name}: {list}");
            for id in ids {
                let item = list["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|i| i["id"] == id))
                    .unwrap_or_else(|| panic!("{name} lists {id}: {list}"));
                assert_eq!(item["state"], "connected", "{name} while frozen: {item}");
            }
        }
        if step_down_seen.is_none() {
            let (status, view) = admin_get(&a, "/api/v1/leader").await;
            assert_eq!(
                status,
                StatusCode::OK,
                "GET /api/v1/leader while frozen: {view}"
            );
            if view["isLeader"] == false {
                step_down_seen = Some((frozen_at.elapsed(), view));
            }
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (stepped_down_after, view) =
        step_down_seen.expect("A stepped down while the host apiserver was frozen");
    assert_eq!(view["instanceId"], "replica-a", "{view}");
    assert!(
        view["leaseError"].as_str().is_some_and(|e| !e.is_empty()),
        "the lease cannot be read while frozen: {view}"
    );
    for gw in replicas {
        assert!(!is_leader(gw), "nobody leads without the host apiserver");
    }
    eprintln!(
        "host frozen {HOST_FREEZE:?}: {rounds} rounds of checks, A stepped down after \
         {stepped_down_after:?}"
    );

    // The host returns: one leader again, which every replica reports.
    fleet.host.faults().unfreeze();
    let thawed_at = Instant::now();
    let leader = eventually("a leader again", || async {
        let leading: Vec<&str> = replicas
            .iter()
            .zip(names)
            .filter(|(gw, _)| is_leader(gw))
            .map(|(_, n)| n)
            .collect();
        (leading.len() == 1).then(|| leading[0].to_owned())
    })
    .await;
    let leader_after = thawed_at.elapsed();
    for (gw, name) in replicas.iter().zip(names) {
        eventually(&format!("{name} reports {leader} as leader"), || async {
            let (status, view) = admin_get(gw, "/api/v1/leader").await;
            (status == StatusCode::OK
                && view["holder"] == leader.as_str()
                && view["isLeader"] == (name == leader)
                && view.get("leaseError").is_none())
            .then_some(())
        })
        .await;
    }

    // The cluster leases recover: each is renewed (twice, so someone holds and renews it) by
    // a live replica.
    let at_thaw = cluster_leases(&fleet.host);
    for id in ids {
        let version = |l: &Value| l["metadata"]["resourceVersion"].as_str().map(str::to_owned);
        let mut seen = vec![version(&at_thaw[id])];
        eventually(&format!("the lease of {id} is renewed again"), || {
            if let Some(lease) = cluster_leases(&fleet.host).remove(id) {
                let v = version(&lease);
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            std::future::ready((seen.len() >= 3).then_some(()))
        })
        .await;
        let lease = cluster_leases(&fleet.host).remove(id).unwrap();
        let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
        assert!(names.contains(&holder), "{id}: {lease}");
    }
    eventually("three live instances holding both clusters", || async {
        let (status, body) = admin_get(&a, "/api/v1/instances").await;
        let items = body["items"].as_array()?;
        let alive = items.iter().filter(|i| i["alive"] == true).count();
        let held: i64 = items
            .iter()
            .filter_map(|i| i["clustersHeld"].as_i64())
            .sum();
        (status == StatusCode::OK && alive == 3 && held == 2).then_some(())
    })
    .await;
    let leases_after = thawed_at.elapsed();

    // Keep watching through a full resync after the thaw, then judge.
    let remaining = AFTER_THAW.saturating_sub(thawed_at.elapsed());
    tokio::time::sleep(remaining).await;
    stop_watch.store(true, Ordering::SeqCst);
    let problems = watcher.await.unwrap();
    assert!(
        problems.is_empty(),
        "connections dropped or leaders overlapped: {problems:#?}"
    );
    for (rx, name) in events.iter_mut().zip(names) {
        while let Ok(event) = rx.try_recv() {
            assert_ne!(
                event.kind,
                ClusterEventKind::Disconnected,
                "{name} disconnected: {event:?}"
            );
        }
    }
    for gw in replicas {
        let (_, list) = admin_get(gw, "/api/v1/clusters").await;
        for item in list["items"].as_array().unwrap() {
            assert_eq!(item["state"], "connected", "{item}");
        }
    }
    assert_terms_never_overlap(&a).await;
    eprintln!("after the thaw: a leader in {leader_after:?}, leases renewed in {leases_after:?}");
    for gw in [a, b, c] {
        gw.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. PostgreSQL restarted under load.
// ---------------------------------------------------------------------------------------------

/// One request of the background load.
#[derive(Debug, Clone)]
struct Sample {
    kind: &'static str,
    /// Since the load started.
    at: Duration,
    took: Duration,
    /// The status, or why there was none.
    outcome: Result<u16, String>,
}

/// Background requests until `stop`: `loops` tasks, each going round `paths` (kind, path,
/// token) with a short pause. Returns every sample.
fn load(
    base: String,
    paths: Vec<(&'static str, String, String)>,
    loops: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..loops {
            let (client, base, paths, stop, samples) = (
                client.clone(),
                base.clone(),
                paths.clone(),
                stop.clone(),
                samples.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = n;
                while !stop.load(Ordering::SeqCst) {
                    let (kind, path, token) = &paths[i % paths.len()];
                    i += 1;
                    let at = started.elapsed();
                    let sent = Instant::now();
                    let outcome = client
                        .get(format!("{base}{path}"))
                        .bearer_auth(token)
                        .timeout(HANG)
                        .send()
                        .await;
                    let outcome = match outcome {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            Ok(status)
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    samples.lock().unwrap().push(Sample {
                        kind,
                        at,
                        took: sent.elapsed(),
                        outcome,
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        samples.lock().unwrap().clone()
    })
}

/// A user token with read access to every cluster; `name` must be unique.
/// A plain-HTTP gateway (with the test plugins) on a throwaway PostgreSQL database, `env` added
/// to its configuration, and a simulator for it to manage; `None` when PostgreSQL is not
/// installed (outside CI, where it is required).
async fn on_postgres(
    test: &str,
    env: &[(&str, &str)],
) -> Option<(Arc<TestPostgres>, KubeSim, TestGateway)> {
    let pg = Arc::new(TestPostgres::start_or_skip(test)?);
    let db_url = pg.create_database("faults").unwrap();
    let managed = KubeSim::start().await.unwrap();
    let mut builder = TestGateway::builder()
        .env("DATABASE_URL", &db_url)
        .env("SECRET_KEY", FLEET_KEY)
        .env("ADMIN_TOKEN", ADMIN)
        .env("PLAIN_HTTP", "true")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()]);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    Some((pg, managed, builder.start().await))
}

async fn user_token(gw: &TestGateway, name: &str) -> String {
    gw.create_token(json!({"name": name, "grants": [{"cluster": "*", "access": "read"}]}))
        .await
        .unwrap()
}

/// Runs `f` (a blocking `pg_ctl` call) off the async workers.
async fn blocking(f: impl FnOnce() -> anyhow::Result<()> + Send + 'static) {
    tokio::task::spawn_blocking(f).await.unwrap().unwrap();
}

/// Which error shape a probe answers with.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The admin API's `{"error": {"code": "unavailable"}}`.
    Api,
    /// The proxy's Kubernetes `Status` with reason `ServiceUnavailable`.
    Status,
    /// Readiness: any body.
    Ready,
}

/// What the database-backed requests answer while PostgreSQL is down: each a 503 in its
/// error shape, never a 500 and never a hang. The probes run at once (each may wait for the
/// pool's acquire timeout). Returns the slowest answer.
async fn assert_unavailable(
    gw: &TestGateway,
    cold_tokens: &mut Vec<String>,
    round: &str,
) -> Duration {
    // The storage layer itself classifies what it sees as "unavailable".
    let db = gw.gateway().app().db.clone();
    let storage = tokio::spawn(async move {
        let started = Instant::now();
        (db.clusters().await.map(|_| ()), started.elapsed())
    });

    let token_name = format!("during-{}", round.replace(' ', "-"));
    let mut probes = vec![
        (
            "GET /api/v1/clusters".to_owned(),
            gw.as_admin(Method::GET, "/api/v1/clusters"),
            Shape::Api,
        ),
        (
            "GET /api/v1/clusters/managed".to_owned(),
            gw.as_admin(Method::GET, "/api/v1/clusters/managed"),
            Shape::Api,
        ),
        (
            "POST /api/v1/tokens".to_owned(),
            gw.as_admin(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": token_name})),
            Shape::Api,
        ),
        (
            "GET /health/ready".to_owned(),
            gw.request(Method::GET, "/health/ready"),
            Shape::Ready,
        ),
    ];
    for path in [
        "/api/v1/clusters/managed/kubeconfig",
        "/api/v1/tokens",
        "/api/v1/jobs",
        "/api/v1/runs",
        "/api/v1/findings/summary",
        "/api/v1/audit",
        "/api/v1/plugins",
        "/api/v1/webhooks",
        "/api/v1/helm/repositories",
        "/api/v1/helm/charts",
    ] {
        probes.push((
            format!("GET {path}"),
            gw.as_admin(Method::GET, path),
            Shape::Api,
        ));
    }
    // Tokens that are not in the auth cache: through the proxy and the admin API.
    let token = cold_tokens.pop().expect("a cold token");
    probes.push((
        "proxy with a cold token".to_owned(),
        gw.as_token(&token, Method::GET, "/k8s/clusters/managed/version"),
        Shape::Status,
    ));
    let token = cold_tokens.pop().expect("a cold token");
    probes.push((
        "admin API with a cold token".to_owned(),
        gw.as_token(&token, Method::GET, "/api/v1/clusters"),
        Shape::Api,
    ));
    let running: Vec<_> = probes
        .into_iter()
        .map(|(label, request, shape)| {
            tokio::spawn(async move {
                let started = Instant::now();
                let (status, body) = send(request, &label).await;
                (label, shape, status, body, started.elapsed())
            })
        })
        .collect();

    let mut slowest = Duration::ZERO;
    for probe in running {
        let (label, shape, status, body, took) = probe.await.unwrap();
        slowest = slowest.max(took);
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{round}: {label}: {body}"
        );
        match shape {
            Shape::Api => assert_eq!(
                body["error"]["code"], "unavailable",
                "{round}: {label}: {body}"
            ),
            Shape::Status => {
                assert_eq!(body["kind"], "Status", "{round}: {label}: {body}");
                assert_eq!(
                    body["reason"], "ServiceUnavailable",
                    "{round}: {label}: {body}"
                );
            }
            Shape::Ready => {}
        }
    }
    let (result, took) = storage.await.unwrap();
    slowest = slowest.max(took);
    let error = result.expect_err("the database is down");
    assert!(error.is_unavailable(), "{round}: {error:?}");
    slowest
}

/// One gateway on PostgreSQL under a steady background load (proxy, admin API, readiness) and
/// a job every 2 s. PostgreSQL stops: right away and again after the auth cache's 5 s, every
/// database-backed request (admin API reads and writes, tokens not in the cache, through the
/// admin API and the proxy) answers 503 in its error shape within the pool's acquire timeout,
/// readiness is 503. PostgreSQL starts again on the same port: with no gateway restart the admin
/// API, new and cold tokens, readiness, token creation, the audit writer and the job scheduler
/// all work again. The load saw only 200 and 503, and no request hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_answers_503_and_recovers() {
    let Some((pg, managed, gw)) = on_postgres(
        "postgres_restarted_under_load",
        &[("JOB_POLL_INTERVAL_MS", "200")],
    )
    .await
    else {
        return;
    };
    gw.add_cluster("managed", &managed.kubeconfig())
        .await
        .unwrap();
    // Tokens never used before the outage, so never in the auth cache.
    let mut cold_tokens = Vec::new();
    for n in 0..4 {
        cold_tokens.push(user_token(&gw, &format!("cold-{n}")).await);
    }
    let warm = user_token(&gw, "warm").await;
    let after = user_token(&gw, "after").await;

    // A job every 2 s: the scheduler must survive the outage.
    let (status, job) = send(
        gw.as_admin(Method::POST, "/api/v1/jobs").json(&json!({
            "name": "steady",
            "plugins": ["require-labels"],
            "cron": "*/2 * * * * *",
            "targets": {"clusters": ["managed"]},
            "timeoutSeconds": 30,
        })),
        "create the job",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let successful_run_after = |after_ms: i64| {
        let gw = &gw;
        let job_id = job_id.clone();
        async move {
            let (_, runs) = admin_get(gw, &format!("/api/v1/runs?job={job_id}&limit=100")).await;
            runs["items"].as_array()?.iter().find_map(|r| {
                (r["status"] == "success" && r["scheduledAt"].as_i64()? > after_ms)
                    .then(|| r.clone())
            })
        }
    };
    eventually("a first successful run", || successful_run_after(0)).await;

    // Load: the proxy with the admin token and a user token, the admin API, readiness.
    let stop_load = Arc::new(AtomicBool::new(false));
    let background = load(
        gw.url.clone(),
        vec![
            (
                "proxy, admin",
                "/k8s/clusters/managed/version".into(),
                ADMIN.into(),
            ),
            (
                "proxy, user",
                "/k8s/clusters/managed/version".into(),
                warm.clone(),
            ),
            ("admin API", "/api/v1/clusters".into(), ADMIN.into()),
            ("ready", "/health/ready".into(), String::new()),
        ],
        4,
        stop_load.clone(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Down.
    let stopped = Instant::now();
    {
        let pg = pg.clone();
        blocking(move || pg.stop()).await;
    }
    let stop_took = stopped.elapsed();
    let slowest_first = assert_unavailable(&gw, &mut cold_tokens, "at once").await;
    // Past the auth cache's 5 s: every token is looked up again.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(stopped.elapsed())).await;
    let slowest_later = assert_unavailable(&gw, &mut cold_tokens, "after 6 s").await;
    let down_for = stopped.elapsed();

    // Up again, on the same port: everything recovers by itself.
    let restarted = Instant::now();
    let restarted_ms = portico::testing::now_millis();
    {
        let pg = pg.clone();
        blocking(move || pg.start()).await;
    }
    for path in ["/api/v1/clusters", "/api/v1/tokens", "/api/v1/jobs"] {
        eventually(&format!("{path} answers again"), || async {
            (admin_get(&gw, path).await.0 == StatusCode::OK).then_some(())
        })
        .await;
    }
    let admin_back = restarted.elapsed();
    let (status, body) = send(
        gw.as_token(&after, Method::GET, "/k8s/clusters/managed/version"),
        "a new token after the restart",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in &cold_tokens {
        let (status, body) = send(
            gw.as_token(token, Method::GET, "/api/v1/clusters"),
            "a cold token after the restart",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    eventually("ready again", || async {
        let (status, _) = send(gw.request(Method::GET, "/health/ready"), "ready").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    user_token(&gw, "created-after").await;
    // The audit writer still writes: a mutating request through the proxy is logged.
    let (status, body) = send(
        gw.as_admin(
            Method::POST,
            "/k8s/clusters/managed/api/v1/namespaces/default/configmaps",
        )
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}})),
        "create a configmap",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("the audit log has the request", || async {
        let (_, audit) = admin_get(&gw, "/api/v1/audit?cluster=managed").await;
        audit["items"]
            .as_array()?
            .iter()
            .any(|e| e["path"].as_str().is_some_and(|p| p.contains("configmaps")))
            .then_some(())
    })
    .await;
    // The scheduler still runs the job.
    eventually("a successful run after the restart", || {
        successful_run_after(restarted_ms)
    })
    .await;
    let all_back = restarted.elapsed();

    // The load: every request answered (no hang), nothing but 200 and 503, and 503s only
    // while the database was down or coming back.
    stop_load.store(true, Ordering::SeqCst);
    let samples = background.await.unwrap();
    let mut by_kind: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for s in &samples {
        let outcome = match &s.outcome {
            Ok(code) => code.to_string(),
            Err(e) => format!("error: {e}"),
        };
        *by_kind.entry((s.kind, outcome)).or_default() += 1;
    }
    eprintln!("load outcomes: {by_kind:#?}");
    let bad: Vec<&Sample> = samples
        .iter()
        .filter(|s| !matches!(s.outcome, Ok(200) | Ok(503)))
        .collect();
    assert!(bad.is_empty(), "unexpected answers under load: {bad:#?}");
    let unavailable = samples.iter().filter(|s| s.outcome == Ok(503)).count();
    assert!(unavailable > 0, "the load saw the outage");
    let slowest = samples.iter().map(|s| s.took).max().unwrap_or_default();
    let last = samples.iter().map(|s| s.at).max().unwrap_or_default();
    for kind in ["proxy, admin", "proxy, user", "admin API", "ready"] {
        let tail: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.kind == kind && s.at + Duration::from_secs(1) >= last)
            .collect();
        assert!(
            tail.iter().all(|s| s.outcome == Ok(200)),
            "{kind} recovered: {tail:#?}"
        );
    }
    // A 503 comes once the pool gives up waiting for a connection, not later.
    let bound = portico::testing::ACQUIRE_TIMEOUT + Duration::from_secs(5);
    for (what, took) in [
        ("a probe right after the stop", slowest_first),
        ("a probe after 6 s", slowest_later),
        ("a load request", slowest),
    ] {
        assert!(
            took <= bound,
            "{what} took {took:?}, more than the pool's acquire timeout and then some"
        );
    }
    let proxy_admin_503 = samples
        .iter()
        .filter(|s| s.kind == "proxy, admin" && s.outcome == Ok(503))
        .count();
    eprintln!(
        "pg_ctl stop took {stop_took:?}; down {down_for:?}; slowest 503 right after the stop \
         {slowest_first:?}, after 6 s {slowest_later:?}; slowest load request {slowest:?} \
         ({} samples, {unavailable} answered 503, {proxy_admin_503} of them proxy requests \
         with the admin token); admin API back {admin_back:?} and everything {all_back:?} after \
         the restart",
        samples.len()
    );
    gw.stop().await;
}

/// While PostgreSQL is down, a proxy request (with a cached token) to a cluster that is not
/// connected on this replica, or not registered at all, needs the database to tell 404 from
/// 503: it should be a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_request_to_a_cluster_not_connected_here_is_503_while_postgres_is_down() {
    let Some((pg, managed, gw)) = on_postgres("proxy_lookup_while_postgres_is_down", &[]).await
    else {
        return;
    };
    gw.register_cluster("idle", &managed.kubeconfig())
        .await
        .unwrap();
    // A token used once just now: in the auth cache for the next 5 s, so the request below
    // gets past authentication and needs the database only for the cluster lookup.
    let token = user_token(&gw, "cached").await;
    let (status, _) = send(
        gw.as_token(&token, Method::GET, "/k8s/clusters/idle/version"),
        "before",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not connected here"
    );
    {
        let pg = pg.clone();
        blocking(move || pg.stop()).await;
    }
    for id in ["idle", "unknown"] {
        let path = format!("/k8s/clusters/{id}/version");
        let (status, body) = send(gw.as_token(&token, Method::GET, &path), &path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["reason"], "ServiceUnavailable", "{path}: {body}");
    }
    gw.stop().await;
}

/// A manual run whose plugin is still reading the cluster when PostgreSQL stops, and that ends
/// while it is down: once PostgreSQL is back the run must not stay `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_run_that_ends_while_postgres_is_down_is_not_left_running() {
    let Some((pg, managed, gw)) = on_postgres("job_run_ends_while_postgres_is_down", &[]).await
    else {
        return;
    };
    gw.add_cluster("managed", &managed.kubeconfig())
        .await
        .unwrap();
    let (status, job) = send(
        gw.as_admin(Method::POST, "/api/v1/jobs").json(&json!({
            "name": "slow",
            "plugins": ["require-labels"],
            "cron": "0 0 1 1 *",
            "targets": {"clusters": ["managed"]},
            "timeoutSeconds": 60,
        })),
        "create the job",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job_id = job["id"].as_str().unwrap();
    // Warm up (the first call compiles the plugin), then make the plugin's reads slow.
    let run_once = || async {
        let (status, run) = send(
            gw.as_admin(Method::POST, &format!("/api/v1/jobs/{job_id}/run")),
            "run now",
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        run["id"].as_str().unwrap().to_owned()
    };
    let status_of = |run: String| {
        let gw = &gw;
        async move {
            let (_, view) = admin_get(gw, &format!("/api/v1/runs/{run}")).await;
            view["status"].as_str().map(str::to_owned)
        }
    };
    let first = run_once().await;
    eventually("the warm-up run ends", || async {
        status_of(first.clone())
            .await
            .filter(|s| s != "running")
            .map(|_| ())
    })
    .await;
    let latency = Duration::from_secs(4);
    managed.faults().set_path_prefix(Some("/apis/".into()));
    managed.faults().set_latency(latency);
    let reads = || {
        managed
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/apis/apps/"))
            .count()
    };
    let before = reads();
    let run = run_once().await;
    eventually("the run reads the cluster", || {
        std::future::ready((reads() > before).then_some(()))
    })
    .await;

    // The database goes away while the run is in flight, and is back after it ended.
    {
        let pg = pg.clone();
        blocking(move || pg.stop()).await;
    }
    // Long enough that the run's last writes give up (each waits the pool's acquire timeout).
    tokio::time::sleep(latency + portico::testing::ACQUIRE_TIMEOUT * 3).await;
    {
        let pg = pg.clone();
        blocking(move || pg.start()).await;
    }
    managed.faults().clear();
    let view = eventually("the run is recorded as ended", || async {
        let (_, view) = admin_get(&gw, &format!("/api/v1/runs/{run}")).await;
        (view["status"].is_string() && view["status"] != "running").then_some(view)
    })
    .await;
    eprintln!("the run: {view}");
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. A managed cluster that hangs, refuses connections or answers 5xx.
// ---------------------------------------------------------------------------------------------

/// Requests to the good cluster per latency measurement.
const ROUNDS: usize = 40;
/// Concurrent request loops against the bad cluster.
const BAD_LOOPS: usize = 8;
/// How much slower than the baseline the good cluster's median may get while the bad one
/// misbehaves. Generous on purpose: the machine is shared; a cluster that really interfered
/// (a shared pool, a lock, a blocked worker) would stall requests for seconds, not percents.
const RATIO: u32 = 10;

/// Latencies of [`ROUNDS`] sequential requests to the good cluster, each a 200.
async fn good_latencies(gw: &TestGateway) -> Vec<Duration> {
    let mut took = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let (status, body) = admin_get(gw, "/k8s/clusters/good/version").await;
        took.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "the good cluster: {body}");
    }
    took
}

/// Request loops against the bad cluster until `stop`; counts the answers by status.
struct BadLoad {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    statuses: Arc<Mutex<BTreeMap<u16, usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The path the bad load asks for (distinct from the heartbeat's `/version`).
const BAD_PATH: &str = "/api/v1/namespaces/default";

impl BadLoad {
    fn start(gw: &Arc<TestGateway>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let statuses = Arc::new(Mutex::new(BTreeMap::new()));
        let tasks = (0..BAD_LOOPS)
            .map(|_| {
                let (gw, stop, answered, statuses) =
                    (gw.clone(), stop.clone(), answered.clone(), statuses.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let path = format!("/k8s/clusters/bad{BAD_PATH}");
                        let (status, _) = send(gw.as_admin(Method::GET, &path), &path).await;
                        answered.fetch_add(1, Ordering::SeqCst);
                        *statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            answered,
            statuses,
            tasks,
        }
    }

    /// Stops the loops and waits for their last requests; returns the statuses seen.
    async fn finish(self) -> BTreeMap<u16, usize> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.statuses.lock().unwrap().clone()
    }
}

/// The bad cluster's view once its `lastError` contains `cause`.
async fn wait_last_error(gw: &TestGateway, cause: &str) -> Value {
    eventually(&format!("lastError mentions `{cause}`"), || async {
        let (_, view) = admin_get(gw, "/api/v1/clusters/bad").await;
        view["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(cause))
            .then_some(view)
    })
    .await
}

/// The good cluster is untouched: connected, no error.
async fn assert_good_untouched(gw: &TestGateway, phase: &str) {
    let (_, view) = admin_get(gw, "/api/v1/clusters/good").await;
    assert_eq!(view["state"], "connected", "{phase}: {view}");
    assert!(view["lastError"].is_null(), "{phase}: {view}");
}

async fn wait_healthy(gw: &TestGateway) {
    eventually("the bad cluster is healthy again", || async {
        let (_, view) = admin_get(gw, "/api/v1/clusters/bad").await;
        (view["state"] == "connected" && view["lastError"].is_null()).then_some(())
    })
    .await;
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Two clusters behind one gateway (heartbeat every second). The bad one hangs, then refuses
/// connections, then answers 500; meanwhile 8 request loops hammer it. The good cluster's median
/// latency stays within [`RATIO`] of a baseline taken under the same load against a healthy bad
/// cluster; while the bad one hangs the good one answers all its requests before any of the
/// bad one's stuck requests completes; the good cluster stays connected without error; the bad
/// cluster's lastError names the cause each time, and it recovers by itself after each fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_misbehaving_cluster_does_not_slow_the_others_and_shows_why() {
    let good = KubeSim::start().await.unwrap();
    let bad = KubeSim::start().await.unwrap();
    let gw = Arc::new(
        TestGateway::builder()
            .args(["--heartbeat-interval-seconds", "1"])
            .args(["--upstream-timeout-seconds", "60"])
            .start()
            .await,
    );
    gw.add_cluster("good", &good.kubeconfig()).await.unwrap();
    gw.add_cluster("bad", &bad.kubeconfig()).await.unwrap();
    let mut report = Vec::new();

    // Baseline: the good cluster's latency while the bad one is healthy and under the same
    // load the faults below see.
    good_latencies(&gw).await; // warm-up
    let load = BadLoad::start(&gw);
    let baseline = median(&mut good_latencies(&gw).await);
    let statuses = load.finish().await;
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200],
        "{statuses:?}"
    );
    report.push(format!("baseline {}", ms(baseline)));
    let bound = baseline * RATIO;

    // 1. The bad cluster hangs (accepts requests, answers only much later). The good cluster's
    //    requests complete while the bad one's are stuck.
    let arrived = || {
        bad.requests()
            .iter()
            .filter(|r| r.path.starts_with(BAD_PATH))
            .count()
    };
    let before = arrived();
    bad.faults().freeze();
    let load = BadLoad::start(&gw);
    eventually("the bad cluster's requests are stuck upstream", || async {
        (arrived() >= before + BAD_LOOPS).then_some(())
    })
    .await;
    let during = median(&mut good_latencies(&gw).await);
    assert_eq!(
        load.answered.load(Ordering::SeqCst),
        0,
        "the bad cluster's requests are still stuck while the good cluster answered {ROUNDS}"
    );
    assert!(
        during <= bound,
        "hanging cluster: good median {} vs baseline {}",
        ms(during),
        ms(baseline)
    );
    let view = wait_last_error(&gw, "did not answer within").await;
    report.push(format!(
        "hang: {} (state {}, lastError {})",
        ms(during),
        view["state"],
        view["lastError"]
    ));
    assert_good_untouched(&gw, "hang").await;
    bad.faults().unfreeze();
    let statuses = load.finish().await;
    assert!(
        statuses.keys().all(|s| *s == 200),
        "held requests are answered once it thaws: {statuses:?}"
    );
    wait_healthy(&gw).await;

    // 2. The bad cluster refuses connections (open ones are closed).
    bad.refuse_connections().await;
    let load = BadLoad::start(&gw);
    let view = wait_last_error(&gw, "cannot reach").await;
    let during = median(&mut good_latencies(&gw).await);
    let statuses = load.finish().await;
    assert!(
        during <= bound,
        "refusing cluster: good median {} vs baseline {}",
        ms(during),
        ms(baseline)
    );
    assert!(
        statuses.keys().all(|s| [502, 503].contains(s)),
        "a refusing cluster is a 502 (503 once marked failed): {statuses:?}"
    );
    report.push(format!(
        "refused: {} (bad answered {statuses:?}; state {}, lastError {})",
        ms(during),
        view["state"],
        view["lastError"]
    ));
    assert_good_untouched(&gw, "refused").await;
    bad.accept_connections().await;
    wait_healthy(&gw).await;

    // 3. The bad cluster answers 500 to everything.
    bad.faults().set_failure_rate(1.0, 500);
    let load = BadLoad::start(&gw);
    let view = wait_last_error(&gw, "answered 500").await;
    let during = median(&mut good_latencies(&gw).await);
    let statuses = load.finish().await;
    assert!(
        during <= bound,
        "5xx cluster: good median {} vs baseline {}",
        ms(during),
        ms(baseline)
    );
    assert!(
        statuses.keys().all(|s| [500, 503].contains(s)),
        "the cluster's 500 passes through (503 once marked failed): {statuses:?}"
    );
    report.push(format!(
        "5xx: {} (bad answered {statuses:?}; state {}, lastError {})",
        ms(during),
        view["state"],
        view["lastError"]
    ));
    assert_good_untouched(&gw, "5xx").await;
    bad.faults().clear();
    wait_healthy(&gw).await;

    eprintln!("good cluster median latency: {report:#?}");
    Arc::try_unwrap(gw).expect("no other handle").stop().await;
}
