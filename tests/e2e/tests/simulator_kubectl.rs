//! The real `kubectl` against the simulator over HTTPS, trusting the simulator's CA.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::kubectl::Kubectl;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

async fn setup() -> anyhow::Result<(KubeSim, Kubectl)> {
    let sim = KubeSim::start().await?;
    let kubectl = Kubectl::for_sim(&sim)?;
    let kc = std::fs::read_to_string(kubectl.kubeconfig())?;
    assert!(kc.contains("https://127.0.0.1:"), "{kc}");
    assert!(!kc.contains("insecure-skip-tls-verify"), "{kc}");
    Ok((sim, kubectl))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_tables_json_and_errors() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    sim.seed_pods("default", 3, 1);
    let out = kubectl.run(&["get", "pods"]).await?.success()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", out.stdout);
    assert!(lines[0].contains("STATUS"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("pod-00000") && lines[1].contains("Running"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 4);

    let out = kubectl
        .run(&["get", "pods", "-l", "app=app-1", "-o", "json"])
        .await?
        .success()?;
    let list: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["metadata"]["name"], "pod-00001");

    let out = kubectl.run(&["get", "pod", "nope"]).await?;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );

    let out = kubectl.run(&["get", "ns", "-o", "name"]).await?.success()?;
    assert!(
        out.stdout.contains("namespace/kube-system"),
        "{}",
        out.stdout
    );

    // --sort-by asks the server for whole objects in the table rows (includeObject=Object).
    sim.seed_pods("sorted", 3, 2);
    let out = kubectl
        .run(&[
            "get",
            "pods",
            "-n",
            "sorted",
            "--sort-by=.spec.nodeName",
            "--no-headers",
        ])
        .await?
        .success()?;
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["pod-00000", "pod-00002", "pod-00001"]);

    // kubectl used aggregated discovery: no per-group-version documents were fetched.
    let discovery = sim
        .requests()
        .into_iter()
        .find(|r| r.path_only() == "/api")
        .expect("kubectl read /api");
    let accept = discovery.header("accept").unwrap_or_default().to_string();
    assert!(accept.contains("as=APIGroupDiscoveryList"), "{accept}");
    assert!(!sim.requests().iter().any(|r| r.path_only() == "/api/v1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_falls_back_to_legacy_documents() -> anyhow::Result<()> {
    let sim = KubeSim::builder()
        .aggregated_discovery(false)
        .start()
        .await?;
    let kubectl = Kubectl::for_sim(&sim)?;
    sim.seed_pods("default", 1, 1);
    let out = kubectl
        .run(&["get", "pods", "-o", "name"])
        .await?
        .success()?;
    assert_eq!(out.stdout, "pod/pod-00000\n");
    let out = kubectl.run(&["get", "leases", "-A"]).await?.success()?;
    assert!(out.stderr.contains("No resources found"), "{}", out.stderr);
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|r| r.path_only().to_string())
        .collect();
    for doc in ["/api", "/apis", "/api/v1", "/apis/coordination.k8s.io/v1"] {
        assert!(
            paths.iter().any(|p| p == doc),
            "{doc} not fetched: {paths:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_subcommands_send_protobuf() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    kubectl
        .run(&["create", "namespace", "team"])
        .await?
        .success()?;
    kubectl
        .run(&[
            "create",
            "configmap",
            "conf",
            "-n",
            "team",
            "--from-literal=k=v",
        ])
        .await?
        .success()?;
    kubectl
        .run(&[
            "create",
            "secret",
            "generic",
            "pw",
            "-n",
            "team",
            "--from-literal=p=s3cret",
        ])
        .await?
        .success()?;
    let cm = sim.get("v1", "ConfigMap", Some("team"), "conf")?;
    assert_eq!(cm["data"]["k"], "v");
    let secret = sim.get("v1", "Secret", Some("team"), "pw")?;
    assert_eq!(secret["data"]["p"], "czNjcmV0");
    assert_eq!(secret["type"], "Opaque");
    let posts: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(
        posts
            .iter()
            .all(|r| r.header("content-type") == Some("application/vnd.kubernetes.protobuf")),
        "{posts:?}"
    );
    let out = kubectl
        .run(&["delete", "namespace", "team"])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("namespace \"team\" deleted"),
        "{}",
        out.stdout
    );
    assert!(sim.get("v1", "ConfigMap", Some("team"), "conf").is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_changes() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    sim.create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "first", "namespace": "default"}}))?;
    let mut watch = kubectl.spawn(&["get", "configmaps", "-w", "--output-watch-events"])?;
    let header = watch.next_line(WAIT).await?.unwrap_or_default();
    assert!(
        header.starts_with("EVENT") && header.contains("NAME"),
        "{header}"
    );
    let line = watch.wait_for_line(WAIT, |l| l.contains("first")).await?;
    assert!(line.starts_with("ADDED"), "{line}");
    assert_eq!(sim.wait_for_watches(WAIT, |n| n == 1).await, 1);
    sim.create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "second", "namespace": "default"}}))?;
    let line = watch.wait_for_line(WAIT, |l| l.contains("second")).await?;
    assert!(line.starts_with("ADDED"), "{line}");
    sim.delete("v1", "ConfigMap", Some("default"), "first")?;
    let line = watch.wait_for_line(WAIT, |l| l.contains("first")).await?;
    assert!(line.starts_with("DELETED"), "{line}");
    watch.kill().await?;
    Ok(())
}

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: demo}
data:
  mode: "one"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_updates_and_delete() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    let file = kubectl.dir().join("app.yaml");
    std::fs::write(&file, MANIFEST)?;
    let path = file.to_str().unwrap();
    let out = kubectl.run(&["apply", "-f", path]).await?.success()?;
    assert!(
        out.stdout.contains("configmap/settings created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deployment.apps/web created"),
        "{}",
        out.stdout
    );

    std::fs::write(
        &file,
        MANIFEST
            .replace("\"one\"", "\"two\"")
            .replace("nginx:1", "nginx:2"),
    )?;
    let out = kubectl.run(&["apply", "-f", path]).await?.success()?;
    assert!(
        out.stdout.contains("configmap/settings configured"),
        "{}",
        out.stdout
    );
    let dep = sim.get("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(dep["metadata"]["generation"], 2);
    let images: Vec<&str> = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["nginx:2", "busybox:1"]);
    let cm = sim.get("v1", "ConfigMap", Some("default"), "settings")?;
    assert_eq!(cm["data"]["mode"], "two");

    let out = kubectl
        .run(&["scale", "deployment", "web", "--replicas=3"])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("deployment.apps/web scaled"),
        "{}",
        out.stdout
    );
    let dep = sim.get("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(dep["spec"]["replicas"], 3);

    let out = kubectl.run(&["apply", "-f", path]).await?.success()?;
    assert!(
        out.stdout.contains("configmap/settings unchanged"),
        "{}",
        out.stdout
    );

    // Dropping the sidecar from the manifest removes it (three-way strategic merge patch).
    let without_sidecar = MANIFEST
        .replace("\"one\"", "\"two\"")
        .replace("nginx:1", "nginx:2")
        .replace("      - name: sidecar\n        image: busybox:1\n", "");
    std::fs::write(&file, without_sidecar)?;
    kubectl.run(&["apply", "-f", path]).await?.success()?;
    let dep = sim.get("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let out = kubectl
        .run(&["apply", "--server-side", "-f", path])
        .await?
        .success()?;
    assert!(out.stdout.contains("serverside-applied"), "{}", out.stdout);

    let out = kubectl.run(&["delete", "-f", path]).await?.success()?;
    assert!(
        out.stdout.contains("deployment.apps \"web\" deleted"),
        "{}",
        out.stdout
    );
    assert!(
        sim.get("apps/v1", "Deployment", Some("default"), "web")
            .is_err()
    );
    assert!(
        sim.get("v1", "ConfigMap", Some("default"), "settings")
            .is_err()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_plain_tail_and_follow() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    sim.seed_pods("default", 1, 1);
    sim.set_pod_log("default", "pod-00000", "alpha\nbeta\ngamma\n");
    let out = kubectl.run(&["logs", "pod-00000"]).await?.success()?;
    assert_eq!(out.stdout, "alpha\nbeta\ngamma\n");
    let out = kubectl
        .run(&["logs", "pod-00000", "--tail=1"])
        .await?
        .success()?;
    assert_eq!(out.stdout, "gamma\n");

    let mut follow = kubectl.spawn(&["logs", "-f", "pod-00000", "--tail=1"])?;
    assert_eq!(follow.next_line(WAIT).await?.as_deref(), Some("gamma"));
    sim.append_pod_log("default", "pod-00000", "delta\n");
    assert_eq!(follow.next_line(WAIT).await?.as_deref(), Some("delta"));
    sim.delete("v1", "Pod", Some("default"), "pod-00000")?;
    assert_eq!(follow.next_line(WAIT).await?, None);
    assert_eq!(follow.wait(WAIT).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_commands_with_exit_codes() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    sim.seed_pods("default", 1, 1);
    let out = kubectl
        .run(&["exec", "pod-00000", "--", "echo", "hi"])
        .await?;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hi\n"),
        "{}",
        out.stderr
    );

    let out = kubectl
        .run(&["exec", "pod-00000", "--", "sh", "-c", "exit 3"])
        .await?;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{}",
        out.stderr
    );

    let out = kubectl
        .run_with_stdin(
            &["exec", "-i", "pod-00000", "--", "cat"],
            Some("one\ntwo\n"),
        )
        .await?;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "one\ntwo\n"),
        "{}",
        out.stderr
    );

    let out = kubectl
        .run(&["exec", "pod-00000", "--", "no-such-command"])
        .await?;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );

    // kubectl speaks HTTP/2 to the API (ALPN) but upgrades exec over HTTP/1.1 WebSocket (v5),
    // not SPDY.
    assert!(sim.requests().iter().any(|r| r.version == "HTTP/2.0"));
    let upgrades: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path_only().ends_with("/exec"))
        .collect();
    assert_eq!(upgrades.len(), 4);
    assert!(
        upgrades
            .iter()
            .all(|r| r.method == "GET" && r.version == "HTTP/1.1"),
        "{upgrades:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_whoami_can_i_and_impersonation() -> anyhow::Result<()> {
    let (sim, kubectl) = setup().await?;
    let out = kubectl
        .run(&["auth", "whoami", "-o", "json"])
        .await?
        .success()?;
    let me: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(me["status"]["userInfo"]["username"], "kube-sim-admin");
    let out = kubectl
        .run(&[
            "auth",
            "whoami",
            "--as",
            "jane",
            "--as-group",
            "devs",
            "-o",
            "json",
        ])
        .await?
        .success()?;
    let jane: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(jane["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        jane["status"]["userInfo"]["groups"],
        serde_json::json!(["devs", "system:authenticated"])
    );
    let rec = sim
        .requests()
        .into_iter()
        .rfind(|r| r.path_only().ends_with("/selfsubjectreviews"))
        .expect("whoami reached the simulator");
    assert_eq!(rec.header("impersonate-user"), Some("jane"));
    let out = kubectl
        .run(&["auth", "can-i", "delete", "pods"])
        .await?
        .success()?;
    assert_eq!(out.stdout.trim(), "yes");
    Ok(())
}
