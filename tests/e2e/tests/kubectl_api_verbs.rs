//! kubectl verbs beyond get/apply/logs/exec: `top`, `debug` (ephemeral containers, node
//! debugging pods, pod copies), `explain`, `events`, `get --raw`, `auth can-i`,
//! `apply --server-side`, `diff`, the warnings the server sends back and protobuf responses.
//! Each scenario runs twice: straight to the simulator (`direct`), and through a Portico
//! gateway with the admin's exported kubeconfig (`through_portico`).

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// A test module per scenario with its two runs. A scenario gets the simulator, kubectl, and
/// the server URL's path (see [`get_raw_reads_health_metrics_and_apis`]).
macro_rules! both_ways {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn direct() -> anyhow::Result<()> {
                let sim = super::KubeSim::start().await?;
                let kubectl = super::Kubectl::for_sim(&sim)?;
                super::$scenario(&sim, &kubectl, "").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn through_portico() -> anyhow::Result<()> {
                let sim = super::KubeSim::start().await?;
                let gw = super::TestGateway::builder().start().await;
                let kubectl = gw.connect_sim("sim", &sim).await?;
                super::$scenario(&sim, &kubectl, "/k8s/clusters/sim").await?;
                gw.stop().await;
                Ok(())
            }
        }
    };
}

both_ways!(top_pod_and_node_read_the_metrics_api);
both_ways!(debug_adds_an_ephemeral_container);
both_ways!(debug_attaches_to_the_ephemeral_container);
both_ways!(everyday_writes);
both_ways!(get_raw_reads_health_metrics_and_apis);
both_ways!(debug_node_creates_a_host_pod_sent_as_protobuf);
both_ways!(debug_copy_to_creates_a_copy_with_the_debug_container);
both_ways!(explain_reads_the_openapi_schemas);
both_ways!(events_filter_by_object_and_type);
both_ways!(auth_can_i_and_list);
both_ways!(server_side_apply_and_diff_exit_codes);
both_ways!(server_warnings_are_printed);
both_ways!(typed_clients_read_protobuf_responses);

/// The whitespace-separated columns of the line starting with `name`.
fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

async fn top_pod_and_node_read_the_metrics_api(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.seed_nodes(2);
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "busy", "namespace": "default", "labels": {"app": "busy"},
                     "annotations": {"kube-sim/usage": r#"{"app": {"cpu": "250m", "memory": "64Mi"}}"#}},
        "spec": {"nodeName": "node-0001", "containers": [
            {"name": "app", "image": "app"},
            {"name": "side", "image": "side", "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]},
        "status": {"phase": "Running"},
    }))?;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "waiting", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }))?;

    let out = kubectl.run(&["top", "pod"]).await?.success()?;
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{}",
        out.stdout
    );
    // 250m + 100m, 64Mi + 32Mi; the pending pod has no metrics.
    assert_eq!(
        row(&out.stdout, "busy"),
        ["busy", "350m", "96Mi"],
        "{}",
        out.stdout
    );
    assert!(row(&out.stdout, "waiting").is_empty(), "{}", out.stdout);

    let out = kubectl
        .run(&["top", "pod", "busy", "--containers"])
        .await?
        .success()?;
    assert!(out.stdout.contains("busy   app    250m"), "{}", out.stdout);
    let out = kubectl
        .run(&["top", "pod", "-A", "-l", "app=busy"])
        .await?
        .success()?;
    assert_eq!(
        row(&out.stdout, "default"),
        ["default", "busy", "350m", "96Mi"],
        "{}",
        out.stdout
    );
    // A pod that is not running has no metrics: metrics-server's NotFound for a name…
    let out = kubectl.run(&["top", "pod", "waiting"]).await?;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("pods.metrics.k8s.io \"waiting\" not found"),
        "{}",
        out.stderr
    );
    // …and an empty list, which kubectl explains after looking the pod up ("metrics not
    // available yet", or "Metrics not available for pod …, age: …" for a young pod).
    let out = kubectl
        .run(&["top", "pod", "--field-selector", "metadata.name=waiting"])
        .await?;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("etrics not available"),
        "{}",
        out.stderr
    );

    // node-0001: 50m and 256Mi of its own plus busy's; CPU% against 4 allocatable cores.
    let out = kubectl.run(&["top", "node"]).await?.success()?;
    assert_eq!(
        row(&out.stdout, "node-0001")[..3],
        ["node-0001", "400m", "10%"],
        "{}",
        out.stdout
    );
    assert_eq!(row(&out.stdout, "node-0001")[3], "352Mi", "{}", out.stdout);
    assert_eq!(row(&out.stdout, "node-0000")[1], "50m", "{}", out.stdout);
    Ok(())
}

