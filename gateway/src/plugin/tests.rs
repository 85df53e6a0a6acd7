use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::bindings::types;
use super::engine::{HostSettings, PluginHost, panic_message};
use super::host::{LogBudget, Output};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::http::{
    AddressPolicy, HttpClients, HttpError, OutboundRequest, ScopedTrust, allowed, client,
    client_with_resolver, guarded_resolver, local_address, parse_ca_pem, send, validate_pattern,
};
use super::kube::{list_request, resource_path};
use super::manifest::{LimitCeilings, Manifest, World};
use super::{DisconnectedKubeApi, Error, HookScope, KubeApi};

const CEILINGS: LimitCeilings = LimitCeilings {
    max_memory_mib: 256,
    max_timeout: Duration::from_secs(60),
    max_output_bytes: 16 << 20,
    max_log_bytes: 1 << 20,
    max_http_response_bytes: 32 << 20,
    max_kube_response_bytes: 64 << 20,
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
    // Built-in kinds: k8s-openapi's plural and scope, whatever the version.
    assert_eq!(
        path("v1", "Endpoints", Some("a"), None).unwrap(),
        "/api/v1/namespaces/a/endpoints"
    );
    assert_eq!(
        path("autoscaling/v1", "HorizontalPodAutoscaler", Some("a"), None).unwrap(),
        "/apis/autoscaling/v1/namespaces/a/horizontalpodautoscalers"
    );
    assert!(
        path("storage.k8s.io/v1", "StorageClass", Some("a"), None)
            .unwrap_err()
            .to_string()
            .contains("cluster-scoped")
    );
    // A custom kind that shares a built-in kind's name is not taken for it: no scope check.
    assert_eq!(
        path("example.com/v1", "Job", None, Some("j")).unwrap(),
        "/apis/example.com/v1/jobs/j"
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
            .to_string()
            .contains("cluster-scoped")
    );
    assert!(
        path("v1", "Pod", None, Some("p"))
            .unwrap_err()
            .to_string()
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
    let no_cert = parse_ca_pem("hello").unwrap_err().to_string();
    assert!(no_cert.contains("no PEM certificate"), "{no_cert}");
    let key_only = parse_ca_pem(&ca.key_pair.serialize_pem())
        .unwrap_err()
        .to_string();
    assert!(key_only.contains("no PEM certificate"), "{key_only}");
    let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let junk = parse_ca_pem(junk).unwrap_err().to_string();
    assert!(junk.contains("not a usable CA certificate"), "{junk}");
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    assert!(parse_ca_pem(bad_base64).is_err());
}

#[test]
fn path_pattern_and_ca_errors_read_as_before() {
    let path = |v, k, ns, n| resource_path(v, k, ns, n).unwrap_err().to_string();
    assert_eq!(
        path("v2beta", "Pod", None, None),
        "apiVersion `v2beta` is not `v1` or `group/version`"
    );
    assert_eq!(
        path("v1", "Po d", None, None),
        "kind `Po d` is not a Kubernetes kind"
    );
    assert_eq!(
        path("v1", "Node", Some("a"), None),
        "Node is cluster-scoped: give no namespace"
    );
    assert_eq!(
        path("v1", "Pod", None, Some("p")),
        "Pod is namespaced: give its namespace"
    );
    assert_eq!(
        path("v1", "Pod", Some("a/b"), None),
        "namespace `a/b` is not a valid name"
    );
    assert_eq!(
        path("v1", "Pod", Some("a"), Some("../x")),
        "name `../x` is not a valid object name"
    );
    assert_eq!(
        validate_pattern("https://x").unwrap_err().to_string(),
        "capabilities.http: `https://x` is not `host`, `host:port`, `*.domain` or `*`"
    );
    assert_eq!(
        parse_ca_pem("hello").unwrap_err().to_string(),
        "no PEM certificate (-----BEGIN CERTIFICATE-----) found"
    );
    let scoped = |url| match ScopedTrust::new(url, &[], &AddressPolicy::RefuseLocal) {
        Ok(_) => panic!("`{url}` was taken"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        scoped("charts"),
        "URL `charts`: relative URL without a base"
    );
    assert_eq!(scoped("mailto:a@b"), "URL `mailto:a@b` has no host");
}

#[tokio::test]
async fn a_disconnected_cluster_reads_as_before() {
    let error = DisconnectedKubeApi::new("c1")
        .get("/api/v1/pods".to_owned())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cluster `c1` is not connected on this replica"
    );
}

#[test]
fn a_repository_ca_applies_to_its_host_and_port_only() {
    let ca = rcgen::generate_simple_self_signed(vec!["charts.internal".to_owned()]).unwrap();
    let roots = parse_ca_pem(&ca.cert.pem()).unwrap();
    let policy = AddressPolicy::RefuseLocal;
    let clients = HttpClients {
        shared: client(&[], &policy).unwrap(),
        scoped: Some(ScopedTrust::new("https://Charts.Internal/stable", &roots, &policy).unwrap()),
        policy,
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
    host.prepare(&digest, world, async move { Ok(wasm.into()) })
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

#[test]
fn every_limit_is_held_to_a_ceiling_named_in_the_refusal() {
    let head = "name = \"x\"\nversion = \"1\"\nworld = \"inspector\"\n[limits]\n";
    for (key, ceiling, unit) in [
        ("max-output-bytes", 16 << 20, "bytes (16 MiB)"),
        ("max-log-bytes", 1 << 20, "bytes (1 MiB)"),
        ("max-http-response-bytes", 32 << 20, "bytes (32 MiB)"),
        ("max-kube-response-bytes", 64 << 20, "bytes (64 MiB)"),
        ("host-call-timeout-ms", 60_000, "ms"),
        ("timeout-ms", 60_000, "ms"),
    ] {
        // At the ceiling: accepted.
        parse(&format!("{head}{key} = {ceiling}\n"))
            .unwrap_or_else(|e| panic!("{key} = {ceiling}: {e}"));
        // 16 GiB (or as many ms): refused, naming the key, the value and the ceiling.
        assert_eq!(
            manifest_error(&format!("{head}{key} = 17179869184\n")),
            format!(
                "limits: {key} = 17179869184 is over the host's ceiling of {ceiling} {unit}: \
                 {key} must be 1-{ceiling}"
            )
        );
        assert_eq!(
            manifest_error(&format!("{head}{key} = {}\n", ceiling + 1)),
            format!(
                "limits: {key} = {} is over the host's ceiling of {ceiling} {unit}: \
                 {key} must be 1-{ceiling}",
                ceiling + 1
            )
        );
        assert_eq!(
            manifest_error(&format!("{head}{key} = 0\n")),
            format!("limits: {key} must be at least 1")
        );
    }
}

#[test]
fn the_default_ceilings_admit_the_defaults_and_the_shipped_plugins() {
    let ceilings = HostSettings::default().ceilings();
    let minimal = "name = \"x\"\nversion = \"1\"\nworld = \"inspector\"\n";
    Manifest::parse(minimal, ceilings).expect("the default limits are within the ceilings");
    for (file, text) in [
        (
            "builtin/checks",
            include_str!("../../../plugins/builtin/checks/manifest.toml"),
        ),
        (
            "builtin/helm-index",
            include_str!("../../../plugins/builtin/helm-index/manifest.toml"),
        ),
        (
            "builtin/rules",
            include_str!("../../../plugins/builtin/rules/manifest.toml"),
        ),
        (
            "examples/require-labels",
            include_str!("../../../plugins/examples/require-labels/manifest.toml"),
        ),
        (
            "examples/connect-logger",
            include_str!("../../../plugins/examples/connect-logger/manifest.toml"),
        ),
        (
            "examples/require-labels-py",
            include_str!("../../../plugins/examples/require-labels-py/manifest.toml"),
        ),
        (
            "examples/require-labels-js",
            include_str!("../../../plugins/examples/require-labels-js/manifest.toml"),
        ),
        (
            "templates/manifest.toml",
            include_str!("../../../plugins/templates/manifest.toml")
                .replace("{{name}}", "template")
                .replace("{{memory}}", "48")
                .as_str(),
        ),
    ] {
        Manifest::parse(text, ceilings).unwrap_or_else(|e| panic!("plugins/{file}: {e}"));
    }
    // The ceilings themselves, as docs/plugins.md lists them.
    assert_eq!(ceilings.max_output_bytes, 64 << 20);
    assert_eq!(ceilings.max_log_bytes, 1 << 20);
    assert_eq!(ceilings.max_http_response_bytes, 64 << 20);
    assert_eq!(ceilings.max_kube_response_bytes, 128 << 20);
    let too_much = format!("{minimal}[limits]\nmax-log-bytes = 17179869184\n");
    let error = Manifest::parse(&too_much, ceilings)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "invalid plugin manifest: limits: max-log-bytes = 17179869184 is over the host's \
         ceiling of 1048576 bytes (1 MiB): max-log-bytes must be 1-1048576"
    );
}

#[test]
fn the_log_budget_counts_every_byte_and_remembers_an_overflow() {
    let budget = LogBudget::new(10);
    assert!(budget.charge(4));
    assert!(budget.charge(6));
    assert!(!budget.exceeded());
    assert!(!budget.charge(1), "the eleventh byte does not fit");
    assert!(budget.exceeded());
    assert!(budget.charge(0));
    let huge = LogBudget::new(usize::MAX - 1);
    assert!(huge.charge(usize::MAX - 1));
    assert!(!huge.charge(usize::MAX), "no overflow past usize::MAX");
}

#[test]
fn the_serve_flag_reaches_the_plugin_host() {
    let settings = |args: &[&str], vars: &[(&str, &str)]| {
        let env = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = crate::cli::ServeArgs::from_args_and_env(args, &env).unwrap();
        HostSettings::for_config(&crate::config::Config::from_args(args).unwrap())
    };
    assert!(!settings(&[], &[]).http_allow_local, "refused by default");
    assert!(settings(&["--plugin-http-allow-local"], &[]).http_allow_local);
    assert!(settings(&[], &[("PLUGIN_HTTP_ALLOW_LOCAL", "yes")]).http_allow_local);
    assert!(
        !settings(
            &["--plugin-http-allow-local=false"],
            &[("PLUGIN_HTTP_ALLOW_LOCAL", "true")]
        )
        .http_allow_local,
        "the flag wins over its variable"
    );
}

#[test]
fn local_addresses_are_recognised_in_every_form() {
    let kind = |ip: &str| local_address(ip.parse::<IpAddr>().unwrap());
    for (ip, expected) in [
        ("127.0.0.1", "a loopback address"),
        ("127.1.2.3", "a loopback address"),
        ("::1", "a loopback address"),
        (
            "169.254.169.254",
            "a link-local address (cloud metadata services answer there)",
        ),
        (
            "169.254.0.1",
            "a link-local address (cloud metadata services answer there)",
        ),
        ("fe80::1", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("::", "an unspecified address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped local address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped local address"),
        ("::ffff:0.0.0.0", "an IPv4-mapped local address"),
        (
            "::127.0.0.1",
            "an IPv6 address embedding a local IPv4 address",
        ),
        (
            "64:ff9b::169.254.169.254",
            "an IPv6 address embedding a local IPv4 address",
        ),
    ] {
        assert_eq!(kind(ip), Some(expected), "{ip}");
    }
    for ip in [
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "8.8.8.8",
        "169.253.255.255",
        "169.255.0.1",
        "2001:db8::1",
        "fec0::1",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "fd00::1",
    ] {
        assert_eq!(kind(ip), None, "{ip}");
    }
    assert_eq!(
        AddressPolicy::AllowAll.refusal("127.0.0.1".parse().unwrap()),
        None
    );
    assert_eq!(
        AddressPolicy::RefuseLocal.refusal("169.254.169.254".parse().unwrap()),
        Some("a link-local address (cloud metadata services answer there)")
    );
}

/// Serves `router` on `addr` (port 0).
async fn serve(addr: &str, router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    local
}

async fn fetch(clients: &HttpClients, url: &str) -> Result<String, HttpError> {
    let request = OutboundRequest {
        post: false,
        url: url.to_owned(),
        headers: Vec::new(),
        body: None,
    };
    let response = send(clients, &["*".to_owned()], request, 1 << 20).await?;
    Ok(String::from_utf8(response.body).unwrap())
}

fn clients_with(policy: AddressPolicy, resolver: Option<Arc<dyn Resolve>>) -> HttpClients {
    let shared = match resolver {
        Some(resolver) => client_with_resolver(&[], &policy, resolver).unwrap(),
        None => client(&[], &policy).unwrap(),
    };
    HttpClients {
        shared,
        scoped: None,
        policy,
    }
}

fn denied(result: Result<String, HttpError>) -> String {
    match result {
        Err(HttpError::Denied(message)) => message,
        other => panic!("expected a denied error, got {other:?}"),
    }
}

const REFUSED: &str = "plugin HTTP to loopback, link-local and unspecified addresses is refused \
                       (the gateway's --plugin-http-allow-local allows it)";

#[tokio::test]
async fn plugin_http_refuses_local_addresses_unless_allowed() {
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "inside" }));
    let port = serve("127.0.0.1:0", router).await.port();
    let refusing = clients_with(AddressPolicy::RefuseLocal, None);

    // IP literals never reach a resolver: they are checked before the request.
    assert_eq!(
        denied(fetch(&refusing, &format!("http://127.0.0.1:{port}/")).await),
        format!("`127.0.0.1` is a loopback address: {REFUSED}")
    );
    assert_eq!(
        denied(fetch(&refusing, &format!("http://[::ffff:127.0.0.1]:{port}/")).await),
        format!("`::ffff:127.0.0.1` is an IPv4-mapped local address: {REFUSED}")
    );
    // The URL parser's other spellings of an address are the same literal.
    assert_eq!(
        denied(fetch(&refusing, &format!("http://2130706433:{port}/")).await),
        format!("`127.0.0.1` is a loopback address: {REFUSED}")
    );
    assert_eq!(
        denied(fetch(&refusing, "http://169.254.169.254/latest/meta-data/").await),
        format!(
            "`169.254.169.254` is a link-local address (cloud metadata services answer there): \
             {REFUSED}"
        )
    );
    // A name is checked on the addresses it resolves to, when connecting.
    let message = denied(fetch(&refusing, &format!("http://localhost:{port}/")).await);
    assert!(
        message.starts_with("host `localhost` resolves to ")
            && message.ends_with(&format!("a loopback address: {REFUSED}")),
        "{message}"
    );

    // With --plugin-http-allow-local the same requests go through.
    let allowing = clients_with(AddressPolicy::AllowAll, None);
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        assert_eq!(fetch(&allowing, &url).await.unwrap(), "inside", "{url}");
    }
}

