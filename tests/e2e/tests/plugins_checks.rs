//! The built-in inspection against the Kubernetes simulator: every check fires on a seeded
//! broken cluster and stays quiet on a healthy one. Plus the example plugin of
//! `docs/plugins.md`, loaded from the plugin directory.

use std::collections::{BTreeMap, BTreeSet};

use kube_sim::KubeSim;
use portico::plugin::{Finding, PluginSource, World};
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{cluster, gateway_builder, kube_api, plugin_dir};
use reqwest::Method;
use serde_json::{Value, json};

/// Every built-in check and an object it must flag on `unhealthy.yaml`.
const EXPECTED: &[(&str, &str, Option<&str>, &str)] = &[
    ("pod-failed", "Pod", Some("bad"), "evicted"),
    ("pod-crash-loop", "Pod", Some("bad"), "crashy"),
    ("pod-pending", "Pod", Some("bad"), "unschedulable"),
    ("pod-not-ready", "Pod", Some("bad"), "crashy"),
    ("service-no-pods", "Service", Some("bad"), "orphan"),
    ("image-latest-tag", "Pod", Some("bad"), "root"),
    ("container-missing-probes", "Pod", Some("bad"), "root"),
    ("container-privileged", "Pod", Some("bad"), "root"),
    ("security-context-missing", "Pod", Some("bad"), "root"),
    ("default-service-account", "Pod", Some("bad"), "root"),
    ("node-not-ready", "Node", None, "node-bad"),
    ("node-pressure", "Node", None, "node-bad"),
    ("pvc-pending", "PersistentVolumeClaim", Some("bad"), "stuck"),
    (
        "deployment-unavailable",
        "Deployment",
        Some("bad"),
        "degraded",
    ),
    ("cronjob-suspended", "CronJob", Some("bad"), "paused"),
    ("cronjob-invalid-schedule", "CronJob", Some("bad"), "broken"),
    ("configmap-unused", "ConfigMap", Some("bad"), "leftover"),
    (
        "ingress-missing-service",
        "Ingress",
        Some("bad"),
        "dangling",
    ),
];

async fn gateway(test: &str) -> TestGateway {
    gateway_builder(&format!("checks-{test}"))
        .args(["--plugin-dir", plugin_dir().to_str().expect("utf-8 path")])
        .start()
        .await
}

async fn simulator(seed: &str) -> KubeSim {
    let sim = KubeSim::start().await.expect("start the simulator");
    sim.load_yaml(seed).expect("seed the simulator");
    sim
}

fn failed_by_check(findings: &[Finding]) -> BTreeMap<&str, Vec<&Finding>> {
    let mut map: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings.iter().filter(|f| !f.passed) {
        map.entry(f.check_id.as_str()).or_default().push(f);
    }
    map
}

#[tokio::test]
async fn every_builtin_check_fires_on_a_broken_cluster() {
    let gw = gateway("broken").await;
    let sim = simulator(include_str!("plugins_data/unhealthy.yaml")).await;
    let report = gw
        .gateway()
        .app()
        .plugins
        .inspect("builtin-checks", &cluster("broken"), kube_api(&sim))
        .await
        .expect("the inspection runs");

    let failed = failed_by_check(&report.value);
    assert!(EXPECTED.len() >= 12);
    for (check, kind, namespace, name) in EXPECTED {
        let findings = failed
            .get(check)
            .unwrap_or_else(|| panic!("check {check} did not fire; failures: {failed:#?}"));
        assert!(
            findings
                .iter()
                .any(|f| f.target.as_ref().is_some_and(|t| t.kind == *kind
                    && t.namespace.as_deref() == *namespace
                    && t.name == *name)),
            "{check} did not flag {kind} {namespace:?}/{name}: {findings:#?}"
        );
    }
    // Only the known checks report, and a failed check reports no "passed" summary.
    let known: BTreeSet<&str> = EXPECTED.iter().map(|(c, ..)| *c).collect();
    assert!(
        report
            .value
            .iter()
            .all(|f| known.contains(f.check_id.as_str()))
    );
    assert!(report.value.iter().all(|f| !f.passed));

    // Details a user needs are in the message and the extra data.
    let crash = &failed["pod-crash-loop"][0];
    assert!(
        crash.message.contains("CrashLoopBackOff"),
        "{}",
        crash.message
    );
    assert_eq!(crash.extra, json!({"containers": ["app"]}));
    let schedule = &failed["cronjob-invalid-schedule"][0];
    assert!(
        schedule.message.contains("minute: 61 is outside 0-59"),
        "{}",
        schedule.message
    );
    let images = &failed["image-latest-tag"][0];
    assert_eq!(images.extra, json!({"images": ["nginx", "busybox:latest"]}));
    // The healthy node is not flagged.
    assert!(
        failed["node-not-ready"]
            .iter()
            .all(|f| f.target.as_ref().is_some_and(|t| t.name == "node-bad"))
    );
    // The plugin logged through the `log` capability.
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.level == "info" && l.message.contains("failed findings")),
        "{:?}",
        report.logs
    );
    gw.stop().await;
}