async fn debug_adds_an_ephemeral_container(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.seed_pods("default", 1, 1);
    let out = kubectl
        .run(&[
            "debug",
            "pod-00000",
            "--image=busybox",
            "--attach=false",
            "-c",
            "dbg",
            "--profile=general",
        ])
        .await?
        .success()?;
    let _ = out;
    let pod = sim.get("v1", "Pod", Some("default"), "pod-00000")?;
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "dbg");
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["image"], "busybox");
    assert!(
        pod["status"]["ephemeralContainerStatuses"][0]["state"]["running"].is_object(),
        "{pod}"
    );
    // The same name again is refused by the server's validation.
    let out = kubectl
        .run(&[
            "debug",
            "pod-00000",
            "--image=busybox",
            "--attach=false",
            "-c",
            "app",
            "--profile=general",
        ])
        .await?;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Duplicate value: \"app\""),
        "{}",
        out.stderr
    );
    Ok(())
}

/// The POST that created a Pod, from the simulator's request log.
fn pod_create(sim: &KubeSim) -> kube_sim::requestlog::RequestRecord {
    sim.requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.starts_with("/api/v1/namespaces/default/pods"))
        .expect("the pod create was sent")
}

async fn debug_node_creates_a_host_pod_sent_as_protobuf(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.seed_nodes(1);
    let out = kubectl
        .run(&[
            "debug",
            "node/node-0000",
            "--image=busybox",
            "--attach=false",
            "--profile=legacy",
        ])
        .await?
        .success()?;
    assert!(
        out.stdout
            .contains("Creating debugging pod node-debugger-node-0000-"),
        "{}",
        out.stdout
    );
    // kubectl's typed client sends the Pod as protobuf.
    let post = pod_create(sim);
    assert_eq!(
        post.header("content-type"),
        Some("application/vnd.kubernetes.protobuf"),
        "{post:?}"
    );
    let pods = sim.list("v1", "Pod", Some("default"), "")?;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("node-debugger-node-0000-"), "{pod}");
    let spec = &pod["spec"];
    assert_eq!(spec["nodeName"], "node-0000");
    assert_eq!(spec["restartPolicy"], "Never");
    // The legacy profile: host namespaces and the root filesystem at /host.
    assert_eq!(spec["hostPID"], true, "{pod}");
    assert_eq!(spec["hostNetwork"], true, "{pod}");
    assert_eq!(spec["hostIPC"], true, "{pod}");
    assert_eq!(
        spec["volumes"],
        json!([{"name": "host-root", "hostPath": {"path": "/"}}])
    );
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "busybox");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/host", "{pod}");
    Ok(())
}

