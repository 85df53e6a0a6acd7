use serde_json::json;

use super::*;
use crate::rules::compile;

fn pod(namespace: &str, name: &str, labels: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    })
}

fn deployment(namespace: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    })
}

fn lists(objects: &[Value]) -> BTreeMap<Target, Result<Vec<Value>, Error>> {
    let mut lists: BTreeMap<Target, Result<Vec<Value>, Error>> = BTreeMap::new();
    for object in objects {
        let target = Target {
            api_version: object["apiVersion"].as_str().unwrap().to_owned(),
            kind: object["kind"].as_str().unwrap().to_owned(),
        };
        if let Ok(list) = lists.entry(target).or_insert_with(|| Ok(Vec::new())) {
            list.push(object.clone());
        }
    }
    lists
}

/// (check, passed, target name, message) of each finding.
fn run(config: Value, objects: &[Value]) -> Vec<(String, bool, String, String)> {
    let rules = compile(&config).unwrap_or_else(|issues| panic!("{issues:?}"));
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    audit(&rules, &lists(objects), &namespaces)
        .into_iter()
        .map(|f| {
            (
                f.check_id,
                f.passed,
                f.target.map(|t| t.name).unwrap_or_default(),
                f.message,
            )
        })
        .collect()
}

fn issues(config: Value) -> Vec<ConfigIssue> {
    compile(&config).expect_err("the configuration is refused")
}

#[test]
fn a_rule_applies_to_its_kind_namespaces_and_labels_only() {
    let config = json!({"rules": [{
        "id": "no-latest",
        "match": {"apiVersion": "v1", "kinds": ["Pod"], "namespaces": ["shop"],
                  "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}},
        "expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "message": "an image uses :latest",
        "severity": "high",
    }]});
    let latest = json!({"containers": [{"name": "a", "image": "nginx:latest"}]});
    let pinned = json!({"containers": [{"name": "a", "image": "nginx:1.27"}]});
    let objects = [
        pod("shop", "bad", json!({"tier": "web"}), latest.clone()),
        pod("shop", "good", json!({"tier": "web"}), pinned),
        pod("shop", "other-tier", json!({"tier": "db"}), latest.clone()),
        pod(
            "elsewhere",
            "other-ns",
            json!({"tier": "web"}),
            latest.clone(),
        ),
        deployment("shop", "not-a-pod", 1),
    ];
    let findings = run(config, &objects);
    assert_eq!(
        findings,
        [(
            "no-latest".to_owned(),
            false,
            "bad".to_owned(),
            "an image uses :latest".to_owned()
        )]
    );
}

#[test]
fn a_rule_with_no_failure_reports_one_pass() {
    let config = json!({"rules": [{
        "id": "replicas", "match": {"apiGroups": ["apps"], "resources": ["deployments"]},
        "expression": "object.spec.replicas * 2 >= 2",
    }]});
    let findings = run(
        config,
        &[deployment("a", "one", 1), deployment("b", "two", 3)],
    );
    assert_eq!(
        findings,
        [(
            "replicas".to_owned(),
            true,
            String::new(),
            "2 objects pass".to_owned()
        )]
    );
}

#[test]
fn message_expression_then_message_then_the_expression() {
    let rule = |extra: Value| {
        let mut rule = json!({
            "id": "r", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
            "expression": "object.spec.replicas >= 2",
        });
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "rules": [rule] })
    };
    let objects = [deployment("a", "single", 1)];
    let message = |config| run(config, &objects)[0].3.clone();
    assert_eq!(
        message(rule(json!({
            "message": "static",
            "messageExpression": "'only ' + string(object.spec.replicas) + ' replica'"
        }))),
        "only 1 replica"
    );
    // An empty or failing messageExpression falls back to the message, as in Kubernetes.
    assert_eq!(
        message(rule(
            json!({"message": "static", "messageExpression": "''"})
        )),
        "static"
    );
    assert_eq!(
        message(rule(
            json!({"message": "static", "messageExpression": "object.nope"})
        )),
        "static"
    );
    assert_eq!(
        message(rule(json!({}))),
        "failed expression: object.spec.replicas >= 2"
    );
}

