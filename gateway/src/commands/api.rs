//! A client for a running gateway's API: bearer token, an optional CA to trust, and errors that
//! say which server answered what (the API's `{"error": {"message"}}`, the HTTP status).

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use super::CommandError;
use super::contexts::{self, Target};
use crate::cli::GatewayArgs;

/// How long a connection to the gateway may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The gateway a command talks to, and the token it sends.
pub struct GatewayClient {
    base: Url,
    token: Option<String>,
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
    /// The gateway of `args` (flags, variables, then the context), with a token.
    pub fn new(args: &GatewayArgs) -> Result<Self, CommandError> {
        let target = contexts::resolve(args)?;
        if target.token.is_none() {
            return Err(CommandError::NotLoggedIn {
                server: target.server,
            });
        }
        Self::connect(target)
    }

    /// The gateway of `args`, with a token if there is one (for unauthenticated routes).
    pub fn anonymous(args: &GatewayArgs) -> Result<Self, CommandError> {
        Self::connect(contexts::resolve(args)?)
    }

    /// A client for `target`.
    pub(super) fn connect(target: Target) -> Result<Self, CommandError> {
        let mut base = Url::parse(&target.server)
            .ok()
            .filter(|url| !url.cannot_be_a_base() && matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                CommandError::Usage(format!(
                    "`{}` is not an http:// or https:// URL",
                    target.server
                ))
            })?;
        // A base with a path prefix keeps it: segments are appended to it.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        let mut client = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(pem) = &target.ca_pem {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                CommandError::Usage(format!("the CA for {} is not PEM: {e}", target.server))
            })?;
            client = client.add_root_certificate(ca);
        }
        let http = client
            .build()
            .map_err(|e| CommandError::Http(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base,
            token: target.token,
            http,
        })
    }

    /// The server, as shown in messages.
    pub fn server(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `<server>/api/v1/<segments…>`, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in connect")
            .extend(["api", "v1"])
            .extend(segments);
        url
    }

    /// `<server>/<segments…>`, outside the API.
    pub fn root_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in connect")
            .extend(segments);
        url
    }

    /// Sends a request; the response body on success, the API's error otherwise.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<String, CommandError> {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.execute(request).await
    }

    /// [`Self::send`], the answer parsed as JSON (`null` for an empty answer, as 204s have).
    pub async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CommandError> {
        let text = self.send(method, url, body).await?;
        self.parse(&text)
    }

    /// A `multipart/form-data` POST; the answer as JSON.
    pub async fn multipart(
        &self,
        url: Url,
        form: reqwest::multipart::Form,
    ) -> Result<Value, CommandError> {
        let text = self.execute(self.http.post(url).multipart(form)).await?;
        self.parse(&text)
    }

    /// The object `id` of `collection` (`jobs`, `tokens`, `webhooks`), or the one whose `name`
    /// is `id` when no id matches and exactly one name does: `(its id, the object)`.
    pub async fn find(&self, collection: &str, id: &str) -> Result<(String, Value), CommandError> {
        let direct = self
            .json(Method::GET, self.url(&[collection, id]), None)
            .await;
        match direct {
            Err(e) if e.status() == Some(404) => {
                let list = self
                    .json(Method::GET, self.url(&[collection]), None)
                    .await?;
                let named: Vec<&Value> = super::output::items(&list)
                    .iter()
                    .filter(|item| item["name"] == id)
                    .collect();
                match named.as_slice() {
                    [one] => {
                        let found = one["id"].as_str().unwrap_or_default().to_owned();
                        Ok((found, (*one).clone()))
                    }
                    [] => Err(e),
                    _ => Err(CommandError::Usage(format!(
                        "{} {collection} are named `{id}`: give the id",
                        named.len()
                    ))),
                }
            }
            Err(e) => Err(e),
            Ok(value) => Ok((id.to_owned(), value)),
        }
    }

    fn parse(&self, text: &str) -> Result<Value, CommandError> {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|e| {
            CommandError::Http(format!(
                "{} answered something that is not JSON: {e}",
                self.server()
            ))
        })
    }

    async fn execute(&self, request: reqwest::RequestBuilder) -> Result<String, CommandError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| CommandError::Unreachable {
                server: self.server().to_owned(),
                reason: crate::cluster::upstream::error_chain(&e),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CommandError::Unreachable {
                server: self.server().to_owned(),
                reason: format!("the answer broke off: {e}"),
            })?;
        if !status.is_success() {
            let error = serde_json::from_str::<Value>(&text).ok();
            let message = error
                .as_ref()
                .and_then(|v| v["error"]["message"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| text.trim().chars().take(500).collect());
            return Err(CommandError::Api {
                server: self.server().to_owned(),
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_owned(),
                message,
            });
        }
        Ok(text)
    }
}