async fn debug_copy_to_creates_a_copy_with_the_debug_container(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-0001", "containers": [{
            "name": "app", "image": "nginx",
            "ports": [{"name": "http", "containerPort": 80}],
            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
            "lifecycle": {"preStop": {"httpGet": {"path": "/quit", "port": "http"}}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
        }]},
        "status": {"phase": "Running"},
    }))?;
    kubectl
        .run(&[
            "debug",
            "web",
            "--copy-to=web-debug",
            "--image=busybox",
            "--attach=false",
            "-c",
            "dbg",
            "--profile=general",
        ])
        .await?
        .success()?;
    let post = pod_create(sim);
    assert_eq!(
        post.header("content-type"),
        Some("application/vnd.kubernetes.protobuf"),
        "{post:?}"
    );
    let copy = sim.get("v1", "Pod", Some("default"), "web-debug")?;
    let containers = &copy["spec"]["containers"];
    // The original container came through protobuf whole: IntOrString port, quantities.
    assert_eq!(containers[0]["name"], "app");
    assert_eq!(
        containers[0]["lifecycle"]["preStop"]["httpGet"]["port"], "http",
        "{copy}"
    );
    // The general profile drops the copy's probes and lets the debug container see the
    // others' processes with SYS_PTRACE.
    assert!(containers[0].get("readinessProbe").is_none(), "{copy}");
    assert_eq!(copy["spec"]["shareProcessNamespace"], true, "{copy}");
    assert_eq!(
        containers[1]["securityContext"]["capabilities"]["add"],
        json!(["SYS_PTRACE"])
    );
    assert_eq!(
        containers[0]["resources"]["requests"],
        json!({"cpu": "100m", "memory": "32Mi"})
    );
    assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
    assert_eq!(containers[1]["name"], "dbg");
    assert_eq!(containers[1]["image"], "busybox");
    // Not pinned to the original's node unless --same-node.
    assert!(copy["spec"].get("nodeName").is_none(), "{copy}");
    // The original is untouched.
    let web = sim.get("v1", "Pod", Some("default"), "web")?;
    assert_eq!(web["spec"]["containers"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn explain_reads_the_openapi_schemas(
    _sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    let out = kubectl
        .run(&["explain", "pods.spec.containers"])
        .await?
        .success()?;
    assert!(out.stdout.contains("KIND:       Pod"), "{}", out.stdout);
    assert!(
        out.stdout.contains("FIELD: containers <[]Container>"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  image\t<string>"), "{}", out.stdout);
    assert!(
        out.stdout.contains("  name\t<string> -required-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  resources\t<ResourceRequirements>"),
        "{}",
        out.stdout
    );

    let out = kubectl
        .run(&["explain", "deployment", "--recursive"])
        .await?
        .success()?;
    assert!(out.stdout.contains("GROUP:      apps"), "{}", out.stdout);
    assert!(
        out.stdout.contains("KIND:       Deployment"),
        "{}",
        out.stdout
    );
    // Nested fields at their depth, through $refs: spec.template.spec.containers.image.
    assert!(
        out.stdout
            .contains("\n        containers\t<[]Container> -required-\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\n          image\t<string>\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("maxSurge\t<IntOrString>"),
        "{}",
        out.stdout
    );
    // `metadata` is not required (k8s-openapi says it is; the apiserver does not).
    assert!(
        out.stdout.contains("\n  metadata\t<ObjectMeta>\n"),
        "{}",
        out.stdout
    );

    let out = kubectl.run(&["explain", "hpa.spec"]).await?.success()?;
    assert!(
        out.stdout.contains("GROUP:      autoscaling"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("VERSION:    v2"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("FIELD: spec <HorizontalPodAutoscalerSpec>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  maxReplicas\t<integer> -required-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  scaleTargetRef\t<CrossVersionObjectReference> -required-"),
        "{}",
        out.stdout
    );

    // The Gateway API kinds have paths but no schemas: kubectl says so.
    let out = kubectl.run(&["explain", "httproutes"]).await?;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("not found in OpenAPI schema"),
        "{}",
        out.stderr
    );
    Ok(())
}

async fn events_filter_by_object_and_type(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.seed_pods("default", 2, 1);
    let event = |name: &str, ns: &str, pod: &str, ty: &str, reason: &str, msg: &str| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": ns},
            "type": ty, "reason": reason, "message": msg, "count": 1,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
            "source": {"component": "kubelet"},
        })
    };
    sim.create(event(
        "e1",
        "default",
        "pod-00000",
        "Normal",
        "Pulled",
        "image pulled",
    ))?;
    sim.create(event(
        "e2",
        "default",
        "pod-00000",
        "Warning",
        "BackOff",
        "back-off restarting",
    ))?;
    sim.create(event(
        "e3",
        "default",
        "pod-00001",
        "Warning",
        "Failed",
        "failed to pull",
    ))?;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}))?;
    sim.create(event("e4", "other", "x", "Normal", "Scheduled", "assigned"))?;

    let out = kubectl.run(&["events"]).await?.success()?;
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);

    let out = kubectl
        .run(&["events", "--for", "pod/pod-00000", "--types=Warning"])
        .await?
        .success()?;
    let lines: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].contains("BackOff") && lines[0].contains("Pod/pod-00000"),
        "{}",
        out.stdout
    );

    let out = kubectl
        .run(&["events", "-A", "--types=Normal"])
        .await?
        .success()?;
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with("NAMESPACE"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Scheduled") && out.stdout.contains("Pulled"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("BackOff"), "{}", out.stdout);
    Ok(())
}

