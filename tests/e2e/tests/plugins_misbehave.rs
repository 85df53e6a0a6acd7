//! Misbehaving plugins fail only their own call, with a clear error, while the gateway keeps
//! serving: a file that is not a component, the wrong world, an infinite loop, a memory bomb,
//! a panic, oversized output, writing past the log cap, an undeclared capability, an HTTP call
//! to a host not allowed or to a local address; and limits over the host's ceilings.

use std::sync::Arc;
use std::time::Duration;

use kube_sim::KubeSim;
use portico::plugin::{Error, KubeApi, TrapReason};
use portico::testing::PluginRow;
use portico_e2e::fleet;
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{cluster, gateway_builder, kube_api, upload, wasm};
use reqwest::Method;
use serde_json::{Value, json};

/// A manifest for the `misbehave` test plugin in `mode`, with short limits.
/// Generous for every plugin but the looper: on a loaded 2-core machine a well-behaved call
/// (or one producing megabytes of output) must not hit the deadline before the limit under test.
const TIMEOUT_MS: u64 = 20_000;

fn manifest(
    name: &str,
    mode: &str,
    capabilities: &str,
    extra_config: &str,
    timeout_ms: u64,
) -> String {
    format!(
        r#"
name = "{name}"
version = "1.0.0"
world = "inspector"

[capabilities]
{capabilities}

[limits]
timeout-ms = {timeout_ms}
memory-mib = 32
max-output-bytes = 1048576
max-log-bytes = 4096

[config]
mode = "{mode}"
{extra_config}
"#
    )
}

const ALL: &str = "kube = true\nlog = true\nconfig = true";

struct Fixture {
    gw: TestGateway,
    kube: Arc<dyn KubeApi>,
    sim: KubeSim,
}

impl Fixture {
    async fn new(test: &str) -> Self {
        let gw = gateway_builder(&format!("misbehave-{test}")).start().await;
        let sim = KubeSim::start().await.expect("start the simulator");
        let kube = kube_api(&sim);
        let fixture = Self { gw, kube, sim };
        fixture.install("well-behaved", "ok", ALL, "").await;
        fixture
    }

    async fn install(&self, name: &str, mode: &str, capabilities: &str, extra: &str) {
        self.install_with_timeout(name, mode, capabilities, extra, TIMEOUT_MS)
            .await;
    }

    async fn install_with_timeout(
        &self,
        name: &str,
        mode: &str,
        capabilities: &str,
        extra: &str,
        timeout_ms: u64,
    ) {
        let response = upload(
            &self.gw,
            &manifest(name, mode, capabilities, extra, timeout_ms),
            wasm("misbehave"),
        )
        .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    async fn run(&self, name: &str) -> Result<Vec<portico::plugin::Finding>, Error> {
        self.gw
            .gateway()
            .app()
            .plugins
            .inspect(name, &cluster("c1"), self.kube.clone())
            .await
            .map(|report| report.value)
    }

    /// The gateway still answers, and a well-behaved plugin still runs.
    async fn still_serving(&self) {
        let live = self
            .gw
            .request(Method::GET, "/health/live")
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), 200);
        let list = self
            .gw
            .as_admin(Method::GET, "/api/v1/plugins")
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 200);
        let findings = self
            .run("well-behaved")
            .await
            .expect("a good plugin still runs");
        assert_eq!(findings[0].message, "hello c1");
    }
}

