//! `portico plugin run`, in-process: the built-in checks against a seeded simulator cluster
//! registered in a gateway's database, from a plugin folder and from the database.

use kube_sim::KubeSim;
use portico::cli::{DatabaseArgs, OutputFormat, PluginRunArgs, RunEvent};
use portico::commands::{self, CommandError};
use portico::plugin::{Severity, World};
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{gateway_builder, plugin_dir, upload, wasm};
use reqwest::Method;
use serde_json::Value;

fn args(database_url: &str, plugin: &str, cluster: &str) -> PluginRunArgs {
    PluginRunArgs {
        plugin: plugin.to_owned(),
        cluster: cluster.to_owned(),
        plugin_dir: Some(plugin_dir()),
        plugin_cache_dir: Some(portico_e2e::gateway::plugin_cache_dir()),
        config: None,
        event: RunEvent::Connected,
        output: OutputFormat::Table,
        database: DatabaseArgs {
            database_url: database_url.to_owned(),
            secret_key: None,
        },
    }
}

/// The gateway's plugins other than the built-in ones.
async fn plugin_names(gw: &TestGateway) -> Vec<String> {
    let list: Value = gw
        .as_admin(Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        // The built-in plugins are always there.
        .filter(|p| p["builtIn"] == false)
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn plugin_run_inspects_a_registered_cluster() {
    let sim = KubeSim::start().await.unwrap();
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    let gw = gateway_builder("plugin-run").start().await;
    let database_url = format!(
        "sqlite://{}/plugin-run.db",
        env!("PORTICO_PLUGIN_TEST_DATA")
    );
    gw.register_cluster("broken", &sim.kubeconfig())
        .await
        .unwrap();

    // The built-in checks, from the binary.
    let run = commands::run_plugin(&args(&database_url, "builtin-checks", "broken"))
        .await
        .expect("the run succeeds");
    assert_eq!(run.world, World::Inspector);
    assert_eq!(run.from, "built in");
    assert_eq!(run.cluster.id, "broken");
    assert!(run.server_version.as_deref().unwrap().starts_with('v'));
    let findings = run.findings.as_ref().unwrap();
    // Failed first, most severe first.
    assert!(!findings[0].passed);
    assert_eq!(findings[0].severity, Severity::Critical);
    assert_eq!(findings[0].check_id, "node-not-ready");
    assert!(findings.iter().any(|f| !f.passed
        && f.check_id == "pod-crash-loop"
        && f.target.as_ref().is_some_and(|t| t.name == "crashy")));
    let table = run.table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("builtin-checks 0.1.0 (inspector, from ")
            && lines[0].contains("on cluster broken (broken, v")
            && lines[0].contains(&format!("{} findings, ", findings.len())),
        "{table}"
    );
    assert!(lines[2].starts_with("SEVERITY"), "{table}");
    assert!(
        lines[3]
            .split_whitespace()
            .take(4)
            .eq(["critical", "node-not-ready", "Node", "node-bad"]),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("high")
            && l.contains("pod-crash-loop")
            && l.contains("Pod bad/crashy")),
        "{table}"
    );
    let json: Value = serde_json::from_str(&run.json()).unwrap();
    assert_eq!(json["plugin"], "builtin-checks");
    assert_eq!(json["findings"].as_array().unwrap().len(), findings.len());
    assert_eq!(json["cluster"]["id"], "broken");

    // Nothing from the folder landed in the gateway's database.
    assert!(plugin_names(&gw).await.is_empty());

    // --config replaces the configuration for this run only.
    let mut quiet = args(&database_url, "builtin-checks", "broken");
    quiet.config = Some(r#"{"disabled-checks": ["pod-crash-loop", "node-not-ready"]}"#.into());
    let run = commands::run_plugin(&quiet).await.unwrap();
    let checks: Vec<&str> = run
        .findings
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.check_id.as_str())
        .collect();
    assert!(!checks.contains(&"pod-crash-loop") && !checks.contains(&"node-not-ready"));
    assert!(checks.contains(&"pod-failed"));

    // A lifecycle hook gets on-connect (reading the cluster) or on-disconnect.
    let run = commands::run_plugin(&args(&database_url, "connect-logger", "broken"))
        .await
        .unwrap();
    assert_eq!(run.event, Some("connected"));
    assert_eq!(run.logs[0].message, "connected to broken (2 nodes)");
    assert!(run.table().contains("on-connect ok"), "{}", run.table());
    let mut leaving = args(&database_url, "connect-logger", "broken");
    leaving.event = RunEvent::Disconnected;
    let run = commands::run_plugin(&leaving).await.unwrap();
    assert_eq!(run.logs[0].message, "disconnected from broken");
    assert_eq!(run.server_version, None);
    gw.stop().await;
}

#[tokio::test]
async fn plugin_run_uses_the_database_and_reports_failures() {
    let sim = KubeSim::start().await.unwrap();
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    let gw = gateway_builder("plugin-run-db").start().await;
    let database_url = format!(
        "sqlite://{}/plugin-run-db.db",
        env!("PORTICO_PLUGIN_TEST_DATA")
    );
    gw.register_cluster("broken", &sim.kubeconfig())
        .await
        .unwrap();
    let manifest = include_str!("../../../plugins/examples/require-labels/manifest.toml");
    let response = upload(&gw, manifest, wasm("require-labels")).await;
    assert_eq!(response.status(), 201);

    // An uploaded plugin runs from the database.
    let mut from_db = args(&database_url, "require-labels", "broken");
    from_db.plugin_dir = None;
    let run = commands::run_plugin(&from_db).await.unwrap();
    assert_eq!(run.from, "database");
    let findings = run.findings.unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.check_id == "required-labels" && !f.passed),
        "{findings:?}"
    );

    // A failed call is an error with the plugin's message.
    let mut bad_config = from_db.clone();
    bad_config.config = Some(r#"{"labels": 5}"#.into());
    let error = commands::run_plugin(&bad_config).await.unwrap_err();
    assert!(matches!(error, CommandError::Plugin(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("plugin `require-labels` failed: invalid:"),
        "{error}"
    );

    // Usage errors say what to do.
    let mut missing = from_db.clone();
    missing.plugin = "nope".into();
    let error = commands::run_plugin(&missing)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "no plugin named `nope` in the database; give --plugin-dir to run one from a folder"
    );
    let mut not_json = from_db.clone();
    not_json.config = Some("{labels".into());
    let error = commands::run_plugin(&not_json)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("--config is not JSON"), "{error}");
    let error = commands::run_plugin(&args(&database_url, "builtin-checks", "nope"))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(error, "cluster `nope` not found");

    // A cluster that does not answer.
    let dead = sim.kubeconfig().replace(&sim.url(), "https://127.0.0.1:1");
    gw.register_cluster("dead", &dead).await.unwrap();
    let error = commands::run_plugin(&args(&database_url, "builtin-checks", "dead"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CommandError::NotConnected { cluster, .. } if cluster == "dead"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cannot connect to cluster `dead`: "),
        "{error}"
    );
    assert_eq!(plugin_names(&gw).await, ["require-labels"]);
    gw.stop().await;
}
