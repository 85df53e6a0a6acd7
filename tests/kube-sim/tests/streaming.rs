//! Streams: raw watch framing and semantics, pod logs (tail, follow), exec over WebSocket,
//! port-forward over WebSocket channels (what the Python client speaks).

#[path = "support/http.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use kube_sim::KubeSim;
use reqwest::{Method, StatusCode};
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use support::{Lines, call, get, post};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

async fn watch(c: &reqwest::Client, sim: &KubeSim, path: &str) -> Lines {
    let resp = c.get(format!("{}{path}", sim.url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    Lines::new(resp)
}

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})
}

#[tokio::test]
async fn watch_events_arrive_one_by_one_as_they_happen() {
    let (sim, c) = support::start().await;
    let rv = sim.resource_version();
    let mut w = watch(
        &c,
        &sim,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"),
    )
    .await;
    let path = "/api/v1/namespaces/default/configmaps";
    for i in 0..3 {
        // Each event is read before the next change is made: it was flushed on its own.
        post(&c, &sim, path, cm(&format!("c{i}"), json!({}))).await;
        let ev = w.next().await.unwrap();
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["kind"], "ConfigMap");
        assert_eq!(ev["object"]["metadata"]["name"], format!("c{i}"));
    }
    assert_eq!(sim.open_watches(), 1);
    drop(w);
    assert_eq!(
        sim.wait_for_watches(Duration::from_secs(10), |n| n == 0)
            .await,
        0
    );
}

#[tokio::test]
async fn watch_selectors_turn_transitions_into_added_and_deleted() {
    let (sim, c) = support::start().await;
    let path = "/api/v1/namespaces/default/configmaps";
    post(&c, &sim, path, cm("a", json!({"team": "x"}))).await;
    post(&c, &sim, path, cm("b", json!({"team": "y"}))).await;
    let mut w = watch(
        &c,
        &sim,
        &format!("{path}?watch=true&labelSelector=team%3Dx"),
    )
    .await;
    let first = w.next().await.unwrap();
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
    let relabel = |name: &str, team: &str| {
        let body = json!({"metadata": {"labels": {"team": team}}}).to_string();
        let (c, sim, name) = (c.clone(), &sim, name.to_string());
        async move {
            call(
                &c,
                sim,
                Method::PATCH,
                &format!("{path}/{name}"),
                Some(("application/merge-patch+json", body)),
            )
            .await
        }
    };
    relabel("a", "y").await; // leaves the selection: DELETED with the previous state
    let ev = w.next().await.unwrap();
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["labels"]["team"], "x");
    relabel("b", "x").await; // enters it: ADDED
    let ev = w.next().await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    call(&c, &sim, Method::DELETE, &format!("{path}/b"), None).await;
    let ev = w.next().await.unwrap();
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["labels"]["team"], "x");
}

