//! The admin CLI's plugin, webhook, job, run and finding commands against a running gateway
//! with the built-in plugins and a simulated cluster, in-process, reaching the gateway through
//! `PORTICO_SERVER`, `PORTICO_TOKEN` and `PORTICO_CA_FILE`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use cli_support::{Portico, header, row, with_variables};
use kube_sim::KubeSim;
use portico::commands::exit;
use portico_e2e::plugins::{gateway_builder, plugin_dir, wasm};
use serde_json::{Value, json};

mod cli_support;

const WAIT: Duration = Duration::from_secs(60);

const MANIFEST: &str = r#"
name = "greeter"
version = "1.0.0"
world = "inspector"
description = "says hello"

[capabilities]
config = true

[config]
mode = "ok"
"#;

async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    portico_e2e::fleet::eventually(what, WAIT, check).await
}

/// A webhook receiver answering 204, counting what it got.
async fn receiver() -> (String, Arc<Mutex<usize>>) {
    let got = Arc::new(Mutex::new(0));
    let counter = got.clone();
    let router = Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands() {
    let gw = gateway_builder("admin-cli-plugins")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cli = with_variables(&gw, dir.path());

    // The built-in plugins, as a table.
    let listed = cli.ok(&["plugin", "list"]).await;
    let table = listed.table();
    let head = header(&table);
    assert_eq!(
        head,
        [
            "NAME",
            "VERSION",
            "WORLD",
            "SOURCE",
            "ENABLED",
            "BUILT-IN",
            "DESCRIPTION"
        ]
    );
    let cells = row(&listed.table(), "builtin-checks");
    assert_eq!(cells[2..6], ["inspector", "builtin", "yes", "yes"]);

    // Install from `NAME.toml` beside `NAME.wasm`; again without --replace is a conflict.
    let manifest = dir.path().join("greeter.toml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    std::fs::write(dir.path().join("greeter.wasm"), wasm("misbehave")).unwrap();
    let installed = cli
        .ok(&["plugin", "install", manifest.to_str().unwrap()])
        .await;
    assert_eq!(installed.value()["source"], "upload");
    assert!(
        installed.table().contains("says hello"),
        "{}",
        installed.table()
    );
    let again = cli
        .err(&["plugin", "install", manifest.to_str().unwrap()])
        .await;
    assert_eq!(again.exit_code(), exit::CONFLICT, "{again}");
    let replaced = cli
        .ok(&[
            "plugin",
            "install",
            "--manifest",
            manifest.to_str().unwrap(),
            "--component",
            dir.path().join("greeter.wasm").to_str().unwrap(),
            "--replace",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(replaced.value()["name"], "greeter");
    let missing = cli.err(&["plugin", "install", "/nowhere/x.toml"]).await;
    assert_eq!(missing.exit_code(), exit::USAGE, "{missing}");

    // Configuration: shown, replaced, reset; a value that is not JSON never leaves.
    let config = cli.ok(&["plugin", "config", "greeter", "-o", "json"]).await;
    assert_eq!(config.value(), &json!({"mode": "ok"}));
    let config = cli
        .ok(&["plugin", "config", "greeter", r#"{"mode": "loud"}"#])
        .await;
    assert_eq!(config.value(), &json!({"mode": "loud"}));
    assert!(config.table().contains("\"loud\""), "{}", config.table());
    let file = dir.path().join("config.json");
    std::fs::write(&file, r#"{"mode": "file"}"#).unwrap();
    let at = format!("@{}", file.display());
    let config = cli.ok(&["plugin", "config", "greeter", &at]).await;
    assert_eq!(config.value(), &json!({"mode": "file"}));
    let config = cli.ok(&["plugin", "config", "greeter", "--reset"]).await;
    assert_eq!(config.value(), &json!({"mode": "ok"}));
    let bad = cli.err(&["plugin", "config", "greeter", "{nope"]).await;
    assert_eq!(bad.exit_code(), exit::USAGE, "{bad}");

    // Disable, enable, show as YAML, delete.
    let off = cli
        .ok(&["plugin", "disable", "greeter", "-o", "json"])
        .await;
    assert_eq!(off.value()["enabled"], false);
    let on = cli.ok(&["plugin", "enable", "greeter"]).await;
    assert!(
        on.table()
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["enabled:", "yes"]),
        "{}",
        on.table()
    );
    let yaml = cli
        .ok(&["plugin", "get", "greeter", "-o", "yaml"])
        .await
        .render();
    assert!(
        yaml.contains("name: greeter") && yaml.contains("world: inspector"),
        "{yaml}"
    );
    cli.ok(&["plugin", "delete", "greeter"]).await;
    let gone = cli.err(&["plugin", "get", "greeter"]).await;
    assert_eq!(gone.exit_code(), exit::NOT_FOUND, "{gone}");
    assert!(gone.to_string().contains("greeter"), "{gone}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_job_run_and_finding_commands() {
    let gw = gateway_builder("admin-cli-jobs")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .start()
        .await;
    let sim = KubeSim::start().await.unwrap();
    sim.seed_pods("default", 3, 1);
    let dir = tempfile::tempdir().unwrap();
    let cli: Portico = with_variables(&gw, dir.path());
    let kubeconfig = dir.path().join("sim.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    cli.ok(&["cluster", "add", "sim", "-f", kubeconfig.to_str().unwrap()])
        .await;

    // A webhook for both events on `sim`: created, listed, shown by name, changed.
    let (url, got) = receiver().await;
    let created = cli
        .ok(&[
            "webhook",
            "create",
            "ops",
            "--url",
            &url,
            "--secret",
            "s3cret",
            "--event",
            "connected",
            "--event",
            "disconnected",
            "--cluster",
            "sim",
            "-o",
            "json",
        ])
        .await;
    let id = created.value()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.value()["events"],
        json!(["connected", "disconnected"])
    );
    assert!(!created.json().contains("s3cret"));
    let listed = cli.ok(&["webhook", "list"]).await.table();
    assert_eq!(
        header(&listed),
        [
            "ID", "NAME", "URL", "EVENTS", "SCOPE", "CLUSTERS", "ENABLED"
        ]
    );
    let cells = row(&listed, &id);
    assert_eq!(
        cells[1..],
        [
            "ops",
            url.as_str(),
            "connected,disconnected",
            "cluster",
            "sim",
            "yes"
        ]
    );
    let shown = cli.ok(&["webhook", "get", "ops"]).await.table();
    assert!(shown.contains(&id), "{shown}");
    let no_secret = cli.err(&["webhook", "create", "x", "--url", &url]).await;
    assert_eq!(no_secret.exit_code(), exit::USAGE, "{no_secret}");
    let bad_url = cli
        .err(&[
            "webhook", "create", "x", "--url", "ftp://x", "--secret", "s",
        ])
        .await;
    assert_eq!(bad_url.exit_code(), exit::FAILED, "{bad_url}");
    assert_eq!(bad_url.status(), Some(400));

    // Connecting the cluster fires it; the delivery log shows the delivery.
    let connected = cli.ok(&["cluster", "connect", "sim", "-o", "json"]).await;
    assert_eq!(connected.value()["state"], "connected");
    let deliveries = eventually("a delivered webhook", || async {
        let out = cli.ok(&["webhook", "deliveries", "ops"]).await;
        let delivered = out.value()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["state"] == "delivered");
        delivered.then(|| out.table())
    })
    .await;
    assert_eq!(
        header(&deliveries),
        [
            "ID", "EVENT", "CLUSTER", "STATE", "ATTEMPTS", "STATUS", "CREATED", "ERROR"
        ]
    );
    let line = deliveries.lines().nth(1).unwrap();
    for cell in ["connected", "sim", "delivered", "204"] {
        assert!(line.contains(cell), "no `{cell}` in `{line}`");
    }
    assert!(*got.lock().unwrap() >= 1);
    let updated = cli
        .ok(&[
            "webhook",
            "update",
            "ops",
            "--disable",
            "--all-clusters",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(updated.value()["enabled"], false);
    assert_eq!(updated.value()["clusters"], Value::Null);

    // An inspection job, run now by name; its run and findings.
    let job_file = dir.path().join("job.json");
    std::fs::write(
        &job_file,
        json!({"name": "checks", "plugins": ["builtin-checks"], "cron": "0 3 1 1 *",
               "targets": {"clusters": ["sim"]}})
        .to_string(),
    )
    .unwrap();
    let job = cli
        .ok(&[
            "job",
            "create",
            "-f",
            job_file.to_str().unwrap(),
            "-o",
            "json",
        ])
        .await;
    let job_id = job.value()["id"].as_str().unwrap().to_owned();
    let started = cli.ok(&["job", "run", "checks", "-o", "json"]).await;
    let run_id = started.value()["id"].as_str().unwrap().to_owned();
    let run = eventually("the run ends", || async {
        let run = cli.ok(&["run", "get", &run_id]).await;
        (run.value()["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run.value()["status"], "success", "{}", run.json());
    let table = run.table();
    let cells = row(&table, "sim");
    assert_eq!(cells[1], "success", "{table}");
    let runs = cli.ok(&["run", "list", "--job", &job_id]).await.table();
    assert_eq!(row(&runs, &run_id)[1..4], ["checks", "manual", "success"]);
    let total = run.value()["findingsTotal"].as_i64().unwrap();
    assert!(total > 0, "{}", run.json());
    let findings = cli
        .ok(&[
            "finding", "list", "--run", &run_id, "--limit", "1000", "-o", "json",
        ])
        .await;
    let items = findings.value()["items"].as_array().unwrap();
    assert_eq!(items.len() as i64, total);
    assert!(items.iter().all(|f| f["clusterId"] == "sim"));
    let failed = cli
        .ok(&[
            "finding", "list", "--run", &run_id, "--failed", "--limit", "1000",
        ])
        .await;
    assert_eq!(
        header(&failed.table()),
        ["SEVERITY", "CLUSTER", "CHECK", "TARGET", "MESSAGE"]
    );
    let failed_rows = failed.table().lines().count() as i64 - 1;
    assert_eq!(failed_rows, run.value()["findingsFailed"].as_i64().unwrap());
    let summary = cli.ok(&["finding", "summary"]).await.table();
    assert_eq!(row(&summary, "sim")[1], "success", "{summary}");
    let bad = cli.err(&["run", "list", "--status", "done"]).await;
    assert_eq!(bad.status(), Some(400), "{bad}");

    // A change from a file of the fields to change.
    let patch = dir.path().join("patch.json");
    std::fs::write(&patch, r#"{"enabled": false, "cron": "0 4 * * *"}"#).unwrap();
    let changed = cli
        .ok(&["job", "update", "checks", "-f", patch.to_str().unwrap()])
        .await;
    assert_eq!(changed.value()["enabled"], false);
    assert_eq!(changed.value()["revision"], 2);
    assert!(changed.table().contains("0 4 * * *"), "{}", changed.table());

    // Deletes, by name.
    cli.ok(&["job", "delete", "checks"]).await;
    let gone = cli.err(&["job", "show", &job_id]).await;
    assert_eq!(gone.exit_code(), exit::NOT_FOUND, "{gone}");
    let deleted = cli.ok(&["webhook", "delete", "ops"]).await;
    assert_eq!(deleted.table(), format!("Webhook `ops` ({id}) deleted\n"));
    let gone = cli.err(&["webhook", "deliveries", &id]).await;
    assert_eq!(gone.exit_code(), exit::NOT_FOUND, "{gone}");
    gw.stop().await;
}
