use serde_json::json;

use super::*;

#[test]
fn quantities_parse_to_base_units() {
    assert_eq!(parse_quantity("250m"), Some(0.25));
    assert_eq!(parse_quantity("2"), Some(2.0));
    assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
    assert_eq!(parse_quantity("1G"), Some(1e9));
    assert_eq!(
        parse_quantity("1.5Gi"),
        Some(1.5 * 1024.0 * 1024.0 * 1024.0)
    );
    assert_eq!(parse_quantity("2e3"), Some(2000.0));
    assert_eq!(parse_quantity("12x"), None);
}

#[test]
fn pod_usage_comes_from_the_annotation_requests_or_a_stable_hash() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "d",
                     "annotations": {USAGE_ANNOTATION: r#"{"a": {"cpu": "250m", "memory": "64Mi"}}"#}},
        "spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}},
            {"name": "c"},
        ]},
        "status": {"phase": "Running"},
    });
    let u = pod_usage(&pod).unwrap();
    assert_eq!(
        u[0],
        (
            "a".into(),
            Usage {
                cpu_nanos: 250_000_000,
                memory_bytes: 64 << 20
            }
        )
    );
    assert_eq!(
        u[1],
        (
            "b".into(),
            Usage {
                cpu_nanos: 100_000_000,
                memory_bytes: 32 << 20
            }
        )
    );
    // Derived: the same every time, within the documented range.
    assert_eq!(pod_usage(&pod).unwrap()[2], u[2]);
    assert!(
        (1_000_000..=50_000_000).contains(&u[2].1.cpu_nanos),
        "{u:?}"
    );
    assert!(
        ((8 << 20)..=(63 << 20)).contains(&u[2].1.memory_bytes),
        "{u:?}"
    );
    let mut pending = pod.clone();
    pending["status"]["phase"] = "Pending".into();
    assert_eq!(pod_usage(&pending), None);
}

#[test]
fn node_usage_sums_its_running_pods() {
    let store = Store::new(100);
    let nodes = resources::by_plural("", "v1", "nodes").unwrap();
    let pods = resources::by_plural("", "v1", "pods").unwrap();
    store.insert_many(nodes, vec![json!({"metadata": {"name": "n1"}}),
        json!({"metadata": {"name": "n2", "annotations": {USAGE_ANNOTATION: r#"{"cpu": "3", "memory": "1Gi"}"#}}})]);
    let pod = |name: &str, node: &str| {
        json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "10Mi"}}}]},
            "status": {"phase": "Running"},
        })
    };
    store.insert_many(pods, vec![pod("a", "n1"), pod("b", "n1"), pod("c", "n2")]);
    let q = Query::parse(None);
    let list = serve(&store, "/apis/metrics.k8s.io/v1beta1/nodes", &q)
        .unwrap()
        .unwrap();
    assert_eq!(list["kind"], "NodeMetricsList");
    assert_eq!(list["items"][0]["metadata"]["name"], "n1");
    // 50m + 2 × 100m; 256Mi + 2 × 10Mi, in KiB.
    assert_eq!(
        list["items"][0]["usage"],
        json!({"cpu": "250000000n", "memory": "282624Ki"})
    );
    assert_eq!(
        list["items"][1]["usage"],
        json!({"cpu": "3000000000n", "memory": "1048576Ki"})
    );

    let q = Query::parse(Some("labelSelector=nope%3Dx"));
    let list = serve(
        &store,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        &q,
    )
    .unwrap()
    .unwrap();
    assert_eq!(list["items"], json!([]));
    let q = Query::parse(None);
    let one = serve(
        &store,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/a",
        &q,
    )
    .unwrap()
    .unwrap();
    assert_eq!(one["kind"], "PodMetrics");
    assert_eq!(one["containers"][0]["usage"]["cpu"], "100000000n");
    let err = serve(
        &store,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/zz",
        &q,
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "pods.metrics.k8s.io \"zz\" not found");
    assert!(serve(&store, "/apis/apps/v1", &q).is_none());
}
