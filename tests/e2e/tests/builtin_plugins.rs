//! The built-in plugins come with the binary: present on every start without a plugin
//! directory, configurable and disable-able, not deletable or replaceable, compiled before the
//! first call needs them, and a first inspection finds something with the API alone.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{cluster, gateway_builder, kube_api, upload, wasm};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "pt_builtin-plugins-admin-token";

#[tokio::test]
async fn builtin_plugins_are_there_without_a_plugin_directory_and_keep_their_names() {
    let gw = gateway_builder("builtin-names").start().await;
    let list = ok(&gw, Method::GET, "/api/v1/plugins", None).await;
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["builtin-checks", "helm-index", "rules"]);
    for plugin in items {
        assert_eq!(plugin["builtIn"], true, "{plugin}");
        assert_eq!(plugin["source"], "builtin", "{plugin}");
        assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"), "{plugin}");
        assert_eq!(plugin["enabled"], true, "{plugin}");
    }
    assert_eq!(items[0]["world"], "inspector");
    assert_eq!(items[1]["world"], "repo-sync");

    // Not deletable.
    let response = gw
        .as_admin(Method::DELETE, "/api/v1/plugins/builtin-checks")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("built into Portico"), "{message}");

    // Not replaceable by an upload of the same name, with or without `replace`.
    let manifest = include_str!("../../../plugins/examples/require-labels/manifest.toml")
        .replace("name = \"require-labels\"", "name = \"builtin-checks\"");
    assert!(manifest.contains("name = \"builtin-checks\""));
    for path in ["/api/v1/plugins", "/api/v1/plugins?replace=true"] {
        let response =
            portico_e2e::plugins::upload_to(&gw, path, &manifest, wasm("require-labels")).await;
        assert_eq!(response.status(), 409, "{path}");
    }
    let checks = ok(&gw, Method::GET, "/api/v1/plugins/builtin-checks", None).await;
    assert_eq!(checks["source"], "builtin");
    assert_eq!(checks["world"], "inspector");
    assert_eq!(checks["capabilities"]["kube"], true);
    gw.stop().await;
}

#[tokio::test]
async fn a_plugin_directory_cannot_shadow_a_builtin_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = include_str!("../../../plugins/examples/require-labels/manifest.toml")
        .replace("name = \"require-labels\"", "name = \"builtin-checks\"");
    std::fs::write(dir.path().join("builtin-checks.toml"), manifest).unwrap();
    std::fs::write(
        dir.path().join("builtin-checks.wasm"),
        wasm("require-labels"),
    )
    .unwrap();
    let gw = gateway_builder("builtin-shadow")
        .args(["--plugin-dir", dir.path().to_str().unwrap()])
        .start()
        .await;
    let checks = ok(&gw, Method::GET, "/api/v1/plugins/builtin-checks", None).await;
    assert_eq!(checks["source"], "builtin");
    assert_eq!(
        checks["description"],
        "Workload, node, storage, networking, Gateway API, admission webhook and RBAC checks (50 checks)"
    );
    gw.stop().await;
}

#[tokio::test]
async fn builtin_plugins_are_configured_and_disabled_and_that_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let start = || {
        TestGateway::builder()
            .data_dir(data.path())
            .args(["--admin-token", ADMIN_TOKEN])
            .start()
    };
    let gw = start().await;
    let sim = KubeSim::start().await.unwrap();
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    let plugins = &gw.gateway().app().plugins;

    // Compiled in the background at start: the first inspection compiles nothing more.
    plugins.builtins_compiled().await;
    let compiled = plugins.host().cache_misses() + plugins.host().cache_hits();
    assert_eq!(compiled, 3, "every built-in plugin was compiled at start");
    let report = plugins
        .inspect("builtin-checks", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap();
    assert!(report.value.iter().any(|f| !f.passed));
    assert_eq!(
        plugins.host().cache_misses() + plugins.host().cache_hits(),
        compiled
    );

    // Configured: a disabled check no longer reports.
    let config = json!({"exclude-namespaces": [], "disabled-checks": ["pod-failed"]});
    let updated = ok(
        &gw,
        Method::PUT,
        "/api/v1/plugins/builtin-checks/config",
        Some(config.clone()),
    )
    .await;
    assert_eq!(updated["config"], config);
    let report = plugins
        .inspect("builtin-checks", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap();
    assert!(report.value.iter().all(|f| f.check_id != "pod-failed"));

    // Disabled: calls are refused.
    ok(
        &gw,
        Method::POST,
        "/api/v1/plugins/builtin-checks/disable",
        None,
    )
    .await;
    let error = plugins
        .inspect("builtin-checks", &cluster("c1"), kube_api(&sim))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "plugin `builtin-checks` is disabled");
    gw.stop().await;

    // Both stay after a restart.
    let gw = start().await;
    let checks = ok(&gw, Method::GET, "/api/v1/plugins/builtin-checks", None).await;
    assert_eq!(checks["enabled"], false);
    assert_eq!(checks["config"], config);
    assert_eq!(checks["source"], "builtin");
    gw.stop().await;
}

