use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::sources::in_cluster;
use super::*;

/// A self-signed certificate and key, generated once for these tests.
fn cert_and_key() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (cert.cert.pem(), cert.key_pair.serialize_pem())
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

fn kubeconfig(cluster: &str, user: &str, current: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\n\
         clusters:\n- name: c\n  cluster:\n{cluster}\n\
         users:\n- name: u\n  user:\n{user}\n\
         contexts:\n- name: main\n  context:\n    cluster: c\n    user: u\n\
         - name: other\n  context:\n    cluster: c\n    user: missing\n"
    )
}

fn api() -> Origin<'static> {
    Origin::api(false)
}

fn resolve_text(text: &str, context: Option<&str>, origin: Origin<'_>) -> Result<ResolvedContext> {
    resolve(&parse_kubeconfig(text)?, context, origin)
}

#[test]
fn token_and_ca_data_resolve_into_a_spec() {
    let (cert, _) = cert_and_key();
    let text = kubeconfig(
        &format!(
            "    server: https://10.0.0.1:6443/\n    certificate-authority-data: {}",
            b64(&cert)
        ),
        "    token: abc.def",
        "main",
    );
    let resolved = resolve_text(&text, None, api()).unwrap();
    assert_eq!(resolved.context, "main");
    assert_eq!(resolved.spec.server, "https://10.0.0.1:6443");
    assert_eq!(resolved.spec.ca_pem.as_deref(), Some(cert.as_str()));
    assert_eq!(
        resolved.spec.auth,
        RequestAuth::Token {
            token: "abc.def".into()
        }
    );
    assert!(resolved.warnings.is_empty());
}

#[test]
fn client_certificates_are_checked() {
    let (cert, key) = cert_and_key();
    let good = kubeconfig(
        "    server: https://k:6443",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}",
            b64(&cert),
            b64(&key)
        ),
        "main",
    );
    let resolved = resolve_text(&good, None, api()).unwrap();
    assert_eq!(resolved.spec.client_cert.unwrap().cert_pem, cert);
    assert_eq!(resolved.spec.auth, RequestAuth::None);

    let bad_cert = kubeconfig(
        "    server: https://k:6443",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}",
            b64("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"),
            b64(&key)
        ),
        "main",
    );
    let err = resolve_text(&bad_cert, None, api()).unwrap_err();
    assert!(matches!(err, SpecError::Certificate(_)), "{err}");

    let no_key = kubeconfig(
        "    server: https://k:6443",
        &format!("    client-certificate-data: {}", b64(&cert)),
        "main",
    );
    let err = resolve_text(&no_key, None, api()).unwrap_err().to_string();
    assert!(err.contains("without client-key"), "{err}");
}

