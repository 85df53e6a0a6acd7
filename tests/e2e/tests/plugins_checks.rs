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

/// Every built-in check and an object it must flag on `unhealthy.yaml` ([`broken_simulator`],
/// configured by [`configured`]).
const EXPECTED: &[(&str, &str, Option<&str>, &str)] = &[
    ("pod-failed", "Pod", Some("bad"), "evicted"),
    ("pod-crash-loop", "Pod", Some("bad"), "crashy"),
    ("pod-pending", "Pod", Some("bad"), "unschedulable"),
    ("pod-not-ready", "Pod", Some("bad"), "crashy"),
    ("container-error", "Pod", Some("bad"), "broken-image"),
    ("container-missing-probes", "Pod", Some("bad"), "root"),
    ("container-privileged", "Pod", Some("bad"), "root"),
    ("security-context-missing", "Pod", Some("bad"), "root"),
    ("default-service-account", "Pod", Some("bad"), "root"),
    ("image-latest-tag", "Pod", Some("bad"), "root"),
    ("image-registry-not-allowed", "Pod", Some("bad"), "root"),
    ("image-pull-always-digest", "Pod", Some("bad"), "noisy"),
    ("probe-misconfigured", "Pod", Some("bad"), "noisy"),
    ("pod-log-pattern", "Pod", Some("bad"), "noisy"),
    ("node-not-ready", "Node", None, "node-bad"),
    ("node-pressure", "Node", None, "node-bad"),
    ("node-condition-abnormal", "Node", None, "node-bad"),
    ("pvc-pending", "PersistentVolumeClaim", Some("bad"), "stuck"),
    ("pvc-lost", "PersistentVolumeClaim", Some("bad"), "orphaned"),
    ("pv-released", "PersistentVolume", None, "old-data"),
    ("pv-failed", "PersistentVolume", None, "broken-volume"),
    (
        "storageclass-multiple-default",
        "StorageClass",
        None,
        "fast",
    ),
    (
        "deployment-unavailable",
        "Deployment",
        Some("bad"),
        "degraded",
    ),
    (
        "deployment-rollout-stalled",
        "Deployment",
        Some("bad"),
        "degraded",
    ),
    ("replicaset-failure", "ReplicaSet", Some("bad"), "quota-hit"),
    ("statefulset-unavailable", "StatefulSet", Some("bad"), "db"),
    (
        "statefulset-missing-service",
        "StatefulSet",
        Some("bad"),
        "db",
    ),
    (
        "statefulset-missing-storage-class",
        "StatefulSet",
        Some("bad"),
        "db",
    ),
    ("job-failed", "Job", Some("bad"), "migrate"),
    ("job-suspended", "Job", Some("bad"), "held"),
    ("cronjob-suspended", "CronJob", Some("bad"), "paused"),
    ("cronjob-invalid-schedule", "CronJob", Some("bad"), "broken"),
    (
        "hpa-not-scaling",
        "HorizontalPodAutoscaler",
        Some("bad"),
        "web-hpa",
    ),
    (
        "hpa-missing-target",
        "HorizontalPodAutoscaler",
        Some("bad"),
        "ghost-hpa",
    ),
    (
        "hpa-target-no-requests",
        "HorizontalPodAutoscaler",
        Some("bad"),
        "web-hpa",
    ),
    ("configmap-unused", "ConfigMap", Some("bad"), "leftover"),
    ("configmap-empty", "ConfigMap", Some("bad"), "blank"),
    ("configmap-too-large", "ConfigMap", Some("bad"), "huge"),
    ("service-no-pods", "Service", Some("bad"), "orphan"),
    (
        "ingress-missing-service",
        "Ingress",
        Some("bad"),
        "dangling",
    ),
    ("ingress-class-missing", "Ingress", Some("bad"), "dangling"),
    (
        "ingress-missing-tls-secret",
        "Ingress",
        Some("bad"),
        "dangling",
    ),
    (
        "networkpolicy-no-pods",
        "NetworkPolicy",
        Some("bad"),
        "stale",
    ),
    (
        "gatewayclass-not-accepted",
        "GatewayClass",
        None,
        "broken-class",
    ),
    ("gateway-missing-class", "Gateway", Some("bad"), "edge"),
    ("gateway-not-accepted", "Gateway", Some("bad"), "rejected"),
    (
        "httproute-missing-parent",
        "HTTPRoute",
        Some("bad"),
        "lost-route",
    ),
    (
        "httproute-missing-backend",
        "HTTPRoute",
        Some("bad"),
        "lost-route",
    ),
    (
        "webhook-service-unavailable",
        "MutatingWebhookConfiguration",
        None,
        "injector",
    ),
    (
        "rbac-wildcard-binding",
        "ClusterRoleBinding",
        None,
        "ci-admin",
    ),
];