#[test]
fn an_evaluation_error_is_a_finding_that_says_so() {
    let config = json!({"rules": [
        {"id": "missing-field", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
         "expression": "object.spec.template.spec.hostNetwork == false"},
        {"id": "not-bool", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
         "expression": "object.spec.replicas"},
        {"id": "guarded", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
         "expression": "!has(object.spec.template) || object.spec.template.spec.hostNetwork == false"},
    ]});
    let findings = run(config, &[deployment("a", "d", 1)]);
    assert_eq!(findings.len(), 3, "{findings:?}");
    assert!(!findings[0].1);
    assert_eq!(
        findings[0].3,
        "the rule could not be evaluated: No such key: template"
    );
    assert!(!findings[1].1);
    assert_eq!(
        findings[1].3,
        "the rule could not be evaluated: the expression returned int, not a bool"
    );
    assert!(findings[2].1, "{:?}", findings[2]);
}

#[test]
fn variables_are_evaluated_in_order_and_a_failed_one_is_named_where_used() {
    let config = json!({"rules": [{
        "id": "vars", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
        "variables": [
            {"name": "replicas", "expression": "object.spec.replicas"},
            {"name": "enough", "expression": "variables.replicas >= 2"},
            {"name": "broken", "expression": "object.spec.nope"},
        ],
        "expression": "variables.enough",
        "messageExpression": "'has ' + string(variables.replicas)",
    }, {
        "id": "uses-broken", "match": {"apiVersion": "apps/v1", "kinds": ["Deployment"]},
        "variables": [{"name": "broken", "expression": "object.spec.nope"}],
        "expression": "variables.broken == 1",
    }]});
    let findings = run(config, &[deployment("a", "d", 1)]);
    assert_eq!(findings[0].3, "has 1");
    assert_eq!(
        findings[1].3,
        "the rule could not be evaluated: variable `broken` failed: No such key: nope"
    );
}

#[test]
fn a_bad_expression_is_refused_with_its_rule_and_position() {
    let found = issues(json!({"rules": [
        {"id": "ok", "match": {"apiVersion": "v1", "kinds": ["Pod"]}, "expression": "true"},
        {"id": "bad", "match": {"apiVersion": "v1", "kinds": ["Pod"]},
         "expression": "has(object.spec) &&\n  object.spec.x ==== 1"},
    ]}));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "rules[1].expression");
    assert_eq!((found[0].line, found[0].column), (Some(2), Some(19)));
    assert!(
        found[0].message.starts_with(
            "the CEL expression does not compile: Syntax error: extraneous input '=='"
        ),
        "{}",
        found[0].message
    );
}

#[test]
fn configuration_mistakes_are_each_named() {
    let found = issues(json!({
        "rules": [
            {"id": "a", "match": {"kinds": ["Widget"]}, "expression": "true"},
            {"id": "a", "match": {"apiVersion": "v1", "kinds": ["Pod"]}, "expression": "true",
             "severity": "urgent"},
            {"id": "c", "match": {"apiVersion": "v1", "kinds": ["Pod"],
             "labelSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
             "expression": "request.operation == 'CREATE'"},
            {"id": "d", "match": {"kinds": ["Event"]}, "expression": "true"},
        ],
        "extra": 1,
    }));
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "extra",
            "rules[0].match",
            "rules[1]",
            "rules[2].match.labelSelector",
            "rules[2].expression",
            "rules[3].match",
        ],
        "{found:#?}"
    );
    assert!(found[1].message.contains("`Widget` is not a built-in kind"));
    assert!(found[2].message.contains("urgent"));
    assert!(found[4].message.contains("`request` is not available"));
    assert!(found[5].message.contains("several groups"));
}

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replica-limit
  annotations:
    portico.io/severity: high
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
    namespaceSelector:
      matchLabels:
        env: prod
  matchConditions:
  - name: not-paused
    expression: "!has(object.spec.paused) || !object.spec.paused"
  variables:
  - name: replicas
    expression: object.spec.replicas
  validations:
  - expression: variables.replicas <= 5
    messageExpression: "'replicas ' + string(variables.replicas) + ' > 5'"
    reason: Invalid
  auditAnnotations:
  - key: high-replica-count
    valueExpression: "'Deployment spec.replicas set to ' + string(object.spec.replicas)"
"#;

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

