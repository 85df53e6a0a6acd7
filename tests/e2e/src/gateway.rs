//! A Portico gateway started in-process on an ephemeral port.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use portico::cli::ServeArgs;
use portico::config::Config;
use portico::server::{Gateway, StartError};
use tempfile::TempDir;

use crate::kubectl::Kubectl;

/// The compile cache every gateway of the suite shares (and `portico plugin run` in tests).
pub fn plugin_cache_dir() -> std::path::PathBuf {
    crate::python::target_dir().join("e2e-plugin-cache")
}

/// Builds a [`TestGateway`]: SQLite in a temporary folder unless a database URL is given.
#[derive(Debug, Default)]
pub struct TestGatewayBuilder {
    args: Vec<String>,
    env: HashMap<String, String>,
    data_dir: Option<std::path::PathBuf>,
}

impl TestGatewayBuilder {
    /// Adds `serve` arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable as the gateway's configuration source would see it.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Keeps SQLite state in `dir` (to restart a gateway on the same data).
    pub fn data_dir(mut self, dir: &std::path::Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// The validated configuration this builder produces.
    pub fn config(&self, data: &std::path::Path) -> Result<Config> {
        let mut args = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
        // One compile cache for the whole run: every gateway of the suite then compiles the
        // built-in plugins once, not once per test (seconds of CPU each in a debug build).
        if !self
            .args
            .iter()
            .any(|a| a.starts_with("--plugin-cache-dir"))
        {
            args.push("--plugin-cache-dir".to_owned());
            args.push(plugin_cache_dir().display().to_string());
        }
        if !self
            .args
            .iter()
            .any(|a| a.starts_with("--shutdown-timeout-seconds"))
        {
            args.push("--shutdown-timeout-seconds".to_owned());
            args.push("5".to_owned());
        }
        if !self.env.contains_key("DATABASE_URL")
            && !self.args.iter().any(|a| a.starts_with("--database-url"))
        {
            args.push("--database-url".to_owned());
            args.push(format!("sqlite://{}/portico.db", data.display()));
        }
        args.extend(self.args.iter().cloned());
        Ok(Config::from_args(ServeArgs::from_args_and_env(
            &args, &self.env,
        )?)?)
    }

    /// Starts the gateway; errors are returned, not panicked, so tests can check them.
    pub async fn try_start(self) -> Result<TestGateway, StartFailure> {
        let (dir, data) = match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::tempdir().map_err(|e| StartFailure::Other(e.into()))?;
                let data = dir.path().to_owned();
                (Some(dir), data)
            }
        };
        let config = self.config(&data).map_err(StartFailure::Other)?;
        // `TEST_LOG=portico=debug cargo test …` shows the gateways' logs.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = portico::telemetry::init_tracing(&filter, portico::cli::LogFormat::Text);
        }
        let gateway = Gateway::start(config).await.map_err(StartFailure::Start)?;
        let tls = gateway.app().tls.as_ref();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", gateway.local_addr());
        let mut client = reqwest::Client::builder();
        if let Some(ca) = tls.and_then(|t| t.ca_pem.as_deref()) {
            let ca = reqwest::Certificate::from_pem(ca.as_bytes())
                .map_err(|e| StartFailure::Other(e.into()))?;
            client = client.add_root_certificate(ca);
        }
        let client = client.build().map_err(|e| StartFailure::Other(e.into()))?;
        let admin_token = self
            .env
            .get("ADMIN_TOKEN")
            .cloned()
            .or_else(|| {
                let pos = self.args.iter().position(|a| a == "--admin-token")?;
                self.args.get(pos + 1).cloned()
            })
            .or_else(|| gateway.generated_admin_token().map(str::to_owned));
        Ok(TestGateway {
            gateway: Some(gateway),
            _dir: dir,
            data_dir: data,
            url,
            admin_token,
            client,
        })
    }

    /// Starts the gateway, panicking on failure.
    pub async fn start(self) -> TestGateway {
        self.try_start().await.expect("start the gateway")
    }
}

/// Why a test gateway did not start.
#[derive(Debug)]
pub enum StartFailure {
    /// The gateway refused to start.
    Start(StartError),
    /// Configuration or harness failure.
    Other(anyhow::Error),
}

