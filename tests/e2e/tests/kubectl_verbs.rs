//! kubectl's verbs through the gateway, against the simulator: what each verb sends must reach
//! the cluster and come back as kubectl expects, over the protocols kubectl uses.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;

const WAIT: Duration = Duration::from_secs(60);

/// A running pod with an HTTP port (the simulator answers port-forwarded requests to it).
const WEB_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\n\
spec:\n  nodeName: node-0\n  containers:\n  - name: app\n    image: example.invalid/app\n\
\x20   ports: [{name: http, containerPort: 8080}]\nstatus: {phase: Running}\n";

/// A simulator with a few pods, a gateway with it connected as `sim`, and kubectl with the
/// admin's exported kubeconfig (HTTPS to the gateway).
async fn setup() -> anyhow::Result<(KubeSim, TestGateway, Kubectl)> {
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 3, 1);
    let gw = TestGateway::builder().start().await;
    let kubectl = gw.connect_sim("sim", &sim).await?;
    Ok((sim, gw, kubectl))
}

/// kubectl (client-go) speaks HTTP/2 to the gateway when TLS offers it, and still upgrades
/// exec over HTTP/1.1. Go's `GODEBUG=http2debug=1` makes its transport log each HTTP/2
/// connection it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_speaks_http2_to_the_gateway() -> anyhow::Result<()> {
    let (_sim, gw, kubectl) = setup().await?;
    let out = tokio::time::timeout(
        WAIT,
        kubectl
            .command(["get", "pods", "-o", "name"])
            .env("GODEBUG", "http2debug=1")
            .output(),
    )
    .await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pod/pod-00000"),
        "{out:?}"
    );
    assert!(
        stderr.contains("http2: Transport creating client conn"),
        "kubectl did not use HTTP/2: {stderr}"
    );
    let exec = kubectl
        .run(&["exec", "pod-00000", "--", "echo", "over HTTP/1.1"])
        .await?
        .success()?;
    assert_eq!(exec.stdout, "over HTTP/1.1\n");
    gw.stop().await;
    Ok(())
}

