//! Fault injection, authentication choices, HTTP versions and the request log.

#[path = "support/http.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use kube_sim::KubeSim;
use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject as _;
use serde_json::json;
use support::{Lines, get};

#[tokio::test]
async fn injected_failures_are_status_objects() {
    let (sim, c) = support::start().await;
    sim.faults().set_failure_rate(1.0, 503);
    let (code, body) = get(&c, &sim, "/api/v1/pods").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert_eq!(body["code"], 503);
    sim.faults().set_failure_rate(1.0, 429);
    let (code, body) = get(&c, &sim, "/api/v1/pods").await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["details"]["retryAfterSeconds"], 1);
    // Limited to a path prefix.
    sim.faults().set_path_prefix(Some("/apis/".into()));
    assert_eq!(get(&c, &sim, "/api/v1/pods").await.0, StatusCode::OK);
    sim.faults().clear();
    sim.faults().set_latency(Duration::from_millis(20));
    assert_eq!(get(&c, &sim, "/api/v1/pods").await.0, StatusCode::OK);
}

#[tokio::test]
async fn frozen_requests_wait_until_unfrozen() {
    let (sim, c) = support::start().await;
    sim.faults().freeze();
    let url = format!("{}/api/v1/namespaces", sim.url());
    let pending = tokio::spawn({
        let c = c.clone();
        async move { c.get(url).send().await.map(|r| r.status()) }
    });
    // The request arrives (it is logged) but gets no answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!pending.is_finished());
    sim.faults().unfreeze();
    let status = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn dropped_watches_are_cut_mid_stream() {
    let (sim, c) = support::start().await;
    let resp = c
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=1",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sim.wait_for_watches(Duration::from_secs(10), |n| n == 1)
            .await,
        1
    );
    sim.faults().drop_watches();
    let mut lines = Lines::new(resp);
    assert!(lines.next().await.is_none(), "the stream ends");
    assert_eq!(
        sim.wait_for_watches(Duration::from_secs(10), |n| n == 0)
            .await,
        0
    );
}

#[tokio::test]
async fn refused_connections_then_recovery_on_the_same_port() {
    let (sim, _) = support::start().await;
    let addr = sim.addr();
    sim.refuse_connections().await;
    assert!(!sim.is_listening());
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    sim.accept_connections().await;
    assert!(sim.is_listening());
    assert_eq!(sim.addr(), addr);
    // A fresh client (the old pool's connections were closed).
    let c = support::client(&sim);
    assert_eq!(get(&c, &sim, "/version").await.0, StatusCode::OK);
}

#[tokio::test]
async fn client_certificates_authenticate_when_enabled() {
    let sim = KubeSim::builder()
        .client_cert_auth(true)
        .start()
        .await
        .unwrap();
    let cert = sim.client_cert("alice", &["devs"]).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes())
            .unwrap();
    let c = support::builder(&sim).identity(identity).build().unwrap();
    assert_eq!(get(&c, &sim, "/api/v1/namespaces").await.0, StatusCode::OK);
    assert_eq!(
        sim.requests().last().unwrap().user.as_deref(),
        Some("alice")
    );
    // Without a certificate or token: 401.
    let anon = support::builder(&sim).build().unwrap();
    assert_eq!(
        get(&anon, &sim, "/api/v1/namespaces").await.0,
        StatusCode::UNAUTHORIZED
    );

    // A simulator without client-cert auth ignores the certificate.
    let strict = KubeSim::start().await.unwrap();
    let cert = strict.client_cert("bob", &[]).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes())
            .unwrap();
    let c = support::builder(&strict)
        .identity(identity)
        .build()
        .unwrap();
    assert_eq!(
        get(&c, &strict, "/api/v1/namespaces").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn http2_is_negotiated_with_alpn() {
    let (sim, _) = support::start().await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_slice(sim.ca_pem().unwrap().as_bytes())
                .unwrap(),
        )
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("{}/api/v1/namespaces/default", sim.url()))
        .header("authorization", format!("Bearer {}", sim.token()))
        .header("impersonate-user", "jane")
        .header("impersonate-group", "a")
        .header("impersonate-group", "b")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["metadata"]["name"], "default");
    let rec = sim.requests().pop().unwrap();
    assert_eq!(rec.version, "HTTP/2.0");
    assert_eq!(rec.header("impersonate-user"), Some("jane"));
    assert_eq!(rec.header_all("impersonate-group"), vec!["a", "b"]);
}

#[tokio::test]
async fn self_subject_review_reflects_impersonation() {
    let (sim, c) = support::start().await;
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let url = format!(
        "{}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        sim.url()
    );
    let me: serde_json::Value = c
        .post(&url)
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["status"]["userInfo"]["username"], "kube-sim-admin");
    let resp = c
        .post(&url)
        .header("impersonate-user", "jane")
        .header("impersonate-group", "devs")
        .json(&review)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let jane: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(jane["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        jane["status"]["userInfo"]["groups"],
        json!(["devs", "system:authenticated"])
    );
    // Groups without a user are refused.
    let resp = c
        .post(&url)
        .header("impersonate-group", "devs")
        .json(&review)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Reviews are create-only.
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn plain_http_serves_the_same_api() {
    let sim = KubeSim::builder()
        .tls(false)
        .token("t0k")
        .start()
        .await
        .unwrap();
    assert!(sim.url().starts_with("http://"));
    assert!(sim.ca_pem().is_none());
    let c = reqwest::Client::new();
    let resp = c
        .post(format!("{}/api/v1/namespaces", sim.url()))
        .bearer_auth("t0k")
        .json(&json!({"metadata": {"name": "plain"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rec = sim.requests().pop().unwrap();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.version, "HTTP/1.1");
    assert!(sim.kubeconfig().contains(&sim.url()));
}
