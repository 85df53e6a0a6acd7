//! The cluster registry and the `/k8s/clusters/{id}` proxy, driven by real clients (`kubectl`,
//! the Python `kubernetes` package) against the simulator over HTTPS.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;
use portico_e2e::python::PythonEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A simulator, a gateway with the simulator registered and connected as `sim`, and kubectl
/// configured with the kubeconfig the gateway exports for the admin.
async fn setup() -> anyhow::Result<(KubeSim, TestGateway, Kubectl)> {
    let sim = KubeSim::start().await?;
    let gw = TestGateway::builder().start().await;
    let connected = gw.add_cluster("sim", &sim.kubeconfig()).await?;
    assert_eq!(connected["state"], "connected", "{connected}");
    assert!(
        connected["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with('v')
    );
    let kubeconfig = gw
        .exported_kubeconfig("sim", gw.admin_token.as_deref().unwrap())
        .await?;
    Ok((sim, gw, Kubectl::new(&kubeconfig)?))
}

/// Sends `GET path` exactly as written over a fresh plain-HTTP connection; returns the answer.
async fn raw_get(addr: &str, path: &str, token: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer)).await??;
    Ok(answer)
}

/// Reads a Kubernetes `Status` error body.
async fn status_of(response: reqwest::Response) -> (u16, String, String) {
    let code = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], code, "{body}");
    (
        code,
        body["reason"].as_str().unwrap().to_owned(),
        body["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_through_the_gateway() -> anyhow::Result<()> {
    let (sim, gw, kubectl) = setup().await?;
    let exported = std::fs::read_to_string(kubectl.kubeconfig())?;
    assert!(
        exported.contains(&format!("server: {}/k8s/clusters/sim", gw.url)),
        "{exported}"
    );
    sim.seed_pods("default", 3, 1);

    // get
    let out = kubectl.run(&["get", "pods"]).await?.success()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", out.stdout);
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    let out = kubectl.run(&["get", "pod", "nope"]).await?;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );

    // get -w: events arrive while the watch is open.
    let mut watch = kubectl.spawn(&["get", "configmaps", "-w", "-o", "name"])?;
    sim.wait_for_watches(WAIT, |n| n >= 1).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "live-1", "namespace": "default"}, "data": {"a": "1"}
    }))?;
    watch
        .wait_for_line(WAIT, |l| l == "configmap/live-1")
        .await?;
    sim.create(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "live-2", "namespace": "default"}
    }))?;
    watch
        .wait_for_line(WAIT, |l| l == "configmap/live-2")
        .await?;
    watch.kill().await?;

    // apply (create, then update through a strategic merge patch) and delete
    let manifest = kubectl.dir().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: default\ndata:\n  k: one\n",
    )?;
    let path = manifest.to_str().unwrap();
    let out = kubectl.run(&["apply", "-f", path]).await?.success()?;
    assert_eq!(out.stdout.trim(), "configmap/applied created");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: default\ndata:\n  k: two\n",
    )?;
    let out = kubectl.run(&["apply", "-f", path]).await?.success()?;
    assert_eq!(out.stdout.trim(), "configmap/applied configured");
    let stored = sim.get("v1", "ConfigMap", Some("default"), "applied")?;
    assert_eq!(stored["data"]["k"], "two");
    let out = kubectl
        .run(&["delete", "configmap", "applied"])
        .await?
        .success()?;
    assert_eq!(out.stdout.trim(), "configmap \"applied\" deleted");
    assert!(
        sim.get("v1", "ConfigMap", Some("default"), "applied")
            .is_err()
    );

    // logs
    sim.set_pod_log("default", "pod-00001", "one\ntwo\nthree\n");
    let out = kubectl
        .run(&["logs", "pod-00001", "--tail", "2"])
        .await?
        .success()?;
    assert_eq!(out.stdout, "two\nthree\n");

    // exec: a WebSocket upgrade spliced through the gateway.
    let out = kubectl
        .run(&["exec", "pod-00000", "--", "echo", "hi"])
        .await?
        .success()?;
    assert_eq!(out.stdout, "hi\n");
    let out = kubectl
        .run(&["exec", "pod-00000", "--", "sh", "-c", "exit 3"])
        .await?;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let out = kubectl
        .run_with_stdin(&["exec", "-i", "pod-00000", "--", "cat"], Some("piped\n"))
        .await?
        .success()?;
    assert_eq!(out.stdout, "piped\n");

    // Upstream, every request carried the cluster's credentials, never Portico's token.
    let portico_token = gw.admin_token.clone().unwrap();
    let requests = sim.requests();
    assert!(requests.len() > 10);
    for r in &requests {
        let auth = r.header("authorization").unwrap_or_default();
        assert_eq!(
            auth,
            format!("Bearer {}", sim.token()),
            "{} {}",
            r.method,
            r.path
        );
        assert!(!auth.contains(&portico_token));
    }

    // The audit log has the mutating requests, the exec included.
    let audit: Value = gw
        .as_admin(Method::GET, "/api/v1/audit?cluster=sim")
        .send()
        .await?
        .json()
        .await?;
    let entries: Vec<(String, u64)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("post".to_owned(), 201),
        ("patch".to_owned(), 200),
        ("delete".to_owned(), 200),
        ("exec".to_owned(), 101),
    ] {
        assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
    }
    assert!(audit["items"][0]["tokenName"] == "admin", "{audit}");

    // Per-cluster metrics.
    let metrics = gw
        .as_admin(Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"portico_proxy_requests_total{cluster="sim",code="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portico_proxy_requests_total{cluster="sim",code="101"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"portico_proxy_upstream_duration_seconds_count{cluster="sim"}"#));
    assert!(
        metrics.contains(r#"portico_proxy_open_upgrades{cluster="sim"} 0"#),
        "{metrics}"
    );
    // The listener serves the proxy without the router: its requests still count under the
    // route template, as every other route's do.
    assert!(
        metrics.contains(
            r#"portico_http_requests_total{route="/k8s/clusters/{*rest}",method="GET",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"portico_http_request_duration_seconds_count{route="/k8s/clusters/{*rest}"}"#
        ),
        "{metrics}"
    );
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_works_through_the_gateway() -> anyhow::Result<()> {
    let py = PythonEnv::ensure().await?;
    let sim = KubeSim::builder().watch_history(10).start().await?;
    sim.seed_pods("default", 3, 1);
    sim.seed_pods("other", 20, 1);
    let gw = TestGateway::builder().start().await;
    gw.add_cluster("sim", &sim.kubeconfig()).await?;
    let token = gw
        .create_token(json!({"name": "py", "grants": [{"cluster": "sim", "access": "write"}]}))
        .await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, gw.exported_kubeconfig("sim", &token).await?)?;

    let report = py
        .run_script(
            "kube_client_checks.py",
            &["default"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        )
        .await?
        .success()?
        .json()?;
    assert_eq!(
        report["pods"],
        json!(["pod-00000", "pod-00001", "pod-00002"])
    );
    assert_eq!(report["all_pods"], 3, "{report}");
    assert_eq!(report["create_again"]["status"], 409);
    assert_eq!(report["stale_replace"]["reason"], "Conflict");
    assert_eq!(report["lease_unconditional"]["status"], 422);
    assert_eq!(
        report["watch"],
        json!([["ADDED", "w1"], ["ADDED", "w2"], ["DELETED", "w1"]]),
        "{report}"
    );
    assert_eq!(report["old_watch"]["status"], 410, "{report}");
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_what_a_token_may_do() -> anyhow::Result<()> {
    let (sim, gw, _) = setup().await?;
    sim.seed_pods("default", 1, 1);
    let reader = gw
        .create_token(json!({"name": "reader", "grants": [{"cluster": "sim", "access": "read"}]}))
        .await?;
    let other = gw
        .create_token(
            json!({"name": "other", "grants": [{"cluster": "elsewhere", "access": "write"}]}),
        )
        .await?;
    let pods = "/k8s/clusters/sim/api/v1/namespaces/default/pods";

    // No token, a bad token: 401 Status.
    let (code, reason, _) = status_of(gw.request(Method::GET, pods).send().await?).await;
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));
    let (code, _, _) = status_of(gw.as_token("pt_wrong", Method::GET, pods).send().await?).await;
    assert_eq!(code, 401);

    // No grant for this cluster: 403.
    let (code, reason, message) =
        status_of(gw.as_token(&other, Method::GET, pods).send().await?).await;
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(message.contains("no grant for cluster `sim`"), "{message}");

    // Read: GET and watch yes; writes and upgrades no.
    let response = gw.as_token(&reader, Method::GET, pods).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let response = gw
        .as_token(
            &reader,
            Method::GET,
            &format!("{pods}?watch=1&timeoutSeconds=1"),
        )
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let response = gw
        .as_token(
            &reader,
            Method::POST,
            "/k8s/clusters/sim/api/v1/namespaces/default/configmaps",
        )
        .json(&cm)
        .send()
        .await?;
    let (code, _, message) = status_of(response).await;
    assert_eq!(code, 403);
    assert!(message.contains("needs write access"), "{message}");
    let response = gw
        .as_token(
            &reader,
            Method::GET,
            &format!("{pods}/pod-00000/exec?command=ls&stdout=true"),
        )
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .send()
        .await?;
    assert_eq!(status_of(response).await.0, 403);
    assert!(
        sim.requests().iter().all(|r| r.method != "POST"),
        "nothing refused reached the cluster"
    );

    // A grant with impersonation: the cluster sees the token's user and groups, and a
    // client's own Impersonate-* headers never pass.
    let impersonating = gw
        .create_token(json!({
            "name": "alice-token",
            "grants": [{"cluster": "sim", "access": "write", "impersonate": true}],
            "impersonateUser": "alice",
            "impersonateGroups": ["dev", "ops"],
        }))
        .await?;
    sim.clear_requests();
    let response = gw
        .as_token(&impersonating, Method::GET, pods)
        .header("impersonate-user", "system:admin")
        .header("impersonate-group", "system:masters")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let response = gw
        .as_token(&reader, Method::GET, pods)
        .header("impersonate-user", "system:admin")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = sim.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("impersonate-user"), Some("alice"));
    assert_eq!(seen[0].header_all("impersonate-group"), ["dev", "ops"]);
    assert_eq!(seen[1].header("impersonate-user"), None);
    assert_eq!(seen[1].header("impersonate-group"), None);
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_errors_are_kubernetes_statuses() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    // Plain HTTP, so that hostile paths can be sent byte for byte (HTTP clients normalise
    // `..` and `%2e%2e` away before sending).
    let gw = TestGateway::builder()
        .args(["--upstream-timeout-seconds", "1", "--plain-http"])
        .start()
        .await;
    gw.add_cluster("sim", &sim.kubeconfig()).await?;
    let admin = |method, path: &str| gw.as_admin(method, path);

    // Hostile paths.
    let token = gw.admin_token.clone().unwrap();
    let addr = gw.url.trim_start_matches("http://").to_owned();
    for path in [
        "/k8s/clusters/si%2Fm/api",
        "/k8s/clusters/sim/api/v1/namespaces/%2e%2e/pods",
        "/k8s/clusters/sim/api/v1/namespaces/../../../pods",
        "/k8s/clusters/sim/api/v1/namespaces/%2E./secrets",
        "/k8s/clusters/-x/api",
    ] {
        let answer = raw_get(&addr, path, &token).await?;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(
            answer.contains(r#""reason":"BadRequest""#),
            "{path}: {answer}"
        );
    }
    assert!(
        sim.requests()
            .iter()
            .all(|r| !r.path.contains("pods") && !r.path.contains("secrets")),
        "no hostile path reached the cluster"
    );

    // Unknown cluster: 404; registered but not connected here: 503.
    let (code, reason, message) =
        status_of(admin(Method::GET, "/k8s/clusters/nope/api").send().await?).await;
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert!(message.contains("`nope`"), "{message}");
    let other = KubeSim::start().await?;
    let response = admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "idle", "kubeconfig": other.kubeconfig()}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (code, reason, _) =
        status_of(admin(Method::GET, "/k8s/clusters/idle/api").send().await?).await;
    assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));

    // The cluster's own errors pass through untouched.
    let (code, reason, _) = status_of(
        admin(
            Method::GET,
            "/k8s/clusters/sim/api/v1/namespaces/default/pods/none",
        )
        .send()
        .await?,
    )
    .await;
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    // A frozen apiserver: 504 after the upstream timeout.
    sim.faults().freeze();
    let (code, reason, _) = status_of(
        admin(Method::GET, "/k8s/clusters/sim/api/v1/pods")
            .send()
            .await?,
    )
    .await;
    assert_eq!((code, reason.as_str()), (504, "Timeout"));
    sim.faults().unfreeze();

    // A refused connection: 502.
    sim.refuse_connections().await;
    let (code, reason, message) = status_of(
        admin(Method::GET, "/k8s/clusters/sim/api/v1/pods")
            .send()
            .await?,
    )
    .await;
    assert_eq!((code, reason.as_str()), (502, "BadGateway"), "{message}");
    sim.accept_connections().await;
    let response = admin(Method::GET, "/k8s/clusters/sim/api/v1/pods")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);

    // An upgrade the cluster refuses is passed through, so clients can fall back.
    let response = admin(
        Method::POST,
        "/k8s/clusters/sim/api/v1/namespaces/default/pods/none/exec?command=ls",
    )
    .header("connection", "Upgrade")
    .header("upgrade", "SPDY/3.1")
    .send()
    .await?;
    assert_ne!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(response.status().is_client_error(), "{}", response.status());
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rejects_bad_kubeconfigs() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    let gw = TestGateway::builder().start().await;
    let good = sim.kubeconfig();
    let bad_cert = good.replace(
        "certificate-authority-data: ",
        "certificate-authority-data: QUFB",
    );
    let cases = [
        (
            json!({"id": "a", "kubeconfig": "::: not yaml"}),
            "malformed kubeconfig",
        ),
        (
            json!({"id": "a", "kubeconfig": good, "context": "nope"}),
            "context `nope` not found",
        ),
        (json!({"id": "a", "kubeconfig": bad_cert}), "certificate"),
        (
            json!({"id": "a", "kubeconfig": good.replace(&format!("token: {}", sim.token()), "tokenFile: /etc/shadow")}),
            "file reference",
        ),
        (
            json!({"id": "bad/id", "kubeconfig": good}),
            "invalid cluster id",
        ),
        (json!({"id": "a"}), "kubeconfig"),
    ];
    for (body, needle) in cases {
        let response = gw
            .as_admin(Method::POST, "/api/v1/clusters")
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let error: Value = response.json().await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body}: `{message}` lacks `{needle}`"
        );
    }
    let list: Value = gw
        .as_admin(Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["items"], json!([]), "nothing was stored");

    // A duplicate id is a conflict; a user token may not register clusters.
    gw.add_cluster("sim", &good).await?;
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "sim", "kubeconfig": good}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let user = gw
        .create_token(json!({"name": "u", "grants": [{"cluster": "*", "access": "write"}]}))
        .await?;
    let response = gw
        .as_token(&user, Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "x", "kubeconfig": good}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lifecycle_states_and_heartbeat() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    let gw = TestGateway::builder()
        .args(["--heartbeat-interval-seconds", "1"])
        .start()
        .await;
    let show = || async {
        gw.as_admin(Method::GET, "/api/v1/clusters/sim")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let wait_for = |state: &'static str| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let view = show().await;
            if view["state"] == state {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {state}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // A cluster that refuses connections: registered, connect fails with the reason.
    sim.refuse_connections().await;
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": "sim", "kubeconfig": sim.kubeconfig(), "labels": {"env": "test"}}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let view: Value = gw
        .as_admin(Method::POST, "/api/v1/clusters/sim/connect")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["state"], "failed", "{view}");
    assert_eq!(view["desiredState"], "connected");
    assert!(
        view["lastError"].as_str().unwrap().contains("cannot reach"),
        "{view}"
    );

    // It comes back by itself (backoff reconnect).
    sim.accept_connections().await;
    let view = wait_for("connected").await;
    assert_eq!(view["lastError"], Value::Null);
    assert_eq!(view["labels"], json!({"env": "test"}));

    // Heartbeats fail three times in a row: failed, then reconnected once it answers.
    sim.refuse_connections().await;
    let view = wait_for("failed").await;
    assert!(
        view["lastError"]
            .as_str()
            .unwrap()
            .contains("unhealthy after 3 failed heartbeats"),
        "{view}"
    );
    sim.accept_connections().await;
    wait_for("connected").await;

    // PUT changes the configuration, bumps the revision and reconnects with it.
    let response = gw
        .as_admin(Method::PUT, "/api/v1/clusters/sim")
        .json(&json!({"name": "Simulated", "kubeconfig": sim.kubeconfig()}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let view = show().await;
    assert_eq!(view["name"], "Simulated");
    assert_eq!(view["configRevision"], 2);
    assert_eq!(view["state"], "connected");

    // Disconnect, then delete.
    let view: Value = gw
        .as_admin(Method::POST, "/api/v1/clusters/sim/disconnect")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["state"], "disconnected");
    assert_eq!(view["desiredState"], "disconnected");
    let response = gw
        .as_admin(Method::DELETE, "/api/v1/clusters/sim")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = gw
        .as_admin(Method::GET, "/api/v1/clusters/sim")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_credentials_work() -> anyhow::Result<()> {
    let sim = KubeSim::builder().client_cert_auth(true).start().await?;
    let cert = sim.client_cert("portico", &["system:masters"])?;
    let gw = TestGateway::builder().start().await;
    let view = gw
        .add_cluster("mtls", &sim.kubeconfig_with_cert(&cert))
        .await?;
    assert_eq!(view["state"], "connected", "{view}");
    let response = gw
        .as_admin(Method::GET, "/k8s/clusters/mtls/api/v1/namespaces")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "only the certificate authenticates"
    );
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_kubeconfig_commands() -> anyhow::Result<()> {
    use portico::cli::{DatabaseArgs, GatewayArgs, ImportArgs, KubeconfigArgs};
    use portico::commands::{self, Imported};

    let sim = KubeSim::start().await?;
    let dir = tempfile::tempdir()?;
    // Two contexts: the simulator, and the same cluster reached through a CA file next to the
    // kubeconfig (a relative file reference, allowed for a local import).
    std::fs::write(dir.path().join("ca.crt"), sim.ca_pem().unwrap())?;
    let second = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: files/admin\n\
         clusters:\n- name: f\n  cluster:\n    server: {}\n    certificate-authority: ca.crt\n\
         users:\n- name: f\n  user:\n    token: {}\n\
         contexts:\n- name: files/admin\n  context:\n    cluster: f\n    user: f\n",
        sim.url(),
        sim.token()
    );
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, &second)?;
    let gw = TestGateway::builder().start().await;
    let args = ImportArgs {
        kubeconfig: kubeconfig.clone(),
        contexts: vec![],
        connect: true,
        cluster_servers: Default::default(),
        database: DatabaseArgs {
            database_url: format!("sqlite://{}/portico.db", gw.data_dir.display()),
            secret_key: None,
        },
    };
    let results = commands::import_clusters(&args).await?;
    assert_eq!(
        results,
        [Imported::Added {
            context: "files/admin".into(),
            id: "files-admin".into()
        }]
    );
    let again = commands::import_clusters(&args).await?;
    assert!(matches!(again[0], Imported::Exists { .. }), "{again:?}");

    // The running gateway sees the import and connects it.
    let view: Value = gw
        .as_admin(Method::POST, "/api/v1/clusters/files-admin/connect")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["state"], "connected", "{view}");
    assert_eq!(view["desiredState"], "connected");

    // `portico kubeconfig` fetches a working kubeconfig (the gateway's CA file trusted).
    let exported = commands::fetch_kubeconfig(&KubeconfigArgs {
        cluster: Some("files-admin".into()),
        current: None,
        gateway: GatewayArgs {
            server: Some(gw.url.clone()),
            token: gw.admin_token.clone(),
            ca_file: Some(gw.data_dir.join("tls-ca.crt")),
            ..GatewayArgs::default()
        },
    })
    .await?;
    let kubectl = Kubectl::new(&exported)?;
    let out = kubectl
        .run(&["get", "namespaces", "-o", "name"])
        .await?
        .success()?;
    assert!(out.stdout.contains("namespace/default"), "{}", out.stdout);
    let err = commands::fetch_kubeconfig(&KubeconfigArgs {
        cluster: Some("nope".into()),
        current: None,
        gateway: GatewayArgs {
            server: Some(gw.url.clone()),
            token: gw.admin_token.clone(),
            ca_file: Some(gw.data_dir.join("tls-ca.crt")),
            ..GatewayArgs::default()
        },
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_credential_plugins_and_token_files_authenticate() -> anyhow::Result<()> {
    use portico::cli::{DatabaseArgs, ImportArgs};
    use portico::commands::{self, Imported};

    let sim = KubeSim::start().await?;
    let dir = tempfile::tempdir()?;
    // An exec plugin that prints an ExecCredential with the simulator's token, the way
    // cloud CLIs do, and counts its runs.
    let plugin = dir.path().join("get-token.sh");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho run >> \"$(dirname \"$0\")/runs\"\n\
         test -n \"$KUBERNETES_EXEC_INFO\" || exit 7\n\
         printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
         \"status\":{\"token\":\"%s\"}}' \"$SIM_TOKEN\"\n",
    )?;
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    std::fs::write(dir.path().join("token"), format!("{}\n", sim.token()))?;
    std::fs::write(dir.path().join("ca.crt"), sim.ca_pem().unwrap())?;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: exec\n\
         clusters:\n- name: s\n  cluster:\n    server: {url}\n    certificate-authority: ca.crt\n\
         users:\n- name: exec\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n\
         \x20     command: ./get-token.sh\n      env:\n      - name: SIM_TOKEN\n        value: {token}\n\
         - name: file\n  user:\n    tokenFile: token\n\
         contexts:\n- name: exec\n  context:\n    cluster: s\n    user: exec\n\
         - name: file\n  context:\n    cluster: s\n    user: file\n",
        url = sim.url(),
        token = sim.token()
    );
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig)?;
    let gw = TestGateway::builder().start().await;
    let results = commands::import_clusters(&ImportArgs {
        kubeconfig: path,
        contexts: vec![],
        connect: false,
        cluster_servers: Default::default(),
        database: DatabaseArgs {
            database_url: format!("sqlite://{}/portico.db", gw.data_dir.display()),
            secret_key: None,
        },
    })
    .await?;
    assert!(
        results.iter().all(|r| matches!(r, Imported::Added { .. })),
        "{results:?}"
    );
    for id in ["exec", "file"] {
        let view: Value = gw
            .as_admin(Method::POST, &format!("/api/v1/clusters/{id}/connect"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(view["state"], "connected", "{id}: {view}");
        let response = gw
            .as_admin(
                Method::GET,
                &format!("/k8s/clusters/{id}/api/v1/namespaces"),
            )
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "{id}");
    }
    // The exec plugin ran once: its token is cached (it has no expiry).
    let runs = std::fs::read_to_string(dir.path().join("runs"))?;
    assert_eq!(runs.lines().count(), 1, "{runs}");
    gw.stop().await;
    Ok(())
}

