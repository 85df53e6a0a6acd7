//! The REST surface over HTTPS with a plain HTTP client: Status bodies, discovery, lists,
//! patches, subresources, finalizers, seeding.

#[path = "support/http.rs"]
mod support;

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call, get, post};

#[tokio::test]
async fn unauthenticated_requests_get_a_401_status() {
    let (sim, _) = support::start().await;
    let anon = support::builder(&sim).build().unwrap();
    let (code, body) = get(&anon, &sim, "/api/v1/pods").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let wrong = anon
        .get(format!("{}/api", sim.url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Health needs no credentials.
    let health = anon
        .get(format!("{}/readyz", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The request log saw all of it, with headers.
    let log = sim.requests();
    assert_eq!(log[0].path, "/api/v1/pods");
    assert_eq!(log[0].user, None);
    assert_eq!(log[1].header("authorization"), Some("Bearer wrong"));
}

#[tokio::test]
async fn not_found_and_conflict_bodies_match_the_apiserver() {
    let (sim, c) = support::start().await;
    let (code, body) = get(&c, &sim, "/api/v1/namespaces/default/pods/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "kind": "pods"}, "code": 404})
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let (code, _) = post(
        &c,
        &sim,
        "/api/v1/namespaces/default/configmaps",
        cm.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, body) = post(
        &c,
        &sim,
        "/api/v1/namespaces/default/configmaps",
        cm.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(body["reason"], "AlreadyExists");
    assert_eq!(body["details"], json!({"name": "x", "kind": "configmaps"}));
    // Creating with a resourceVersion fails in storage: a bare 500.
    let mut with_rv = cm;
    with_rv["metadata"] = json!({"name": "y", "resourceVersion": "5"});
    let (code, body) = post(&c, &sim, "/api/v1/namespaces/default/configmaps", with_rv).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "resourceVersion should not be set on objects to be created", "code": 500})
    );
    // Unknown resource paths.
    let (code, body) = get(&c, &sim, "/apis/apps/v1/namespaces/default/gizmos").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(body["details"], json!({}));
    let (code, _) = get(&c, &sim, "/nothing-here").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_documents() {
    let (sim, c) = support::start().await;
    let (_, version) = get(&c, &sim, "/version").await;
    assert_eq!(version["major"], "1");
    let (_, api) = get(&c, &sim, "/api").await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, groups) = get(&c, &sim, "/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in ["apps", "batch", "networking.k8s.io", "coordination.k8s.io"] {
        assert!(names.contains(&g), "{names:?}");
    }
    let (_, core) = get(&c, &sim, "/api/v1").await;
    let pods = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(pods["kind"], "Pod");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["shortNames"], json!(["po"]));
    let (code, leases) = get(&c, &sim, "/apis/coordination.k8s.io/v1").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(leases["groupVersion"], "coordination.k8s.io/v1");
    // Aggregated discovery for clients that ask for it.
    let resp = c
        .get(format!("{}/apis", sim.url()))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let agg: Value = resp.json().await.unwrap();
    assert_eq!(agg["kind"], "APIGroupDiscoveryList");
    let apps = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = &apps["versions"][0]["resources"][0];
    assert_eq!(deploy["resource"], "deployments");
    assert_eq!(deploy["scope"], "Namespaced");
    assert_eq!(deploy["subresources"][0]["subresource"], "scale");
    let (_, openapi) = get(&c, &sim, "/openapi/v3").await;
    let url = openapi["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, doc) = get(&c, &sim, &url).await;
    assert_eq!(code, StatusCode::OK);
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
}

#[tokio::test]
async fn lists_use_selectors_paging_and_bare_items() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 30, 3);
    let (_, list) = get(&c, &sim, "/api/v1/namespaces/default/pods?limit=12").await;
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"].as_array().unwrap().len(), 12);
    assert_eq!(list["metadata"]["remainingItemCount"], 18);
    assert!(
        list["items"][0].get("kind").is_none(),
        "items carry no kind"
    );
    let token = list["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page2) = get(
        &c,
        &sim,
        &format!("/api/v1/namespaces/default/pods?limit=12&continue={token}"),
    )
    .await;
    assert_eq!(page2["items"][0]["metadata"]["name"], "pod-00012");
    assert_eq!(
        page2["metadata"]["resourceVersion"],
        list["metadata"]["resourceVersion"]
    );

    let count = |v: &Value| v["items"].as_array().unwrap().len();
    for (sel, want) in [
        ("labelSelector=app%3Dapp-1", 3),
        ("labelSelector=app%3D%3Dapp-1", 3),
        ("labelSelector=app!%3Dapp-1", 27),
        ("labelSelector=app+in+(app-1,app-2)", 6),
        ("labelSelector=app+notin+(app-1,app-2)", 24),
        ("labelSelector=app", 30),
        ("labelSelector=!app", 0),
        ("fieldSelector=metadata.name%3Dpod-00003", 1),
        ("fieldSelector=metadata.namespace!%3Ddefault", 0),
        ("fieldSelector=spec.nodeName%3Dnode-0001", 10),
    ] {
        let (code, v) = get(&c, &sim, &format!("/api/v1/pods?{sel}")).await;
        assert_eq!(code, StatusCode::OK, "{sel}: {v}");
        assert_eq!(count(&v), want, "{sel}");
    }
    let (code, v) = get(&c, &sim, "/api/v1/pods?fieldSelector=spec.bogus%3D1").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let (code, _) = get(&c, &sim, "/api/v1/pods?labelSelector=a+in+b").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn kubectl_style_table_output() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 2, 1);
    let resp = c
        .get(format!("{}/api/v1/namespaces/default/pods", sim.url()))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap();
    let table: Value = resp.json().await.unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "pod-00000");
    assert_eq!(table["rows"][0]["cells"][2], "Running");
}

