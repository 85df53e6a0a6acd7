use serde_json::json;

use super::*;
use crate::resources;

#[test]
fn pods_with_deprecated_node_labels_and_annotations_warn() {
    let pods = resources::by_plural("", "v1", "pods").unwrap();
    let pod = json!({
        "metadata": {"name": "p", "annotations": {
            "scheduler.alpha.kubernetes.io/critical-pod": "",
            "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}},
        "spec": {
            "nodeSelector": {"beta.kubernetes.io/os": "linux", "kubernetes.io/os": "linux"},
            "containers": [{"name": "a", "env": [
                {"name": "X", "value": "1"}, {"name": "X", "value": "2"},
                {"name": "Y", "value": "1"}, {"name": "Y", "value": "$(Y)-more"}]}],
            "imagePullSecrets": [{"name": "r"}, {"name": "r"}],
        }
    });
    assert_eq!(
        for_object(pods, &pod),
        vec![
            "spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
            "metadata.annotations[scheduler.alpha.kubernetes.io/critical-pod]: non-functional in v1.16+; use the \"priorityClassName\" field instead",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            "spec.imagePullSecrets[1].name: duplicate name \"r\"",
            "spec.containers[0].env[1]: hides previous definition of \"X\", which may be dropped when using apply",
        ]
    );
    let clean =
        json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}});
    assert!(for_object(pods, &clean).is_empty());
}

#[test]
fn pod_templates_warn_with_their_path() {
    let deploy = resources::by_plural("apps", "v1", "deployments").unwrap();
    let d = json!({"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "failure-domain.beta.kubernetes.io/zone", "operator": "Exists"}]}
    ]}}}}}}});
    assert_eq!(
        for_object(deploy, &d),
        vec![
            "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key: failure-domain.beta.kubernetes.io/zone is deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead"
        ]
    );
    let cm = resources::by_plural("", "v1", "configmaps").unwrap();
    assert!(for_object(cm, &d).is_empty());
}

#[test]
fn headers_are_quoted_warn_code_299() {
    let mut h = http::HeaderMap::new();
    add_headers(&mut h, &["a \"b\"".to_string(), "c".to_string()]);
    let v: Vec<_> = h
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(v, ["299 - \"a \\\"b\\\"\"", "299 - \"c\""]);
}