#[tokio::test]
async fn builtin_checks_stay_quiet_on_a_healthy_cluster() {
    let gw = gateway("healthy").await;
    let sim = simulator(include_str!("plugins_data/healthy.yaml")).await;
    let report = gw
        .gateway()
        .app()
        .plugins
        .inspect("builtin-checks", &cluster("healthy"), kube_api(&sim))
        .await
        .expect("the inspection runs");
    let failed: Vec<&Finding> = report.value.iter().filter(|f| !f.passed).collect();
    assert!(failed.is_empty(), "unexpected failures: {failed:#?}");
    // One passed summary per check.
    let passed: BTreeSet<&str> = report.value.iter().map(|f| f.check_id.as_str()).collect();
    let all: BTreeSet<&str> = EXPECTED.iter().map(|(c, ..)| *c).collect();
    assert_eq!(passed, all);
    gw.stop().await;
}

#[tokio::test]
async fn disabled_checks_and_excluded_namespaces_follow_the_configuration() {
    let gw = gateway("config").await;
    let sim = simulator(include_str!("plugins_data/unhealthy.yaml")).await;
    let response = gw
        .as_admin(Method::PUT, "/api/v1/plugins/builtin-checks/config")
        .json(&json!({"exclude-namespaces": ["bad"], "disabled-checks": ["node-pressure"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["config"]["disabled-checks"], json!(["node-pressure"]));

    let report = gw
        .gateway()
        .app()
        .plugins
        .inspect("builtin-checks", &cluster("broken"), kube_api(&sim))
        .await
        .expect("the inspection runs");
    let failed = failed_by_check(&report.value);
    // Only cluster-scoped objects remain, and node-pressure is off.
    assert_eq!(
        failed.keys().copied().collect::<Vec<_>>(),
        vec!["node-not-ready"]
    );
    assert!(report.value.iter().all(|f| f.check_id != "node-pressure"));
    gw.stop().await;
}

#[tokio::test]
async fn the_plugin_directory_is_listed_and_the_example_plugin_runs() {
    let gw = gateway("directory").await;
    let response = gw
        .as_admin(Method::GET, "/api/v1/plugins")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "builtin-checks",
            "connect-logger",
            "helm-index",
            "require-labels",
            "rules"
        ]
    );
    let checks = &body["items"][0];
    assert_eq!(checks["source"], "builtin");
    assert_eq!(checks["builtIn"], true);
    assert_eq!(checks["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(checks["world"], "inspector");
    assert_eq!(checks["enabled"], true);
    assert_eq!(checks["capabilities"]["kube"], true);
    assert_eq!(checks["limits"]["memoryMib"], 128);
    assert_eq!(checks["digest"].as_str().unwrap().len(), 64);

    let plugins = &gw.gateway().app().plugins;
    let hooks = plugins.enabled(World::LifecycleHook).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].source, PluginSource::Directory);
    assert_eq!(body["items"][1]["source"], "directory");

    // The example from docs/plugins.md: Deployments must carry the configured labels.
    let sim = simulator(include_str!("plugins_data/healthy.yaml")).await;
    let report = plugins
        .inspect("require-labels", &cluster("healthy"), kube_api(&sim))
        .await
        .expect("the example runs");
    assert_eq!(report.value.len(), 1, "{:?}", report.value);
    let finding = &report.value[0];
    assert_eq!(finding.check_id, "required-labels");
    assert!(!finding.passed);
    assert_eq!(
        finding.extra,
        json!({"missing": ["app.kubernetes.io/name", "team"]})
    );
    let target = finding.target.as_ref().unwrap();
    assert_eq!(
        (target.kind.as_str(), target.name.as_str()),
        ("Deployment", "web")
    );

    // A directory plugin cannot be deleted through the API.
    let response = gw
        .as_admin(Method::DELETE, "/api/v1/plugins/require-labels")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    gw.stop().await;
}