#[tokio::test]
async fn updates_patches_status_and_generation() {
    let (sim, c) = support::start().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"a": "1"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
    let (code, created) = post(&c, &sim, path, dep).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(created["metadata"]["generation"], 1);
    let item = format!("{path}/web");
    // A label change does not bump the generation; a spec change does.
    let (_, labelled) = call(
        &c,
        &sim,
        Method::PATCH,
        &item,
        Some((
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"b": "2"}}}).to_string(),
        )),
    )
    .await;
    assert_eq!(labelled["metadata"]["generation"], 1);
    assert_eq!(labelled["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    let (code, scaled) = call(
        &c,
        &sim,
        Method::PATCH,
        &item,
        Some((
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]).to_string(),
        )),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{scaled}");
    assert_eq!(scaled["spec"]["replicas"], 3);
    assert_eq!(scaled["metadata"]["generation"], 2);
    // The main resource ignores status; the status subresource only takes status.
    let mut with_status = scaled.clone();
    with_status["status"] = json!({"readyReplicas": 3});
    let (_, put) = call(
        &c,
        &sim,
        Method::PUT,
        &item,
        Some(("application/json", with_status.to_string())),
    )
    .await;
    assert!(put["status"].get("readyReplicas").is_none(), "{put}");
    let (code, st) = call(
        &c,
        &sim,
        Method::PATCH,
        &format!("{item}/status"),
        Some((
            "application/merge-patch+json",
            json!({"status": {"readyReplicas": 3}, "spec": {"replicas": 9}}).to_string(),
        )),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    assert_eq!(st["status"]["readyReplicas"], 3);
    assert_eq!(st["spec"]["replicas"], 3);
    // A no-op update keeps the resourceVersion.
    let (_, again) = call(
        &c,
        &sim,
        Method::PUT,
        &item,
        Some(("application/json", st.to_string())),
    )
    .await;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        st["metadata"]["resourceVersion"]
    );
    // A PUT naming another object is a 400.
    let mut renamed = st.clone();
    renamed["metadata"]["name"] = "other".into();
    let (code, _) = call(
        &c,
        &sim,
        Method::PUT,
        &item,
        Some(("application/json", renamed.to_string())),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // The scale subresource reads and writes spec.replicas.
    let (code, scale) = get(&c, &sim, &format!("{item}/scale")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    let (code, scaled) = call(
        &c,
        &sim,
        Method::PATCH,
        &format!("{item}/scale"),
        Some((
            "application/merge-patch+json",
            json!({"spec": {"replicas": 5}}).to_string(),
        )),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{scaled}");
    assert_eq!(scaled["spec"]["replicas"], 5);
    let (_, dep) = get(&c, &sim, &item).await;
    assert_eq!(dep["spec"]["replicas"], 5);
    assert_eq!(dep["metadata"]["generation"], 3);
    // An unsupported patch type is a 415.
    let (code, _) = call(
        &c,
        &sim,
        Method::PATCH,
        &item,
        Some(("text/plain", "x".into())),
    )
    .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Server-side apply from YAML.
    let (code, applied) = call(
        &c,
        &sim,
        Method::PATCH,
        "/api/v1/namespaces/default/configmaps/ssa?fieldManager=t",
        Some((
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n".into(),
        )),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{applied}");
    assert_eq!(applied["data"]["k"], "v");
}

#[tokio::test]
async fn deletes_finalizers_and_namespaces() {
    let (sim, c) = support::start().await;
    // Pods answer a delete with the object, configmaps with a success Status.
    sim.seed_pods("default", 1, 1);
    let (code, pod) = call(
        &c,
        &sim,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/pod-00000",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(pod["kind"], "Pod");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": ["x/y"]}});
    post(&c, &sim, "/api/v1/namespaces/default/configmaps", cm).await;
    let item = "/api/v1/namespaces/default/configmaps/f";
    let (code, pending) = call(&c, &sim, Method::DELETE, item, None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "{pending}"
    );
    let (code, _) = get(&c, &sim, item).await;
    assert_eq!(code, StatusCode::OK, "still there while finalizers remain");
    let (_, done) = call(
        &c,
        &sim,
        Method::PATCH,
        item,
        Some((
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}).to_string(),
        )),
    )
    .await;
    assert_eq!(done["metadata"]["name"], "f");
    let (code, _) = get(&c, &sim, item).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, status) = {
        post(
            &c,
            &sim,
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "g"}}),
        )
        .await;
        call(
            &c,
            &sim,
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/g",
            None,
        )
        .await
    };
    assert_eq!(code, StatusCode::OK);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "g");

    // Deleting a namespace removes its contents.
    post(
        &c,
        &sim,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    sim.seed_pods("team", 3, 1);
    let (code, _) = call(&c, &sim, Method::DELETE, "/api/v1/namespaces/team", None).await;
    assert_eq!(code, StatusCode::OK);
    let (_, pods) = get(&c, &sim, "/api/v1/namespaces/team/pods").await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 0);
    let (code, _) = call(&c, &sim, Method::DELETE, "/api/v1/namespaces/default", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // deletecollection with a selector.
    sim.seed_pods("default", 10, 1);
    let (code, gone) = call(
        &c,
        &sim,
        Method::DELETE,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dapp-3",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(gone["items"].as_array().unwrap().len(), 1);
    let (_, left) = get(&c, &sim, "/api/v1/namespaces/default/pods").await;
    assert_eq!(left["items"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn seeding_is_fast_and_yaml_loads() {
    let (sim, c) = support::start().await;
    let started = Instant::now();
    assert_eq!(sim.seed_pods("scale", 10_000, 100), 10_000);
    let seeded_in = started.elapsed();
    let (_, list) = get(&c, &sim, "/api/v1/namespaces/scale/pods?limit=500").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 500);
    assert_eq!(list["metadata"]["remainingItemCount"], 9_500);
    let (_, all) = get(&c, &sim, "/api/v1/pods").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 10_000);
    eprintln!("seeded 10,000 pods in {seeded_in:?}");

    let n = sim
        .load_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ops\n---\n\
             apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: l\n  namespace: ops\nspec:\n  holderIdentity: me\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c1, namespace: ops}\n",
        )
        .unwrap();
    assert_eq!(n, 3);
    let (_, lease) = get(
        &c,
        &sim,
        "/apis/coordination.k8s.io/v1/namespaces/ops/leases/l",
    )
    .await;
    assert_eq!(lease["spec"]["holderIdentity"], "me");
    assert!(
        sim.load_yaml("apiVersion: v9\nkind: Gizmo\nmetadata: {name: x}\n")
            .is_err()
    );
}

