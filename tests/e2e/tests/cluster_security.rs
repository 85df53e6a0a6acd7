//! What registration refuses (credentials in the server URL, credentials over plain HTTP,
//! unusable CAs and tokens, local servers when the operator denies them), error bodies that
//! never echo a kubeconfig, and kubeconfig export trusting only Host headers naming the gateway.

use kube_sim::KubeSim;
use kube_sim::kubeconfig::{Credentials, render};
use portico_e2e::gateway::TestGateway;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-for-cluster-security";

/// `POST /api/v1/clusters`: the status and the body.
async fn register(gw: &TestGateway, id: &str, kubeconfig: &str) -> anyhow::Result<(u16, Value)> {
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": id, "kubeconfig": kubeconfig}))
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// The error message of a 400, asserting the status.
fn bad_request(answer: &(u16, Value), what: &str) -> String {
    assert_eq!(answer.0, 400, "{what}: {}", answer.1);
    assert_eq!(
        answer.1["error"]["code"], "bad_request",
        "{what}: {}",
        answer.1
    );
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

fn token_kubeconfig(server: &str, ca: Option<&str>, token: &str) -> String {
    render("c", server, ca, &Credentials::Token(token.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_credentials_that_would_leak() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    let plain = KubeSim::builder().tls(false).start().await?;
    let gw = TestGateway::builder().start().await;
    let ca = sim.ca_pem();
    let addr = sim.addr();
    let token = sim.token();

    let answer = register(
        &gw,
        "a",
        &token_kubeconfig(
            &format!("https://admin:s3cret@{addr}"),
            ca.as_deref(),
            token,
        ),
    )
    .await?;
    let message = bad_request(&answer, "user info");
    assert!(message.contains("user info"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    let answer = register(
        &gw,
        "a",
        &token_kubeconfig(
            &format!("https://{addr}/?token=s3cret"),
            ca.as_deref(),
            token,
        ),
    )
    .await?;
    let message = bad_request(&answer, "query");
    assert!(message.contains("query string"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    // The simulator's token over plain HTTP.
    let answer = register(&gw, "a", &plain.kubeconfig()).await?;
    let message = bad_request(&answer, "plain http");
    assert!(
        message.contains("plain http://")
            && message.contains("--allow-insecure-cluster-credentials"),
        "{message}"
    );
    assert!(!message.contains(plain.token()), "{message}");

    // A CA that is PEM framing around no certificate, and a token that cannot be a header.
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let answer = register(
        &gw,
        "a",
        &token_kubeconfig(&sim.url(), Some(garbage), token),
    )
    .await?;
    let message = bad_request(&answer, "CA");
    assert!(message.contains("no usable CA certificate"), "{message}");
    let answer = register(
        &gw,
        "a",
        &token_kubeconfig(&sim.url(), ca.as_deref(), "s3cret\r\nX-Injected: yes"),
    )
    .await?;
    let message = bad_request(&answer, "token");
    assert!(message.contains("HTTP header"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    // A malformed kubeconfig: where and what, never its text.
    let malformed = format!("apiVersion: v1\nkind: Config\nclusters: {token}\n");
    let answer = register(&gw, "a", &malformed).await?;
    let message = bad_request(&answer, "malformed");
    assert!(
        message.contains("malformed kubeconfig") && message.contains("line 3"),
        "{message}"
    );
    assert!(!message.contains(token), "the token is echoed: {message}");

    let list: Value = gw
        .as_admin(Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["items"], json!([]), "nothing was stored");

    // A change of configuration is checked the same way, and leaves the cluster as it was.
    assert_eq!(register(&gw, "ok", &sim.kubeconfig()).await?.0, 201);
    let response = gw
        .as_admin(Method::PUT, "/api/v1/clusters/ok")
        .json(&json!({"kubeconfig": plain.kubeconfig()}))
        .send()
        .await?;
    let answer = (response.status().as_u16(), response.json().await?);
    let message = bad_request(&answer, "update");
    assert!(message.contains("plain http://"), "{message}");
    let shown: Value = gw
        .as_admin(Method::GET, "/api/v1/clusters/ok")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(shown["server"], sim.url(), "{shown}");
    assert_eq!(shown["configRevision"], 1, "{shown}");
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_credentials_need_the_operator_to_allow_them() -> anyhow::Result<()> {
    use portico::cli::{DatabaseArgs, ImportArgs};
    use portico::commands::{self, Imported};

    let plain = KubeSim::builder().tls(false).start().await?;
    let gw = TestGateway::builder()
        .env("ALLOW_INSECURE_CLUSTER_CREDENTIALS", "yes")
        .start()
        .await;
    let connected = gw.add_cluster("plain", &plain.kubeconfig()).await?;
    assert_eq!(connected["state"], "connected", "{connected}");
    let response = gw
        .as_admin(Method::GET, "/k8s/clusters/plain/api/v1/namespaces")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);

    // `portico cluster import` has the same opt-in.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config");
    std::fs::write(&path, plain.kubeconfig())?;
    let mut args = ImportArgs {
        kubeconfig: path,
        contexts: vec![],
        connect: false,
        cluster_servers: Default::default(),
        database: DatabaseArgs {
            database_url: format!("sqlite://{}/portico.db", gw.data_dir.display()),
            secret_key: None,
        },
    };
    let results = commands::import_clusters(&args).await?;
    let [Imported::Failed { error, .. }] = results.as_slice() else {
        panic!("refused without the flag: {results:?}");
    };
    assert!(
        error.contains("--allow-insecure-cluster-credentials"),
        "{error}"
    );
    args.cluster_servers.allow_insecure_cluster_credentials = true;
    let results = commands::import_clusters(&args).await?;
    assert!(
        matches!(results.as_slice(), [Imported::Added { .. }]),
        "{results:?}"
    );
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_servers_are_refused_when_the_operator_denies_them() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    let data = tempfile::tempdir()?;
    let named = token_kubeconfig(
        &format!("https://localhost:{}", sim.addr().port()),
        sim.ca_pem().as_deref(),
        sim.token(),
    );

    // Without the flag (the default), loopback clusters register and connect, by IP or name.
    let gw = TestGateway::builder()
        .args(["--admin-token", ADMIN])
        .data_dir(data.path())
        .start()
        .await;
    let connected = gw.add_cluster("literal", &sim.kubeconfig()).await?;
    assert_eq!(connected["state"], "connected", "{connected}");
    let connected = gw.add_cluster("named", &named).await?;
    assert_eq!(connected["state"], "connected", "{connected}");
    gw.stop().await;

    let gw = TestGateway::builder()
        .args(["--admin-token", ADMIN, "--deny-local-cluster-servers"])
        .data_dir(data.path())
        .start()
        .await;
    sim.clear_requests();
    // Registration: the server's IP literal.
    let answer = register(&gw, "again", &sim.kubeconfig()).await?;
    let message = bad_request(&answer, "loopback");
    assert!(
        message.contains("loopback") && message.contains("--deny-local-cluster-servers"),
        "{message}"
    );
    let metadata = token_kubeconfig("https://169.254.169.254", None, "t");
    let message = bad_request(&register(&gw, "metadata", &metadata).await?, "link-local");
    assert!(message.contains("link-local"), "{message}");

    // Connection: clusters registered earlier, by IP literal and by a name that resolves to
    // loopback addresses only.
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters/literal/connect")
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--deny-local-cluster-servers"),
        "{message}"
    );

    let view: Value = gw
        .as_admin(Method::POST, "/api/v1/clusters/named/connect")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["state"], "failed", "{view}");
    let error = view["lastError"].as_str().unwrap();
    assert!(
        error.contains("resolves only to loopback")
            && error.contains("--deny-local-cluster-servers"),
        "{error}"
    );
    assert!(
        sim.requests().is_empty(),
        "no request reached the simulator: {:?}",
        sim.requests()
    );
    gw.stop().await;
    Ok(())
}

/// `GET /api/v1/clusters/sim/kubeconfig` with `Host: host`: status and body.
async fn export_with_host(gw: &TestGateway, host: &str) -> anyhow::Result<(u16, String)> {
    let response = gw
        .as_admin(Method::GET, "/api/v1/clusters/sim/kubeconfig")
        .header("host", host)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_export_trusts_only_hosts_the_gateway_serves() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;

    // HTTPS with the generated certificate.
    let gw = TestGateway::builder()
        .args(["--admin-token", ADMIN])
        .start()
        .await;
    assert_eq!(register(&gw, "sim", &sim.kubeconfig()).await?.0, 201);
    let port = gw.url.rsplit(':').next().unwrap().to_owned();
    let (status, body) = export_with_host(&gw, "evil.example:443").await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("evil.example") && body.contains("--public-url"),
        "{body}"
    );
    assert!(!body.contains(ADMIN), "{body}");
    let served = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    for host in &served {
        let (status, body) = export_with_host(&gw, host).await?;
        assert_eq!(status, 200, "{host}: {body}");
        assert!(
            body.contains(&format!("server: https://{host}/k8s/clusters/sim")),
            "{host}: {body}"
        );
    }
    // The machine's host name is on the generated certificate.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    let hostname = hostname.trim();
    if !hostname.is_empty() {
        let (status, body) = export_with_host(&gw, &format!("{hostname}:{port}")).await?;
        assert_eq!(status, 200, "{hostname}: {body}");
    }
    gw.stop().await;

    // Plain HTTP: no certificate names, the advertised address still counts.
    let gw = TestGateway::builder()
        .args([
            "--admin-token",
            ADMIN,
            "--plain-http",
            "--advertise-address",
            "portico-0.portico.example:3618",
        ])
        .start()
        .await;
    assert_eq!(register(&gw, "sim", &sim.kubeconfig()).await?.0, 201);
    let (status, body) = export_with_host(&gw, "evil.example").await?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = export_with_host(&gw, "portico-0.portico.example:3618").await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("server: http://portico-0.portico.example:3618/k8s/clusters/sim"),
        "{body}"
    );
    gw.stop().await;

    // With --public-url the Host header plays no part.
    let gw = TestGateway::builder()
        .args([
            "--admin-token",
            ADMIN,
            "--public-url",
            "https://portico.example",
        ])
        .start()
        .await;
    assert_eq!(register(&gw, "sim", &sim.kubeconfig()).await?.0, 201);
    let (status, body) = export_with_host(&gw, "evil.example").await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("server: https://portico.example/k8s/clusters/sim"),
        "{body}"
    );
    gw.stop().await;
    Ok(())
}