/// A running gateway plus an HTTP client.
#[derive(Debug)]
pub struct TestGateway {
    gateway: Option<Gateway>,
    _dir: Option<TempDir>,
    /// The SQLite data folder (also the secret key's folder).
    pub data_dir: std::path::PathBuf,
    /// `https://127.0.0.1:PORT` (the generated CA is trusted by [`TestGateway::request`]), or
    /// `http://…` with `--plain-http`.
    pub url: String,
    /// The admin token given or generated at start (`None` on a restart without one).
    pub admin_token: Option<String>,
    client: reqwest::Client,
}

impl TestGateway {
    pub fn builder() -> TestGatewayBuilder {
        TestGatewayBuilder::default()
    }

    /// The gateway itself.
    pub fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("gateway running")
    }

    /// The PEM of the CA that signed the gateway's certificate (`None` with `--plain-http`).
    pub fn ca_pem(&self) -> Option<String> {
        self.gateway()
            .app()
            .tls
            .as_ref()
            .and_then(|t| t.ca_pem.clone())
    }

    /// A request to `path` without credentials.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// A request to `path` with `token`.
    pub fn as_token(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    /// A request to `path` with the admin token.
    pub fn as_admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let token = self.admin_token.as_deref().expect("an admin token");
        self.as_token(token, method, path)
    }

    /// `GET {path}` with the admin token, as JSON (panics on a transport or JSON error).
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.as_admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET with the admin token")
            .json()
            .await
            .expect("a JSON body")
    }

    /// `POST {path}` with `body` and the admin token; fails unless the answer is a success.
    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> Result<()> {
        let response = self
            .as_admin(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "{path}: {status} {}",
            response.text().await?
        );
        Ok(())
    }

    /// Gracefully stops the gateway.
    pub async fn stop(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
    }
}

impl TestGateway {
    /// Registers and connects the simulator as cluster `id`, and returns kubectl with the
    /// admin's exported kubeconfig for it (HTTPS to this gateway).
    pub async fn connect_sim(&self, id: &str, sim: &kube_sim::KubeSim) -> Result<Kubectl> {
        let connected = self.add_cluster(id, &sim.kubeconfig()).await?;
        anyhow::ensure!(connected["state"] == "connected", "{connected}");
        let admin = self.admin_token.as_deref().context("an admin token")?;
        Kubectl::new(&self.exported_kubeconfig(id, admin).await?)
    }

    /// Registers `kubeconfig` as cluster `id` (201), without connecting it.
    pub async fn register_cluster(&self, id: &str, kubeconfig: &str) -> Result<()> {
        let response = self
            .as_admin(reqwest::Method::POST, "/api/v1/clusters")
            .json(&serde_json::json!({"id": id, "kubeconfig": kubeconfig}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::CREATED,
            "register {id}: {} {}",
            response.status(),
            response.text().await?
        );
        Ok(())
    }

    /// Registers `kubeconfig` as cluster `id` and connects it; returns the connect answer.
    pub async fn add_cluster(&self, id: &str, kubeconfig: &str) -> Result<serde_json::Value> {
        self.register_cluster(id, kubeconfig).await?;
        let response = self
            .as_admin(
                reqwest::Method::POST,
                &format!("/api/v1/clusters/{id}/connect"),
            )
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "connect {id}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// The kubeconfig the gateway exports for cluster `id` and `token`.
    pub async fn exported_kubeconfig(&self, id: &str, token: &str) -> Result<String> {
        let response = self
            .as_token(
                token,
                reqwest::Method::GET,
                &format!("/api/v1/clusters/{id}/kubeconfig"),
            )
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::OK,
            "kubeconfig {id}: {}",
            response.status()
        );
        Ok(response.text().await?)
    }

    /// Creates a token and returns its secret.
    pub async fn create_token(&self, body: serde_json::Value) -> Result<String> {
        let response = self
            .as_admin(reqwest::Method::POST, "/api/v1/tokens")
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::CREATED,
            "create token: {}",
            response.status()
        );
        let created: serde_json::Value = response.json().await?;
        Ok(created["token"].as_str().unwrap_or_default().to_owned())
    }
}

impl TestGateway {
    /// Stops the gateway as if the process was killed: nothing is released.
    pub async fn gateway_crash(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.crash().await;
        }
    }
}

/// An admin request that must succeed (it panics with the path, status and body otherwise);
/// its JSON body, `null` when empty.
pub async fn ok(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = gw.as_admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send the request");
    let status = response.status();
    let text = response.text().await.expect("read the answer");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}