/// The quick start: a fresh gateway, one cluster, one job naming the built-in checks, one run.
#[tokio::test]
async fn a_first_inspection_with_the_api_alone_finds_problems() {
    let gw = gateway_builder("builtin-first-inspection").start().await;
    let sim = KubeSim::start().await.unwrap();
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    let connected = gw.add_cluster("demo", &sim.kubeconfig()).await.unwrap();
    assert_eq!(connected["state"], "connected", "{connected}");
    let job = ok(
        &gw,
        Method::POST,
        "/api/v1/jobs",
        Some(json!({"name": "checks", "plugins": ["builtin-checks"], "cron": "0 3 * * *"})),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let run = ok(&gw, Method::POST, &format!("/api/v1/jobs/{id}/run"), None).await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let mut finished = Value::Null;
    for _ in 0..600 {
        let run = ok(&gw, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
        if run["status"] != "running" {
            finished = run;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(finished["status"], "success", "{finished}");
    assert!(
        finished["findingsFailed"].as_i64().unwrap() > 0,
        "{finished}"
    );
    let findings = ok(
        &gw,
        Method::GET,
        &format!("/api/v1/findings?run={run_id}&passed=false"),
        None,
    )
    .await;
    let checks: Vec<&str> = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["checkId"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"pod-crash-loop"), "{checks:?}");
    gw.stop().await;
}

#[tokio::test]
async fn deleting_an_upload_that_held_a_builtin_name_installs_the_builtin() {
    // An upload stored before its name became built in keeps the name until it is deleted.
    let gw = gateway_builder("builtin-legacy-upload").start().await;
    let row = portico::testing::PluginRow {
        name: "helm-index".into(),
        version: "0.0.1".into(),
        world: "inspector".into(),
        manifest: include_str!("../../../plugins/examples/require-labels/manifest.toml")
            .replace("name = \"require-labels\"", "name = \"helm-index\""),
        digest: "0".repeat(64),
        size: 0,
        source: "upload".into(),
        enabled: true,
        config: None,
        created_at: 0,
        updated_at: 0,
    };
    let db = &gw.gateway().app().db;
    db.delete_plugin("helm-index").await.unwrap();
    db.insert_plugin(&row, Some(&wasm("require-labels")))
        .await
        .unwrap();
    let legacy = ok(&gw, Method::GET, "/api/v1/plugins/helm-index", None).await;
    assert_eq!(legacy["source"], "upload");
    assert_eq!(legacy["builtIn"], false);

    let response = gw
        .as_admin(Method::DELETE, "/api/v1/plugins/helm-index")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let builtin = ok(&gw, Method::GET, "/api/v1/plugins/helm-index", None).await;
    assert_eq!(builtin["source"], "builtin");
    assert_eq!(builtin["world"], "repo-sync");
    gw.stop().await;
}

#[tokio::test]
async fn uploads_with_other_names_are_unaffected() {
    let gw = gateway_builder("builtin-other-upload").start().await;
    let manifest = include_str!("../../../plugins/examples/require-labels/manifest.toml");
    let response = upload(&gw, manifest, wasm("require-labels")).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["builtIn"], false);
    assert_eq!(body["source"], "upload");
    gw.stop().await;
}
