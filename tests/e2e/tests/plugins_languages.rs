//! The Python and JavaScript SDKs: their `require-labels` examples, built with the pinned
//! componentize-py and componentize-js through their build scripts, uploaded through the
//! plugins API and run against the simulator, find exactly what the Rust example finds.
//!
//! The tools are installed by `plugins/sdk-python/install-tools.sh` and
//! `plugins/sdk-js/install-tools.sh` (`.ci/run` runs both). Without them the tests skip loudly,
//! unless `CI` is set: then a missing tool fails the test, so CI can never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use kube_sim::KubeSim;
use portico::plugin::Finding;
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{cluster, gateway_builder, kube_api, upload, wasm};
use portico_e2e::python::{target_dir, workspace_root};
use reqwest::Method;
use serde_json::{Value, json};

/// Two namespaces: `shop/api` has both labels the default configuration asks for, `shop/cart`
/// lacks `team`, `other/web` has none.
const SEED: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  labels: {app.kubernetes.io/name: api, team: payments}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "registry.example/api:1"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
  labels: {app.kubernetes.io/name: cart}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: "registry.example/cart:1"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: other}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.example/web:1"}]}
"#;

/// How long one example's build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// One SDK's tool, example and build script.
struct Language {
    /// `py` or `js`: the example is `plugins/examples/require-labels-{suffix}`.
    suffix: &'static str,
    /// The file whose absence means the tool is not installed.
    tool: PathBuf,
    /// How to install it.
    install: &'static str,
}

impl Language {
    fn python() -> Self {
        Self {
            suffix: "py",
            tool: std::env::var_os("COMPONENTIZE_PY")
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir().join("plugin-tools/py/bin/componentize-py")),
            install: "plugins/sdk-python/install-tools.sh",
        }
    }

    fn js() -> Self {
        let tools = std::env::var_os("COMPONENTIZE_JS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("plugin-tools/js"));
        Self {
            suffix: "js",
            tool: tools.join("node_modules/@bytecodealliance/componentize-js/package.json"),
            install: "plugins/sdk-js/install-tools.sh (needs node and npm)",
        }
    }

    fn example(&self) -> PathBuf {
        workspace_root().join(format!("plugins/examples/require-labels-{}", self.suffix))
    }

    /// The example's component, built by its `build.sh` (the documented command).
    fn build(&self, test: &str) -> Option<Vec<u8>> {
        let out = format!("require-labels-{}", self.suffix);
        self.build_with(test, &self.example(), &out, |out| {
            let mut command = Command::new(self.example().join("build.sh"));
            command.arg(out);
            command
        })
    }

    /// A test plugin of world `world` in `plugins_data/NAME` (`app.py` or `app.js`), built by
    /// the SDK's build script.
    fn build_app(&self, test: &str, name: &str, world: &str) -> Option<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/plugins_data")
            .join(name);
        self.build_with(test, &dir, name, |out| {
            let root = workspace_root();
            let mut command = match self.suffix {
                "py" => Command::new(root.join("plugins/sdk-python/build.sh")),
                _ => {
                    let mut node = Command::new("node");
                    node.arg(root.join("plugins/sdk-js/build.mjs"));
                    node
                }
            };
            match self.suffix {
                "py" => command.arg(&dir),
                _ => command.arg(dir.join("app.js")),
            };
            command.arg(world).arg(out);
            command
        })
    }

    /// `target/plugin-examples/NAME.wasm`, built by `command(out)` unless it is newer than
    /// every input (`source`, the SDK, `wit/`). `None` (after a loud notice) when the tool is
    /// missing outside CI.
    fn build_with(
        &self,
        test: &str,
        source: &Path,
        name: &str,
        command: impl FnOnce(&Path) -> Command,
    ) -> Option<Vec<u8>> {
        if !self.tool.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {} is missing and CI is set: .ci/run installs it with {}",
                self.tool.display(),
                self.install
            );
            eprintln!(
                "\n!! SKIPPED {test}: {} is missing.\n!! Run {} to install it.\n",
                self.tool.display(),
                self.install
            );
            return None;
        }
        let out = target_dir().join(format!("plugin-examples/{name}.wasm"));
        let sdk = workspace_root().join(match self.suffix {
            "py" => "plugins/sdk-python",
            _ => "plugins/sdk-js",
        });
        let inputs = [source.to_owned(), sdk, workspace_root().join("wit")];
        let built = modified(&out);
        if built.is_none() || inputs.iter().any(|dir| newest(dir) > built) {
            let mut child = command(&out).spawn().expect("run the build");
            // A first build takes 15-45 s on a busy machine; a hung one must not hang the suite.
            let deadline = Instant::now() + BUILD_TIMEOUT;
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait for the build") {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{test}: the build of {name} ran over {BUILD_TIMEOUT:?}");
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            assert!(
                status.success(),
                "{test}: the build of {name} failed: {status}"
            );
        }
        Some(std::fs::read(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display())))
    }

    fn manifest(&self) -> String {
        std::fs::read_to_string(self.example().join("manifest.toml")).expect("the manifest")
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files under `dir` (bounded by the tree's size).
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut newest = modified(dir);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_skip_caches(&path)
        } else {
            modified(&path)
        };
        newest = newest.max(time);
    }
    newest
}

