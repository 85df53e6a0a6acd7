//! The built-in `rules` plugin against the Kubernetes simulator: rules set through the API
//! (checked by the plugin's `config-check` export before they are stored), matching by kind,
//! namespace and labels, messages, evaluation errors, a ValidatingAdmissionPolicy import, and
//! the whole loop through a job run.

use std::time::Duration;

use kube_sim::KubeSim;
use portico::plugin::Finding;
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{cluster, gateway_builder, kube_api};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SEED: &str = r"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: lab, labels: {env: dev}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {tier: front}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: 'nginx:latest'}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {tier: back, team: core}}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: 'registry.example.com/api:1.4'}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: toy, namespace: lab, labels: {tier: front}}
spec:
  replicas: 9
  selector: {matchLabels: {app: toy}}
  template:
    metadata: {labels: {app: toy}}
    spec: {containers: [{name: c, image: 'nginx:latest'}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
";

/// A policy teams enforce at admission: at most 5 replicas in `env=prod` namespaces.
const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replica-limit
  annotations: {portico.io/severity: high}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
    namespaceSelector:
      matchLabels: {env: prod}
  variables:
  - name: replicas
    expression: object.spec.replicas
  validations:
  - expression: variables.replicas <= 2
    messageExpression: "'replicas ' + string(variables.replicas) + ' is over 2'"
    reason: Invalid
"#;

async fn gateway(test: &str) -> TestGateway {
    gateway_builder(&format!("rules-{test}")).start().await
}

async fn simulator() -> KubeSim {
    let sim = KubeSim::start().await.expect("start the simulator");
    sim.load_yaml(SEED).expect("seed the simulator");
    sim
}

/// `PUT /api/v1/plugins/rules/config`: status and body.
async fn put_config(gw: &TestGateway, config: Value) -> (StatusCode, Value) {
    let response = gw
        .as_admin(Method::PUT, "/api/v1/plugins/rules/config")
        .json(&config)
        .send()
        .await
        .expect("send the configuration");
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

async fn inspect(gw: &TestGateway, sim: &KubeSim) -> Vec<Finding> {
    gw.gateway()
        .app()
        .plugins
        .inspect("rules", &cluster("c1"), kube_api(sim))
        .await
        .expect("the rules run")
        .value
}

/// (check, target name) of the failed findings, sorted.
fn failed(findings: &[Finding]) -> Vec<(String, String)> {
    let mut failed: Vec<(String, String)> = findings
        .iter()
        .filter(|f| !f.passed)
        .map(|f| {
            (
                f.check_id.clone(),
                f.target
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    failed.sort();
    failed
}

fn finding<'a>(findings: &'a [Finding], check: &str, name: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check_id == check && f.target.as_ref().is_some_and(|t| t.name == name))
        .unwrap_or_else(|| panic!("no finding {check} on {name}: {findings:#?}"))
}

#[tokio::test]
async fn rules_match_by_kind_namespace_and_labels_with_their_messages() {
    let gw = gateway("matching").await;
    let sim = simulator().await;
    // Installed with no rules: nothing to report.
    assert!(inspect(&gw, &sim).await.is_empty());

    let (status, body) = put_config(
        &gw,
        json!({"rules": [
            {"id": "no-latest", "severity": "high",
             "match": {"apiGroups": ["apps"], "resources": ["deployments"],
                       "namespaces": ["shop"],
                       "labelSelector": {"matchLabels": {"tier": "front"}}},
             "expression": "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))",
             "message": "an image is tagged :latest"},
            {"id": "team-label",
             "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"], "excludeNamespaces": ["lab"]},
             "expression": "has(object.metadata.labels.team)",
             "messageExpression": "object.metadata.name + ' has no team label'"},
            {"id": "configmap-mode",
             "match": {"apiVersion": "v1", "kinds": ["ConfigMap"]},
             "expression": "object.data.mode == 'slow'"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["rules"][0]["id"], "no-latest");

    let findings = inspect(&gw, &sim).await;
    assert_eq!(
        failed(&findings),
        [
            ("configmap-mode".to_owned(), "settings".to_owned()),
            // `toy` is :latest too, but in `lab`; `api` is not `tier: front`.
            ("no-latest".to_owned(), "web".to_owned()),
            // `api` has the label; `toy` is in an excluded namespace.
            ("team-label".to_owned(), "web".to_owned()),
        ]
    );
    let latest = finding(&findings, "no-latest", "web");
    assert_eq!(latest.message, "an image is tagged :latest");
    assert_eq!(
        format!("{:?}", latest.severity).to_lowercase(),
        "high",
        "{latest:?}"
    );
    let target = latest.target.as_ref().unwrap();
    assert_eq!(
        (target.kind.as_str(), target.namespace.as_deref()),
        ("Deployment", Some("shop"))
    );
    assert_eq!(
        finding(&findings, "team-label", "web").message,
        "web has no team label"
    );
    // No message at all: the apiserver's default.
    assert_eq!(
        finding(&findings, "configmap-mode", "settings").message,
        "failed expression: object.data.mode == 'slow'"
    );
    assert_eq!(
        finding(&findings, "configmap-mode", "settings").extra["expression"],
        "object.data.mode == 'slow'"
    );
}

#[tokio::test]
async fn an_evaluation_error_is_a_finding_not_a_pass_or_a_crash() {
    let gw = gateway("errors").await;
    let sim = simulator().await;
    let (status, body) = put_config(
        &gw,
        json!({"rules": [
            {"id": "probe", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"],
                                      "namespaces": ["shop"]},
             // `livenessProbe` is absent: selecting it fails (`has()` would guard it).
             "expression": "object.spec.template.spec.containers[0].livenessProbe.periodSeconds > 0"},
            {"id": "widgets", "match": {"apiVersion": "example.com/v1", "kinds": ["Widget"]},
             "expression": "true"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let findings = inspect(&gw, &sim).await;
    assert_eq!(
        failed(&findings),
        [
            ("probe".to_owned(), "api".to_owned()),
            ("probe".to_owned(), "web".to_owned()),
            ("widgets".to_owned(), String::new()),
        ]
    );
    let error = finding(&findings, "probe", "web");
    assert_eq!(
        error.message,
        "the rule could not be evaluated: No such key: livenessProbe"
    );
    assert_eq!(error.extra["evaluationError"], "No such key: livenessProbe");
    // A kind the cluster does not serve is said, not skipped.
    let widgets = findings.iter().find(|f| f.check_id == "widgets").unwrap();
    assert!(
        widgets
            .message
            .starts_with("could not list Widget (example.com/v1): not-found"),
        "{widgets:?}"
    );
}

#[tokio::test]
async fn a_bad_expression_is_refused_with_its_position_and_nothing_is_stored() {
    let gw = gateway("refused").await;
    let good = json!({"rules": [{"id": "ok", "match": {"apiVersion": "v1", "kinds": ["Pod"]},
                                 "expression": "has(object.spec)"}]});
    let (status, body) = put_config(&gw, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = put_config(
        &gw,
        json!({"rules": [
            {"id": "ok", "match": {"apiVersion": "v1", "kinds": ["Pod"]}, "expression": "true"},
            {"id": "typo", "match": {"apiVersion": "v1", "kinds": ["Pod"]},
             "expression": "object.spec.containers.all(c, c.image.startsWith('registry/')"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "invalid_config");
    let message = error["message"].as_str().unwrap();
    assert!(
        message
            == "plugin `rules` refuses this configuration: rules[1].expression: the CEL \
                expression does not compile: Syntax error: missing ')' at '<EOF>' (line 1, \
                column 62)",
        "{message}"
    );
    let causes = error["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{body}");
    assert_eq!(causes[0]["field"], "rules[1].expression");
    assert_eq!(
        (causes[0]["line"].as_u64(), causes[0]["column"].as_u64()),
        (Some(1), Some(62))
    );

    // The stored configuration is the one before.
    let plugin = ok(&gw, Method::GET, "/api/v1/plugins/rules", None).await;
    assert_eq!(plugin["config"], good);

    // Not JSON-shaped as the plugin wants: refused, naming the field.
    let (status, body) = put_config(&gw, json!({"rules": [{"id": "x"}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["causes"][0]["field"], "rules[0]");
    let plugin = ok(&gw, Method::GET, "/api/v1/plugins/rules", None).await;
    assert_eq!(plugin["config"], good);

    // A disabled plugin is checked too, and a configuration other plugins have no check for
    // is stored as before (builtin-checks has no config-check export).
    ok(&gw, Method::POST, "/api/v1/plugins/rules/disable", None).await;
    let (status, _) = put_config(&gw, json!({"rules": "not a list"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = gw
        .as_admin(Method::PUT, "/api/v1/plugins/builtin-checks/config")
        .json(&json!({"exclude-namespaces": [], "disabled-checks": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_validating_admission_policy_flags_existing_objects() {
    let gw = gateway("policy").await;
    let sim = simulator().await;
    let (status, body) = put_config(&gw, json!({"policies": [POLICY]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let findings = inspect(&gw, &sim).await;
    // `api` (3 replicas) in the prod namespace; `toy` (9) is in `lab` (env=dev).
    assert_eq!(
        failed(&findings),
        [("replica-limit".to_owned(), "api".to_owned())]
    );
    let flagged = finding(&findings, "replica-limit", "api");
    assert_eq!(flagged.message, "replicas 3 is over 2");
    assert_eq!(format!("{:?}", flagged.severity).to_lowercase(), "high");
    assert_eq!(flagged.extra["policy"], "replica-limit");
    assert_eq!(flagged.extra["reason"], "Invalid");

    // Parameters cannot be honoured without a binding: refused, not ignored.
    let with_params = POLICY.replace(
        "  failurePolicy: Fail\n",
        "  failurePolicy: Fail\n  paramKind: {apiVersion: v1, kind: ConfigMap}\n",
    );
    let (status, body) = put_config(&gw, json!({"policies": [with_params]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["details"]["causes"][0]["field"],
        "policies[0]#0.spec.paramKind"
    );
}

/// The loop an SRE goes through: rules through the API, a job run, its findings.
#[tokio::test]
async fn rules_set_through_the_api_show_in_the_next_job_run() {
    let gw = gateway("job").await;
    let sim = simulator().await;
    gw.add_cluster("sim", &sim.kubeconfig())
        .await
        .expect("connect the simulator");
    let (status, body) = put_config(
        &gw,
        json!({"rules": [{"id": "min-replicas", "severity": "medium",
                          "match": {"apiGroups": ["apps"], "resources": ["deployments"]},
                          "expression": "object.spec.replicas >= 2",
                          "messageExpression": "'only ' + string(object.spec.replicas) + ' replica'"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = ok(
        &gw,
        Method::POST,
        "/api/v1/jobs",
        Some(
            json!({"name": "rules", "plugins": ["rules"], "cron": "0 3 1 1 *",
                    "targets": {"clusters": ["sim"]}}),
        ),
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let run = ok(&gw, Method::POST, &format!("/api/v1/jobs/{id}/run"), None).await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let mut finished = None;
    for _ in 0..300 {
        let run = ok(&gw, Method::GET, &format!("/api/v1/runs/{run_id}"), None).await;
        if run["status"] != "running" {
            finished = Some(run);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = finished.expect("the run ends within 30 s");
    assert_eq!(run["status"], "success", "{run}");
    let findings = ok(
        &gw,
        Method::GET,
        &format!("/api/v1/findings?run={run_id}&passed=false&limit=100"),
        None,
    )
    .await;
    let mut flagged: Vec<(String, String)> = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["checkId"].as_str().unwrap_or_default().to_owned(),
                f["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [("min-replicas".to_owned(), "only 1 replica".to_owned())],
        "{findings}"
    );
}
