//! The security review's findings, each tried as an attacker would, against a gateway in front
//! of the simulator: metrics that anyone could grow, impersonation that failed open, path
//! spellings, identity headers, connection timeouts and caps, revoked tokens' streams, and the
//! audit of refused requests and admin changes.

use std::time::{Duration, Instant};

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// A plain-HTTP gateway (so raw sockets can talk to it) with `extra` flags and the simulator
/// connected as `sim`.
async fn setup(extra: &[&str]) -> anyhow::Result<(KubeSim, TestGateway)> {
    let sim = KubeSim::start().await?;
    let gw = TestGateway::builder()
        .args(["--plain-http"])
        .args(extra.iter().copied())
        .start()
        .await;
    let connected = gw.add_cluster("sim", &sim.kubeconfig()).await?;
    assert_eq!(connected["state"], "connected", "{connected}");
    Ok((sim, gw))
}

fn addr(gw: &TestGateway) -> String {
    gw.url.trim_start_matches("http://").to_owned()
}

/// Sends `request` as written over a fresh connection and reads until the server closes.
async fn raw(addr: &str, request: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer)).await??;
    Ok(answer)
}

/// How long until the server closes `stream` (reading and discarding what it sends); `None`
/// when it is still open after `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + bound),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn metrics(gw: &TestGateway) -> String {
    gw.as_admin(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_for_made_up_clusters_share_one_metric_series() -> anyhow::Result<()> {
    let (_sim, gw) = setup(&[]).await?;
    let client = reqwest::Client::new();
    for i in 0..40 {
        let id = format!("x{i:03}{}", "a".repeat(246));
        let response = client
            .get(format!("{}/k8s/clusters/{id}/api", gw.url))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Authenticated, but for a cluster that does not exist: also not a series of its own.
    let response = gw
        .as_admin(Method::GET, "/k8s/clusters/no-such-cluster/api")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    gw.as_admin(Method::GET, "/k8s/clusters/sim/api")
        .send()
        .await?;

    let text = metrics(&gw).await;
    assert!(!text.contains("aaaaaaaa"), "a made-up id got a series");
    assert!(
        !text.contains("no-such-cluster"),
        "an unknown id got a series"
    );
    assert!(
        text.contains(r#"portico_proxy_requests_total{cluster="_unregistered",code="401"} 40"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portico_proxy_requests_total{cluster="_unregistered",code="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portico_proxy_requests_total{cluster="sim",code="200"} 1"#),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_admin_token_or_the_separate_listener() -> anyhow::Result<()> {
    let (_sim, gw) = setup(&["--metrics-listen", "127.0.0.1:0"]).await?;
    let anonymous = gw.request(Method::GET, "/metrics").send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let user = gw
        .create_token(json!({"name": "reader", "grants": [{"cluster": "sim", "access": "read"}]}))
        .await?;
    let as_user = gw.as_token(&user, Method::GET, "/metrics").send().await?;
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    assert!(metrics(&gw).await.contains("portico_http_requests_total"));

    // The metrics listener serves /metrics without a token, and nothing else.
    let listener = gw.gateway().metrics_addr().expect("a metrics listener");
    let scraped = reqwest::get(format!("http://{listener}/metrics")).await?;
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped
            .text()
            .await?
            .contains("portico_http_requests_total")
    );
    let other = reqwest::get(format!("http://{listener}/api/v1/tokens")).await?;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let proxy = reqwest::get(format!("http://{listener}/k8s/clusters/sim/api")).await?;
    assert_eq!(proxy.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_names_that_cannot_be_sent_are_refused_never_dropped() -> anyhow::Result<()> {
    let (sim, gw) = setup(&[]).await?;
    for body in [
        json!({"name": "bob", "impersonateUser": "bob\n", "grants": []}),
        json!({"name": "bob", "impersonateUser": " bob", "grants": []}),
        json!({"name": "bob", "impersonateUser": "bøb", "grants": []}),
        json!({"name": "bob", "impersonateGroups": ["ops\r"], "grants": []}),
        json!({"name": "bob", "impersonateGroups": [""], "grants": []}),
    ] {
        let response = gw
            .as_admin(Method::POST, "/api/v1/tokens")
            .json(&body)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await?;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("impersonate"),
            "{error}"
        );
    }

    // A token stored before names were checked: the proxy refuses rather than sending the
    // request with the gateway's own credential.
    let secret = portico::testing::generate_token();
    let token = portico::records::auth::Token {
        id: "legacy".to_owned(),
        name: "legacy".to_owned(),
        role: portico::records::auth::Role::User,
        grants: vec![portico::records::auth::Grant {
            cluster: "sim".to_owned(),
            access: portico::records::auth::Access::Write,
            impersonate: true,
        }],
        impersonate_user: Some("bob\n".to_owned()),
        impersonate_groups: Vec::new(),
        created_at: 0,
        expires_at: None,
    };
    gw.gateway()
        .app()
        .db
        .insert_token(&token, &portico::testing::token_hash(&secret))
        .await?;
    let before = sim.requests().len();
    let response = gw
        .as_token(
            &secret,
            Method::GET,
            "/k8s/clusters/sim/api/v1/namespaces/default/pods",
        )
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let status: Value = response.json().await?;
    assert_eq!(status["kind"], "Status", "{status}");
    assert!(
        sim.requests()[before..]
            .iter()
            .all(|r| !r.path.contains("/pods")),
        "the request reached the cluster"
    );
    portico_e2e::fleet::eventually("the refusal in the audit log", WAIT, || async {
        audit(&gw, "kind=proxy")
            .await
            .iter()
            .any(|e| e["tokenName"] == "legacy" && e["status"] == 403 && e["verb"] == "get")
            .then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slashes_double_encoding_and_path_parameters_are_refused() -> anyhow::Result<()> {
    let (sim, gw) = setup(&[]).await?;
    let token = gw.admin_token.clone().unwrap();
    let before = sim.requests().len();
    for path in [
        "/api/v1/namespaces/default/pods%2F..%2F..%2Fsecrets",
        "/api/v1/namespaces/default/pods%2fx",
        "/api/v1/namespaces/%252e%252e/secrets",
        "/api/v1/namespaces/default/pods/..;/secrets",
        "/api/v1/namespaces/default/pods%3B/x",
        "/api/v1/namespaces/default/pods%5c..%5csecrets",
        "/api/v1/namespaces/default/pods/x%00",
        "/api/v1/namespaces/default/pods/%zz",
    ] {
        let answer = raw(
            &addr(&gw),
            &format!(
                "GET /k8s/clusters/sim{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \
                 {token}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await?;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    assert_eq!(
        sim.requests().len(),
        before,
        "a refused path reached the cluster"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_cookie_and_address_headers_of_the_client_never_reach_the_cluster()
-> anyhow::Result<()> {
    let (sim, gw) = setup(&[]).await?;
    let response = gw
        .as_admin(
            Method::GET,
            "/k8s/clusters/sim/api/v1/namespaces/default/configmaps",
        )
        .header("X-Remote-User", "system:admin")
        .header("X-Remote-Group", "system:masters")
        .header("X-Remote-Extra-Scopes", "all")
        .header("Cookie", "portico_session=secret")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("Forwarded", "for=203.0.113.7")
        .header("X-Real-Ip", "203.0.113.7")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let request = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path_only() == "/api/v1/namespaces/default/configmaps")
        .expect("the request reached the simulator");
    for name in [
        "x-remote-user",
        "x-remote-group",
        "x-remote-extra-scopes",
        "cookie",
        "forwarded",
        "x-real-ip",
    ] {
        assert_eq!(request.header(name), None, "{name} was forwarded");
    }
    // Set from the TCP peer (loopback here), the client's claim gone.
    assert_eq!(request.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed_while_others_are_served() -> anyhow::Result<()>
{
    let (sim, gw) = setup(&[
        "--http-header-timeout-seconds",
        "1",
        "--http-idle-timeout-seconds",
        "3",
    ])
    .await?;
    let addr = addr(&gw);
    let bound = Duration::from_secs(10);

    // Trickled headers: cut off by the header timeout, although bytes keep coming.
    let mut slow = TcpStream::connect(&addr).await?;
    slow.write_all(b"GET /health/live HTTP/1.1\r\n").await?;
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if slow.write_all(b"X-A: b\r\n").await.is_err() {
                break;
            }
        }
    };
    let mut silent = TcpStream::connect(&addr).await?;
    let (_, silent_closed) = tokio::join!(trickle, closed_within(&mut silent, bound));
    assert!(silent_closed.is_some(), "a silent connection was kept open");
    assert!(
        closed_within(&mut slow, bound).await.is_some(),
        "a slow-header connection was kept open"
    );

    // A keep-alive connection after its request: idle, closed by the idle timeout.
    let mut idle = TcpStream::connect(&addr).await?;
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await?;
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Not closed by the 1 s header timeout: it is idle, not slow.
    assert_eq!(
        closed_within(&mut idle, Duration::from_millis(1500)).await,
        None
    );
    assert!(
        closed_within(&mut idle, bound).await.is_some(),
        "an idle keep-alive connection was kept open"
    );

    // A quiet watch is a request in flight, not an idle connection.
    let token = gw.admin_token.clone().unwrap();
    let mut watch = TcpStream::connect(&addr).await?;
    watch
        .write_all(
            format!(
                "GET /k8s/clusters/sim/api/v1/namespaces/default/configmaps?watch=true \
                 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let n = watch.read(&mut buf).await?;
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "after-idle", "namespace": "default"}}))?;
    let mut seen = String::new();
    while !seen.contains("after-idle") {
        let n = tokio::time::timeout(bound, watch.read(&mut buf)).await??;
        assert!(n > 0, "the watch was closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    // Everyone else is served throughout.
    let live = gw.request(Method::GET, "/health/live").send().await?;
    assert_eq!(live.status(), StatusCode::OK);
    let text = metrics(&gw).await;
    assert!(
        text.contains(
            r#"portico_http_connections_closed_by_gateway_total{reason="header_timeout"}"#
        ),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_clients_wait_for_a_free_slot() -> anyhow::Result<()> {
    // No cluster: the harness's own client would hold a pooled connection.
    let gw = TestGateway::builder()
        .args(["--plain-http", "--max-connections", "3"])
        .start()
        .await;
    let addr = addr(&gw);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&addr).await?;
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await??;
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    // A fourth connection is not served while three are open…
    let mut fourth = TcpStream::connect(&addr).await?;
    fourth
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_millis(700), fourth.read_to_end(&mut answer)).await;
    assert!(early.is_err(), "served past the cap: {answer:?}");
    // …and is as soon as one closes.
    drop(held.pop());
    tokio::time::timeout(WAIT, fourth.read_to_end(&mut answer)).await??;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
    Ok(())
}

/// Opens a watch as `token`; returns the response (head received).
async fn open_watch(gw: &TestGateway, token: &str) -> anyhow::Result<reqwest::Response> {
    Ok(gw
        .as_token(
            token,
            Method::GET,
            "/k8s/clusters/sim/api/v1/namespaces/default/configmaps?watch=true",
        )
        .send()
        .await?)
}

/// Reads `watch` until it ends; `Ok(true)` when it ended (cut or closed) within `bound`.
async fn ends_within(watch: &mut reqwest::Response, bound: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, watch.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_expired_token_loses_its_open_watches() -> anyhow::Result<()> {
    let (_sim, gw) = setup(&[]).await?;
    let grants = json!([{"cluster": "sim", "access": "read"}]);
    let response = gw
        .as_admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "revoked", "grants": grants}))
        .send()
        .await?;
    let created: Value = response.json().await?;
    let revoked = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let expiring = gw
        .create_token(json!({"name": "expiring", "grants": grants, "ttlSeconds": 4}))
        .await?;
    let kept = gw
        .create_token(json!({"name": "kept", "grants": grants}))
        .await?;

    let mut revoked_watch = open_watch(&gw, &revoked).await?;
    let mut expiring_watch = open_watch(&gw, &expiring).await?;
    let mut kept_watch = open_watch(&gw, &kept).await?;
    for watch in [&revoked_watch, &expiring_watch, &kept_watch] {
        assert_eq!(watch.status(), StatusCode::OK);
    }
    let deleted = gw
        .as_admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(
        ends_within(&mut revoked_watch, Duration::from_secs(3)).await,
        "a deleted token's watch stayed open"
    );
    // Expiry (4 s) is noticed within the 5 s re-check.
    assert!(
        ends_within(&mut expiring_watch, Duration::from_secs(15)).await,
        "an expired token's watch stayed open"
    );
    assert!(
        !ends_within(&mut kept_watch, Duration::from_millis(500)).await,
        "a valid token's watch was closed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_requests_per_token_are_capped() -> anyhow::Result<()> {
    let (sim, gw) = setup(&["--max-streams-per-token", "2"]).await?;
    let token = gw
        .create_token(json!({"name": "watcher", "grants": [{"cluster": "sim", "access": "read"}]}))
        .await?;
    let other = gw
        .create_token(json!({"name": "other", "grants": [{"cluster": "sim", "access": "read"}]}))
        .await?;
    let first = open_watch(&gw, &token).await?;
    let second = open_watch(&gw, &token).await?;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let third = open_watch(&gw, &token).await?;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let status: Value = third.json().await?;
    assert_eq!(status["reason"], "TooManyRequests", "{status}");
    // Short requests are not limited, nor are other tokens.
    let list = gw
        .as_token(&token, Method::GET, "/k8s/clusters/sim/api/v1/namespaces")
        .send()
        .await?;
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(open_watch(&gw, &other).await?.status(), StatusCode::OK);
    // A closed watch frees its slot (once the gateway notices: events make it write).
    drop(first);
    let mut n = 0;
    let again = portico_e2e::fleet::eventually("a freed watch slot", WAIT, || {
        n += 1;
        let created = sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("nudge-{n}"), "namespace": "default"}}));
        async {
            created.ok()?;
            let response = open_watch(&gw, &token).await.ok()?;
            (response.status() == StatusCode::OK).then_some(response)
        }
    })
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    Ok(())
}

async fn audit(gw: &TestGateway, query: &str) -> Vec<Value> {
    let response = gw
        .as_admin(Method::GET, &format!("/api/v1/audit?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_proxy_requests_and_admin_changes_are_audited() -> anyhow::Result<()> {
    let (_sim, gw) = setup(&[]).await?;
    let reader = gw
        .create_token(json!({"name": "reader", "grants": [{"cluster": "sim", "access": "read"}]}))
        .await?;
    let anonymous = gw
        .request(Method::GET, "/k8s/clusters/sim/api/v1/secrets")
        .send()
        .await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let write = gw
        .as_token(
            &reader,
            Method::POST,
            "/k8s/clusters/sim/api/v1/namespaces/default/configmaps",
        )
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let refused_change = gw
        .as_token(&reader, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "escalate", "role": "admin"}))
        .send()
        .await?;
    assert_eq!(refused_change.status(), StatusCode::FORBIDDEN);

    let proxy = portico_e2e::fleet::eventually("proxy audit entries", WAIT, || async {
        let entries = audit(&gw, "kind=proxy").await;
        (entries.len() >= 2).then_some(entries)
    })
    .await;
    let has = |entries: &[Value], check: &dyn Fn(&Value) -> bool| entries.iter().any(check);
    assert!(
        has(&proxy, &|e| e["status"] == 401
            && e["tokenName"] == ""
            && e["path"] == "/api/v1/secrets"
            && e["source"] == "127.0.0.1"),
        "{proxy:?}"
    );
    assert!(
        has(&proxy, &|e| e["status"] == 403
            && e["tokenName"] == "reader"
            && e["verb"] == "post"),
        "{proxy:?}"
    );
    let api = portico_e2e::fleet::eventually("admin API audit entries", WAIT, || async {
        let entries = audit(&gw, "kind=api").await;
        (entries.len() >= 4).then_some(entries)
    })
    .await;
    // The token created above (201) and the refused escalation (403), plus the cluster's
    // registration and connect from the set-up.
    assert!(
        has(&api, &|e| e["path"] == "/api/v1/tokens"
            && e["status"] == 201
            && e["tokenName"] == "admin"),
        "{api:?}"
    );
    assert!(
        has(&api, &|e| e["path"] == "/api/v1/tokens"
            && e["status"] == 403
            && e["tokenName"] == "reader"),
        "{api:?}"
    );
    assert!(
        has(&api, &|e| e["path"] == "/api/v1/clusters/sim/connect"
            && e["verb"] == "post"),
        "{api:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_token_loses_its_open_exec_session() -> anyhow::Result<()> {
    // kubectl sends tokens only over TLS: the gateway's default HTTPS.
    let sim = KubeSim::start().await?;
    sim.seed_pods("default", 1, 1);
    let gw = TestGateway::builder().start().await;
    gw.add_cluster("sim", &sim.kubeconfig()).await?;
    let created: Value = gw
        .as_admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "operator", "grants": [{"cluster": "sim", "access": "write"}]}))
        .send()
        .await?
        .json()
        .await?;
    let token = created["token"].as_str().unwrap();
    let kubectl = portico_e2e::kubectl::Kubectl::new(&gw.exported_kubeconfig("sim", token).await?)?;
    let mut session = kubectl.spawn(&[
        "exec",
        "pod-00000",
        "--",
        "sh",
        "-c",
        "echo started; sleep 600",
    ])?;
    session
        .wait_for_line(WAIT, |line| line == "started")
        .await?;
    let deleted = gw
        .as_admin(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", created["id"].as_str().unwrap()),
        )
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    // The spliced session is cut: kubectl ends instead of sleeping for ten minutes.
    let code = session.wait(Duration::from_secs(15)).await?;
    assert_ne!(code, 0, "an exec cut by revocation is not a success");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_past_the_retention_are_deleted() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let gw = TestGateway::builder()
        .args([
            "--plain-http",
            "--admin-token",
            "audit-retention-admin-token",
        ])
        .data_dir(data.path())
        .start()
        .await;
    let day = 86_400_000;
    let now = portico::testing::now_millis();
    let entry = |at: i64, path: &str| portico::records::audit::AuditEntry {
        at,
        kind: portico::records::audit::AuditKind::Api,
        token_id: String::new(),
        token_name: "admin".to_owned(),
        cluster: String::new(),
        verb: "post".to_owned(),
        path: path.to_owned(),
        status: 201,
        source: "127.0.0.1".to_owned(),
    };
    gw.gateway()
        .app()
        .db
        .insert_audit(&[
            entry(now - 3 * day, "/old"),
            entry(now - day / 2, "/recent"),
        ])
        .await?;
    gw.stop().await;
    // Pruning runs at start and hourly.
    let gw = TestGateway::builder()
        .args([
            "--plain-http",
            "--admin-token",
            "audit-retention-admin-token",
            "--audit-retention-days",
            "2",
        ])
        .data_dir(data.path())
        .start()
        .await;
    portico_e2e::fleet::eventually("the old entry deleted", WAIT, || async {
        let paths: Vec<String> = audit(&gw, "kind=api")
            .await
            .iter()
            .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
            .collect();
        (!paths.contains(&"/old".to_owned())).then_some(paths)
    })
    .await
    .contains(&"/recent".to_owned())
    .then_some(())
    .expect("the recent entry is kept");
    Ok(())
}