async fn error_body(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn uploads_that_are_not_components_are_refused() {
    let f = Fixture::new("uploads_that_are_not_components_are_refused").await;
    let text = manifest("junk", "ok", ALL, "", TIMEOUT_MS);

    let (status, code, message) =
        error_body(upload(&f.gw, &text, b"hello world".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (400, "not_a_component"));
    assert!(message.contains("no WebAssembly header"), "{message}");

    // A core module (the 8-byte empty module) is wasm but not a component.
    let core = b"\0asm\x01\0\0\0".to_vec();
    let (status, code, message) = error_body(upload(&f.gw, &text, core).await).await;
    assert_eq!((status, code.as_str()), (400, "not_a_component"));
    assert!(message.contains("core WebAssembly module"), "{message}");

    // A truncated component.
    let mut broken = wasm("misbehave");
    broken.truncate(broken.len() / 2);
    let (status, code, _) = error_body(upload(&f.gw, &text, broken).await).await;
    assert_eq!((status, code.as_str()), (400, "not_a_component"));

    let missing =
        f.gw.as_admin(Method::GET, "/api/v1/plugins/junk")
            .send()
            .await
            .unwrap();
    assert_eq!(missing.status(), 404);
    f.still_serving().await;
}

#[tokio::test]
async fn a_component_of_another_world_is_refused() {
    let f = Fixture::new("a_component_of_another_world_is_refused").await;
    // helm-index implements repo-sync; declared as an inspector it lacks `inspect`.
    let text = manifest("wrong", "ok", ALL, "", TIMEOUT_MS);
    let (status, code, message) = error_body(upload(&f.gw, &text, wasm("helm-index")).await).await;
    assert_eq!((status, code.as_str()), (400, "wrong_world"));
    assert!(message.contains("world `inspector`"), "{message}");
    assert!(message.contains("lacks `inspect`"), "{message}");
    assert!(message.contains("it exports: sync"), "{message}");

    // An invalid manifest is refused with its reason.
    let bad = "name = \"Bad Name\"\nversion = \"1\"\nworld = \"inspector\"\n";
    let (status, code, message) = error_body(upload(&f.gw, bad, wasm("misbehave")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_manifest"));
    assert!(message.contains("lower-case"), "{message}");
    f.still_serving().await;
}

#[tokio::test]
async fn an_infinite_loop_times_out() {
    let f = Fixture::new("an_infinite_loop_times_out").await;
    f.install_with_timeout("looper", "loop", ALL, "", 200).await;
    match f.run("looper").await {
        Err(Error::Trap {
            plugin,
            reason: TrapReason::Timeout(limit),
        }) => {
            assert_eq!(plugin, "looper");
            assert_eq!(limit.as_millis(), 200);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let message = f.run("looper").await.unwrap_err().to_string();
    assert_eq!(
        message,
        "plugin `looper` was stopped: timed out after 200 ms"
    );
    f.still_serving().await;
}

/// Every call gets a fresh instance: a global and a heap value an earlier call changed are
/// back to the module's image. A reused store or instance would count 2, 3 and list the
/// earlier clusters; a memory slot reset that missed a page the last call wrote would too.
#[tokio::test]
async fn state_does_not_leak_between_calls() {
    let f = Fixture::new("state_does_not_leak_between_calls").await;
    f.install("counter", "count", ALL, "").await;
    for id in ["c1", "c2", "c3"] {
        let findings =
            f.gw.gateway()
                .app()
                .plugins
                .inspect("counter", &cluster(id), f.kube.clone())
                .await
                .expect("the counter runs");
        assert_eq!(findings.value.len(), 1);
        assert_eq!(
            findings.value[0].message,
            format!("call 1, clusters seen {id}")
        );
    }
    f.still_serving().await;
}

/// A guest that keeps running leaves the caller's thread at the next epoch tick: on this
/// test's single-threaded runtime, a timer set beside the call fires long before the call's
/// 20 s deadline, which it could not while the guest held the thread.
#[tokio::test]
async fn a_long_call_leaves_the_callers_thread() {
    let f = Fixture::new("a_long_call_leaves_the_callers_thread").await;
    f.install("spinner", "loop", ALL, "").await;
    let call = f.run("spinner");
    tokio::select! {
        result = call => panic!("the call ended before the timer: {result:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    // Dropping the call cancelled it (the guest stops at the next tick).
    f.still_serving().await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let f = Fixture::new("a_memory_bomb_hits_the_memory_cap").await;
    f.install("bomb", "memory-bomb", ALL, "").await;
    let error = f.run("bomb").await.unwrap_err();
    assert!(
        matches!(&error, Error::Trap { reason: TrapReason::Memory(limit), .. } if *limit == 32 << 20),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "plugin `bomb` was stopped: memory limit of 32 MiB exceeded"
    );
    f.still_serving().await;
}

#[tokio::test]
async fn a_panic_fails_the_call_with_its_message() {
    let f = Fixture::new("a_panic_fails_the_call_with_its_message").await;
    f.install("panicky", "panic", ALL, "").await;
    let error = f.run("panicky").await.unwrap_err();
    match &error {
        Error::Trap {
            reason: TrapReason::Panic(message),
            ..
        } => {
            assert!(
                message.starts_with("misbehave: deliberate panic (at "),
                "{message}"
            );
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    f.still_serving().await;
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let f = Fixture::new("oversized_output_is_refused").await;
    f.install("chatty", "big-output", ALL, "").await;
    match f.run("chatty").await {
        Err(Error::OutputTooLarge {
            plugin,
            size,
            limit,
        }) => {
            assert_eq!(plugin, "chatty");
            assert_eq!(limit, 1 << 20);
            assert!(size > limit);
        }
        other => panic!("expected output too large, got {other:?}"),
    }
    f.still_serving().await;
}

#[tokio::test]
async fn an_undeclared_capability_is_an_error_the_guest_sees() {
    let f = Fixture::new("an_undeclared_capability_is_an_error_the_guest_sees").await;
    // `kube` is not declared: the guest's call fails with `denied` and it returns that error.
    f.install("nosy", "kube", "log = true\nconfig = true", "")
        .await;
    match f.run("nosy").await {
        Err(Error::Guest {
            plugin,
            kind,
            message,
        }) => {
            assert_eq!((plugin.as_str(), kind.as_str()), ("nosy", "denied"));
            assert_eq!(
                message,
                "capability `kube` is not declared in plugin `nosy`'s manifest"
            );
        }
        other => panic!("expected a denied error, got {other:?}"),
    }
    // Without `config` the plugin cannot even read its mode.
    f.install("blind", "ok", "kube = true", "").await;
    let error = f.run("blind").await.unwrap_err().to_string();
    assert!(error.contains("denied: capability `config`"), "{error}");
    f.still_serving().await;
}

#[tokio::test]
async fn http_to_a_host_not_allowed_is_denied() {
    let f = Fixture::new("http_to_a_host_not_allowed_is_denied").await;
    f.install(
        "exfiltrate",
        "http",
        "config = true\nhttp = [\"charts.example.com\", \"*.example.org\"]",
        "url = \"http://127.0.0.1:9/steal\"",
    )
    .await;
    match f.run("exfiltrate").await {
        Err(Error::Guest { kind, message, .. }) => {
            assert_eq!(kind, "denied");
            assert_eq!(
                message,
                "host `127.0.0.1` is not in the plugin's http allow-list"
            );
        }
        other => panic!("expected a denied error, got {other:?}"),
    }
    // No `http` capability at all.
    f.install("offline", "http", "config = true", "").await;
    let error = f.run("offline").await.unwrap_err().to_string();
    assert!(error.contains("denied: capability `http`"), "{error}");
    f.still_serving().await;
}

/// The error of a call stopped at the log cap of the test manifest (4096 bytes).
fn assert_log_limit(name: &str, result: Result<Vec<portico::plugin::Finding>, Error>) {
    let error = result.expect_err("writing past the log cap fails the call");
    assert!(
        matches!(&error, Error::Trap { plugin, reason: TrapReason::LogLimit(4096) } if plugin == name),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `{name}` was stopped: log limit of 4096 bytes exceeded (log lines, stdout \
             and stderr together)"
        )
    );
}

#[tokio::test]
async fn writing_past_the_log_cap_fails_the_call() {
    let f = Fixture::new("writing_past_the_log_cap_fails_the_call").await;
    // 10,000 lines of about 110 bytes, through the `log` import, stdout and stderr.
    for (name, mode) in [
        ("logger", "log-flood"),
        ("printer", "stdout-flood"),
        ("complainer", "stderr-flood"),
    ] {
        f.install(name, mode, ALL, "").await;
        assert_log_limit(name, f.run(name).await);
    }
    f.still_serving().await;
}

#[tokio::test]
async fn a_run_that_writes_past_the_log_cap_is_recorded_as_failed() {
    let f = Fixture::new("a_run_that_writes_past_the_log_cap_is_recorded_as_failed").await;
    f.gw.add_cluster("c1", &f.sim.kubeconfig()).await.unwrap();
    f.install("printer", "stdout-flood", ALL, "").await;
    let job: Value =
        f.gw.as_admin(Method::POST, "/api/v1/jobs")
            .json(
                &json!({"name": "print", "plugins": ["printer"], "cron": "0 0 1 1 *",
                       "targets": {"clusters": ["c1"]}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let job_id = job["id"].as_str().expect("a job id").to_owned();
    let response =
        f.gw.as_admin(Method::POST, &format!("/api/v1/jobs/{job_id}/run"))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 202);
    let run = fleet::eventually("the run finishes", Duration::from_secs(30), || async {
        let runs: Value =
            f.gw.as_admin(Method::GET, &format!("/api/v1/runs?job={job_id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let run = runs["items"].as_array()?.first()?.clone();
        (run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run["status"], "failed", "{run}");
    let run_id = run["id"].as_str().unwrap();
    let run: Value =
        f.gw.as_admin(Method::GET, &format!("/api/v1/runs/{run_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let target = &run["targets"][0];
    assert_eq!(target["clusterId"], "c1", "{run}");
    assert_eq!(target["status"], "failed", "{run}");
    assert!(
        target["error"]
            .as_str()
            .unwrap_or_default()
            .contains("plugin `printer` was stopped: log limit of 4096 bytes exceeded"),
        "{run}"
    );
    f.still_serving().await;
}

#[tokio::test]
async fn limits_over_the_host_ceilings_are_refused_at_upload() {
    let f = Fixture::new("limits_over_the_host_ceilings_are_refused_at_upload").await;
    for (key, ceiling) in [
        ("max-log-bytes", "1048576 bytes (1 MiB)"),
        ("max-output-bytes", "67108864 bytes (64 MiB)"),
        ("max-http-response-bytes", "67108864 bytes (64 MiB)"),
        ("max-kube-response-bytes", "134217728 bytes (128 MiB)"),
        ("host-call-timeout-ms", "600000 ms"),
    ] {
        // 16 GiB (the review's example).
        let text = format!(
            "name = \"greedy\"\nversion = \"1\"\nworld = \"inspector\"\n\
             [limits]\n{key} = 17179869184\n"
        );
        let (status, code, message) =
            error_body(upload(&f.gw, &text, wasm("misbehave")).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_manifest"), "{key}");
        assert!(
            message.starts_with(&format!(
                "invalid plugin manifest: limits: {key} = 17179869184 is over the host's \
                 ceiling of {ceiling}: {key} must be 1-"
            )),
            "{message}"
        );
    }
    let missing =
        f.gw.as_admin(Method::GET, "/api/v1/plugins/greedy")
            .send()
            .await
            .unwrap();
    assert_eq!(missing.status(), 404);
    f.still_serving().await;
}

#[tokio::test]
async fn a_plugin_stored_over_todays_ceilings_is_listed_but_not_run() {
    let f = Fixture::new("a_plugin_stored_over_todays_ceilings_is_listed_but_not_run").await;
    // As an upload of an earlier version, which took any value, left it in the database.
    let component = wasm("misbehave");
    let now = 1_767_225_600_000;
    let row = PluginRow {
        name: "legacy".to_owned(),
        version: "1".to_owned(),
        world: "inspector".to_owned(),
        manifest: "name = \"legacy\"\nversion = \"1\"\nworld = \"inspector\"\n\
                   [capabilities]\nconfig = true\n[limits]\nmax-log-bytes = 17179869184\n\
                   [config]\nmode = \"ok\"\n"
            .to_owned(),
        digest: hex_sha256(&component),
        size: component.len() as i64,
        source: "upload".to_owned(),
        enabled: true,
        config: None,
        created_at: now,
        updated_at: now,
    };
    f.gw.gateway()
        .app()
        .db
        .insert_plugin(&row, Some(&component))
        .await
        .unwrap();
    let shown: Value =
        f.gw.as_admin(Method::GET, "/api/v1/plugins/legacy")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(shown["limits"]["maxLogBytes"], 17179869184_u64, "{shown}");
    let error = f.run("legacy").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid plugin manifest: plugin `legacy`: limits: max-log-bytes = 17179869184 is over \
         the host's ceiling of 1048576 bytes (1 MiB): max-log-bytes must be 1-1048576"
    );
    // It can still be disabled and deleted.
    let response =
        f.gw.as_admin(Method::POST, "/api/v1/plugins/legacy/disable")
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let response =
        f.gw.as_admin(Method::DELETE, "/api/v1/plugins/legacy")
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 204);
    f.still_serving().await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

const REFUSED: &str = "plugin HTTP to loopback, link-local and unspecified addresses is refused \
                       (the gateway's --plugin-http-allow-local allows it)";

#[tokio::test]
async fn http_to_local_addresses_is_denied_unless_the_gateway_allows_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "inside" }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let allow = "config = true\nhttp = [\"127.0.0.1\", \"localhost\", \"169.254.169.254\"]";

    let f = Fixture::new("http_to_local_addresses_is_denied").await;
    let targets = [
        (
            "by-address",
            format!("http://127.0.0.1:{port}/"),
            format!("`127.0.0.1` is a loopback address: {REFUSED}"),
        ),
        (
            "by-name",
            format!("http://localhost:{port}/"),
            "host `localhost` resolves to ".to_owned(),
        ),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            format!(
                "`169.254.169.254` is a link-local address (cloud metadata services answer \
                 there): {REFUSED}"
            ),
        ),
    ];
    for (name, url, expected) in &targets {
        f.install(name, "http", allow, &format!("url = \"{url}\""))
            .await;
        match f.run(name).await {
            Err(Error::Guest { kind, message, .. }) => {
                assert_eq!(kind, "denied", "{name}: {message}");
                assert!(message.starts_with(expected.as_str()), "{name}: {message}");
                assert!(message.ends_with(REFUSED), "{name}: {message}");
            }
            other => panic!("{name}: expected a denied error, got {other:?}"),
        }
    }
    f.still_serving().await;
    drop(f);

    // With --plugin-http-allow-local the loopback targets answer.
    let gw = gateway_builder("misbehave-http-allow-local")
        .args(["--plugin-http-allow-local"])
        .start()
        .await;
    let sim = KubeSim::start().await.expect("start the simulator");
    for (name, url, _) in &targets[..2] {
        let response = upload(
            &gw,
            &manifest(name, "http", allow, &format!("url = \"{url}\""), TIMEOUT_MS),
            wasm("misbehave"),
        )
        .await;
        assert_eq!(response.status(), 201);
        let findings = gw
            .gateway()
            .app()
            .plugins
            .inspect(name, &cluster("c1"), kube_api(&sim))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .value;
        assert_eq!(findings[0].message, "HTTP 200", "{name}");
    }
    gw.stop().await;
}
