//! The kinds served for the built-in inspection (autoscaling/v2, networking, discovery,
//! storage, admissionregistration, RBAC, Gateway API): discovery says what the apiserver says
//! (scope, short names, categories, versions), and the objects are stored like any other.

#[path = "support/http.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call, get, post};

/// Group/version path, plural, kind, namespaced, short names, categories.
type Served = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

const SERVED: &[Served] = &[
    (
        "/apis/autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        &["all"],
    ),
    (
        "/apis/networking.k8s.io/v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
        &[],
    ),
    (
        "/apis/networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    (
        "/apis/discovery.k8s.io/v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        &[],
    ),
    (
        "/apis/storage.k8s.io/v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
        &[],
    ),
    (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        &["api-extensions"],
    ),
    (
        "/apis/admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
        &["api-extensions"],
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        "roles",
        "Role",
        true,
        &[],
        &[],
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        &[],
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "gatewayclasses",
        "GatewayClass",
        false,
        &["gc"],
        &["gateway-api"],
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "gateways",
        "Gateway",
        true,
        &["gtw"],
        &["gateway-api"],
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "httproutes",
        "HTTPRoute",
        true,
        &[],
        &["gateway-api"],
    ),
];

fn entry<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["resources"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
}

#[tokio::test]
async fn legacy_discovery_describes_every_kind() {
    let (sim, c) = support::start().await;
    for (path, plural, kind, namespaced, short, categories) in SERVED {
        let (code, list) = get(&c, &sim, path).await;
        assert_eq!(code, StatusCode::OK, "{path}");
        let e = entry(&list, plural).unwrap_or_else(|| panic!("{plural} in {path}: {list}"));
        assert_eq!(e["kind"], *kind);
        assert_eq!(e["namespaced"], *namespaced, "{plural}");
        if short.is_empty() {
            assert!(e.get("shortNames").is_none(), "{plural}: {e}");
        } else {
            assert_eq!(e["shortNames"], json!(short), "{plural}");
        }
        if categories.is_empty() {
            assert!(e.get("categories").is_none(), "{plural}: {e}");
        } else {
            assert_eq!(e["categories"], json!(categories), "{plural}");
        }
    }
    // Status subresources where the apiserver has them, not elsewhere.
    let (_, autoscaling) = get(&c, &sim, "/apis/autoscaling/v2").await;
    assert!(entry(&autoscaling, "horizontalpodautoscalers/status").is_some());
    let (_, gateway) = get(&c, &sim, "/apis/gateway.networking.k8s.io/v1").await;
    assert!(entry(&gateway, "httproutes/status").is_some());
    let (_, rbac) = get(&c, &sim, "/apis/rbac.authorization.k8s.io/v1").await;
    assert!(entry(&rbac, "roles/status").is_none());
}

#[tokio::test]
async fn autoscaling_is_served_at_v2_only() {
    let (sim, c) = support::start().await;
    let (code, group) = get(&c, &sim, "/apis/autoscaling").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        group["preferredVersion"],
        json!({"groupVersion": "autoscaling/v2", "version": "v2"})
    );
    assert_eq!(group["versions"].as_array().unwrap().len(), 1);
    let (_, groups) = get(&c, &sim, "/apis").await;
    let autoscaling = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .expect("autoscaling is listed");
    assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
    let (code, _) = get(&c, &sim, "/apis/autoscaling/v1").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, root) = get(&c, &sim, "/").await;
    let paths = root["paths"].as_array().unwrap();
    assert!(paths.contains(&json!("/apis/autoscaling/v2")));
    assert!(!paths.contains(&json!("/apis/autoscaling/v1")));

    // Aggregated discovery carries the version too.
    let resp = c
        .get(format!("{}/apis", sim.url()))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        )
        .send()
        .await
        .unwrap();
    let agg: Value = resp.json().await.unwrap();
    let item = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "autoscaling")
        .unwrap();
    assert_eq!(item["versions"].as_array().unwrap().len(), 1);
    let version = &item["versions"][0];
    assert_eq!(version["version"], "v2");
    let hpa = &version["resources"][0];
    assert_eq!(hpa["resource"], "horizontalpodautoscalers");
    assert_eq!(hpa["responseKind"]["version"], "v2");
    assert_eq!(hpa["shortNames"], json!(["hpa"]));
}

#[tokio::test]
async fn the_new_kinds_are_stored_like_any_other() {
    let (sim, c) = support::start().await;
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 3},
    });
    let (code, created) = post(
        &c,
        &sim,
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        hpa,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["namespace"], "default");
    let (_, list) = get(&c, &sim, "/apis/autoscaling/v2/horizontalpodautoscalers").await;
    assert_eq!(list["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");

    // Custom resources get a generation; their delete answers with a Status.
    let gateway = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge"},
        "spec": {"gatewayClassName": "example", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    });
    let (code, created) = post(
        &c,
        &sim,
        "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways",
        gateway,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let (code, deleted) = call(
        &c,
        &sim,
        Method::DELETE,
        "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/edge",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(deleted["kind"], "Status");

    // StorageClasses are cluster-scoped, and a delete answers with the object.
    let class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast"}, "provisioner": "example.com/csi",
    });
    let (code, _) = post(&c, &sim, "/apis/storage.k8s.io/v1/storageclasses", class).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, _) = get(
        &c,
        &sim,
        "/apis/storage.k8s.io/v1/namespaces/default/storageclasses/fast",
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, deleted) = call(
        &c,
        &sim,
        Method::DELETE,
        "/apis/storage.k8s.io/v1/storageclasses/fast",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(deleted["kind"], "StorageClass");

    // Seeding by YAML knows the kinds too.
    sim.load_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: all}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n",
    )
    .expect("a ClusterRole seeds");
    let (code, role) = get(
        &c,
        &sim,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/all",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(role["rules"][0]["verbs"], json!(["*"]));
}
