//! Response headers (APF, Warning), Accept negotiation and protobuf responses, the metrics
//! API and the ephemeral containers subresource, over HTTPS with a plain HTTP client.

#[path = "support/http.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

#[tokio::test]
async fn apf_headers_name_the_flow_schema_and_priority_level() {
    let (sim, c) = support::start().await;
    let resp = c
        .get(format!("{}/api/v1/namespaces", sim.url()))
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    // The token user is in system:masters: the `exempt` schema and level.
    assert_eq!(
        h["x-kubernetes-pf-flowschema-uid"],
        kube_sim::apf::EXEMPT.flow_schema_uid
    );
    assert_eq!(
        h["x-kubernetes-pf-prioritylevel-uid"],
        kube_sim::apf::EXEMPT.priority_level_uid
    );
    // Unauthenticated requests are rejected before APF; probes are classified.
    let anon = support::builder(&sim).build().unwrap();
    let resp = anon
        .get(format!("{}/api/v1/pods", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()
            .get("x-kubernetes-pf-flowschema-uid")
            .is_none()
    );
    let resp = anon
        .get(format!("{}/readyz", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-kubernetes-pf-flowschema-uid"],
        kube_sim::apf::PROBES.flow_schema_uid
    );
    // Impersonating a user outside system:masters lands in global-default.
    let resp = c
        .get(format!("{}/api/v1/pods", sim.url()))
        .header("impersonate-user", "jane")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-kubernetes-pf-prioritylevel-uid"],
        kube_sim::apf::GLOBAL_DEFAULT.priority_level_uid
    );
    // Long-running non-watch requests skip APF.
    sim.seed_pods("default", 1, 1);
    sim.set_pod_log("default", "pod-00000", "x\n");
    let resp = c
        .get(format!(
            "{}/api/v1/namespaces/default/pods/pod-00000/log",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()
            .get("x-kubernetes-pf-flowschema-uid")
            .is_none()
    );
}

#[tokio::test]
async fn deprecated_node_labels_come_back_as_warning_headers() {
    let (sim, c) = support::start().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"},
        "spec": {"nodeSelector": {"beta.kubernetes.io/arch": "amd64"},
                 "containers": [{"name": "a", "image": "a"}]}});
    let resp = c
        .post(format!("{}/api/v1/namespaces/default/pods", sim.url()))
        .json(&pod)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "spec.nodeSelector[beta.kubernetes.io/arch]: deprecated since v1.14; use \"kubernetes.io/arch\" instead""#
        ]
    );
    // A clean object gets none.
    let resp = c
        .post(format!(
            "{}/api/v1/namespaces/default/configmaps",
            sim.url()
        ))
        .json(&json!({"metadata": {"name": "c"}}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("warning").is_none());
}

