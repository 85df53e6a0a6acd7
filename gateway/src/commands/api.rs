//! A client for a running gateway's API, as `portico kubeconfig` and `portico job` use it:
//! bearer token, an optional CA to trust, the API's `{"error": {"message"}}` as the error.

use reqwest::{Method, Url};
use serde_json::Value;

use super::CommandError;
use crate::cli::GatewayArgs;

/// The gateway at `--server`, reached with `--token`.
pub struct GatewayClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for GatewayClient {
    // The token stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl GatewayClient {
    pub fn new(args: &GatewayArgs) -> Result<Self, CommandError> {
        let mut base = Url::parse(&args.server)
            .ok()
            .filter(|url| !url.cannot_be_a_base())
            .ok_or_else(|| CommandError::Usage(format!("`{}` is not a URL", args.server)))?;
        // A base with a path prefix keeps it: segments are appended to it.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        let mut client = reqwest::Client::builder();
        if let Some(path) = &args.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| CommandError::Read(path.display().to_string(), e))?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(http)?;
            client = client.add_root_certificate(ca);
        }
        Ok(Self {
            base,
            token: args.token.clone(),
            http: client.build().map_err(http)?,
        })
    }

    /// `<server>/api/v1/<segments…>`, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new")
            .extend(["api", "v1"])
            .extend(segments);
        url
    }

    /// Sends a request; the response body on success, the API's error message otherwise.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<String, CommandError> {
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CommandError::Http(crate::cluster::upstream::error_chain(&e)))?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(CommandError::Http(format!("{status}: {message}")));
        }
        Ok(text)
    }

    /// [`Self::send`], the answer parsed as JSON.
    pub async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CommandError> {
        let text = self.send(method, url, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| CommandError::Http(format!("the gateway's answer is not JSON: {e}")))
    }
}

fn http(e: reqwest::Error) -> CommandError {
    CommandError::Http(e.to_string())
}