/// Resolves names from a table.
struct TableResolver(Vec<(&'static str, Vec<IpAddr>)>);

impl Resolve for TableResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let addrs: Vec<SocketAddr> = self
            .0
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, ips)| ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect())
            .unwrap_or_default();
        Box::pin(async move {
            if addrs.is_empty() {
                return Err("no such host".into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[tokio::test]
async fn redirects_and_names_are_checked_on_every_hop() {
    // 127.0.0.2 plays an internal address, 127.0.0.1 the outside host that redirects there.
    let inside_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let secret = axum::Router::new().route("/", axum::routing::get(|| async { "secret" }));
    let inside = serve("127.0.0.2:0", secret).await.port();
    let redirect = |to: String| move || async move { axum::response::Redirect::temporary(&to) };
    let outside = axum::Router::new()
        .route(
            "/to-literal",
            axum::routing::get(redirect(format!("http://127.0.0.2:{inside}/"))),
        )
        .route(
            "/to-name",
            axum::routing::get(redirect(format!("http://inside.test:{inside}/"))),
        );
    let outside = serve("127.0.0.1:0", outside).await.port();
    let table = || {
        Arc::new(TableResolver(vec![
            ("inside.test", vec![inside_ip]),
            ("outside.test", vec!["127.0.0.1".parse().unwrap()]),
        ])) as Arc<dyn Resolve>
    };
    let to_literal = format!("http://outside.test:{outside}/to-literal");
    let to_name = format!("http://outside.test:{outside}/to-name");

    // Refusing nothing, both redirects reach the inside.
    let open = clients_with(AddressPolicy::Refuse(Vec::new()), Some(table()));
    assert_eq!(fetch(&open, &to_literal).await.unwrap(), "secret");
    assert_eq!(fetch(&open, &to_name).await.unwrap(), "secret");

    // Refusing the inside address, neither does.
    let guarded = clients_with(AddressPolicy::Refuse(vec![inside_ip]), Some(table()));
    assert_eq!(
        denied(fetch(&guarded, &to_literal).await),
        format!("`127.0.0.2` is an address refused by the test: {REFUSED}")
    );
    assert_eq!(
        denied(fetch(&guarded, &to_name).await),
        format!(
            "host `inside.test` resolves to 127.0.0.2, an address refused by the test: {REFUSED}"
        )
    );
}

#[tokio::test]
async fn the_resolver_keeps_only_the_addresses_allowed() {
    let refused: IpAddr = "127.0.0.2".parse().unwrap();
    let allowed: IpAddr = "127.0.0.1".parse().unwrap();
    let resolver = guarded_resolver(
        AddressPolicy::Refuse(vec![refused]),
        Arc::new(TableResolver(vec![
            ("both.test", vec![refused, allowed, refused]),
            ("inside.test", vec![refused]),
        ])),
    );
    let name = |n: &str| n.parse::<Name>().unwrap();
    let addrs: Vec<SocketAddr> = resolver.resolve(name("both.test")).await.unwrap().collect();
    assert_eq!(addrs, [SocketAddr::new(allowed, 0)]);
    let error = match resolver.resolve(name("inside.test")).await {
        Err(error) => error.to_string(),
        Ok(addrs) => panic!("expected a refusal, got {:?}", addrs.collect::<Vec<_>>()),
    };
    assert_eq!(
        error,
        format!(
            "host `inside.test` resolves to 127.0.0.2, an address refused by the test: {REFUSED}"
        )
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_directory_manifest_over_a_ceiling_is_not_loaded_and_the_log_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let component = wat::parse_str("(component)").unwrap();
    let manifest = |name: &str, limits: &str| {
        format!("name = \"{name}\"\nversion = \"1\"\nworld = \"inspector\"\n[limits]\n{limits}")
    };
    for (name, limits) in [
        ("fits", "max-http-response-bytes = 1048576\n"),
        ("greedy", "max-http-response-bytes = 17179869184\n"),
    ] {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            manifest(name, limits),
        )
        .unwrap();
        std::fs::write(dir.path().join(format!("{name}.wasm")), &component).unwrap();
    }
    let database = crate::config::DatabaseUrl::Sqlite(dir.path().join("db/plugins.db"));
    let db = crate::storage::Db::connect(&database).await.unwrap();
    let plugins = super::Plugins::new(
        HostSettings::default(),
        db,
        tokio_util::sync::CancellationToken::new(),
    )
    .unwrap();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let loaded = {
        let _guard = tracing::subscriber::set_default(subscriber);
        plugins.load_directory(dir.path()).await.unwrap()
    };
    assert_eq!(loaded, ["fits"]);
    assert!(matches!(
        plugins.get("greedy").await,
        Err(Error::NotFound(_))
    ));
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains(
            "invalid plugin manifest: limits: max-http-response-bytes = 17179869184 is over the \
             host's ceiling of 67108864 bytes (64 MiB): max-http-response-bytes must be \
             1-67108864"
        ),
        "{log}"
    );
}
