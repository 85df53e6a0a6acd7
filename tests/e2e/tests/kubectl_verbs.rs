//! kubectl's verbs through the gateway, against the simulator: what each verb sends must reach
//! the cluster and come back as kubectl expects, over the protocols kubectl uses.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;

const WAIT: Duration = Duration::from_secs(60);

/// A simulator with a few pods, a gateway with it connected as `sim`, and kubectl with the
/// admin's exported kubeconfig (HTTPS to the gateway).
async fn setup() -> anyhow::Result<(KubeSim, TestGateway, Kubectl)> {
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 3, 1);
    let gw = TestGateway::builder().start().await;
    let connected = gw.add_cluster("sim", &sim.kubeconfig()).await?;
    anyhow::ensure!(connected["state"] == "connected", "{connected}");
    let kubeconfig = gw
        .exported_kubeconfig("sim", gw.admin_token.as_deref().unwrap())
        .await?;
    Ok((sim, gw, Kubectl::new(&kubeconfig)?))
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

/// Watches and exec sessions stay open however long they are quiet: the gateway's idle and
/// header timeouts (one second here) apply to connections waiting for a request, not to a
/// stream in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_outlive_the_idle_and_header_timeouts() -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 1, 1);
    let gw = TestGateway::builder()
        .args([
            "--http-idle-timeout-seconds",
            "1",
            "--http-header-timeout-seconds",
            "1",
        ])
        .start()
        .await;
    gw.add_cluster("sim", &sim.kubeconfig()).await?;
    let kubeconfig = gw
        .exported_kubeconfig("sim", gw.admin_token.as_deref().unwrap())
        .await?;
    let kubectl = Kubectl::new(&kubeconfig)?;

    let mut watch = kubectl.spawn(&["get", "configmaps", "-w", "-o", "name"])?;
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
    sim.load_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\n\
         spec:\n  nodeName: node-0\n  containers:\n  - name: app\n    image: example.invalid/app\n\
         \x20   ports: [{name: http, containerPort: 8080}]\nstatus: {phase: Running}\n",
    )?;
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
