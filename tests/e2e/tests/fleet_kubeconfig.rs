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
