//! Shared helpers for the simulator's integration tests: a reqwest client that trusts the
//! simulator's CA and sends its token, and small request shortcuts.

#![allow(dead_code)]

use std::time::Duration;

use kube_sim::KubeSim;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A started simulator with short bookmarks and a client for it.
pub async fn start() -> (KubeSim, reqwest::Client) {
    let sim = KubeSim::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .expect("simulator starts");
    let client = client(&sim);
    (sim, client)
}

/// reqwest client trusting the simulator's CA, sending its bearer token.
pub fn client(sim: &KubeSim) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", sim.token()).parse().unwrap(),
    );
    builder(sim).default_headers(headers).build().unwrap()
}

/// A client builder trusting the CA, without credentials.
pub fn builder(sim: &KubeSim) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = sim.ca_pem() {
        b = b
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    b
}

/// Sends a JSON request and returns the status and JSON body (`Null` when empty).
pub async fn call(
    client: &reqwest::Client,
    sim: &KubeSim,
    method: Method,
    path: &str,
    body: Option<(&str, String)>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, format!("{}{path}", sim.url()));
    if let Some((ct, body)) = body {
        req = req.header("content-type", ct).body(body);
    }
    let resp = req.send().await.expect("request is answered");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

pub async fn get(client: &reqwest::Client, sim: &KubeSim, path: &str) -> (StatusCode, Value) {
    call(client, sim, Method::GET, path, None).await
}

pub async fn post(
    client: &reqwest::Client,
    sim: &KubeSim,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    call(
        client,
        sim,
        Method::POST,
        path,
        Some(("application/json", body.to_string())),
    )
    .await
}

/// Reads newline-delimited JSON from a streaming response, one line at a time.
pub struct Lines {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Lines {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next line, parsed as JSON; `None` at the end of the stream. Panics after 10 s.
    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(10), self.next_inner())
            .await
            .expect("a line arrives within 10 s")
    }

    async fn next_inner(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("each line is JSON"));
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                _ => return None,
            }
        }
    }
}
