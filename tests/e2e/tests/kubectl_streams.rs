//! Streaming subresources with real clients: kubectl 1.32 (exec and attach over WebSocket v5,
//! port-forward over SPDY tunneled in WebSocket) and kubectl 1.20 (all of them over SPDY/3.1),
//! each straight to the simulator and through a Portico gateway. Every scenario runs with each
//! of the four; which protocol reached the simulator is checked in its request log (the
//! gateway passes the client's upgrade through unchanged).
//!
//! kubectl 1.20 validates manifests against `/openapi/v2` on `apply`/`create -f`, which the
//! simulator does not serve; these tests create their pods through the library instead.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;
use serde_json::Value;
use sha2::Digest as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

const WAIT: Duration = Duration::from_secs(30);

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  nodeName: node-0
  containers:
  - name: app
    image: example.invalid/app
    command: ["cat"]
    stdin: true
    stdinOnce: true
    ports:
    - {name: http, containerPort: 8080}
    - {name: echo, containerPort: 7000}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: logger, namespace: default}
spec:
  nodeName: node-0
  containers:
  - {name: main, image: example.invalid/logger, command: ["sleep", "infinity"]}
status: {phase: Running}
"#;

/// Which kubectl, the way it goes, and the streaming protocol it is expected to use.
struct Client {
    name: &'static str,
    kubectl: Kubectl,
    spdy: bool,
}

/// The simulator with [`PODS`], a gateway with it connected as `sim`, and the clients: each
/// kubectl straight to the simulator and through the gateway (with the admin's exported
/// kubeconfig, over HTTPS).
async fn setup(test: &str) -> anyhow::Result<(KubeSim, TestGateway, Vec<Client>)> {
    let sim = KubeSim::start().await?;
    sim.load_yaml(PODS)?;
    let gw = TestGateway::builder().start().await;
    let connected = gw.add_cluster("sim", &sim.kubeconfig()).await?;
    anyhow::ensure!(connected["state"] == "connected", "{connected}");
    let through_gateway = gw
        .exported_kubeconfig("sim", gw.admin_token.as_deref().unwrap())
        .await?;
    let mut clients = vec![
        Client {
            name: "kubectl 1.32",
            kubectl: Kubectl::for_sim(&sim)?,
            spdy: false,
        },
        Client {
            name: "kubectl 1.32 via portico",
            kubectl: Kubectl::new(&through_gateway)?,
            spdy: false,
        },
    ];
    if let Some(k) = Kubectl::v1_20_for_sim(&sim, test)? {
        let v = k.run(&["version", "--client", "--short"]).await?;
        assert!(v.stdout.contains("v1.20."), "{}", v.stdout);
        let via = Kubectl::new(&through_gateway)?.with_binary(k.binary());
        clients.push(Client {
            name: "kubectl 1.20",
            kubectl: k,
            spdy: true,
        });
        clients.push(Client {
            name: "kubectl 1.20 via portico",
            kubectl: via,
            spdy: true,
        });
    }
    Ok((sim, gw, clients))
}

/// The upgrade the last request to `…/{sub}` asked for.
fn last_upgrade(sim: &KubeSim, sub: &str) -> String {
    sim.requests()
        .iter()
        .rev()
        .find(|r| r.path_only().ends_with(sub))
        .and_then(|r| r.header("upgrade").map(str::to_string))
        .unwrap_or_default()
}