/// Stopping the gateway ends watches cleanly at once (a client resumes them on another replica
/// from its last resourceVersion, so the stop need not wait for them) and closes spliced
/// upgrades (exec, attach, port-forward) at the shutdown bound instead of leaving them running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_watches_cleanly_and_closes_upgraded_streams() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 1, 1);

    // Watches: with an hour's bound, a stop that waited for the watch would not end in time.
    let gw = TestGateway::builder()
        .args(["--shutdown-timeout-seconds", "3600"])
        .start()
        .await;
    gw.add_cluster("sim", &sim.kubeconfig()).await?;
    let mut watch = gw
        .as_admin(
            Method::GET,
            "/k8s/clusters/sim/api/v1/namespaces/default/pods?watch=true",
        )
        .send()
        .await?;
    assert_eq!(watch.status(), StatusCode::OK);
    let first = tokio::time::timeout(WAIT, watch.chunk()).await??;
    assert!(
        first.is_some_and(|c| String::from_utf8_lossy(&c).contains("\"ADDED\"")),
        "the watch starts with the pods"
    );
    let stop = tokio::spawn(gw.stop());
    let mut events = 0;
    loop {
        // `Err` here is a cut stream; a clean end is `Ok(None)`.
        match tokio::time::timeout(WAIT, watch.chunk()).await?? {
            Some(_) if events < 10_000 => events += 1,
            Some(_) => anyhow::bail!("the watch did not end"),
            None => break,
        }
    }
    tokio::time::timeout(WAIT, stop).await??;

    // Upgrades: an interactive exec is closed when the (one-second) bound is reached.
    let gw = TestGateway::builder()
        .args(["--shutdown-timeout-seconds", "1"])
        .start()
        .await;
    let kubectl = gw.connect_sim("sim", &sim).await?;
    let mut exec = kubectl
        .command(["exec", "-i", "pod-00000", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = exec.stdin.take().unwrap();
    let mut stdout = tokio::io::BufReader::new(exec.stdout.take().unwrap());
    {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        stdin.write_all(b"still here\n").await?;
        let mut line = String::new();
        tokio::time::timeout(WAIT, stdout.read_line(&mut line)).await??;
        assert_eq!(
            line, "still here\n",
            "the exec session works before the stop"
        );
    }
    tokio::time::timeout(WAIT, gw.stop()).await?;
    // stdin stays open: only the gateway closing the stream can end kubectl.
    let status = tokio::time::timeout(WAIT, exec.wait())
        .await
        .map_err(|_| anyhow::anyhow!("the exec stream outlived the gateway's stop"))??;
    assert!(
        !status.success(),
        "a cut session is not a success: {status}"
    );
    drop(stdin);
    Ok(())
}