/// Turns on the checks that are off until configured (an allow-list, a log pattern).
fn configured(allowed_registry: &str) -> Value {
    json!({
        "allowed-registries": [allowed_registry],
        "log-pattern": "ERROR|panic",
        "log-tail-lines": 50,
    })
}

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

/// The unhealthy cluster, plus a ConfigMap too large to keep in a YAML file.
async fn broken_simulator() -> KubeSim {
    let sim = simulator(include_str!("plugins_data/unhealthy.yaml")).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "huge", "namespace": "bad"},
        "data": {"blob": "x".repeat(1_000_000)},
    }))
    .expect("a large ConfigMap");
    sim
}

async fn configure(gw: &TestGateway, config: Value) {
    let response = gw
        .as_admin(Method::PUT, "/api/v1/plugins/builtin-checks/config")
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
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
    let sim = broken_simulator().await;
    configure(&gw, configured("registry.example.com")).await;
    let report = gw
        .gateway()
        .app()
        .plugins
        .inspect("builtin-checks", &cluster("broken"), kube_api(&sim))
        .await
        .expect("the inspection runs");

    let failed = failed_by_check(&report.value);
    assert_eq!(EXPECTED.len(), 50);
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
    let registry = failed["image-registry-not-allowed"]
        .iter()
        .find(|f| f.target.as_ref().unwrap().name == "root")
        .unwrap();
    assert_eq!(
        registry.extra["containers"][0],
        json!({"container": "main", "image": "nginx", "registry": "docker.io"})
    );
    let pull = &failed["image-pull-always-digest"][0];
    assert!(pull.message.contains("IfNotPresent"), "{}", pull.message);
    let probes = &failed["probe-misconfigured"][0];
    let problems: Vec<&str> = probes.extra["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        [
            "successThreshold is 2; it must be 1 for liveness probes",
            "timeoutSeconds 5 is longer than periodSeconds 2: a probe that hangs delays the next one, so it runs every 5s, not every 2s",
        ]
    );
    // Only the pod whose log matches is flagged, with the matching line.
    let logs = &failed["pod-log-pattern"];
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(
        logs[0].extra["containers"],
        json!([{"container": "app", "matchingLines": 1, "sample": ["ERROR: database unreachable"]}])
    );
    assert_eq!(logs[0].extra["tailLines"], 50);
    let pending = &failed["pvc-pending"][0];
    assert!(
        pending
            .message
            .contains(r#"provisioning failed: storageclass.storage.k8s.io "gold" not found"#),
        "{}",
        pending.message
    );
    let containers = &failed["container-error"][0];
    assert_eq!(
        containers.extra["containers"][0]["reason"],
        "ImagePullBackOff"
    );
    let large = &failed["configmap-too-large"][0];
    assert_eq!(large.extra["bytes"], 1_000_000);
    assert_eq!(large.extra["limitBytes"], 1_048_576);
    // Both default classes are named, on each.
    let defaults = &failed["storageclass-multiple-default"];
    assert_eq!(defaults.len(), 2);
    assert_eq!(defaults[0].extra["defaults"], json!(["fast", "standard"]));
    let stalled = &failed["deployment-rollout-stalled"][0];
    assert!(
        stalled.message.contains("ProgressDeadlineExceeded"),
        "{}",
        stalled.message
    );
    let hpa = &failed["hpa-not-scaling"][0];
    assert!(
        hpa.message
            .contains("ScalingActive=False (FailedGetResourceMetric)"),
        "{}",
        hpa.message
    );
    let requests = &failed["hpa-target-no-requests"][0];
    assert_eq!(
        requests.extra["missing"],
        json!([{"container": "app", "resource": "cpu"}])
    );
    let job = &failed["job-failed"][0];
    assert!(
        job.message.contains("BackoffLimitExceeded"),
        "{}",
        job.message
    );
    assert_eq!(job.extra["failedPods"], 3);
    let parents = &failed["httproute-missing-parent"][0];
    assert_eq!(
        parents.extra["parents"],
        json!([
            {"gateway": "bad/nowhere", "problem": "Gateway does not exist"},
            {"gateway": "bad/rejected", "problem": "Gateway has no listener https"},
        ])
    );
    let backends = &failed["httproute-missing-backend"][0];
    let backend_problems: Vec<&str> = backends.extra["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["problem"].as_str().unwrap())
        .collect();
    assert_eq!(
        backend_problems,
        [
            "Service does not exist",
            "Service has no port 8080 (ports: [80])"
        ]
    );
    // A missing Service, and one without a ready endpoint in an excluded namespace.
    let webhooks = &failed["webhook-service-unavailable"];
    assert_eq!(webhooks.len(), 2, "{webhooks:#?}");
    let injector = webhooks
        .iter()
        .find(|f| f.target.as_ref().unwrap().name == "injector")
        .unwrap();
    assert!(
        injector
            .message
            .contains("no ready endpoint; calls are skipped"),
        "{}",
        injector.message
    );
    let policy = webhooks
        .iter()
        .find(|f| f.target.as_ref().unwrap().name == "policy")
        .unwrap();
    assert!(
        policy
            .message
            .contains("Service does not exist; matching API requests are rejected"),
        "{}",
        policy.message
    );
    let rbac: BTreeSet<&str> = failed["rbac-wildcard-binding"]
        .iter()
        .map(|f| f.target.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(rbac, BTreeSet::from(["ci-admin", "everything"]));
    let tls = &failed["ingress-missing-tls-secret"][0];
    assert_eq!(tls.extra["secrets"], json!(["missing-cert"]));
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
    configure(&gw, configured("registry.example.com:5000")).await;
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
    let sim = broken_simulator().await;
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
    // Only cluster-scoped objects remain (a webhook whose Service is in an excluded namespace
    // still counts), and node-pressure is off.
    assert_eq!(
        failed.keys().copied().collect::<Vec<_>>(),
        vec![
            "gatewayclass-not-accepted",
            "node-condition-abnormal",
            "node-not-ready",
            "pv-failed",
            "pv-released",
            "rbac-wildcard-binding",
            "storageclass-multiple-default",
            "webhook-service-unavailable",
        ]
    );
    assert!(
        failed["rbac-wildcard-binding"]
            .iter()
            .all(|f| f.target.as_ref().unwrap().kind == "ClusterRoleBinding")
    );
    // Without an allow-list or a log pattern those checks do not run at all.
    for off in [
        "node-pressure",
        "image-registry-not-allowed",
        "pod-log-pattern",
    ] {
        assert!(report.value.iter().all(|f| f.check_id != off), "{off} ran");
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_log_check_reads_only_the_selected_pods_and_refuses_a_bad_pattern() {
    let gw = gateway("logs").await;
    let sim = broken_simulator().await;
    let target = cluster("broken");
    let inspect = || {
        gw.gateway()
            .app()
            .plugins
            .inspect("builtin-checks", &target, kube_api(&sim))
    };
    let log_finding = |findings: &[Finding]| {
        findings
            .iter()
            .find(|f| f.check_id == "pod-log-pattern")
            .cloned()
            .expect("pod-log-pattern reports")
    };

    // The selector leaves out the pod whose log matches.
    configure(
        &gw,
        json!({"log-pattern": "ERROR", "log-selector": "app=crashy"}),
    )
    .await;
    let report = inspect().await.expect("the inspection runs");
    assert!(log_finding(&report.value).passed);

    // No pod may be read: nothing is flagged, and the log says why.
    configure(&gw, json!({"log-pattern": "ERROR", "log-max-pods": 0})).await;
    let report = inspect().await.expect("the inspection runs");
    assert!(log_finding(&report.value).passed);
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.level == "warn" && l.message.contains("log-max-pods")),
        "{:?}",
        report.logs
    );

    // A pattern that does not compile fails the run with the reason.
    configure(&gw, json!({"log-pattern": "(unclosed"})).await;
    let error = inspect().await.expect_err("a bad pattern is refused");
    assert!(error.to_string().contains("log-pattern"), "{error}");
    configure(&gw, json!({"log-tail-lines": 0})).await;
    let error = inspect().await.expect_err("zero tail lines are refused");
    assert!(error.to_string().contains("log-tail-lines"), "{error}");
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
    // Directory plugins are compiled in the background at start, like the built-in ones.
    let require_labels = &body["items"][3];
    assert_eq!(require_labels["source"], "directory");
    assert!(require_labels["componentBytes"].as_u64().unwrap() > 0);
    plugins.builtins_compiled().await;
    for plugin in plugins.list().await.unwrap() {
        assert!(plugin.compiled_in_ms.is_some(), "{} compiled", plugin.name);
    }
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