/// Watches, exec sessions and port-forwards stay open however long they are quiet: the gateway's idle and
/// header timeouts (one second here) apply to connections waiting for a request, not to a
/// stream in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_outlive_the_idle_and_header_timeouts() -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 1, 1);
    sim.load_yaml(WEB_POD)?;
    let gw = TestGateway::builder()
        .args([
            "--http-idle-timeout-seconds",
            "1",
            "--http-header-timeout-seconds",
            "1",
        ])
        .start()
        .await;
    let kubectl = gw.connect_sim("sim", &sim).await?;

    let mut watch = kubectl.spawn(&["get", "configmaps", "-w", "-o", "name"])?;
    let mut forward = kubectl
        .command(["port-forward", "pod/web", ":8080"])
        .kill_on_drop(true)
        .spawn()?;
    let mut forwarded = tokio::io::BufReader::new(forward.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, forwarded.next_line())
        .await??
        .unwrap_or_default();
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let local: u16 = first
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected port-forward line {first:?}"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = forwarded.next_line().await {} });
    let http = reqwest::Client::builder().no_proxy().build()?;
    let get = |path: &'static str| {
        let http = http.clone();
        async move {
            let body: serde_json::Value = http
                .get(format!("http://127.0.0.1:{local}{path}"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(body)
        }
    };
    assert_eq!(get("/before").await?["path"], "/before");
    let mut exec = kubectl
        .command(["exec", "-i", "pod-00000", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = exec.stdin.take().unwrap();
    let mut stdout = tokio::io::BufReader::new(exec.stdout.take().unwrap());
    let mut line = String::new();
    stdin.write_all(b"one\n").await?;
    tokio::time::timeout(WAIT, stdout.read_line(&mut line)).await??;
    assert_eq!(line, "one\n");

    // Quiet for well over both timeouts.
    tokio::time::sleep(Duration::from_millis(3_500)).await;

    sim.load_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: default}\n")?;
    watch.wait_for_line(WAIT, |l| l == "configmap/late").await?;
    line.clear();
    stdin.write_all(b"two\n").await?;
    tokio::time::timeout(WAIT, stdout.read_line(&mut line)).await??;
    assert_eq!(line, "two\n", "the exec session survived the quiet");
    assert_eq!(
        get("/after").await?["path"],
        "/after",
        "the port-forward survived the quiet"
    );
    forward.kill().await?;
    drop(stdin);
    let status = tokio::time::timeout(WAIT, exec.wait()).await??;
    assert!(status.success(), "{status}");
    watch.kill().await?;
    gw.stop().await;
    Ok(())
}

/// The Python client's streaming calls through the gateway: `stream()` for exec (one-shot,
/// interactive, exit codes) and `portforward()` carrying an HTTP request (WebSocket
/// `v4.channel.k8s.io` with the port-forward channel layout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_streams_through_the_gateway() -> anyhow::Result<()> {
    let py = portico_e2e::python::PythonEnv::ensure().await?;
    let (sim, gw, _kubectl) = setup().await?;
    sim.load_yaml(WEB_POD)?;
    let token = gw
        .create_token(
            serde_json::json!({"name": "py", "grants": [{"cluster": "sim", "access": "write"}]}),
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, gw.exported_kubeconfig("sim", &token).await?)?;
    let report = py
        .run_script(
            "kube_stream_checks.py",
            &["default", "web", "8080"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        )
        .await?
        .success()?
        .json()?;
    assert_eq!(report["exec"], "out\nerr\n", "{report}");
    assert_eq!(report["interactive_echo_matches"], true, "{report}");
    assert_eq!(report["exit_code"], 7, "{report}");
    assert_eq!(report["portforward_status"], "HTTP/1.1 200 OK", "{report}");
    assert_eq!(
        report["portforward_body"]["path"], "/from-python",
        "{report}"
    );
    assert_eq!(report["portforward_body"]["port"], 8080, "{report}");
    assert_eq!(
        report["portforward_error"],
        serde_json::Value::Null,
        "{report}"
    );
    gw.stop().await;
    Ok(())
}

/// What the cluster answers reaches the client as it was: protobuf bodies byte for byte (both
/// ways), `Accept` negotiation, `Warning` headers and the API Priority and Fairness headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_warnings_and_apf_headers_pass_through() -> anyhow::Result<()> {
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
    let (sim, gw, _kubectl) = setup().await?;
    sim.load_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\n\
         data: {mode: fast}\n",
    )?;
    let direct = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            sim.ca_pem().unwrap().as_bytes(),
        )?)
        .build()?;
    let path = "/api/v1/namespaces/default/configmaps/settings";
    let straight = direct
        .get(format!("{}{path}", sim.url()))
        .bearer_auth(sim.token())
        .header("accept", format!("{PROTOBUF}, application/json"))
        .send()
        .await?;
    assert_eq!(straight.headers()["content-type"], PROTOBUF);
    let straight = straight.bytes().await?;
    assert!(straight.starts_with(b"k8s\0"), "a protobuf envelope");

    let through = gw
        .as_admin(reqwest::Method::GET, &format!("/k8s/clusters/sim{path}"))
        .header("accept", format!("{PROTOBUF}, application/json"))
        .send()
        .await?;
    assert_eq!(through.status(), 200);
    assert_eq!(through.headers()["content-type"], PROTOBUF);
    for apf in [
        "x-kubernetes-pf-flowschema-uid",
        "x-kubernetes-pf-prioritylevel-uid",
    ] {
        assert!(through.headers().contains_key(apf), "{apf} missing");
    }
    assert_eq!(through.bytes().await?, straight, "the same bytes");

    // Only JSON acceptable: JSON; nothing acceptable: the cluster's 406.
    let json = gw
        .as_admin(reqwest::Method::GET, &format!("/k8s/clusters/sim{path}"))
        .header("accept", "application/json")
        .send()
        .await?;
    assert_eq!(json.headers()["content-type"], "application/json");
    let refused = gw
        .as_admin(reqwest::Method::GET, &format!("/k8s/clusters/sim{path}"))
        .header("accept", "text/csv")
        .send()
        .await?;
    assert_eq!(refused.status(), 406);

    // A protobuf body goes up untouched: the cluster decodes it into the object.
    let decoded = kube_sim::protobuf::decode(&straight)?;
    assert_eq!(decoded["data"]["mode"], "fast", "{decoded}");
    let body = kube_sim::protobuf::encode_object(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "from-protobuf", "namespace": "default", "labels": {"a": "b"}},
        "data": {"mode": "slow"},
    }))
    .expect("a ConfigMap encodes");
    let created = gw
        .as_admin(
            reqwest::Method::POST,
            "/k8s/clusters/sim/api/v1/namespaces/default/configmaps",
        )
        .header("content-type", PROTOBUF)
        .header("accept", "application/json")
        .body(body)
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let stored = sim.get("v1", "ConfigMap", Some("default"), "from-protobuf")?;
    assert_eq!(stored["data"]["mode"], "slow", "{stored}");
    assert_eq!(stored["metadata"]["labels"]["a"], "b", "{stored}");
    let upstream = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .expect("the create reached the cluster");
    assert_eq!(upstream.header("content-type"), Some(PROTOBUF));

    // A warning the cluster sends (a deprecated node label) reaches the client.
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "old-style", "namespace": "default"},
        "spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"},
                 "containers": [{"name": "app", "image": "app"}]},
    });
    let response = gw
        .as_admin(
            reqwest::Method::POST,
            "/k8s/clusters/sim/api/v1/namespaces/default/pods",
        )
        .json(&pod)
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    let warnings: Vec<_> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("299 - ") && w.contains("beta.kubernetes.io/os")),
        "{warnings:?}"
    );
    gw.stop().await;
    Ok(())
}

/// `kubectl logs -f` through the gateway for ten minutes of simulated output (a line per
/// simulated 100 ms, stamped with its simulated time) arriving in bursts with quiet gaps longer
/// than the gateway's one-second idle timeout: every line arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_logs_carry_minutes_of_output_through_quiet_gaps() -> anyhow::Result<()> {
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 1, 1);
    let gw = TestGateway::builder()
        .args(["--http-idle-timeout-seconds", "1"])
        .start()
        .await;
    let kubectl = gw.connect_sim("sim", &sim).await?;
    let line = |i: u32| format!("t={:02}:{:02}.{} line {i}", i / 600, (i / 10) % 60, i % 10);
    sim.set_pod_log("default", "pod-00000", &format!("{}\n", line(0)));
    let mut follow = kubectl.spawn(&["logs", "-f", "pod-00000"])?;
    assert_eq!(
        follow.next_line(WAIT).await?.as_deref(),
        Some(line(0).as_str())
    );

    const LINES: u32 = 6_000; // 10 simulated minutes
    const BURSTS: u32 = 3;
    let mut next = 1;
    for burst in 0..BURSTS {
        let end = LINES * (burst + 1) / BURSTS;
        let text: String = (next..end).map(|i| format!("{}\n", line(i))).collect();
        sim.append_pod_log("default", "pod-00000", &text);
        for i in next..end {
            assert_eq!(
                follow.next_line(WAIT).await?.as_deref(),
                Some(line(i).as_str()),
                "line {i}"
            );
        }
        next = end;
        if burst + 1 < BURSTS {
            // Quiet for longer than the idle timeout.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
        }
    }
    follow.kill().await?;
    gw.stop().await;
    Ok(())
}
