//! Hooks on connect and disconnect: signed webhooks with retries and a delivery log, a hanging
//! receiver that must not hold up the connect, and the example lifecycle-hook plugin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{gateway_builder, upload, wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Mutex, Notify, watch};

/// Bound on every wait: reached only when something is broken.
const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "webhook-test-secret";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    route: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks `X-Portico-Signature` against our own HMAC of the body.
    fn assert_signed_with(&self, secret: &str) {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            self.headers["x-portico-signature"].to_str().unwrap(),
            expected,
            "signature of {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// A local webhook receiver. Routes: `/ok` (204), `/flaky` (503 twice, then 200), `/broken`
/// (always 500), `/reject` (400), `/hang` (answers only once released).
#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
    flaky_calls: AtomicUsize,
    release: watch::Sender<bool>,
}

impl Inbox {
    async fn start() -> (Arc<Self>, String) {
        let inbox = Arc::new(Self::default());
        let router = Router::new()
            .route("/{route}", post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (inbox, format!("http://{addr}"))
    }

    async fn on(&self, route: &str) -> Vec<Received> {
        let received = self.received.lock().await;
        received
            .iter()
            .filter(|r| r.route == route)
            .cloned()
            .collect()
    }

    /// Waits until `route` got at least `n` requests; returns them.
    async fn wait_for(&self, route: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            // Created before the check: a request arriving in between still wakes it.
            let arrived = self.arrived.notified();
            let got = self.on(route).await;
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, arrived).await.is_ok(),
                "`/{route}` got {} of {n} requests",
                got.len()
            );
        }
    }
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    inbox.received.lock().await.push(Received {
        route: route.clone(),
        headers,
        body,
    });
    inbox.arrived.notify_waiters();
    match route.as_str() {
        "ok" => (StatusCode::NO_CONTENT, ""),
        "flaky" if inbox.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 => {
            (StatusCode::SERVICE_UNAVAILABLE, "warming up")
        }
        "flaky" => (StatusCode::OK, "thanks"),
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "it broke"),
        "reject" => (StatusCode::BAD_REQUEST, "nope"),
        "hang" => {
            let mut release = inbox.release.subscribe();
            let _ = release.wait_for(|released| *released).await;
            (StatusCode::OK, "late")
        }
        _ => (StatusCode::NOT_FOUND, ""),
    }
}