#[test]
fn bad_kubeconfigs_name_the_problem() {
    let cases = [
        ("just: [unbalanced", "malformed kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "is this a kubeconfig"),
        (
            &kubeconfig("    server: https://k", "    token: t", "nope") as &str,
            "context `nope` not found",
        ),
        (
            &kubeconfig("    server: ftp://k", "    token: t", "main"),
            "not an http",
        ),
        (
            &kubeconfig(
                "    server: https://k",
                "    auth-provider:\n      name: gcp\n      config: {}",
                "main",
            ),
            "auth-provider `gcp`",
        ),
        (
            &kubeconfig("    server: https://k", "    {}", "main"),
            "no credentials",
        ),
        (
            &kubeconfig(
                "    server: https://k\n    certificate-authority-data: '%%%'",
                "    token: t",
                "main",
            ),
            "not base64",
        ),
    ];
    for (text, needle) in cases {
        let err = resolve_text(text, None, api()).unwrap_err().to_string();
        assert!(err.contains(needle), "`{err}` should mention `{needle}`");
    }
    let text = kubeconfig("    server: https://k", "    token: t", "main");
    let err = resolve_text(&text, Some("other"), api())
        .unwrap_err()
        .to_string();
    assert!(err.contains("user `missing`"), "{err}");
}

#[test]
fn the_api_refuses_file_references_and_exec_unless_allowed() {
    let files = kubeconfig(
        "    server: https://k\n    certificate-authority: /etc/hostname",
        "    token: t",
        "main",
    );
    let err = resolve_text(&files, None, api()).unwrap_err().to_string();
    assert!(err.contains("file reference"), "{err}");

    let exec = kubeconfig(
        "    server: https://k",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: get-token\n      args: [--cluster, x]\n      env:\n      - name: A\n        value: b",
        "main",
    );
    let err = resolve_text(&exec, None, api()).unwrap_err().to_string();
    assert!(err.contains("--allow-exec-credentials"), "{err}");
    let resolved = resolve_text(&exec, None, Origin::api(true)).unwrap();
    let RequestAuth::Exec(spec) = resolved.spec.auth else {
        panic!("exec expected");
    };
    assert_eq!(spec.command, "get-token");
    assert_eq!(spec.args, ["--cluster", "x"]);
    assert_eq!(spec.env.get("A").map(String::as_str), Some("b"));
}

#[test]
fn local_imports_inline_files_and_keep_token_files_as_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = cert_and_key();
    std::fs::write(dir.path().join("ca.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("token"), "file-token\n").unwrap();
    let text = kubeconfig(
        "    server: https://k\n    certificate-authority: ca.crt\n    insecure-skip-tls-verify: false",
        "    tokenFile: token",
        "main",
    );
    let origin = Origin {
        base_dir: Some(dir.path()),
        allow_files: true,
        allow_exec: true,
    };
    let resolved = resolve_text(&text, None, origin).unwrap();
    assert_eq!(resolved.spec.ca_pem.as_deref(), Some(cert.as_str()));
    assert_eq!(
        resolved.spec.auth,
        RequestAuth::TokenFile {
            path: dir.path().join("token").to_string_lossy().into_owned()
        }
    );
    let missing = kubeconfig("    server: https://k", "    tokenFile: nope", "main");
    let err = resolve_text(&missing, None, origin)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read tokenFile"), "{err}");
}

#[test]
fn insecure_skip_tls_verify_is_warned() {
    let text = kubeconfig(
        "    server: https://k\n    insecure-skip-tls-verify: true",
        "    token: t",
        "main",
    );
    let resolved = resolve_text(&text, None, api()).unwrap();
    assert!(resolved.spec.insecure_skip_tls_verify);
    assert_eq!(resolved.warnings.len(), 1);
    assert!(resolved.warnings[0].contains("insecure-skip-tls-verify"));
}

#[test]
fn in_cluster_uses_the_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = cert_and_key();
    std::fs::write(dir.path().join("ca.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("token"), "sa-token").unwrap();
    let spec = in_cluster(dir.path(), Some("10.96.0.1"), Some("443")).unwrap();
    assert_eq!(spec.server, "https://10.96.0.1:443");
    assert!(matches!(spec.auth, RequestAuth::TokenFile { .. }));
    let spec = in_cluster(dir.path(), Some("fd00::1"), None).unwrap();
    assert_eq!(spec.server, "https://[fd00::1]:443");
    assert!(in_cluster(dir.path(), None, None).is_err());
}

fn spec_of(cluster: &str, user: &str) -> Result<ClusterSpec> {
    resolve_text(&kubeconfig(cluster, user, "main"), None, api()).map(|r| r.spec)
}

#[test]
fn credentials_in_the_server_url_are_refused_and_never_shown() {
    let cases = [
        ("https://admin:s3cret@k:6443", "user info"),
        ("https://s3cret@k:6443/prefix", "user info"),
        ("https://k:6443?token=s3cret", "query string"),
        ("https://k:6443/prefix/?access_token=s3cret", "query string"),
        ("https://k:6443/#s3cret", "fragment"),
        ("ftp://admin:s3cret@k", "user info"),
    ];
    for (server, what) in cases {
        let err = spec_of(&format!("    server: '{server}'"), "    token: t").unwrap_err();
        assert!(
            matches!(err, SpecError::ServerCredentials { .. }),
            "{server}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(what), "{server}: `{text}` should say {what}");
        assert!(
            !text.contains("s3cret"),
            "{server}: `{text}` shows the secret"
        );
    }
    // A URL that does not parse at all is not shown with its user info either.
    let err = spec_of("    server: 'https://admin:s3cret@k k'", "    token: t")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(
        mask_url("https://u:p@k:6443/a/b?x=1"),
        "https://***@k:6443/a/b?***"
    );
    assert_eq!(mask_url("https://k:6443/a"), "https://k:6443/a");
}

#[test]
fn credentials_over_plain_http_need_the_operator_to_allow_them() {
    let (cert, key) = cert_and_key();
    let strict = ServerPolicy::default();
    let allow = ServerPolicy {
        allow_insecure_credentials: true,
        ..ServerPolicy::default()
    };
    for (user, credential) in [
        ("    token: t", "bearer token"),
        ("    username: u\n    password: p", "basic auth"),
    ] {
        let spec = spec_of("    server: http://k:8080", user).unwrap();
        let err = check_policy(&spec, strict).unwrap_err();
        assert!(
            matches!(err, SpecError::InsecureCredentials { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(credential), "{text}");
        assert!(
            text.contains("--allow-insecure-cluster-credentials"),
            "{text}"
        );
        check_policy(&spec, allow).unwrap();
        let spec = spec_of("    server: https://k:8443", user).unwrap();
        check_policy(&spec, strict).unwrap();
    }
    // No secret travels in a header with a client certificate (which plain HTTP never sends).
    let spec = spec_of(
        "    server: http://k:8080",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}",
            b64(&cert),
            b64(&key)
        ),
    )
    .unwrap();
    check_policy(&spec, strict).unwrap();
}

#[test]
fn local_servers_are_refused_when_the_operator_denies_them() {
    let deny = ServerPolicy {
        deny_local: true,
        ..ServerPolicy::default()
    };
    for (server, kind) in [
        ("https://127.0.0.1:6443", "loopback"),
        ("https://127.3.2.1", "loopback"),
        ("https://[::1]:6443", "loopback"),
        ("https://[::ffff:127.0.0.1]:6443", "loopback"),
        ("https://169.254.169.254", "link-local"),
        ("https://[fe80::1]:6443", "link-local"),
        ("https://0.0.0.0:6443", "unspecified"),
        ("https://[::]:6443", "unspecified"),
    ] {
        let spec = spec_of(&format!("    server: '{server}'"), "    token: t").unwrap();
        check_policy(&spec, ServerPolicy::default()).unwrap();
        let err = check_policy(&spec, deny).unwrap_err();
        assert!(
            matches!(err, SpecError::LocalServer { .. }),
            "{server}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(kind), "{server}: {text}");
        assert!(text.contains("--deny-local-cluster-servers"), "{text}");
    }
    for server in [
        "https://10.0.0.1:6443",
        "https://[fd00::1]:6443",
        "https://k.example:6443",
    ] {
        let spec = spec_of(&format!("    server: '{server}'"), "    token: t").unwrap();
        check_policy(&spec, deny).unwrap();
    }
}

#[test]
fn a_ca_that_is_not_x509_is_refused_at_registration() {
    // PEM framing around bytes that are no certificate: rustls would ignore it at connect and
    // trust nothing.
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let err = spec_of(
        &format!(
            "    server: https://k\n    certificate-authority-data: {}",
            b64(garbage)
        ),
        "    token: t",
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::Certificate(_)), "{err}");
    assert!(
        err.to_string().contains("no usable CA certificate"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), garbage).unwrap();
    let local = Origin {
        base_dir: Some(dir.path()),
        allow_files: true,
        allow_exec: false,
    };
    let text = kubeconfig(
        "    server: https://k\n    certificate-authority: ca.crt",
        "    token: t",
        "main",
    );
    let err = resolve_text(&text, None, local).unwrap_err();
    assert!(
        err.to_string().contains("no usable CA certificate"),
        "{err}"
    );
}

#[test]
fn tokens_that_cannot_be_a_header_are_refused_at_registration() {
    let err = spec_of(
        "    server: https://k",
        "    token: \"s3cret\\nX-Injected: 1\"",
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::Credential(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("HTTP header"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\u{1}token\n").unwrap();
    let local = Origin {
        base_dir: Some(dir.path()),
        allow_files: true,
        allow_exec: false,
    };
    let text = kubeconfig("    server: https://k", "    tokenFile: token", "main");
    let err = resolve_text(&text, None, local).unwrap_err().to_string();
    assert!(
        err.contains("tokenFile") && err.contains("HTTP header"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn parse_errors_say_where_and_what_but_never_echo_the_text() {
    let cases = [
        // A syntax error on the line after a token.
        (
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: s3cret-token\n  \
             extra: [unclosed\n",
            "YAML syntax error",
        ),
        // A secret where a list belongs.
        (
            "apiVersion: v1\nkind: Config\nclusters: s3cret-token\n",
            "expected sequence",
        ),
        // A secret where text belongs.
        (
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: [s3cret-token]\n",
            "wrong type",
        ),
    ];
    for (text, kind) in cases {
        let err = parse_kubeconfig(text).unwrap_err();
        assert!(matches!(err, SpecError::Malformed(_)), "{err}");
        let message = err.to_string();
        assert!(!message.contains("s3cret"), "`{message}` echoes the input");
        assert!(message.contains(kind), "`{message}` should say {kind}");
        assert!(
            message.contains("line ") && message.contains("column "),
            "`{message}` should say where"
        );
    }
}
