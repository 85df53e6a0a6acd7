//! `portico helm repo …` and `portico chart search` against a local Helm repository (an
//! `index.yaml` behind a bearer token, on 127.0.0.1), synced by the built-in repo-sync job.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cli_support::{header as columns, row, with_variables};
use portico::commands::exit;
use portico_e2e::plugins::{gateway_builder, plugin_dir};
use serde_json::Value;

mod cli_support;

const INDEX: &str = r#"
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
      keywords: [http, proxy]
      urls: [web-1.10.0.tgz]
  db:
    - name: db
      version: 0.1.0
      description: A database
      deprecated: true
      urls: [db-0.1.0.tgz]
"#;

/// Serves [`INDEX`] at `/charts/index.yaml` to `Authorization: Bearer s3cret` only.
async fn repository() -> String {
    let router = Router::new().route(
        "/charts/index.yaml",
        get(|headers: HeaderMap| async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if auth != Some("Bearer s3cret") {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            INDEX.into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/charts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_repositories_sync_and_chart_search() {
    let gw = gateway_builder("admin-cli-helm")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let url = repository().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = with_variables(&gw, dir.path());

    // The built-in repo-sync job is created at start.
    portico_e2e::fleet::eventually("the built-in job", Duration::from_secs(60), || async {
        let jobs = cli.ok(&["job", "list", "-o", "json"]).await;
        let items = jobs.value()["items"].as_array().unwrap().clone();
        items
            .iter()
            .any(|j| j["name"] == "helm-repo-sync")
            .then_some(())
    })
    .await;

    // Add: the token is write-only; list shows the kind of credentials.
    let added = cli
        .ok(&[
            "helm",
            "repo",
            "add",
            "local",
            &url,
            "--bearer-token",
            "s3cret",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(added.value()["authType"], "bearer");
    assert!(!added.json().contains("s3cret"));
    let bad = cli.err(&["helm", "repo", "add", "Bad Name", &url]).await;
    assert_eq!(bad.status(), Some(400), "{bad}");
    assert!(bad.to_string().contains("`name`"), "{bad}");
    let listed = cli.ok(&["helm", "repo", "list"]).await.table();
    assert_eq!(
        columns(&listed),
        ["NAME", "URL", "AUTH", "LAST", "SYNC", "STATUS", "ERROR"]
    );
    assert_eq!(row(&listed, "local")[1..4], [url.as_str(), "bearer", "-"]);

    // Sync: runs the repo-sync job and waits for it.
    let synced = cli.ok(&["helm", "repo", "sync"]).await;
    let runs = synced.value()["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "success", "{}", synced.json());
    let table = synced.table();
    assert!(table.contains(": success"), "{table}");
    assert_eq!(row(&table, "local")[4], "success", "{table}");

    // Search: the newest version of each chart, a keyword, every version.
    let found = cli.ok(&["chart", "search"]).await.table();
    assert_eq!(
        columns(&found),
        [
            "REPOSITORY",
            "NAME",
            "VERSION",
            "APP",
            "VERSION",
            "NEW",
            "DEPRECATED",
            "DESCRIPTION"
        ]
    );
    assert_eq!(found.lines().count(), 3, "{found}");
    let web = row(&found, "local");
    assert!(web.contains(&"web".to_owned()) || web.contains(&"db".to_owned()));
    let keyword = cli.ok(&["chart", "search", "PROXY", "-o", "json"]).await;
    let items = keyword.value()["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", keyword.json());
    assert_eq!(items[0]["name"], "web");
    assert_eq!(items[0]["version"], "1.10.0");
    let versions = cli
        .ok(&[
            "chart",
            "search",
            "web",
            "--versions",
            "--repo",
            "local",
            "-o",
            "json",
        ])
        .await;
    let listed: Vec<&str> = versions.value()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.10.0", "1.9.0"]);
    let deprecated = cli.ok(&["chart", "search", "database"]).await.table();
    let cells = row(&deprecated, "local");
    assert_eq!(
        cells[1..6],
        ["db", "0.1.0", "-", "yes", "yes"],
        "{deprecated}"
    );
    let none = cli
        .ok(&["chart", "search", "nothing-like-it"])
        .await
        .table();
    assert_eq!(none.lines().count(), 1, "{none}");

    // Without credentials the sync fails: exit 1, naming the repository.
    let changed = cli
        .ok(&["helm", "repo", "update", "local", "--no-auth", "-o", "json"])
        .await;
    assert_eq!(changed.value()["authType"], Value::Null);
    let failed = cli.err(&["helm", "repo", "sync"]).await;
    assert_eq!(failed.exit_code(), exit::FAILED, "{failed}");
    assert!(failed.to_string().contains("local"), "{failed}");
    let shown = cli.ok(&["helm", "repo", "get", "local"]).await.table();
    assert!(shown.contains("failed"), "{shown}");

    // Delete.
    cli.ok(&["helm", "repo", "delete", "local"]).await;
    let gone = cli.err(&["helm", "repo", "get", "local"]).await;
    assert_eq!(gone.exit_code(), exit::NOT_FOUND, "{gone}");
    gw.stop().await;
}