/// `prefix`: the server URL's path. kubectl before 1.34 sends `--raw` paths from the host's
/// root, ignoring the server URL's path (kubernetes/kubectl#1676, fixed by
/// kubernetes/kubernetes#131165), so through any path-prefixed proxy the path must carry the
/// prefix; kubectl 1.34 and later add it themselves.
async fn get_raw_reads_health_metrics_and_apis(
    sim: &KubeSim,
    kubectl: &Kubectl,
    prefix: &str,
) -> anyhow::Result<()> {
    sim.seed_nodes(1);
    let out = kubectl
        .run(&["get", "--raw", &format!("{prefix}/healthz")])
        .await?
        .success()?;
    assert_eq!(out.stdout, "ok");
    let out = kubectl
        .run(&["get", "--raw", &format!("{prefix}/readyz?verbose")])
        .await?
        .success()?;
    assert!(
        out.stdout.contains("[+]etcd ok") && out.stdout.contains("readyz check passed"),
        "{}",
        out.stdout
    );
    let out = kubectl
        .run(&["get", "--raw", &format!("{prefix}/metrics")])
        .await?
        .success()?;
    assert!(
        out.stdout
            .contains("apiserver_storage_objects{resource=\"nodes\"} 1"),
        "{}",
        out.stdout
    );
    let out = kubectl
        .run(&[
            "get",
            "--raw",
            &format!("{prefix}/apis/metrics.k8s.io/v1beta1/nodes"),
        ])
        .await?
        .success()?;
    let list: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(list["items"][0]["metadata"]["name"], "node-0000");
    Ok(())
}

async fn auth_can_i_and_list(
    _sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    let out = kubectl
        .run(&["auth", "can-i", "create", "pods"])
        .await?
        .success()?;
    assert_eq!(out.stdout.trim(), "yes");
    let out = kubectl.run(&["auth", "can-i", "--list"]).await?.success()?;
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header[0], "Resources", "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("*.*") && l.ends_with("[*]")),
        "{}",
        out.stdout
    );
    Ok(())
}

async fn server_side_apply_and_diff_exit_codes(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    let file = kubectl.dir().join("cm.yaml");
    let write = |v: &str| {
        std::fs::write(
            &file,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\ndata:\n  a: \"{v}\"\n"
            ),
        )
    };
    write("1")?;
    let f = file.to_str().unwrap_or_default();
    let out = kubectl
        .run(&["apply", "--server-side", "-f", f])
        .await?
        .success()?;
    assert_eq!(out.stdout.trim(), "configmap/c serverside-applied");
    let rv =
        sim.get("v1", "ConfigMap", Some("default"), "c")?["metadata"]["resourceVersion"].clone();

    // Nothing changed: no output, exit 0; the dry run wrote nothing.
    let out = kubectl.run(&["diff", "--server-side", "-f", f]).await?;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    write("2")?;
    let out = kubectl.run(&["diff", "--server-side", "-f", f]).await?;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("-  a: \"1\"") && out.stdout.contains("+  a: \"2\""),
        "{}",
        out.stdout
    );
    let live = sim.get("v1", "ConfigMap", Some("default"), "c")?;
    assert_eq!(live["data"]["a"], "1");
    assert_eq!(live["metadata"]["resourceVersion"], rv);

    let out = kubectl
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            f,
        ])
        .await?
        .success()?;
    assert_eq!(out.stdout.trim(), "configmap/c serverside-applied");
    assert_eq!(
        sim.get("v1", "ConfigMap", Some("default"), "c")?["data"]["a"],
        "2"
    );

    // Client-side apply and diff: the last-applied annotation makes an unchanged diff empty.
    let out = kubectl.run(&["apply", "-f", f]).await?.success()?;
    assert_eq!(out.stdout.trim(), "configmap/c configured");
    let out = kubectl.run(&["diff", "-f", f]).await?;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    Ok(())
}

