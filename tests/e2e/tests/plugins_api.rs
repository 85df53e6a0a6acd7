//! The plugin API (admin only: upload, list, enable/disable, configure, delete), plugins
//! surviving a restart without recompiling, the `helm-index` repo-sync plugin against a local
//! Helm repository, and the example lifecycle hook.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kube_sim::KubeSim;
use portico::plugin::{Error, RepositoryAuth, RepositoryInfo, SyncOutcome};
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{
    cluster, gateway_builder, kube_api, plugin_dir, upload, upload_to, wasm,
};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "plugin-test-admin-token";

const OK_MANIFEST: &str = r#"
name = "greeter"
version = "1.0.0"
world = "inspector"
description = "says hello"

[capabilities]
config = true

[config]
mode = "ok"
"#;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn plugins_are_managed_by_admins_only() {
    let gw = gateway_builder("api-admin").start().await;
    // A user token is refused.
    let response = gw
        .as_admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "viewer", "role": "user"}))
        .send()
        .await
        .unwrap();
    let user: Value = response.json().await.unwrap();
    let user_token = user["token"].as_str().unwrap();
    let response = gw
        .as_token(user_token, Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = gw
        .request(Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Upload, list, show.
    let response = upload(&gw, OK_MANIFEST, wasm("misbehave")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], "greeter");
    assert_eq!(created["source"], "upload");
    assert_eq!(created["world"], "inspector");
    assert_eq!(created["description"], "says hello");
    assert_eq!(created["config"], json!({"mode": "ok"}));
    assert_eq!(created["limits"]["timeoutMs"], 30000);
    let again = upload(&gw, OK_MANIFEST, wasm("misbehave")).await;
    assert_eq!(again.status(), 409);
    let list: Value = gw
        .as_admin(Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    let uploads: Vec<&Value> = items.iter().filter(|p| p["source"] == "upload").collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0]["builtIn"], false);
    // Beside it, the built-in plugins.
    let built_in: Vec<&str> = items
        .iter()
        .filter(|p| p["builtIn"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(built_in, ["builtin-checks", "helm-index", "rules"]);

    // Disabled plugins do not run.
    let sim = KubeSim::start().await.unwrap();
    let plugins = &gw.gateway().app().plugins;
    let response = gw
        .as_admin(Method::POST, "/api/v1/plugins/greeter/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["enabled"], false);
    let error = plugins
        .inspect("greeter", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Disabled(_)), "{error:?}");
    let response = gw
        .as_admin(Method::POST, "/api/v1/plugins/greeter/enable")
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["enabled"], true);
    let report = plugins
        .inspect("greeter", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap();
    assert_eq!(report.value[0].message, "hello c1");

    // The installation's configuration replaces the manifest's default, and can be reset.
    let response = gw
        .as_admin(Method::PUT, "/api/v1/plugins/greeter/config")
        .json(&json!({"mode": "no-such-mode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let error = plugins
        .inspect("greeter", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "plugin `greeter` failed: invalid: unknown mode \"no-such-mode\""
    );
    let response = gw
        .as_admin(Method::DELETE, "/api/v1/plugins/greeter/config")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap()["config"],
        json!({"mode": "ok"})
    );

    // A plugin of another world cannot be called as an inspector.
    let error = plugins
        .sync_repository(
            "greeter",
            &RepositoryInfo {
                name: "r".into(),
                url: "http://127.0.0.1:9".into(),
                auth: None,
                etag: None,
                ca_pem: None,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "plugin `greeter` implements world `inspector`, not `repo-sync`"
    );

    // Replace keeps the state; delete removes it.
    let v2 = OK_MANIFEST.replace("1.0.0", "2.0.0");
    let response = upload_to(&gw, "/api/v1/plugins?replace=true", &v2, wasm("misbehave")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["version"], "2.0.0");
    let response = gw
        .as_admin(Method::DELETE, "/api/v1/plugins/greeter")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = gw
        .as_admin(Method::GET, "/api/v1/plugins/greeter")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    gw.stop().await;
}

#[tokio::test]
async fn uploaded_plugins_survive_a_restart_without_recompiling() {
    let data = tempfile::tempdir().unwrap();
    // The default compile cache beside the database, not the suite's shared one: this test
    // counts what is compiled.
    let cache = data.path().join("plugin-cache");
    let cache = cache.to_str().unwrap();
    let gw = TestGateway::builder()
        .data_dir(data.path())
        .args(["--admin-token", ADMIN_TOKEN, "--plugin-cache-dir", cache])
        .start()
        .await;
    let response = upload(&gw, OK_MANIFEST, wasm("misbehave")).await;
    assert_eq!(response.status(), 201);
    // Compiled at upload: the API reports how long that took and the component's size.
    let uploaded: Value = response.json().await.unwrap();
    assert!(uploaded["compiledInMs"].is_u64(), "{uploaded}");
    assert_eq!(
        uploaded["componentBytes"].as_u64(),
        Some(wasm("misbehave").len() as u64)
    );
    // The upload and the three built-in plugins (compiled in the background at start).
    gw.gateway().app().plugins.builtins_compiled().await;
    assert_eq!(gw.gateway().app().plugins.host().cache_misses(), 4);
    gw.stop().await;

    let gw = TestGateway::builder()
        .data_dir(data.path())
        .args(["--admin-token", ADMIN_TOKEN, "--plugin-cache-dir", cache])
        .start()
        .await;
    let sim = KubeSim::start().await.unwrap();
    let plugins = &gw.gateway().app().plugins;
    // The stored upload is compiled in the background at start, before any call.
    plugins.builtins_compiled().await;
    let listed = plugins.get("greeter").await.unwrap();
    assert!(listed.compiled_in_ms.is_some(), "compiled at start");
    let response = gw
        .as_admin(Method::GET, "/api/v1/plugins/greeter")
        .send()
        .await
        .unwrap();
    let shown: Value = response.json().await.unwrap();
    assert!(shown["compiledInMs"].is_u64(), "{shown}");
    let report = plugins
        .inspect("greeter", &cluster("c2"), kube_api(&sim))
        .await
        .expect("the stored plugin runs after a restart");
    assert_eq!(report.value[0].message, "hello c2");
    // Compiled code came from the disk cache: the upload's and the built-ins'.
    assert_eq!(plugins.host().cache_hits(), 4);
    assert_eq!(plugins.host().cache_misses(), 0);
    gw.stop().await;
}

/// A classic Helm repository: `index.yaml` with an ETag, behind basic auth.
fn helm_repository(requests: Arc<Mutex<Vec<Option<String>>>>) -> Router {
    const INDEX: &str = r#"
apiVersion: v1
entries:
  web:
    - name: web
      version: 1.2.0
      appVersion: "2.0"
      description: A web server
      digest: abc123
      urls: [charts/web-1.2.0.tgz]
      created: "2024-01-02T03:04:05Z"
    - name: web
      version: 1.1.0
      urls: [https://cdn.example.com/web-1.1.0.tgz]
      deprecated: true
  db:
    - version: 0.1.0
      urls: [db-0.1.0.tgz]
generated: "2024-01-02T03:04:05Z"
"#;
    Router::new().route(
        "/charts/index.yaml",
        get(move |headers: HeaderMap| {
            let requests = requests.clone();
            async move {
                let etag = headers
                    .get(header::IF_NONE_MATCH)
                    .map(|v| v.to_str().unwrap().to_owned());
                requests.lock().unwrap().push(etag.clone());
                // "user:secret"
                if headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap())
                    != Some("Basic dXNlcjpzZWNyZXQ=")
                {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                if etag.as_deref() == Some("\"v1\"") {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, "\"v1\"")], INDEX).into_response()
            }
        }),
    )
}

#[tokio::test]
async fn helm_index_syncs_a_repository_with_conditional_get() {
    let gw = gateway_builder("api-helm")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        // The repository is served on 127.0.0.1.
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let base = serve(helm_repository(requests.clone())).await;
    let plugins = &gw.gateway().app().plugins;
    let mut repository = RepositoryInfo {
        name: "local".into(),
        url: format!("{base}/charts/"),
        auth: Some(RepositoryAuth::Basic {
            username: "user".into(),
            password: "secret".into(),
        }),
        etag: None,
        ca_pem: None,
    };

    let report = plugins
        .sync_repository("helm-index", &repository)
        .await
        .expect("the sync runs");
    let SyncOutcome::Updated(index) = report.value else {
        panic!("expected charts, got {:?}", report.value);
    };
    assert_eq!(index.etag.as_deref(), Some("\"v1\""));
    assert_eq!(index.charts.len(), 3);
    let web = index
        .charts
        .iter()
        .find(|c| c.name == "web" && c.version == "1.2.0")
        .unwrap();
    assert_eq!(web.app_version.as_deref(), Some("2.0"));
    assert_eq!(web.digest.as_deref(), Some("abc123"));
    assert_eq!(web.urls, [format!("{base}/charts/charts/web-1.2.0.tgz")]);
    let old = index.charts.iter().find(|c| c.version == "1.1.0").unwrap();
    assert!(old.deprecated);
    assert_eq!(old.urls, ["https://cdn.example.com/web-1.1.0.tgz"]);
    let db = index.charts.iter().find(|c| c.name == "db").unwrap();
    assert_eq!(db.urls, [format!("{base}/charts/db-0.1.0.tgz")]);

    // The next sync is conditional and finds nothing new.
    repository.etag = index.etag.clone();
    let report = plugins
        .sync_repository("helm-index", &repository)
        .await
        .unwrap();
    assert_eq!(report.value, SyncOutcome::Unchanged);
    assert_eq!(*requests.lock().unwrap(), [None, Some("\"v1\"".to_owned())]);

    // Wrong credentials: the plugin says so.
    repository.auth = Some(RepositoryAuth::Bearer {
        token: "nope".into(),
    });
    match plugins.sync_repository("helm-index", &repository).await {
        Err(Error::Guest { kind, message, .. }) => {
            assert_eq!(kind, "denied");
            assert!(message.contains("HTTP 401"), "{message}");
        }
        other => panic!("expected a denied error, got {other:?}"),
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_example_lifecycle_hook_reads_the_cluster_and_posts_a_webhook() {
    // The webhook receiver is served on 127.0.0.1.
    let gw = gateway_builder("api-hook")
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let base = serve(Router::new().route(
        "/hook",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    ))
    .await;
    let manifest = format!(
        r#"
name = "notify"
version = "0.1.0"
world = "lifecycle-hook"

[capabilities]
kube = true
log = true
config = true
http = ["127.0.0.1"]

[hook]
scope = "replica"

[config]
webhook-url = "{base}/hook"
"#
    );
    let response = upload(&gw, &manifest, wasm("connect-logger")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<Value>().await.unwrap()["hookScope"],
        "replica"
    );

    let sim = KubeSim::start().await.unwrap();
    sim.seed_nodes(3);
    let plugins = &gw.gateway().app().plugins;
    let report = plugins
        .lifecycle("notify", true, &cluster("c1"), kube_api(&sim))
        .await
        .expect("on-connect runs");
    assert_eq!(report.logs[0].message, "connected to c1 (3 nodes)");
    plugins
        .lifecycle("notify", false, &cluster("c1"), kube_api(&sim))
        .await
        .expect("on-disconnect runs");
    assert_eq!(
        *received.lock().unwrap(),
        [
            json!({"event": "connected", "cluster": "c1", "nodes": 3}),
            json!({"event": "disconnected", "cluster": "c1", "nodes": 0}),
        ]
    );
    gw.stop().await;
}

async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let text = |key: &str| body["error"][key].as_str().unwrap_or_default().to_owned();
    (status, text("code"), text("message"))
}

#[tokio::test]
async fn uploads_past_their_limits_are_refused_with_413() {
    let gw = gateway_builder("api-upload-limits").start().await;

    // A manifest part over 64 KiB (valid TOML: a long description).
    let long = format!("{OK_MANIFEST}\n").replace(
        "description = \"says hello\"",
        &format!("description = \"{}\"", "a".repeat(100 << 10)),
    );
    let (status, code, message) = refusal(upload(&gw, &long, wasm("misbehave")).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert_eq!(message, "the manifest is larger than the limit of 64 KiB");

    // A component part one byte over 64 MiB: refused once that byte arrives.
    let mut big = wasm("misbehave");
    big.resize((64 << 20) + 1, 0);
    let (status, code, message) = refusal(upload(&gw, OK_MANIFEST, big).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert_eq!(message, "the component is larger than the limit of 64 MiB");

    // A body declared larger than any upload: refused before it is read.
    let huge = vec![0; 80 << 20];
    let (status, code, message) = refusal(upload(&gw, OK_MANIFEST, huge).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert_eq!(message, "the upload is larger than the limit of 64 MiB");

    // A part named twice.
    let form = reqwest::multipart::Form::new()
        .text("manifest", OK_MANIFEST)
        .text("manifest", OK_MANIFEST);
    let response = gw
        .as_admin(Method::POST, "/api/v1/plugins")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, code, message) = refusal(response).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(message.contains("appears twice"), "{message}");

    // Nothing was installed; a normal upload still works.
    let response = upload(&gw, OK_MANIFEST, wasm("misbehave")).await;
    assert_eq!(response.status(), 201);
    gw.stop().await;
}