#[tokio::test]
async fn binary_seeds_and_writes_a_kubeconfig() {
    use base64::Engine as _;
    use tokio::io::AsyncBufReadExt as _;

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seeded, namespace: apps}\ndata: {k: v}\n",
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--pods",
            "100",
            "--nodes",
            "3",
            "--token",
            "bin-token",
        ])
        .arg("--seed")
        .arg(&seed)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("kube-sim listening on ")
        .unwrap()
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(
        kc["clusters"][0]["cluster"]["server"].as_str(),
        Some(url.as_str())
    );
    assert_eq!(kc["users"][0]["user"]["token"].as_str(), Some("bin-token"));
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            kc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let get = |path: &str| {
        c.get(format!("{url}{path}"))
            .bearer_auth("bin-token")
            .send()
    };
    let pods: Value = get("/api/v1/namespaces/default/pods")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 100);
    let nodes: Value = get("/api/v1/nodes").await.unwrap().json().await.unwrap();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 3);
    let cm: Value = get("/api/v1/namespaces/apps/configmaps/seeded")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cm["data"]["k"], "v");
    child.kill().await.unwrap();
}

/// `--cache-lists` keeps an encoded list only while the store is unchanged: every write is seen
/// by the next list, and pages (`limit`, `continue`) are answered as without the cache.
#[tokio::test]
async fn a_cached_list_follows_every_write() {
    let sim = kube_sim::KubeSim::builder()
        .cache_lists(true)
        .start()
        .await
        .expect("simulator starts");
    let c = support::client(&sim);
    let path = "/api/v1/namespaces/default/configmaps";
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first) = get(&c, &sim, path).await;
    let (_, again) = get(&c, &sim, path).await;
    assert_eq!(first, again, "unchanged store, same list");
    for name in ["a", "b"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        let (code, _) = post(&c, &sim, path, cm).await;
        assert_eq!(code, StatusCode::CREATED);
        let (_, list) = get(&c, &sim, path).await;
        assert!(names(&list).contains(&name.to_owned()), "{name} listed");
        assert_ne!(
            list["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
    }
    let (code, _) = call(&c, &sim, Method::DELETE, &format!("{path}/a"), None).await;
    assert_eq!(code, StatusCode::OK);
    let (_, list) = get(&c, &sim, path).await;
    assert!(!names(&list).contains(&"a".to_owned()), "a deleted");
    assert!(names(&list).contains(&"b".to_owned()));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(post(&c, &sim, path, cm).await.0, StatusCode::CREATED);
    // A page is not a full list: it carries its continue token.
    let (_, page) = get(&c, &sim, &format!("{path}?limit=1")).await;
    assert_eq!(names(&page).len(), 1);
    assert!(
        page["metadata"]["continue"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}