fn check_protocol(sim: &KubeSim, c: &Client, sub: &str) {
    let up = last_upgrade(sim, sub).to_ascii_lowercase();
    let want = if c.spdy { "spdy/3.1" } else { "websocket" };
    assert_eq!(up, want, "{}: {sub} upgrade", c.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_output_stderr_and_exit_codes() -> anyhow::Result<()> {
    let (sim, _gw, clients) = setup("exec_reports_output_stderr_and_exit_codes").await?;
    for c in &clients {
        let out = c.kubectl.run(&["exec", "web", "--", "echo", "hi"]).await?;
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "hi\n"),
            "{}: {out:?}",
            c.name
        );
        check_protocol(&sim, c, "/exec");

        let out = c
            .kubectl
            .run(&[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ])
            .await?;
        assert_eq!(out.code, 3, "{}: {out:?}", c.name);
        assert_eq!(out.stdout, "out\n", "{}", c.name);
        assert!(
            out.stderr.starts_with("err\n"),
            "{}: {}",
            c.name,
            out.stderr
        );
        assert!(
            out.stderr.contains("command terminated with exit code 3"),
            "{}: {}",
            c.name,
            out.stderr
        );

        let out = c
            .kubectl
            .run(&["exec", "web", "--", "no-such-binary"])
            .await?;
        assert_eq!(out.code, 126, "{}: {out:?}", c.name);
        assert!(
            out.stderr.contains("executable file not found"),
            "{}",
            out.stderr
        );

        let out = c
            .kubectl
            .run(&["exec", "web", "-c", "nope", "--", "true"])
            .await?;
        assert_eq!(out.code, 1, "{}: {out:?}", c.name);
        assert!(
            out.stderr
                .contains("container nope is not valid for pod web"),
            "{}: {}",
            c.name,
            out.stderr
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_carries_megabytes_of_stdin_both_ways() -> anyhow::Result<()> {
    let (sim, _gw, clients) = setup("exec_carries_megabytes_of_stdin_both_ways").await?;
    // 6 MiB of varied bytes: far beyond any SPDY window or WebSocket frame.
    let mut data = Vec::with_capacity(6 << 20);
    let mut x: u32 = 1;
    while data.len() < 6 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        data.push((x >> 16) as u8);
    }
    let want_hash: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for c in &clients {
        let (code, out, err) = c
            .kubectl
            .run_with_input(&["exec", "-i", "web", "--", "sha256sum"], data.clone())
            .await?;
        assert_eq!(code, 0, "{}: {err}", c.name);
        assert_eq!(
            String::from_utf8(out)?,
            format!("{want_hash}  -\n"),
            "{}",
            c.name
        );
        check_protocol(&sim, c, "/exec");

        let (code, out, err) = c
            .kubectl
            .run_with_input(&["exec", "-i", "web", "--", "cat"], data.clone())
            .await?;
        assert_eq!(code, 0, "{}: {err}", c.name);
        assert_eq!(out.len(), data.len(), "{}", c.name);
        assert!(out == data, "{}: cat returned other bytes", c.name);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_echoes_stdin_and_streams_the_log() -> anyhow::Result<()> {
    let (sim, _gw, clients) = setup("attach_echoes_stdin_and_streams_the_log").await?;
    for c in &clients {
        // `web` runs `cat` with stdinOnce: what is typed comes back, closing stdin ends it.
        let mut child = c
            .kubectl
            .spawn_piped(&["attach", "-i", "web", "-c", "app"])?;
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        stdin.write_all(b"hello attach\n").await?;
        stdin.flush().await?;
        let line = tokio::time::timeout(WAIT, lines.next_line()).await??;
        assert_eq!(line.as_deref(), Some("hello attach"), "{}", c.name);
        drop(stdin);
        let status = tokio::time::timeout(WAIT, child.wait()).await??;
        assert!(status.success(), "{}: {status:?}", c.name);
        check_protocol(&sim, c, "/attach");

        // `logger` ignores stdin; its log lines reach the attached client as they are written.
        let mut child = c.kubectl.spawn_piped(&["attach", "logger"])?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Attach shows output from the moment it is connected: write until a line arrives.
        let mut seen = None;
        for i in 0..60 {
            sim.append_pod_log("default", "logger", &format!("tick {i}\n"));
            if let Ok(line) =
                tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await
            {
                seen = line?;
                break;
            }
        }
        let seen = seen.unwrap_or_default();
        assert!(seen.starts_with("tick "), "{}: {seen:?}", c.name);
        child.kill().await?;
    }
    let out = clients[0].kubectl.run(&["attach", "nope"]).await?;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("pods \"nope\" not found"),
        "{}",
        out.stderr
    );
    Ok(())
}

/// Starts `kubectl port-forward pod/web :PORT` and returns it with the local port it chose.
async fn port_forward(
    c: &Client,
    port: u16,
) -> anyhow::Result<(
    tokio::process::Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
)> {
    let mut child = c
        .kubectl
        .spawn_piped(&["port-forward", "pod/web", &format!(":{port}")])?;
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, out.next_line())
        .await??
        .unwrap_or_default();
    // "Forwarding from 127.0.0.1:41234 -> 8080"
    let local: u16 = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{}: unexpected line {line:?}", c.name))?;
    assert!(line.ends_with(&format!("-> {port}")), "{line}");
    // Keep reading stdout so kubectl never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Ok((child, local, err))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_carries_http_and_echo() -> anyhow::Result<()> {
    let (sim, _gw, clients) = setup("port_forward_carries_http_and_echo").await?;
    for c in &clients {
        let (mut child, local, _err) = port_forward(c, 8080).await?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        for i in 0..3 {
            let resp = http
                .post(format!("http://127.0.0.1:{local}/hello?i={i}"))
                .body(format!("body {i}"))
                .send()
                .await?;
            assert_eq!(resp.status(), 200, "{}", c.name);
            let doc: Value = resp.json().await?;
            assert_eq!(doc["pod"], "web");
            assert_eq!(doc["port"], 8080);
            assert_eq!(doc["method"], "POST");
            assert_eq!(doc["path"], format!("/hello?i={i}"));
            assert_eq!(doc["body"], format!("body {i}"));
        }
        // A second client: another TCP connection, another stream pair.
        let doc: Value = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(format!("http://127.0.0.1:{local}/again"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(doc["path"], "/again");
        let pf = sim
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path_only().ends_with("/portforward"))
            .expect("a port-forward request");
        if c.spdy {
            assert_eq!(
                pf.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
                Some("spdy/3.1")
            );
            assert_eq!(
                pf.header("x-stream-protocol-version"),
                Some("portforward.k8s.io")
            );
        } else {
            assert_eq!(
                pf.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
                Some("websocket")
            );
            assert_eq!(
                pf.header("sec-websocket-protocol"),
                Some("SPDY/3.1+portforward.k8s.io")
            );
        }
        child.kill().await?;

        let (mut child, local, _err) = port_forward(c, 7000).await?;
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", local)).await?;
        let payload = vec![b'z'; 200_000];
        let (mut r, mut w) = tcp.split();
        let send = async {
            w.write_all(&payload).await?;
            anyhow::Ok(())
        };
        let recv = async {
            let mut got = vec![0u8; payload.len()];
            r.read_exact(&mut got).await?;
            anyhow::Ok(got)
        };
        let (sent, got) = tokio::time::timeout(WAIT, async { tokio::join!(send, recv) }).await?;
        sent?;
        assert!(got? == payload, "{}: echo returned other bytes", c.name);
        child.kill().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_to_a_closed_port_reports_the_refusal() -> anyhow::Result<()> {
    let (_sim, _gw, clients) = setup("port_forward_to_a_closed_port_reports_the_refusal").await?;
    for c in &clients {
        let (mut child, local, mut err) = port_forward(c, 9999).await?;
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", local)).await?;
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        // The local connection ends without data.
        let mut buf = Vec::new();
        let n = tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf))
            .await?
            .unwrap_or(0);
        assert_eq!(n, 0, "{}: {:?}", c.name, String::from_utf8_lossy(&buf));
        let mut seen = Vec::new();
        let line = loop {
            match tokio::time::timeout(WAIT, err.next_line()).await?? {
                Some(l) if l.contains("connection refused") => break l,
                Some(l) => seen.push(l),
                None => anyhow::bail!("{}: stderr ended; saw {seen:?}", c.name),
            }
        };
        assert!(
            line.contains("error forwarding port 9999 to pod"),
            "{}: {line}",
            c.name
        );
        let _ = child.kill().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_copies_files_and_directories_both_ways() -> anyhow::Result<()> {
    let (sim, _gw, clients) = setup("cp_copies_files_and_directories_both_ways").await?;
    let files = sim
        .container_files("default", "web", "app")
        .expect("pod exists");
    for c in &clients {
        let dir = tempfile::tempdir()?;
        let local = dir.path().join("notes.txt");
        let content = format!("copied by {}\n", c.name).repeat(5000);
        std::fs::write(&local, &content)?;
        let target = format!("default/web:/tmp/{}.txt", c.name.replace(' ', "-"));
        let out = c
            .kubectl
            .run(&["cp", local.to_str().unwrap(), &target])
            .await?;
        assert_eq!(out.code, 0, "{}: {out:?}", c.name);
        let in_pod = target.trim_start_matches("default/web:");
        let stored = files.lock().unwrap().read(in_pod).unwrap();
        assert_eq!(stored, content.as_bytes(), "{}", c.name);
        check_protocol(&sim, c, "/exec");

        // Into an existing directory: the file keeps its name.
        let sub = dir.path().join("tree");
        std::fs::create_dir_all(sub.join("inner"))?;
        std::fs::write(sub.join("inner/a.txt"), "A")?;
        std::fs::write(sub.join("b.txt"), "B")?;
        files.lock().unwrap().mkdir("/srv", true).unwrap();
        let out = c
            .kubectl
            .run(&["cp", sub.to_str().unwrap(), "default/web:/srv"])
            .await?;
        assert_eq!(out.code, 0, "{}: {out:?}", c.name);
        assert_eq!(
            files.lock().unwrap().read("/srv/tree/inner/a.txt").unwrap(),
            "A"
        );
        let out = c
            .kubectl
            .run(&["exec", "web", "--", "cat", "/srv/tree/b.txt"])
            .await?;
        assert_eq!(out.stdout, "B", "{}", c.name);

        // And back out of the pod.
        let back = dir.path().join("back.txt");
        let out = c
            .kubectl
            .run(&["cp", &target, back.to_str().unwrap()])
            .await?;
        assert_eq!(out.code, 0, "{}: {out:?}", c.name);
        assert_eq!(std::fs::read_to_string(&back)?, content, "{}", c.name);
        let back_dir = dir.path().join("back-tree");
        let out = c
            .kubectl
            .run(&["cp", "default/web:/srv/tree", back_dir.to_str().unwrap()])
            .await?;
        assert_eq!(out.code, 0, "{}: {out:?}", c.name);
        assert_eq!(std::fs::read_to_string(back_dir.join("inner/a.txt"))?, "A");
        assert_eq!(std::fs::read_to_string(back_dir.join("b.txt"))?, "B");
        files.lock().unwrap().remove("/srv", true).unwrap();
    }
    Ok(())
}