#[tokio::test]
async fn watch_timeout_initial_events_and_legacy_path() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 2, 1);
    // timeoutSeconds ends the stream cleanly after the initial events.
    let mut w = watch(
        &c,
        &sim,
        "/api/v1/watch/namespaces/default/pods?timeoutSeconds=1",
    )
    .await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    assert!(w.next().await.is_none(), "stream ends at the timeout");

    // The streaming-list form: initial events, then a bookmark marking their end.
    let mut w = watch(
        &c,
        &sim,
        "/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    )
    .await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    let bm = w.next().await.unwrap();
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(
        bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        bm["object"]["metadata"]["resourceVersion"],
        sim.resource_version().to_string()
    );
    let (code, _) = get(&c, &sim, "/api/v1/pods?watch=1&sendInitialEvents=true").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pod_logs_tail_and_follow() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 1, 1);
    sim.set_pod_log("default", "pod-00000", "one\ntwo\nthree\n");
    let base = format!("{}/api/v1/namespaces/default/pods/pod-00000/log", sim.url());
    let text = c.get(&base).send().await.unwrap().text().await.unwrap();
    assert_eq!(text, "one\ntwo\nthree\n");
    let text = c
        .get(format!("{base}?tailLines=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "two\nthree\n");
    // A pod can carry its log text in the `kube-sim/log` annotation (handy in seed YAML).
    sim.load_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: annotated\n  namespace: default\n  annotations:\n    kube-sim/log: \"from the annotation\\n\"\nspec:\n  containers: [{name: c, image: i}]\n",
    )
    .unwrap();
    let text = c
        .get(format!(
            "{}/api/v1/namespaces/default/pods/annotated/log",
            sim.url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "from the annotation\n");
    let (code, _) = get(&c, &sim, "/api/v1/namespaces/default/pods/nope/log").await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    let mut resp = c
        .get(format!("{base}?follow=true&tailLines=1"))
        .send()
        .await
        .unwrap();
    let mut got = String::new();
    let mut read_until = async |want: &str, got: &mut String| {
        while !got.contains(want) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
                .await
                .expect("log data within 10 s")
                .unwrap()
                .expect("stream open");
            got.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("three\n", &mut got).await;
    sim.append_pod_log("default", "pod-00000", "four\n");
    read_until("four\n", &mut got).await;
    assert_eq!(got, "three\nfour\n");
    // Deleting the pod ends the stream.
    sim.delete("v1", "Pod", Some("default"), "pod-00000")
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(end.is_none());
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn exec(sim: &KubeSim, query: &str, protocol: &str) -> Ws {
    connect_ws(
        sim,
        &format!("/api/v1/namespaces/default/pods/pod-00000/exec?{query}"),
        protocol,
    )
    .await
}

async fn connect_ws(sim: &KubeSim, path: &str, protocol: &str) -> Ws {
    let mut roots = rustls::RootCertStore::empty();
    let ca =
        rustls_pki_types::CertificateDer::from_pem_slice(sim.ca_pem().unwrap().as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let url = format!("wss://localhost:{}{path}", sim.addr().port());
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", sim.token()).parse().unwrap(),
    );
    req.headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    let chosen = resp.headers()["sec-websocket-protocol"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        protocol.starts_with(&chosen),
        "{chosen} chosen from {protocol}"
    );
    ws
}

/// Reads until the server closes: (stdout, stderr, status JSON).
async fn collect(ws: &mut Ws) -> (String, String, Value) {
    let (mut out, mut err, mut status) = (String::new(), String::new(), Value::Null);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("exec answers");
        match msg {
            Some(Ok(Message::Binary(b))) => match b[0] {
                1 => out.push_str(&String::from_utf8_lossy(&b[1..])),
                2 => err.push_str(&String::from_utf8_lossy(&b[1..])),
                3 => status = serde_json::from_slice(&b[1..]).unwrap(),
                _ => {}
            },
            Some(Ok(Message::Close(_))) | None => return (out, err, status),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("websocket error: {e}"),
        }
    }
}

#[tokio::test]
async fn exec_over_websocket() {
    let (sim, _) = support::start().await;
    sim.seed_pods("default", 1, 1);
    let mut ws = exec(
        &sim,
        "command=echo&command=hi&stdout=true&stderr=true",
        "v5.channel.k8s.io",
    )
    .await;
    let (out, _, status) = collect(&mut ws).await;
    assert_eq!(out, "hi\n");
    assert_eq!(status, json!({"metadata": {}, "status": "Success"}));

    let mut ws = exec(
        &sim,
        "command=sh&command=-c&command=echo+oops+%3E%262%3B+exit+7&stdout=true&stderr=true",
        "v4.channel.k8s.io",
    )
    .await;
    let (_, err, status) = collect(&mut ws).await;
    assert_eq!(err, "oops\n");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "7"})
    );

    // cat echoes stdin until the v5 close signal for channel 0.
    let mut ws = exec(
        &sim,
        "command=cat&stdin=true&stdout=true",
        "v5.channel.k8s.io, v4.channel.k8s.io",
    )
    .await;
    ws.send(Message::Binary([&[0u8][..], b"ping\n"].concat().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![255u8, 0].into()))
        .await
        .unwrap();
    let (out, _, status) = collect(&mut ws).await;
    assert_eq!(out, "ping\n");
    assert_eq!(status["status"], "Success");

    let mut ws = exec(
        &sim,
        "command=no-such-binary&stdout=true&stderr=true",
        "v5.channel.k8s.io",
    )
    .await;
    let (_, err, status) = collect(&mut ws).await;
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(status["details"]["causes"][0]["message"], "126");
}

