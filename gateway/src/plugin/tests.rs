use std::time::Duration;

use super::bindings::types;
use super::engine::{HostSettings, PluginHost, panic_message};
use super::host::Output;
use super::http::{HttpClients, ScopedTrust, allowed, client, parse_ca_pem};
use super::kube::{list_request, resource_path};
use super::manifest::{LimitCeilings, Manifest, World};
use super::{Error, HookScope};

const CEILINGS: LimitCeilings = LimitCeilings {
    max_memory_mib: 256,
    max_timeout: Duration::from_secs(60),
};

fn parse(text: &str) -> super::Result<Manifest> {
    Manifest::parse(text, CEILINGS)
}

fn manifest_error(text: &str) -> String {
    match parse(text) {
        Err(Error::Manifest(message)) => message,
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn a_full_manifest_parses() {
    let manifest = parse(
        r#"
name = "hook-1"
version = "1.2.3"
world = "lifecycle-hook"
description = "d"
component = "hook.wasm"

[capabilities]
kube = true
log = true
http = ["hooks.example.com", "*.example.org:8443", "[::1]:80"]

[limits]
timeout-ms = 500
memory-mib = 16
max-log-bytes = 10

[hook]
scope = "replica"

[config]
url = "https://hooks.example.com/x"
retries = 3
"#,
    )
    .unwrap();
    assert_eq!(manifest.name, "hook-1");
    assert_eq!(manifest.world, World::LifecycleHook);
    assert_eq!(manifest.component.as_deref(), Some("hook.wasm"));
    assert!(manifest.capabilities.kube && manifest.capabilities.log);
    assert!(!manifest.capabilities.config);
    assert_eq!(manifest.capabilities.http.as_ref().unwrap().len(), 3);
    assert_eq!(manifest.limits.timeout(), Duration::from_millis(500));
    assert_eq!(manifest.limits.memory_bytes(), 16 << 20);
    assert_eq!(manifest.limits.max_log_bytes, 10);
    // Unset limits keep their defaults.
    assert_eq!(manifest.limits.host_call_timeout_ms, 10_000);
    assert_eq!(manifest.hook_scope, Some(HookScope::Replica));
    assert_eq!(
        manifest.config,
        serde_json::json!({"url": "https://hooks.example.com/x", "retries": 3})
    );
}

#[test]
fn a_minimal_manifest_gets_defaults() {
    let manifest = parse("name = \"x\"\nversion = \"1\"\nworld = \"inspector\"\n").unwrap();
    assert_eq!(manifest.capabilities, super::Capabilities::default());
    assert_eq!(manifest.limits, super::Limits::default());
    assert_eq!(manifest.hook_scope, None);
    assert_eq!(manifest.config, serde_json::json!({}));
    let hook = parse("name = \"x\"\nversion = \"1\"\nworld = \"lifecycle-hook\"\n").unwrap();
    assert_eq!(hook.hook_scope, Some(HookScope::Cluster));
}

#[test]
fn invalid_manifests_say_what_is_wrong() {
    let head = "version = \"1\"\nworld = \"inspector\"\n";
    assert!(manifest_error(&format!("name = \"Upper\"\n{head}")).contains("lower-case"));
    assert!(
        manifest_error("name = \"x\"\nversion = \"1\"\nworld = \"exporter\"\n")
            .contains("unknown world `exporter`")
    );
    assert!(
        manifest_error(
            "name = \"x\"\nversion = \"1\"\nworld = \"repo-sync\"\n[capabilities]\nkube = true\n"
        )
        .contains("capability `kube` is not part of world `repo-sync`")
    );
    assert!(
        manifest_error(&format!(
            "name = \"x\"\n{head}[capabilities]\nhttp = [\"https://a.b/c\"]\n"
        ))
        .contains("capabilities.http")
    );
    assert!(
        manifest_error(&format!(
            "name = \"x\"\n{head}[limits]\nmemory-mib = 1024\n"
        ))
        .contains("memory-mib must be 1-256")
    );
    assert!(
        manifest_error(&format!("name = \"x\"\n{head}[limits]\ntimeout-ms = 0\n"))
            .contains("timeout-ms")
    );
    assert!(
        manifest_error(&format!(
            "name = \"x\"\n{head}[hook]\nscope = \"cluster\"\n"
        ))
        .contains("[hook]")
    );
    assert!(manifest_error(&format!("name = \"x\"\n{head}colour = \"red\"\n")).contains("colour"));
    assert!(
        manifest_error(&format!("name = \"x\"\n{head}component = \"../x.wasm\"\n"))
            .contains("beside the manifest")
    );
}

#[test]
fn kinds_map_to_rest_paths() {
    let path = |v, k, ns, n| resource_path(v, k, ns, n);
    assert_eq!(
        path("v1", "Pod", Some("default"), None).unwrap(),
        "/api/v1/namespaces/default/pods"
    );
    assert_eq!(path("v1", "Pod", None, None).unwrap(), "/api/v1/pods");
    assert_eq!(
        path("apps/v1", "Deployment", Some("shop"), Some("web")).unwrap(),
        "/apis/apps/v1/namespaces/shop/deployments/web"
    );
    assert_eq!(
        path("v1", "Node", None, Some("n1")).unwrap(),
        "/api/v1/nodes/n1"
    );
    assert_eq!(
        path("networking.k8s.io/v1", "Ingress", Some("a"), None).unwrap(),
        "/apis/networking.k8s.io/v1/namespaces/a/ingresses"
    );
    assert_eq!(
        path(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            Some("system:admin")
        )
        .unwrap(),
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:admin"
    );
    // Unknown kinds: lower case plus the English plural.
    assert_eq!(
        path("example.com/v1", "Widget", None, None).unwrap(),
        "/apis/example.com/v1/widgets"
    );
    assert_eq!(
        path("example.com/v1", "Policy", Some("a"), None).unwrap(),
        "/apis/example.com/v1/namespaces/a/policies"
    );
    assert_eq!(
        path("example.com/v1", "Gateway", None, None).unwrap(),
        "/apis/example.com/v1/gateways"
    );
    assert_eq!(
        path("example.com/v1", "Class", None, None).unwrap(),
        "/apis/example.com/v1/classes"
    );
    // Scope mistakes and anything that could escape the path are refused.
    assert!(
        path("v1", "Node", Some("a"), None)
            .unwrap_err()
            .contains("cluster-scoped")
    );
    assert!(
        path("v1", "Pod", None, Some("p"))
            .unwrap_err()
            .contains("namespaced")
    );
    assert!(path("v2beta", "Pod", None, None).is_err());
    assert!(path("apps/v1/x", "Deployment", None, None).is_err());
    assert!(path("v1", "Pod", Some("a"), Some("../../secrets")).is_err());
    assert!(path("v1", "Pod", Some("a/b"), None).is_err());
    assert!(path("v1", "Pod", Some("a"), Some("p?watch=1")).is_err());
    assert!(path("v1", "Po d", None, None).is_err());
}

#[test]
fn selectors_are_encoded_into_the_query() {
    assert_eq!(
        list_request(
            "v1",
            "Pod",
            Some("a"),
            Some("app=web,tier in (x,y)"),
            Some("status.phase!=Running")
        )
        .unwrap(),
        "/api/v1/namespaces/a/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28x%2Cy%29\
         &fieldSelector=status.phase%21%3DRunning"
    );
    assert_eq!(
        list_request("v1", "Pod", None, Some(""), None).unwrap(),
        "/api/v1/pods"
    );
}

#[test]
fn the_http_allow_list_matches_hosts_and_ports() {
    let check = |patterns: &[&str], url: &str| {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        allowed(&patterns, &reqwest::Url::parse(url).unwrap())
    };
    assert!(check(
        &["charts.example.com"],
        "https://charts.example.com/index.yaml"
    ));
    assert!(check(
        &["charts.example.com"],
        "http://CHARTS.example.com:8080/"
    ));
    assert!(!check(
        &["charts.example.com"],
        "https://evil.com/?charts.example.com"
    ));
    assert!(!check(
        &["charts.example.com"],
        "https://charts.example.com.evil.com/"
    ));
    assert!(check(&["*.example.org"], "https://a.b.example.org/"));
    assert!(!check(&["*.example.org"], "https://example.org/"));
    assert!(!check(&["*.example.org"], "https://badexample.org/"));
    assert!(check(
        &["api.example.com:8443"],
        "https://api.example.com:8443/"
    ));
    assert!(!check(
        &["api.example.com:8443"],
        "https://api.example.com/"
    ));
    assert!(check(&["[::1]"], "http://[::1]:3000/"));
    assert!(check(&["*"], "https://anything.example/"));
    assert!(!check(&[], "https://anything.example/"));
}

#[test]
fn a_repository_ca_must_be_pem_ca_certificates() {
    let ca = rcgen::generate_simple_self_signed(vec!["charts.internal".to_owned()]).unwrap();
    let pem = ca.cert.pem();
    assert_eq!(parse_ca_pem(&pem).unwrap().len(), 1);
    assert_eq!(parse_ca_pem(&format!("{pem}{pem}")).unwrap().len(), 2);
    let no_cert = parse_ca_pem("hello").unwrap_err();
    assert!(no_cert.contains("no PEM certificate"), "{no_cert}");
    let key_only = parse_ca_pem(&ca.key_pair.serialize_pem()).unwrap_err();
    assert!(key_only.contains("no PEM certificate"), "{key_only}");
    let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let junk = parse_ca_pem(junk).unwrap_err();
    assert!(junk.contains("not a usable CA certificate"), "{junk}");
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    assert!(parse_ca_pem(bad_base64).is_err());
}

#[test]
fn a_repository_ca_applies_to_its_host_and_port_only() {
    let ca = rcgen::generate_simple_self_signed(vec!["charts.internal".to_owned()]).unwrap();
    let roots = parse_ca_pem(&ca.cert.pem()).unwrap();
    let clients = HttpClients {
        shared: client(&[]).unwrap(),
        scoped: Some(ScopedTrust::new("https://Charts.Internal/stable", &roots).unwrap()),
    };
    let scoped = |url: &str| {
        let url = reqwest::Url::parse(url).unwrap();
        !std::ptr::eq(clients.for_url(&url), &clients.shared)
    };
    assert!(scoped("https://charts.internal/stable/index.yaml"));
    assert!(scoped("https://CHARTS.internal:443/x.tgz"));
    assert!(!scoped("https://charts.internal:8443/index.yaml"));
    assert!(!scoped("http://charts.internal/index.yaml"));
    assert!(!scoped("https://cdn.example.com/x.tgz"));
    assert!(!scoped("https://charts.internal.evil.com/"));
}

#[test]
fn panic_messages_are_extracted_from_stderr() {
    let stderr = "thread '<unnamed>' panicked at src/lib.rs:7:9:\nboom: it broke\nsecond line\n\
                  note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
    assert_eq!(
        panic_message(stderr).unwrap(),
        "boom: it broke\nsecond line (at src/lib.rs:7:9)"
    );
    assert_eq!(panic_message("just some output\n"), None);
}

fn finding(message: &str, extra: &str) -> types::Finding {
    types::Finding {
        check_id: "c".to_owned(),
        severity: types::Severity::High,
        passed: false,
        message: message.to_owned(),
        target: None,
        extra: extra.to_owned(),
    }
}

#[test]
fn output_is_measured_and_checked() {
    let findings = Output::new("p", 1000)
        .findings(vec![finding("m", r#"{"a":1}"#), finding("n", "null")])
        .unwrap();
    assert_eq!(findings[0].extra, serde_json::json!({"a": 1}));
    assert_eq!(findings[0].severity, super::Severity::High);
    assert_eq!(findings[1].extra, serde_json::Value::Null);

    let big = vec![
        finding(&"x".repeat(600), "null"),
        finding(&"y".repeat(600), "null"),
    ];
    match Output::new("p", 1000).findings(big) {
        Err(Error::OutputTooLarge {
            plugin,
            size,
            limit,
        }) => {
            assert_eq!((plugin.as_str(), limit), ("p", 1000));
            assert!(size > 1000);
        }
        other => panic!("expected too large, got {other:?}"),
    }
    match Output::new("p", 1000).findings(vec![finding("m", "{not json")]) {
        Err(Error::InvalidOutput { detail, .. }) => assert!(detail.contains("extra is not JSON")),
        other => panic!("expected invalid output, got {other:?}"),
    }
}

fn host() -> PluginHost {
    PluginHost::new(HostSettings {
        max_concurrent_calls: 2,
        max_memory_mib: 16,
        ..HostSettings::default()
    })
    .unwrap()
}

async fn prepare(host: &PluginHost, wasm: Vec<u8>, world: World) -> super::Result<()> {
    let digest = super::registry::digest(&wasm);
    host.prepare(&digest, world, async move { Ok(wasm) })
        .await
        .map(drop)
}

#[tokio::test]
async fn core_modules_and_junk_are_not_components() {
    let host = host();
    let core = wat::parse_str("(module (func (export \"inspect\")))").unwrap();
    let error = prepare(&host, core, World::Inspector).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotAComponent(m) if m.contains("core WebAssembly module")),
        "{error:?}"
    );
    let error = prepare(&host, b"not wasm".to_vec(), World::Inspector)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotAComponent(m) if m.contains("no WebAssembly header")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_component_must_export_its_world() {
    let host = host();
    let empty = wat::parse_str("(component)").unwrap();
    let error = prepare(&host, empty.clone(), World::LifecycleHook)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the component does not implement world `lifecycle-hook`: it lacks `on-connect`, \
         `on-disconnect` (it exports: nothing)"
    );
    // An export of the right name with the wrong type is caught by the typed check.
    let mistyped = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (export "inspect" (func $f)))"#,
    )
    .unwrap();
    let error = prepare(&host, mistyped, World::Inspector)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::WrongWorld {
                world: World::Inspector,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn imports_the_host_does_not_provide_are_refused() {
    let host = host();
    let component = wat::parse_str(
        r#"(component
            (import "example:unknown/thing@1.0.0" (instance (export "f" (func))))
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (export "inspect" (func $f)))"#,
    )
    .unwrap();
    let error = prepare(&host, component, World::Inspector)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnsupportedImport(m) if m.contains("example:unknown/thing")),
        "{error:?}"
    );
}