async fn server_warnings_are_printed(
    _sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    let file = kubectl.dir().join("pod.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: old\n  namespace: default\nspec:\n  nodeSelector:\n    beta.kubernetes.io/os: linux\n  containers:\n  - name: a\n    image: a\n",
    )?;
    let out = kubectl
        .run(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await?
        .success()?;
    assert!(
        out.stderr.contains(
            "Warning: spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.trim(), "pod/old created");
    Ok(())
}

async fn typed_clients_read_protobuf_responses(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    let out = kubectl
        .run(&[
            "create",
            "configmap",
            "pb",
            "--from-literal=k=v",
            "-o",
            "json",
        ])
        .await?
        .success()?;
    // The printed object is the server's answer, decoded from protobuf by client-go.
    let cm: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(cm["data"]["k"], "v");
    assert!(
        cm["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{cm}"
    );
    let post = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.starts_with("/api/v1/namespaces/default/configmaps"))
        .expect("the create was sent");
    assert!(
        post.header("accept")
            .is_some_and(|a| a.starts_with("application/vnd.kubernetes.protobuf")),
        "{post:?}"
    );
    Ok(())
}

/// `kubectl debug -i`: the ephemeral container is added, reported running, and kubectl
/// attaches to it (its command `cat` echoes what is typed into the container's output).
async fn debug_attaches_to_the_ephemeral_container(
    sim: &KubeSim,
    kubectl: &Kubectl,
    _prefix: &str,
) -> anyhow::Result<()> {
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "target", "namespace": "default"},
        "spec": {"nodeName": "node-0", "containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Running"},
    }))?;
    // Without `stdinOnce` (kubectl debug does not set it) the container's stdin outlives the
    // session, as on a kubelet: the client ends the session.
    let mut debug = kubectl.spawn_piped(&[
        "debug",
        "-i",
        "target",
        "--image=busybox",
        "-c",
        "dbg",
        "--",
        "cat",
    ])?;
    let mut stdin = debug.stdin.take().unwrap();
    let mut lines = BufReader::new(debug.stdout.take().unwrap()).lines();
    stdin.write_all(b"typed into the debug container\n").await?;
    stdin.flush().await?;
    let line =
        tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await??;
    assert_eq!(line.as_deref(), Some("typed into the debug container"));
    debug.kill().await?;
    let pod = sim.get("v1", "Pod", Some("default"), "target")?;
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "dbg");
    Ok(())
}

/// The everyday writes: create, label, annotate, patch, replace, scale, delete.
async fn everyday_writes(sim: &KubeSim, kubectl: &Kubectl, _prefix: &str) -> anyhow::Result<()> {
    let run = |args: &'static [&'static str]| async move { kubectl.run(args).await?.success() };
    run(&["create", "configmap", "app", "--from-literal=mode=fast"]).await?;
    run(&["label", "configmap", "app", "tier=web"]).await?;
    run(&["annotate", "configmap", "app", "owner=sre"]).await?;
    run(&[
        "patch",
        "configmap",
        "app",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ])
    .await?;
    let cm = sim.get("v1", "ConfigMap", Some("default"), "app")?;
    assert_eq!(cm["data"], json!({"mode": "fast", "extra": "1"}), "{cm}");
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "sre");

    let file = kubectl.dir().join("replace.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\n\
         data: {mode: slow}\n",
    )?;
    kubectl
        .run(&["replace", "-f", file.to_str().unwrap_or_default()])
        .await?
        .success()?;
    let cm = sim.get("v1", "ConfigMap", Some("default"), "app")?;
    assert_eq!(cm["data"], json!({"mode": "slow"}), "{cm}");

    // (`kubectl create deployment` sends protobuf, which the simulator decodes only for a few
    // kinds.)
    sim.create(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    }))?;
    let out = run(&["scale", "deployment", "web", "--replicas=3"]).await?;
    assert_eq!(out.stdout.trim(), "deployment.apps/web scaled");
    let deployment = sim.get("apps/v1", "Deployment", Some("default"), "web")?;
    assert_eq!(deployment["spec"]["replicas"], 3);

    run(&["delete", "configmap", "app"]).await?;
    assert!(sim.get("v1", "ConfigMap", Some("default"), "app").is_err());
    Ok(())
}
