use std::time::Duration;

use http::HeaderMap;

use super::admit::is_long_lived;
use super::headers::{
    head_timeout, parse_go_duration, strip_hop_by_hop, strip_request_headers, verb,
};
use super::path::is_dot_segment;
use super::*;
use http::header::{self, HeaderValue};

#[test]
fn targets_split_into_cluster_and_path() {
    let t = parse_target("/k8s/clusters/prod/api/v1/pods").unwrap();
    assert_eq!(
        t,
        Target {
            cluster: "prod",
            path: "/api/v1/pods"
        }
    );
    let t = parse_target("/k8s/clusters/prod").unwrap();
    assert_eq!(t.path, "/");
    let t = parse_target("/k8s/clusters/a.b_c:d/version").unwrap();
    assert_eq!(t.cluster, "a.b_c:d");
}

#[test]
fn hostile_paths_are_refused() {
    for path in [
        "/k8s/clusters/a%2Fb/api",
        "/k8s/clusters/a%2fb/api",
        "/k8s/clusters/%2e%2e/api",
        "/k8s/clusters/prod/api/../../secret",
        "/k8s/clusters/prod/api/%2e%2e/x",
        "/k8s/clusters/prod/api/%2E./x",
        "/k8s/clusters/prod/./api",
        "/k8s/clusters//api",
        "/k8s/clusters/-bad/api",
        // Spellings something behind the cluster's address might decode into another path.
        "/k8s/clusters/prod/api/v1/pods%2F..%2Fsecrets",
        "/k8s/clusters/prod/api/v1/pods%2fx",
        "/k8s/clusters/prod/api/%252e%252e/secrets",
        "/k8s/clusters/prod/api/v1/%25",
        "/k8s/clusters/prod/api/v1/pods/..;/secrets",
        "/k8s/clusters/prod/api/v1/pods;x=1",
        "/k8s/clusters/prod/api/v1/pods%3b",
        "/k8s/clusters/prod/api/v1/pods%5C..",
        "/k8s/clusters/prod/api/v1/pods\\..",
        "/k8s/clusters/prod/api/v1/pods%00",
        "/k8s/clusters/prod/api/v1/pods%7F",
        "/k8s/clusters/prod/api/v1/pods%2",
        "/k8s/clusters/prod/api/v1/pods%zz",
    ] {
        let err = parse_target(path).unwrap_err();
        assert_eq!(err.code, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[test]
fn dot_segments_in_every_spelling() {
    for segment in [".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "%2E."] {
        assert!(is_dot_segment(segment), "{segment}");
    }
    for segment in [
        "",
        "...",
        "%2e%2e%2e",
        ".a",
        "a.",
        "%2",
        "%2f",
        "%2e%",
        "pods",
        ".well-known",
    ] {
        assert!(!is_dot_segment(segment), "{segment}");
    }
    // Ordinary percent-encodings pass (a field selector's `=` in a path, a space).
    assert!(parse_target("/k8s/clusters/prod/api/v1/pods/a%3Db%20c").is_ok());
    // Names with dots are ordinary segments.
    let t = parse_target("/k8s/clusters/prod/api/v1/namespaces/a.b/pods/...x").unwrap();
    assert_eq!(t.path, "/api/v1/namespaces/a.b/pods/...x");
}

#[test]
fn credentials_identity_and_hop_headers_are_stripped() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("authorization", "Bearer portico"),
        ("impersonate-user", "root"),
        ("impersonate-group", "system:masters"),
        ("impersonate-extra-scopes", "x"),
        ("impersonate-uid", "0"),
        ("connection", "keep-alive, x-custom-hop"),
        ("x-custom-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("host", "gateway"),
        ("x-remote-user", "system:admin"),
        ("x-remote-group", "system:masters"),
        ("x-remote-extra-scopes", "all"),
        ("cookie", "session=1"),
        ("forwarded", "for=203.0.113.7"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
        ("accept", "application/json"),
        ("user-agent", "kubectl"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    let mut plain = headers.clone();
    strip_request_headers(&mut plain, false);
    let mut left: Vec<&str> = plain.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "user-agent"]);

    let mut upgrade = headers;
    strip_request_headers(&mut upgrade, true);
    assert_eq!(upgrade["upgrade"], "websocket");
    assert!(upgrade.get("authorization").is_none());
}

#[test]
fn hop_headers_named_in_any_connection_line_in_any_case_are_stripped() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("connection", "X-Hop-One"),
        ("connection", " x-hop-two ,Upgrade"),
        ("x-hop-one", "1"),
        ("x-hop-two", "2"),
        ("upgrade", "SPDY/3.1"),
        ("trailer", "x-checksum"),
        ("transfer-encoding", "chunked"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authenticate", "Basic"),
        ("proxy-authorization", "Basic eA=="),
        ("authorization", "Bearer cluster"),
        ("cookie", "a=1"),
        ("content-type", "application/json"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    // A response: only the hop-by-hop headers go; the rest is the cluster's answer.
    let mut response = headers.clone();
    strip_hop_by_hop(&mut response, false);
    let mut left: Vec<&str> = response.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "authorization",
            "content-type",
            "cookie",
            "proxy-authorization"
        ]
    );
    // An upgrade keeps `Upgrade` (which its `Connection` names), and nothing else of the hop.
    let mut upgrade = headers;
    strip_request_headers(&mut upgrade, true);
    let mut left: Vec<&str> = upgrade.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-type", "upgrade"]);
}

#[test]
fn upgrades_are_detected_from_connection_tokens() {
    let mut headers = HeaderMap::new();
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    assert!(!is_upgrade(&headers));
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    assert!(is_upgrade(&headers));
}

#[test]
fn audit_verbs() {
    assert_eq!(verb(&Method::GET, "/api/v1/pods", false), None);
    assert_eq!(
        verb(&Method::DELETE, "/api/v1/namespaces/a/pods/b", false).as_deref(),
        Some("delete")
    );
    assert_eq!(
        verb(&Method::GET, "/api/v1/namespaces/a/pods/b/exec", true).as_deref(),
        Some("exec")
    );
    assert_eq!(
        verb(
            &Method::POST,
            "/api/v1/namespaces/a/pods/b/portforward",
            false
        )
        .as_deref(),
        Some("portforward")
    );
    assert_eq!(verb(&Method::GET, "/x", true).as_deref(), Some("upgrade"));
}

#[test]
fn head_timeouts_follow_requested_server_timeouts() {
    let base = Duration::from_secs(60);
    assert_eq!(head_timeout(base, None), base);
    assert_eq!(
        head_timeout(base, Some("watch=1&timeoutSeconds=300")),
        Duration::from_secs(305)
    );
    assert_eq!(
        head_timeout(base, Some("timeout=2m30s")),
        Duration::from_secs(155)
    );
    assert_eq!(head_timeout(base, Some("timeout=10s")), base);
    assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_go_duration("5x"), None);
}

#[test]
fn long_lived_requests_are_watches_followed_logs_and_upgrades() {
    assert!(is_long_lived("/api/v1/pods", Some("watch=true"), false));
    assert!(is_long_lived(
        "/api/v1/pods",
        Some("limit=5&watch=1"),
        false
    ));
    assert!(is_long_lived("/api/v1/watch/pods", None, false));
    assert!(is_long_lived(
        "/api/v1/namespaces/a/pods/p/log",
        Some("follow=true"),
        false
    ));
    assert!(is_long_lived(
        "/api/v1/namespaces/a/pods/p/exec",
        None,
        true
    ));
    assert!(!is_long_lived("/api/v1/pods", Some("watch=false"), false));
    assert!(!is_long_lived("/api/v1/pods", None, false));
    assert!(!is_long_lived(
        "/api/v1/namespaces/a/pods/p/log",
        None,
        false
    ));
}