#[test]
fn a_validating_admission_policy_is_imported_as_rules() {
    let mut paused = deployment("prod", "paused", 9);
    paused["spec"]["paused"] = json!(true);
    let objects = [
        namespace("prod", json!({"env": "prod"})),
        namespace("dev", json!({"env": "dev"})),
        deployment("prod", "big", 9),
        deployment("prod", "small", 2),
        deployment("dev", "big-in-dev", 9),
        paused,
    ];
    let config = json!({"policies": [POLICY]});
    let rules = compile(&config).unwrap();
    assert_eq!(rules[0].severity, Severity::High);
    let findings = audit(&rules, &lists(&objects), &objects[..2]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert_eq!(finding.check_id, "replica-limit");
    assert!(!finding.passed);
    assert_eq!(finding.message, "replicas 9 > 5");
    assert_eq!(finding.target.as_ref().unwrap().name, "big");
    let extra: Value = serde_json::from_str(&finding.extra).unwrap();
    assert_eq!(extra["policy"], "replica-limit");
    assert_eq!(extra["reason"], "Invalid");
    assert_eq!(extra["auditAnnotationsSkipped"], 1);

    // The same policy as a JSON object.
    let as_json: Value = serde_yaml::from_str(POLICY).unwrap();
    assert_eq!(compile(&json!({"policies": [as_json]})).unwrap().len(), 1);
}

#[test]
fn policy_features_that_cannot_be_honoured_are_refused() {
    let with_params = POLICY.replace(
        "  failurePolicy: Fail\n",
        "  failurePolicy: Fail\n  paramKind:\n    apiVersion: v1\n    kind: ConfigMap\n",
    );
    let found = issues(json!({"policies": [with_params]}));
    assert_eq!(found[0].path, "policies[0]#0.spec.paramKind");

    let delete_only = POLICY.replace(r#"["CREATE", "UPDATE"]"#, r#"["DELETE"]"#);
    let found = issues(json!({"policies": [delete_only]}));
    assert!(
        found[0].message.contains("neither CREATE nor UPDATE"),
        "{found:?}"
    );

    let bad_expression = POLICY.replace("variables.replicas <= 5", "variables.replicas <=");
    let found = issues(json!({"policies": [bad_expression]}));
    assert_eq!(
        found[0].path,
        "policies[0]#0.spec.validations[0].expression"
    );
    assert_eq!(found[0].line, Some(1));

    let binding = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: b}\n";
    let found = issues(json!({"policies": [format!("{POLICY}---\n{binding}")]}));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "policies[0]#1");
    assert!(found[0].message.contains("bindings are not read"));

    let found = issues(json!({"policies": ["kind: [unclosed"]}));
    assert!(found[0].line.is_some(), "{found:?}");
}

#[test]
fn kubernetes_library_functions() {
    let check = |expression: &str| {
        let program = expr::compile(expression).unwrap_or_else(|e| panic!("{expression}: {e:?}"));
        let context = cel::Context::with_env(expr::env().clone());
        program.execute(&context)
    };
    for expression in [
        "[1, 2, 3].isSorted() && ![2, 1].isSorted()",
        "[1, 2, 3].sum() == 6 && [1, 5, 3].max() == 5 && [4, 2].min() == 2",
        "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(7) == -1",
        "'abc 123 def 456'.find('[0-9]+') == '123'",
        "'abc 123 def 456'.findAll('[0-9]+') == ['123', '456']",
        "'abc 123 def 456'.findAll('[0-9]+', 1) == ['123']",
        "sets.contains([1, 2, 3], [2, 3]) && !sets.contains([1], [2])",
        "sets.equivalent([1, 2], [2, 1, 1]) && sets.intersects([1, 2], [2, 5])",
        "'TacoCat'.lowerAscii() == 'tacocat' && 'a,b'.split(',') == ['a', 'b']",
        "'registry.example.com/app:v1'.matches('^registry[.]example[.]com/')",
        "[1, 2].exists_one(x, x == 1) && [1, 2].map(x, x * 2) == [2, 4]",
        "optional.of(1).orValue(2) == 1 && {'a': 1}[?'b'].orValue(5) == 5",
        "duration('1h') > duration('30m')",
        "timestamp('2024-01-01T00:00:00Z') < timestamp('2025-01-01T00:00:00Z')",
    ] {
        assert_eq!(
            check(expression),
            Ok(cel::Value::Bool(true)),
            "{expression}"
        );
    }
    assert!(check("[].max()").is_err());
    // Not provided (docs/plugins.md says so): compiles, fails when evaluated.
    assert!(check("quantity('1Gi').isGreaterThan(quantity('1Mi'))").is_err());
    assert!(check("cel.bind(x, 1, x == 1)").is_err());
}