#[tokio::test]
async fn exec_rejects_bad_requests_with_status() {
    let (sim, c) = support::start().await;
    sim.seed_pods("default", 1, 1);
    let (code, body) = get(
        &c,
        &sim,
        "/api/v1/namespaces/default/pods/pod-00000/exec?command=ls",
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, _) = get(
        &c,
        &sim,
        "/api/v1/namespaces/default/pods/nope/exec?command=ls&stdout=1",
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    }
}

#[tokio::test]
async fn portforward_over_websocket_channels() {
    let (sim, _c) = support::start().await;
    sim.load_yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: pf, namespace: default}
spec:
  nodeName: node-0
  containers:
  - name: app
    image: x
    ports: [{name: echo, containerPort: 7000}]
status: {phase: Running}
"#,
    )
    .unwrap();
    let mut ws = connect_ws(
        &sim,
        "/api/v1/namespaces/default/pods/pf/portforward?ports=7000,9999",
        "v4.channel.k8s.io",
    )
    .await;
    // Each channel starts with its port, little-endian: data 0 / error 1 for 7000, 2 / 3 for 9999.
    assert_eq!(next_binary(&mut ws).await, [0, 0x58, 0x1b]);
    assert_eq!(next_binary(&mut ws).await, [1, 0x58, 0x1b]);
    assert_eq!(next_binary(&mut ws).await, [2, 0x0f, 0x27]);
    assert_eq!(next_binary(&mut ws).await, [3, 0x0f, 0x27]);
    // Nothing listens on 9999: the refusal comes on its error channel.
    let err = next_binary(&mut ws).await;
    assert_eq!(err[0], 3);
    let text = String::from_utf8_lossy(&err[1..]).into_owned();
    assert!(
        text.starts_with("error forwarding port 9999 to pod"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
    // 7000 is a declared, non-HTTP port: it echoes.
    ws.send(Message::Binary(b"\x00hello".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, b"\x00hello");
}

#[tokio::test]
async fn streaming_requests_without_an_upgrade_or_protocol_are_refused() {
    let (sim, _) = support::start().await;
    sim.seed_pods("default", 1, 1);
    // HTTP/1.1: upgrades do not exist in HTTP/2.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", sim.token()).parse().unwrap(),
    );
    let c = support::builder(&sim)
        .http1_only()
        .default_headers(headers)
        .build()
        .unwrap();
    // No upgrade at all.
    let resp = c
        .post(format!(
            "{}/api/v1/namespaces/default/pods/pod-00000/exec?command=ls&stdout=1",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // SPDY without a protocol version the server serves: 403 listing what it accepts.
    let resp = c
        .post(format!(
            "{}/api/v1/namespaces/default/pods/pod-00000/exec?command=ls&stdout=1",
            sim.url()
        ))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v9.channel.k8s.io")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let accepted: Vec<&str> = resp
        .headers()
        .get_all("x-accepted-stream-protocol-versions")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(accepted[0], "v4.channel.k8s.io");
    // A pod without a node.
    sim.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: pending, namespace: default}\nspec: {containers: [{name: a, image: x}]}\n").unwrap();
    let resp = c
        .post(format!(
            "{}/api/v1/namespaces/default/pods/pending/attach?stdout=1",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "pod pending does not have a host assigned");
}