fn newest_skip_caches(dir: &Path) -> Option<SystemTime> {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("__pycache__" | "node_modules") => None,
        _ => newest(dir),
    }
}

async fn configure(gw: &TestGateway, plugin: &str, config: Value) {
    let response = gw
        .as_admin(Method::PUT, &format!("/api/v1/plugins/{plugin}/config"))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "configure {plugin}");
}

/// Findings in a stable order (by target name).
fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        let name = |f: &Finding| f.target.as_ref().map(|t| t.name.clone());
        name(a).cmp(&name(b))
    });
    findings
}

/// Uploads the Rust example and `language`'s, runs both against the simulator with the
/// default and with a narrower configuration, and checks they agree with each other and with
/// what the seed calls for.
async fn finds_what_the_rust_example_finds(language: Language, test: &str) {
    let Some(component) = language.build(test) else {
        return;
    };
    let name = format!("require-labels-{}", language.suffix);
    let gw = gateway_builder(test).start().await;
    let response = upload(
        &gw,
        include_str!("../../../plugins/examples/require-labels/manifest.toml"),
        wasm("require-labels"),
    )
    .await;
    assert_eq!(response.status(), 201);
    let size = component.len() as u64;
    // The same component under 8 MiB: the runtime alone needs more (docs/plugins.md).
    let small = language
        .manifest()
        .replace(
            &format!("name = \"{name}\""),
            &format!("name = \"{name}-small\""),
        )
        .replace("memory-mib = 32", "memory-mib = 8");
    assert!(small.contains("memory-mib = 8"), "{small}");
    let response = upload(&gw, &small, component.clone()).await;
    assert_eq!(response.status(), 201);
    let response = upload(&gw, &language.manifest(), component).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    // Compiled at upload (so the first call does not wait for it), and the API says so.
    let record: Value = serde_json::from_str(&body).unwrap();
    assert!(record["compiledInMs"].is_u64(), "{record}");
    assert_eq!(record["componentBytes"].as_u64(), Some(size));

    let sim = KubeSim::start().await.expect("start the simulator");
    sim.load_yaml(SEED).expect("seed the simulator");
    let plugins = &gw.gateway().app().plugins;
    let run = |plugin: String| {
        let sim = kube_api(&sim);
        async move {
            plugins
                .inspect(&plugin, &cluster("shop"), sim)
                .await
                .unwrap_or_else(|e| panic!("{plugin} runs: {e}"))
        }
    };

    let rust = run("require-labels".to_owned()).await;
    let other = run(name.clone()).await;
    let expected: Vec<Value> = vec![
        json!({"checkId": "required-labels", "severity": "info", "passed": true,
               "message": "all required labels are present",
               "target": {"kind": "Deployment", "namespace": "shop", "name": "api"},
               "extra": null}),
        json!({"checkId": "required-labels", "severity": "low", "passed": false,
               "message": "missing labels: [\"team\"]",
               "target": {"kind": "Deployment", "namespace": "shop", "name": "cart"},
               "extra": {"missing": ["team"]}}),
        json!({"checkId": "required-labels", "severity": "low", "passed": false,
               "message": "missing labels: [\"app.kubernetes.io/name\", \"team\"]",
               "target": {"kind": "Deployment", "namespace": "other", "name": "web"},
               "extra": {"missing": ["app.kubernetes.io/name", "team"]}}),
    ];
    let expected: Vec<Finding> = expected
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a finding"))
        .collect();
    assert_eq!(sorted(rust.value), expected, "the Rust example");
    assert_eq!(sorted(other.value), expected, "{name}");
    // The log capability works through the SDK too.
    let line = "checking 3 deployments in shop (simulated)";
    assert!(
        other.logs.iter().any(|l| l.message == line),
        "{name} logged {:?}",
        other.logs
    );

    let error = plugins
        .inspect(&format!("{name}-small"), &cluster("shop"), kube_api(&sim))
        .await
        .expect_err("8 MiB is too little for the runtime");
    assert!(
        error.to_string().contains("memory limit of 8 MiB"),
        "{error}"
    );

    // The configuration reaches the plugin: one label, one namespace.
    let narrow = json!({"labels": ["team"], "namespace": "shop"});
    configure(&gw, "require-labels", narrow.clone()).await;
    configure(&gw, &name, narrow).await;
    let rust = sorted(run("require-labels".to_owned()).await.value);
    let other = sorted(run(name.clone()).await.value);
    assert_eq!(rust.len(), 2, "{rust:?}");
    assert_eq!(
        (rust[0].passed, rust[1].passed),
        (true, false),
        "api passes, cart fails: {rust:?}"
    );
    assert_eq!(other, rust, "{name} with a configuration");

    // A configuration the plugin cannot use is the call's error, not a trap.
    configure(&gw, &name, json!({"labels": 3})).await;
    let error = plugins
        .inspect(&name, &cluster("shop"), kube_api(&sim))
        .await
        .expect_err("labels must be a list");
    assert!(error.to_string().contains("internal"), "{error}");
    gw.stop().await;
}