/// `POST /api/v1/webhooks`; returns the created webhook.
async fn create_webhook(gw: &TestGateway, body: Value) -> Value {
    let response = gw
        .as_admin(Method::POST, "/api/v1/webhooks")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Polls a webhook's delivery log until `done` holds for it (bounded).
async fn deliveries_until(
    gw: &TestGateway,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log: Value = gw
            .as_admin(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = log["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(Instant::now() < deadline, "deliveries of {id}: {items:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn finished(items: &[Value], n: usize) -> bool {
    items.len() == n && items.iter().all(|d| d["state"] != "pending")
}

/// Polls `/metrics` until it has `line` (bounded).
async fn metrics_until(gw: &TestGateway, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = gw
            .as_admin(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{line}` in:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post_admin(gw: &TestGateway, path: &str) -> Value {
    let response = gw.as_admin(Method::POST, path).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn one_signed_delivery_per_connect_and_disconnect() {
    let sim = KubeSim::start().await.unwrap();
    let gw = TestGateway::builder().start().await;
    let (inbox, base) = Inbox::start().await;
    let webhook = create_webhook(
        &gw,
        json!({"name": "audit", "url": format!("{base}/ok"), "secret": SECRET}),
    )
    .await;
    // Defaults, and the secret never comes back.
    assert_eq!(webhook["events"], json!(["connected", "disconnected"]));
    assert_eq!(webhook["scope"], "cluster");
    assert_eq!(webhook["clusters"], Value::Null);
    assert_eq!(webhook["enabled"], true);
    let id = webhook["id"].as_str().unwrap();
    let shown: Value = gw
        .as_admin(Method::GET, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!shown.to_string().contains(SECRET), "{shown}");
    assert!(shown.get("secret").is_none() && shown.get("sealedSecret").is_none());

    gw.add_cluster("sim", &sim.kubeconfig()).await.unwrap();
    let connected = inbox.wait_for("ok", 1).await;
    post_admin(&gw, "/api/v1/clusters/sim/disconnect").await;
    let both = inbox.wait_for("ok", 2).await;
    assert_eq!(both[0].body, connected[0].body);

    for (request, kind) in both.iter().zip(["connected", "disconnected"]) {
        request.assert_signed_with(SECRET);
        let body = request.json();
        assert_eq!(body["kind"], kind, "{body}");
        assert_eq!(body["clusterId"], "sim");
        assert_eq!(body["initiator"], true);
        assert_eq!(body["attempt"], 1);
        assert_eq!(body["webhookId"], id);
        assert!(body["instanceId"].as_str().is_some_and(|i| !i.is_empty()));
        assert!(body["at"].as_i64().unwrap() > 0);
        assert_eq!(request.headers["x-portico-event"], kind);
        assert_eq!(
            request.headers["x-portico-delivery"].to_str().unwrap(),
            body["delivery"].as_str().unwrap()
        );
        assert_eq!(request.headers["content-type"], "application/json");
    }
    assert!(
        both[0].json()["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with('v')
    );
    assert!(both[1].json().get("serverVersion").is_none());

    // The log shows exactly these two deliveries, each done in one attempt.
    let log = deliveries_until(&gw, id, |items| finished(items, 2)).await;
    for (entry, kind) in log.iter().zip(["disconnected", "connected"]) {
        assert_eq!(entry["event"], kind, "{entry}");
        assert_eq!(entry["clusterId"], "sim");
        assert_eq!(entry["state"], "delivered");
        assert_eq!(entry["attempts"], 1);
        assert_eq!(entry["lastStatus"], 204);
        assert_eq!(entry["lastError"], Value::Null);
        assert!(entry["finishedAt"].as_i64().unwrap() >= entry["createdAt"].as_i64().unwrap());
    }
    assert_eq!(inbox.on("ok").await.len(), 2);
    metrics_until(
        &gw,
        r#"portico_hook_deliveries_total{kind="webhook",result="delivered"} 2"#,
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_logged() {
    let sim = KubeSim::start().await.unwrap();
    let gw = TestGateway::builder()
        .args([
            "--webhook-retry-delay-ms",
            "1",
            "--webhook-max-attempts",
            "4",
        ])
        .start()
        .await;
    let (inbox, base) = Inbox::start().await;
    let mut ids = Vec::new();
    for route in ["flaky", "broken", "reject"] {
        let webhook = create_webhook(
            &gw,
            json!({
                "name": route,
                "url": format!("{base}/{route}"),
                "secret": SECRET,
                "events": ["connected"],
            }),
        )
        .await;
        ids.push(webhook["id"].as_str().unwrap().to_owned());
    }
    gw.add_cluster("sim", &sim.kubeconfig()).await.unwrap();

    // Two 503s, then a 200: one delivery, three attempts, the same delivery id throughout.
    let flaky = deliveries_until(&gw, &ids[0], |items| finished(items, 1)).await;
    assert_eq!(flaky[0]["state"], "delivered", "{flaky:#?}");
    assert_eq!(flaky[0]["attempts"], 3);
    assert_eq!(flaky[0]["lastStatus"], 200);
    assert_eq!(flaky[0]["lastError"], Value::Null);
    let attempts = inbox.on("flaky").await;
    assert_eq!(attempts.len(), 3);
    for (n, request) in attempts.iter().enumerate() {
        request.assert_signed_with(SECRET);
        let body = request.json();
        assert_eq!(body["attempt"], n + 1);
        assert_eq!(body["delivery"], flaky[0]["id"]);
    }

    // Always 500: every attempt made, then failed with the answer in the log.
    let broken = deliveries_until(&gw, &ids[1], |items| finished(items, 1)).await;
    assert_eq!(broken[0]["state"], "failed", "{broken:#?}");
    assert_eq!(broken[0]["attempts"], 4);
    assert_eq!(broken[0]["lastStatus"], 500);
    assert_eq!(broken[0]["lastError"], "HTTP 500: it broke");
    assert_eq!(inbox.on("broken").await.len(), 4);

    // A 400 is the receiver's answer, not a transient failure: no retry.
    let rejected = deliveries_until(&gw, &ids[2], |items| finished(items, 1)).await;
    assert_eq!(rejected[0]["state"], "failed");
    assert_eq!(rejected[0]["attempts"], 1);
    assert_eq!(rejected[0]["lastError"], "HTTP 400: nope");
    assert_eq!(inbox.on("reject").await.len(), 1);

    metrics_until(
        &gw,
        r#"portico_hook_deliveries_total{kind="webhook",result="failed"} 2"#,
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn a_hanging_receiver_never_holds_up_connect_or_disconnect() {
    let sim = KubeSim::start().await.unwrap();
    let gw = TestGateway::builder().start().await;
    let (inbox, base) = Inbox::start().await;
    let webhook = create_webhook(
        &gw,
        json!({"name": "slow", "url": format!("{base}/hang"), "secret": SECRET}),
    )
    .await;
    let id = webhook["id"].as_str().unwrap();
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "sim", "kubeconfig": sim.kubeconfig()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let connect = tokio::spawn(
        gw.as_admin(Method::POST, "/api/v1/clusters/sim/connect")
            .send(),
    );
    // The receiver holds the connect event's delivery…
    inbox.wait_for("hang", 1).await;
    // …and the connect answers all the same.
    let response = tokio::time::timeout(WAIT, connect)
        .await
        .expect("the connect answers while the webhook hangs")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["state"], "connected", "{view}");
    assert!(
        !*inbox.release.borrow(),
        "the receiver still holds the request"
    );
    let log = deliveries_until(&gw, id, |items| items.len() == 1).await;
    assert_eq!(log[0]["state"], "pending");

    // Disconnect too, with the first delivery still held.
    let view = post_admin(&gw, "/api/v1/clusters/sim/disconnect").await;
    assert_eq!(view["state"], "disconnected");
    inbox.wait_for("hang", 2).await;
    assert!(!*inbox.release.borrow());

    // Stopping the gateway ends the held deliveries; then let the receiver go.
    tokio::time::timeout(WAIT, gw.stop())
        .await
        .expect("shutdown does not wait for hanging webhooks");
    inbox.release.send_replace(true);
}

#[tokio::test]
async fn the_connect_logger_plugin_runs_on_connect_and_disconnect() {
    let sim = KubeSim::start().await.unwrap();
    sim.seed_nodes(2);
    // The receiver is served on 127.0.0.1.
    let gw = gateway_builder("hooks-plugin")
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let (inbox, base) = Inbox::start().await;
    // The example plugin, posting to our receiver; a second copy posts where it fails.
    for (name, route) in [("notify", "ok"), ("notify-broken", "broken")] {
        let manifest = include_str!("../../../plugins/examples/connect-logger/manifest.toml")
            .replace("name = \"connect-logger\"", &format!("name = \"{name}\""))
            .replace("http = []", "http = [\"127.0.0.1\"]")
            .replace(
                "[config]",
                &format!("[config]\nwebhook-url = \"{base}/{route}\""),
            );
        let response = upload(&gw, &manifest, wasm("connect-logger")).await;
        assert_eq!(response.status(), 201);
        assert_eq!(
            response.json::<Value>().await.unwrap()["hookScope"],
            "cluster"
        );
    }

    gw.add_cluster("sim", &sim.kubeconfig()).await.unwrap();
    // on-connect read the nodes through the gateway's pooled connection.
    let got = inbox.wait_for("ok", 1).await;
    assert_eq!(
        got[0].json(),
        json!({"event": "connected", "cluster": "sim", "nodes": 2})
    );
    post_admin(&gw, "/api/v1/clusters/sim/disconnect").await;
    let got = inbox.wait_for("ok", 2).await;
    assert_eq!(
        got[1].json(),
        json!({"event": "disconnected", "cluster": "sim", "nodes": 0})
    );
    inbox.wait_for("broken", 2).await;
    metrics_until(
        &gw,
        r#"portico_hook_deliveries_total{kind="plugin",result="delivered"} 2"#,
    )
    .await;
    metrics_until(
        &gw,
        r#"portico_hook_deliveries_total{kind="plugin",result="failed"} 2"#,
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn the_webhook_api_validates_and_manages_webhooks() {
    let gw = TestGateway::builder().start().await;
    let bad = [
        json!({"name": "x", "url": "ftp://example.com/", "secret": "s"}),
        json!({"name": "x", "url": "https://example.com/", "secret": ""}),
        json!({"name": "x", "url": "https://example.com/", "secret": "s", "events": []}),
        json!({"name": "x", "url": "https://example.com/", "secret": "s", "events": ["deleted"]}),
        json!({"name": "x", "url": "https://example.com/", "secret": "s", "scope": "global"}),
        json!({"name": "x", "url": "https://example.com/", "secret": "s", "clusters": ["a/b"]}),
        json!({"name": "has space", "url": "https://example.com/", "secret": "s"}),
        json!({"url": "https://example.com/", "secret": "s"}),
    ];
    for body in bad {
        let response = gw
            .as_admin(Method::POST, "/api/v1/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request", "{body}: {error}");
    }

    let created = create_webhook(
        &gw,
        json!({
            "name": "per-replica", "url": "https://hooks.example.com/a", "secret": "s",
            "events": ["disconnected", "disconnected"], "scope": "replica",
            "clusters": ["prod", "dev"], "enabled": false,
        }),
    )
    .await;
    assert_eq!(created["events"], json!(["disconnected"]));
    assert_eq!(created["scope"], "replica");
    assert_eq!(created["clusters"], json!(["dev", "prod"]));
    assert_eq!(created["enabled"], false);
    let id = created["id"].as_str().unwrap();
    let again = gw
        .as_admin(Method::POST, "/api/v1/webhooks")
        .json(&json!({"name": "per-replica", "url": "https://x.example/", "secret": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // PUT changes what it names; `clusters: null` means every cluster again.
    let response = gw
        .as_admin(Method::PUT, &format!("/api/v1/webhooks/{id}"))
        .json(&json!({"enabled": true, "clusters": null, "secret": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["enabled"], true);
    assert_eq!(updated["clusters"], Value::Null);
    assert_eq!(updated["scope"], "replica");
    assert_eq!(updated["url"], "https://hooks.example.com/a");

    // Admin only.
    let user = gw
        .create_token(json!({"name": "viewer", "role": "user"}))
        .await
        .unwrap();
    let response = gw
        .as_token(&user, Method::GET, "/api/v1/webhooks")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let list: Value = gw
        .as_admin(Method::GET, "/api/v1/webhooks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let response = gw
        .as_admin(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        let response = gw.as_admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    gw.stop().await;
}
