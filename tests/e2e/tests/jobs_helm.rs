//! Helm repositories synchronised by the built-in repo-sync job through the `helm-index`
//! plugin, against a local HTTP server serving an `index.yaml` behind basic auth, and a local
//! HTTPS server whose certificate comes from a private CA (the repository's `caPem`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use portico::testing::ServerTls;
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{gateway_builder, plugin_dir};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);

const INDEX_V1: &str = r#"
apiVersion: v1
entries:
  web:
    - name: web
      version: 1.9.0
      appVersion: "1.9"
      description: A web server (old)
      urls: [web-1.9.0.tgz]
    - name: web
      version: 1.10.0
      appVersion: "2.0"
      description: A web server
      digest: abc123
      icon: https://example.com/web.png
      keywords: [http, proxy]
      urls: [web-1.10.0.tgz]
  db:
    - name: db
      version: 0.1.0
      description: A database
      deprecated: true
      urls: [https://cdn.example.com/db-0.1.0.tgz]
"#;

/// V1 plus a new `web` version.
const INDEX_V2: &str = r#"
apiVersion: v1
entries:
  web:
    - name: web
      version: 1.9.0
      urls: [web-1.9.0.tgz]
    - name: web
      version: 1.10.0
      appVersion: "2.0"
      description: A web server
      urls: [web-1.10.0.tgz]
    - name: web
      version: 1.11.0-rc.1
      appVersion: "2.1-rc"
      description: A web server (candidate)
      icon: https://example.com/web-2.png
      keywords: [http]
      urls: [web-1.11.0-rc.1.tgz]
  db:
    - name: db
      version: 0.1.0
      description: A database
      deprecated: true
      urls: [https://cdn.example.com/db-0.1.0.tgz]
"#;

/// Polls `check` until it returns `Some`, failing after [`WAIT`] with `what`.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    portico_e2e::fleet::eventually(what, WAIT, check).await
}

/// Serves the current index at `/charts/index.yaml` behind basic auth `user:secret`, with an
/// ETag per index (`304` when it matches), so syncs after a change see it unchanged.
async fn repository(index: Arc<Mutex<&'static str>>) -> String {
    let router = Router::new().route(
        "/charts/index.yaml",
        get(move |headers: HeaderMap| {
            let index = index.clone();
            async move {
                if headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap())
                    != Some("Basic dXNlcjpzZWNyZXQ=")
                {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let body = *index.lock().unwrap();
                let etag = if body == INDEX_V1 { "\"v1\"" } else { "\"v2\"" };
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.to_str().unwrap() == etag)
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, etag)], body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/charts")
}

fn find<'a>(items: &'a [Value], name: &str, version: &str) -> &'a Value {
    items
        .iter()
        .find(|c| c["name"] == name && c["version"] == version)
        .unwrap_or_else(|| panic!("no {name} {version} in {items:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_job_syncs_repositories_and_records_new_versions() {
    let gw = gateway_builder("jobs-helm")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        // The repository is served on 127.0.0.1.
        .args(["--plugin-http-allow-local"])
        .env("JOB_POLL_INTERVAL_MS", "200")
        .start()
        .await;
    let index = Arc::new(Mutex::new(INDEX_V1));
    let url = repository(index.clone()).await;

    // The built-in job exists with its six-hourly schedule.
    let job = eventually("the built-in job", || async {
        let jobs = ok(&gw, Method::GET, "/api/v1/jobs", None).await;
        jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "helm-repo-sync")
            .cloned()
    })
    .await;
    assert_eq!(job["kind"], "repo-sync");
    assert_eq!(job["cron"], "0 */6 * * *");
    assert_eq!(job["plugins"], json!(["helm-index"]));
    let job_id = job["id"].as_str().unwrap().to_owned();

    // A repository: credentials write-only.
    let response = gw
        .as_admin(Method::POST, "/api/v1/helm/repositories")
        .json(&json!({"name": "Bad Name", "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let repo = ok(
        &gw,
        Method::POST,
        "/api/v1/helm/repositories",
        Some(json!({"name": "local", "url": url,
                    "auth": {"basic": {"username": "user", "password": "secret"}}})),
    )
    .await;
    assert_eq!(repo["authType"], "basic");
    assert!(!repo.to_string().contains("secret"), "{repo}");

    // Run now: every version is new.
    let run = ok(
        &gw,
        Method::POST,
        &format!("/api/v1/jobs/{job_id}/run"),
        None,
    )
    .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let run = eventually("the sync finishes", || async {
        let run = ok(&gw, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
        (run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run["status"], "success", "{run}");
    let charts = ok(&gw, Method::GET, "/api/v1/helm/charts", None).await;
    let newest = charts["items"].as_array().unwrap();
    assert_eq!(newest.len(), 2, "{charts}");
    let web = find(newest, "web", "1.10.0");
    assert_eq!(web["repository"], "local");
    assert_eq!(web["appVersion"], "2.0");
    assert_eq!(web["description"], "A web server");
    assert_eq!(web["digest"], "abc123");
    assert_eq!(web["icon"], "https://example.com/web.png");
    assert_eq!(web["keywords"], json!(["http", "proxy"]));
    assert_eq!(web["urls"], json!([format!("{url}/web-1.10.0.tgz")]));
    assert_eq!(web["new"], true);
    assert_eq!(web["firstSeenRun"], run_id.as_str());
    let db = find(newest, "db", "0.1.0");
    assert_eq!(db["deprecated"], true);
    assert_eq!(db["icon"], Value::Null);
    assert_eq!(db["keywords"], json!([]));
    let all = ok(
        &gw,
        Method::GET,
        "/api/v1/helm/charts?versions=all&name=web",
        None,
    )
    .await;
    let versions: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.9.0"]);
    let shown = ok(&gw, Method::GET, "/api/v1/helm/repositories/local", None).await;
    assert_eq!(shown["lastSyncStatus"], "success", "{shown}");
    assert_eq!(shown["lastSyncRun"], run_id.as_str());

    // A new version appears; the cron is changed to every second, no restart: the scheduler
    // syncs and only the added version is new.
    *index.lock().unwrap() = INDEX_V2;
    let edited = ok(
        &gw,
        Method::PUT,
        &format!("/api/v1/jobs/{job_id}"),
        Some(json!({"cron": "* * * * * *"})),
    )
    .await;
    assert_eq!(edited["cron"], "* * * * * *");
    let scheduled = eventually("a scheduled sync", || async {
        let runs = ok(
            &gw,
            Method::GET,
            &format!("/api/v1/runs?job={job_id}"),
            None,
        )
        .await;
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["trigger"] == "schedule" && r["status"] != "running")
            .cloned()
    })
    .await;
    assert_eq!(scheduled["status"], "success", "{scheduled}");
    // Later syncs see the same ETag (unchanged): the marks stay.
    let charts = ok(
        &gw,
        Method::GET,
        "/api/v1/helm/charts?new=true&versions=all",
        None,
    )
    .await;
    let fresh = charts["items"].as_array().unwrap().clone();
    assert_eq!(fresh.len(), 1, "only the added version is new: {fresh:#?}");
    assert_eq!(fresh[0]["name"], "web");
    assert_eq!(fresh[0]["appVersion"], "2.1-rc");
    assert_eq!(fresh[0]["icon"], "https://example.com/web-2.png");
    assert_eq!(fresh[0]["keywords"], json!(["http"]));
    // The newest web version is now the candidate (1.11.0-rc.1 > 1.10.0).
    let charts = ok(&gw, Method::GET, "/api/v1/helm/charts?name=web", None).await;
    assert_eq!(charts["items"][0]["version"], "1.11.0-rc.1", "{charts}");
    assert_eq!(
        charts["items"][0]["description"],
        "A web server (candidate)"
    );
    gw.stop().await;
}

/// Serves `INDEX_V1` at `/charts/index.yaml` over HTTPS on 127.0.0.1, with a serving
/// certificate signed by a private CA (generated with rcgen by the gateway's own TLS module).
/// Returns the repository URL, the CA's PEM and the folder holding the files.
async fn private_repository() -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = ServerTls::self_signed(dir.path(), &["127.0.0.1".to_owned()]).unwrap();
    let ca_pem = tls.ca_pem.clone().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = tls.acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA ends the handshake: nothing to serve.
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let response = if head.starts_with("GET /charts/index.yaml ") {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/yaml\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{INDEX_V1}",
                        INDEX_V1.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (format!("https://{addr}/charts"), ca_pem, dir)
}

/// Starts a run of job `job_id` and waits for it to finish.
async fn run_to_end(gw: &TestGateway, job_id: &str) -> Value {
    let run = ok(
        gw,
        Method::POST,
        &format!("/api/v1/jobs/{job_id}/run"),
        None,
    )
    .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    eventually("the sync finishes", || async {
        let run = ok(gw, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
        (run["status"] != "running").then_some(run)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_with_a_private_ca_syncs_over_https() {
    let gw = gateway_builder("jobs-helm-ca")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        // The repository is served on 127.0.0.1.
        .args(["--plugin-http-allow-local"])
        .env("JOB_POLL_INTERVAL_MS", "200")
        .start()
        .await;
    let (url, ca_pem, _dir) = private_repository().await;
    let job_id = eventually("the built-in job", || async {
        let jobs = ok(&gw, Method::GET, "/api/v1/jobs", None).await;
        jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "helm-repo-sync")
            .map(|j| j["id"].as_str().unwrap().to_owned())
    })
    .await;

    // A `caPem` that is not a CA certificate is refused, saying why.
    for bad in [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let response = gw
            .as_admin(Method::POST, "/api/v1/helm/repositories")
            .json(&json!({"name": "private", "url": url, "caPem": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("`caPem`: "), "{body}");
    }

    // With its CA, the repository syncs.
    let repo = ok(
        &gw,
        Method::POST,
        "/api/v1/helm/repositories",
        Some(json!({"name": "private", "url": url, "caPem": ca_pem})),
    )
    .await;
    let repo_id = repo["id"].as_str().unwrap().to_owned();
    let response = gw
        .as_admin(Method::PUT, &format!("/api/v1/helm/repositories/{repo_id}"))
        .json(&json!({"caPem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let run = run_to_end(&gw, &job_id).await;
    assert_eq!(run["status"], "success", "{run}");
    let charts = ok(&gw, Method::GET, "/api/v1/helm/charts", None).await;
    let newest = charts["items"].as_array().unwrap();
    let web = find(newest, "web", "1.10.0");
    assert_eq!(web["repository"], "private");
    assert_eq!(web["urls"], json!([format!("{url}/web-1.10.0.tgz")]));
    let shown = ok(&gw, Method::GET, "/api/v1/helm/repositories/private", None).await;
    assert_eq!(shown["lastSyncStatus"], "success", "{shown}");
    assert_eq!(shown["caPem"], ca_pem.as_str());

    // Without it, the web PKI roots do not trust the server: the sync fails on the
    // certificate and the repository records why.
    let edited = ok(
        &gw,
        Method::PUT,
        &format!("/api/v1/helm/repositories/{repo_id}"),
        Some(json!({"caPem": null})),
    )
    .await;
    assert_eq!(edited["caPem"], Value::Null);
    let run = run_to_end(&gw, &job_id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let shown = ok(&gw, Method::GET, "/api/v1/helm/repositories/private", None).await;
    assert_eq!(shown["lastSyncStatus"], "failed", "{shown}");
    let error = shown["lastError"].as_str().unwrap();
    assert!(error.contains("invalid peer certificate"), "{error}");
    gw.stop().await;
}
