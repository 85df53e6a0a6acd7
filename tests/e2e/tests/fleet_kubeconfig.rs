//! One kubeconfig for the whole fleet: `GET /api/v1/kubeconfig` has a context per cluster the
//! caller may reach, named by cluster id, and kubectl switches clusters with `--context`.

use kube_sim::KubeSim;
use portico::cli::{GatewayArgs, KubeconfigArgs};
use portico::commands;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;
use reqwest::Method;
use serde_json::{Value, json};

async fn fleet_kubeconfig(gw: &TestGateway, token: &str, query: &str) -> reqwest::Response {
    gw.as_token(token, Method::GET, &format!("/api/v1/kubeconfig{query}"))
        .send()
        .await
        .unwrap()
}

fn names(config: &Value, list: &str) -> Vec<String> {
    config[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kubeconfig_reaches_every_granted_cluster_by_context() -> anyhow::Result<()> {
    let gw = TestGateway::builder().start().await;
    let east = KubeSim::start().await?;
    let west = KubeSim::start().await?;
    let secret = KubeSim::start().await?;
    east.load_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: only-in-east, namespace: default}\n",
    )?;
    west.load_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: only-in-west, namespace: default}\n",
    )?;
    for (id, sim) in [
        ("prod-east", &east),
        ("prod-west", &west),
        ("secret", &secret),
    ] {
        let connected = gw.add_cluster(id, &sim.kubeconfig()).await?;
        assert_eq!(connected["state"], "connected", "{connected}");
    }
    let token = gw
        .create_token(json!({"name": "sre", "grants": [
            {"cluster": "prod-east", "access": "read"},
            {"cluster": "prod-west", "access": "read"},
        ]}))
        .await?;

    // Only the granted clusters, one context each, named by id; the first is current.
    let response = fleet_kubeconfig(&gw, &token, "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let text = response.text().await?;
    let config: Value = serde_yaml::from_str(&text)?;
    assert_eq!(names(&config, "contexts"), ["prod-east", "prod-west"]);
    assert_eq!(names(&config, "clusters"), ["prod-east", "prod-west"]);
    assert_eq!(names(&config, "users"), ["portico"]);
    assert_eq!(config["current-context"], "prod-east");
    assert_eq!(config["users"][0]["user"]["token"], token.as_str());
    let server = config["clusters"][1]["cluster"]["server"].as_str().unwrap();
    assert!(server.ends_with("/k8s/clusters/prod-west"), "{server}");

    // kubectl picks the cluster by context.
    let kubectl = Kubectl::new(&text)?;
    let out = kubectl
        .run(&["--context", "prod-west", "get", "configmaps", "-o", "name"])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("configmap/only-in-west"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("only-in-east"), "{}", out.stdout);
    let out = kubectl
        .run(&["get", "configmaps", "-o", "name"])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("configmap/only-in-east"),
        "{}",
        out.stdout
    );

    // The CLI fetches the same: `portico kubeconfig` without `--cluster`.
    let gateway = GatewayArgs {
        server: Some(gw.url.clone()),
        token: Some(token.clone()),
        ca_file: Some(gw.data_dir.join("tls-ca.crt")),
        ..GatewayArgs::default()
    };
    let from_cli = commands::fetch_kubeconfig(&KubeconfigArgs {
        cluster: None,
        current: Some("prod-west".into()),
        gateway,
    })
    .await?;
    let config: Value = serde_yaml::from_str(&from_cli)?;
    assert_eq!(names(&config, "contexts"), ["prod-east", "prod-west"]);
    assert_eq!(config["current-context"], "prod-west");

    // Another current context; never one the token may not reach.
    let response = fleet_kubeconfig(&gw, &token, "?current=prod-west").await;
    let config: Value = serde_yaml::from_str(&response.text().await?)?;
    assert_eq!(config["current-context"], "prod-west");
    let response = fleet_kubeconfig(&gw, &token, "?current=secret").await;
    assert_eq!(response.status(), 400);

    // The admin reaches all three.
    let admin = gw.admin_token.clone().unwrap();
    let config: Value =
        serde_yaml::from_str(&fleet_kubeconfig(&gw, &admin, "").await.text().await?)?;
    assert_eq!(
        names(&config, "contexts"),
        ["prod-east", "prod-west", "secret"]
    );

    // A token without grants gets a valid, empty kubeconfig; no token is refused.
    let nobody = gw
        .create_token(json!({"name": "nobody", "grants": []}))
        .await?;
    let config: Value =
        serde_yaml::from_str(&fleet_kubeconfig(&gw, &nobody, "").await.text().await?)?;
    assert!(names(&config, "contexts").is_empty());
    assert!(config.get("current-context").is_none());
    let response = gw.request(Method::GET, "/api/v1/kubeconfig").send().await?;
    assert_eq!(response.status(), 401);
    gw.stop().await;
    Ok(())
}