#[tokio::test]
async fn accept_negotiation_and_protobuf_round_trips() {
    let (sim, c) = support::start().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "p", "labels": {"a": "b"}}, "data": {"k": "v"}});
    let (code, created) = support::post(
        &c,
        &sim,
        "/api/v1/namespaces/default/configmaps",
        cm.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let path = format!("{}/api/v1/namespaces/default/configmaps/p", sim.url());
    let get = |accept: &'static str| c.get(&path).header("accept", accept).send();

    // What typed client-go clients send: protobuf first, JSON as the fallback.
    let resp = get("application/vnd.kubernetes.protobuf, application/json")
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], PROTOBUF);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"k8s\0"));
    assert_eq!(kube_sim::protobuf::decode(&bytes).unwrap(), created);

    // A protobuf body sent back in is stored as the same object.
    let mut changed = created.clone();
    changed["data"]["k"] = "w".into();
    let body = kube_sim::protobuf::encode_object(&changed).unwrap();
    let resp = c
        .put(&path)
        .header("content-type", PROTOBUF)
        .header("accept", PROTOBUF)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let updated = kube_sim::protobuf::decode(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(updated["data"], json!({"k": "w"}));
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    // Lists too.
    let resp = c
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps",
            sim.url()
        ))
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    let list = kube_sim::protobuf::decode_list(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "p");

    // q-values: YAML preferred over protobuf.
    let resp = get("application/vnd.kubernetes.protobuf;q=0.5, application/yaml")
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/yaml");

    // A kind protobuf does not cover falls back to the other type the client accepts…
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]}});
    let (code, _) = support::post(&c, &sim, "/api/v1/namespaces/default/services", svc).await;
    assert_eq!(code, StatusCode::CREATED);
    let svc_path = format!("{}/api/v1/namespaces/default/services/s", sim.url());
    let resp = c
        .get(&svc_path)
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["metadata"]["name"], "s");
    // …and is 406 when there is none.
    let resp = c
        .get(&svc_path)
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "NotAcceptable");
    let resp = get("text/html").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn pods_travel_as_protobuf() {
    let (sim, c) = support::start().await;
    // What `kubectl debug node/NAME` creates (legacy profile), sent the way its typed client
    // sends it.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "node-debugger"},
        "spec": {"nodeName": "node-0000", "restartPolicy": "Never", "hostIPC": true,
            "hostNetwork": true, "hostPID": true, "tolerations": [{"operator": "Exists"}],
            "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "debugger", "image": "busybox", "stdin": true,
                "terminationMessagePolicy": "File",
                "resources": {"limits": {"cpu": "1"}},
                "livenessProbe": {"tcpSocket": {"port": 22}},
                "volumeMounts": [{"name": "host-root", "mountPath": "/host"}]}]}});
    let pods = format!("{}/api/v1/namespaces/default/pods", sim.url());
    let resp = c
        .post(&pods)
        .header("content-type", PROTOBUF)
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(kube_sim::protobuf::encode_object(&pod).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["content-type"], PROTOBUF);
    let created = kube_sim::protobuf::decode(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(created["spec"]["volumes"], pod["spec"]["volumes"]);
    assert_eq!(
        created["spec"]["containers"][0]["livenessProbe"],
        json!({"tcpSocket": {"port": 22}})
    );
    assert_eq!(
        created["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1"}})
    );
    assert_eq!(created["spec"]["hostPID"], true);

    // Read back as JSON, it is the same object.
    let (code, as_json) =
        support::get(&c, &sim, "/api/v1/namespaces/default/pods/node-debugger").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(as_json, created);

    // A stored Pod with a field the tables lack is answered in JSON rather than cut short.
    let odd = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd"},
        "spec": {"containers": [{"name": "a", "image": "a"}],
                 "workloadRef": {"name": "w", "podGroup": "g"}}});
    let (code, _) = support::post(&c, &sim, "/api/v1/namespaces/default/pods", odd).await;
    assert_eq!(code, StatusCode::CREATED);
    let resp = c
        .get(format!("{pods}/odd"))
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["spec"]["workloadRef"]["name"], "w");
}

#[tokio::test]
async fn metrics_api_is_discoverable_and_computes_usage() {
    let (sim, c) = support::start().await;
    sim.seed_nodes(1);
    sim.seed_pods("default", 2, 1);
    let (code, groups) = support::get(&c, &sim, "/apis").await;
    assert_eq!(code, StatusCode::OK);
    let metrics = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "metrics.k8s.io")
        .expect("metrics.k8s.io is listed");
    assert_eq!(metrics["preferredVersion"]["version"], "v1beta1");
    let (_, list) = support::get(
        &c,
        &sim,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dapp-1",
    )
    .await;
    assert_eq!(list["kind"], "PodMetricsList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "pod-00001");
    let cpu = items[0]["containers"][0]["usage"]["cpu"].as_str().unwrap();
    assert!(cpu.ends_with('n'), "{cpu}");
    let (code, node) = support::get(&c, &sim, "/apis/metrics.k8s.io/v1beta1/nodes/node-0000").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(node["kind"], "NodeMetrics");
    let (code, _) = support::get(&c, &sim, "/apis/metrics.k8s.io/v1beta1/nodes/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ephemeral_containers_subresource() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 1, 1);
    let path = "/api/v1/namespaces/default/pods/pod-00000/ephemeralcontainers";
    let (code, pod) = support::get(&c, &sim, path).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(pod["kind"], "Pod");
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}});
    let (code, pod) = support::call(
        &c,
        &sim,
        Method::PATCH,
        path,
        Some(("application/strategic-merge-patch+json", patch.to_string())),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{pod}");
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "dbg");
    assert_eq!(
        pod["status"]["ephemeralContainerStatuses"][0]["name"],
        "dbg"
    );
    let (code, body) = support::call(
        &c,
        &sim,
        Method::PATCH,
        path,
        Some((
            "application/strategic-merge-patch+json",
            json!({"spec": {"ephemeralContainers": [{"name": "app", "image": "x"}]}}).to_string(),
        )),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["reason"], "Invalid");
}

#[tokio::test]
async fn raw_paths_health_and_metrics() {
    let (sim, c) = support::start().await;
    let text = |path: &'static str| {
        let c = c.clone();
        let url = format!("{}{path}", sim.url());
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("/livez").await, "ok");
    let verbose = text("/readyz?verbose").await;
    assert!(verbose.starts_with("[+]ping ok\n"), "{verbose}");
    assert!(verbose.ends_with("readyz check passed\n"), "{verbose}");
    let metrics = text("/metrics").await;
    assert!(
        metrics.contains("apiserver_storage_objects{resource=\"namespaces\"} 4\n"),
        "{metrics}"
    );
}