#[tokio::test]
async fn the_python_example_finds_what_the_rust_one_finds() {
    finds_what_the_rust_example_finds(Language::python(), "languages-python").await;
}

#[tokio::test]
async fn the_javascript_example_finds_what_the_rust_one_finds() {
    finds_what_the_rust_example_finds(Language::js(), "languages-js").await;
}

/// The lifecycle-hook side of an SDK (and its `http`): `connect-logger` ported to the language
/// does what the Rust example does (`plugins_api.rs`), webhook included, and a webhook that
/// fails makes the hook's call fail with the SDK's `PluginError`.
async fn hook_does_what_connect_logger_does(language: Language, test: &str) {
    let name = format!("connect-logger-{}", language.suffix);
    let Some(component) = language.build_app(test, &name, "lifecycle-hook") else {
        return;
    };
    // The webhook receiver is served on 127.0.0.1.
    let gw = gateway_builder(test)
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let router = Router::new()
        .route(
            "/hook",
            post(move |body: String| {
                let sink = sink.clone();
                async move {
                    sink.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route("/broken", post(|| async { StatusCode::BAD_GATEWAY }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let manifest = format!(
        r#"
name = "notify"
version = "0.1.0"
world = "lifecycle-hook"

[capabilities]
kube = true
log = true
config = true
http = ["127.0.0.1"]

[limits]
memory-mib = 48

[config]
webhook-url = "{base}/hook"
"#
    );
    let response = upload(&gw, &manifest, component).await;
    let status = response.status();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());

    let sim = KubeSim::start().await.unwrap();
    sim.seed_nodes(3);
    let plugins = &gw.gateway().app().plugins;
    let report = plugins
        .lifecycle("notify", true, &cluster("c1"), kube_api(&sim))
        .await
        .expect("on-connect runs");
    assert_eq!(report.logs[0].message, "connected to c1 (3 nodes)");
    plugins
        .lifecycle("notify", false, &cluster("c1"), kube_api(&sim))
        .await
        .expect("on-disconnect runs");
    assert_eq!(
        *received.lock().unwrap(),
        [
            json!({"event": "connected", "cluster": "c1", "nodes": 3}),
            json!({"event": "disconnected", "cluster": "c1", "nodes": 0}),
        ]
    );

    // The SDK's error reaches the gateway with its kind and message.
    configure(
        &gw,
        "notify",
        json!({"webhook-url": format!("{base}/broken")}),
    )
    .await;
    let error = plugins
        .lifecycle("notify", false, &cluster("c1"), kube_api(&sim))
        .await
        .expect_err("the webhook fails");
    let error = error.to_string();
    assert!(error.contains("unavailable"), "{error}");
    assert!(error.contains("webhook answered HTTP 502"), "{error}");
    gw.stop().await;
}

#[tokio::test]
async fn a_python_lifecycle_hook_reads_the_cluster_and_posts_a_webhook() {
    hook_does_what_connect_logger_does(Language::python(), "languages-hook-python").await;
}

#[tokio::test]
async fn a_javascript_lifecycle_hook_reads_the_cluster_and_posts_a_webhook() {
    hook_does_what_connect_logger_does(Language::js(), "languages-hook-js").await;
}