/// `kubeconfig` with its context's namespace set to `namespace`.
fn with_namespace(kubeconfig: &str, namespace: &str) -> anyhow::Result<String> {
    let mut config: Value = serde_yaml::from_str(kubeconfig)?;
    for context in config["contexts"].as_array_mut().unwrap() {
        context["context"]["namespace"] = json!(namespace);
    }
    Ok(serde_yaml::to_string(&config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_contexts_keep_the_cluster_namespace() -> anyhow::Result<()> {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await?;
    sim.load_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: only-in-team-a, namespace: team-a}\n",
    )?;
    // From the registering kubeconfig's context…
    let added = gw
        .add_cluster(
            "from-context",
            &with_namespace(&sim.kubeconfig(), "team-a")?,
        )
        .await?;
    assert_eq!(added["namespace"], "team-a", "{added}");
    // …or given through the API, which wins; none (or an empty one) stays none.
    let given = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(
            &json!({"id": "given", "kubeconfig": with_namespace(&sim.kubeconfig(), "other")?,
                      "namespace": "team-a"}),
        )
        .send()
        .await?;
    assert_eq!(given.status(), 201);
    gw.add_cluster("plain", &with_namespace(&sim.kubeconfig(), "")?)
        .await?;
    for id in ["given", "plain"] {
        gw.as_admin(Method::POST, &format!("/api/v1/clusters/{id}/connect"))
            .send()
            .await?
            .error_for_status()?;
    }
    // A name Kubernetes would refuse is refused here, before anything is stored.
    let bad = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "bad", "kubeconfig": sim.kubeconfig(), "namespace": "Team_A"}))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`Team_A` is not a valid namespace name")),
        "{body}"
    );
    let listed: Value = gw
        .as_admin(Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");

    let admin = gw.admin_token.clone().unwrap();
    let text = fleet_kubeconfig(&gw, &admin, "").await.text().await?;
    let config: Value = serde_yaml::from_str(&text)?;
    let namespace_of = |name: &str| {
        config["contexts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["context"]["namespace"].clone())
            .unwrap()
    };
    assert_eq!(namespace_of("from-context"), "team-a");
    assert_eq!(namespace_of("given"), "team-a");
    assert_eq!(namespace_of("plain"), Value::Null);

    // kubectl uses the context's namespace when no `-n` is given.
    let kubectl = Kubectl::new(&text)?;
    let out = kubectl
        .run(&["--context", "given", "get", "configmaps", "-o", "name"])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("configmap/only-in-team-a"),
        "{}",
        out.stdout
    );

    // The single-cluster export keeps it too; clearing it drops it.
    let one = gw.exported_kubeconfig("from-context", &admin).await?;
    let one: Value = serde_yaml::from_str(&one)?;
    assert_eq!(one["contexts"][0]["context"]["namespace"], "team-a");
    let cleared = gw
        .as_admin(Method::PUT, "/api/v1/clusters/from-context")
        .json(&json!({"namespace": ""}))
        .send()
        .await?;
    assert_eq!(cleared.status(), 200);
    let cleared: Value = cleared.json().await?;
    assert_eq!(cleared["namespace"], Value::Null, "{cleared}");
    let one = gw.exported_kubeconfig("from-context", &admin).await?;
    let one: Value = serde_yaml::from_str(&one)?;
    assert_eq!(one["contexts"][0]["context"].get("namespace"), None);
    gw.stop().await;
    Ok(())
}
