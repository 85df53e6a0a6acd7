//! Single sign-on for people at the command line: `portico login --sso` and
//! `portico credential`, kubectl's exec credential plugin.
//!
//! `login --sso` finds the OpenID provider (flags, else the gateway's unauthenticated
//! `GET /api/v1/auth/oidc`), signs the person in with the authorization-code flow, PKCE (S256)
//! and a loopback redirect on 127.0.0.1 (or the device-code flow with `--device`), keeps the ID
//! and refresh tokens in the [`cache`], stores the context, and writes a kubeconfig for every
//! cluster the person may reach whose user runs `portico credential`. That prints an
//! `ExecCredential` with the cached ID token and refreshes it first when it has expired (or is
//! about to). The CLI gets its tokens straight from the token endpoint over TLS, so it reads
//! the ID token's claims without checking its signature (OpenID Connect Core 3.1.3.7); the
//! gateway checks it on every request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use oauth2::{
    AuthorizationCode, CsrfToken, DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, StandardDeviceAuthorizationResponse, TokenResponse as _,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::contexts::{Context, Credential, Target, load, read_pem, save};
use super::output::Output;
use super::{CommandError, GatewayClient};
use crate::auth::oauth::{OAuthClient, TokenAnswer};
use crate::cli::{CredentialArgs, LoginArgs, OidcClientArgs};

pub mod cache;

use cache::{CachedTokens, TokenCache};

/// An ID token with less than this left is refreshed before it is handed out.
const REFRESH_MARGIN_SECONDS: i64 = 10;
/// Requests to the provider give up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The `apiVersion` of the `ExecCredential` this plugin prints by default.
const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// The parts of the discovery document this uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    scopes_supported: Option<Vec<String>>,
}

/// The OpenID provider and this CLI's client at it.
struct Provider {
    issuer: String,
    client_id: String,
    http: reqwest::Client,
    discovery: Discovery,
}

/// Tokens from a sign-in or a refresh, with the ID token's claims (read, not verified).
struct SignedIn {
    id_token: String,
    refresh_token: Option<String>,
    claims: Value,
    expiry: i64,
}

fn sign_in_error(message: impl Into<String>) -> CommandError {
    CommandError::SignIn(message.into())
}

fn now_seconds() -> i64 {
    crate::clock::now_millis() / 1000
}

/// The claims of a JWT, without checking its signature.
fn jwt_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Provider {
    /// Reads the provider's discovery document. The issuer must be https (as kube-apiserver
    /// wants it) and must be the one the document names.
    async fn discover(
        issuer: &str,
        client_id: &str,
        ca_file: Option<&Path>,
    ) -> Result<Self, CommandError> {
        let url = reqwest::Url::parse(issuer)
            .map_err(|e| CommandError::Usage(format!("issuer `{issuer}` is not a URL: {e}")))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(CommandError::Usage(format!(
                "issuer `{issuer}` must be an https:// URL"
            )));
        }
        if client_id.is_empty() {
            return Err(CommandError::Usage(
                "the OIDC client id is empty".to_owned(),
            ));
        }
        // No redirects: a provider's endpoints answer directly (and a redirect must not carry
        // a code or a refresh token elsewhere).
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT);
        if let Some(file) = ca_file {
            let pem = read_pem(file)?;
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                CommandError::Usage(format!("{} is not a PEM CA bundle: {e}", file.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| CommandError::Http(format!("cannot build an HTTP client: {e}")))?;
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let unreachable = |e: reqwest::Error| CommandError::Unreachable {
            server: issuer.to_owned(),
            reason: error_chain(&e),
        };
        let resp = http.get(&well_known).send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(sign_in_error(format!(
                "{well_known} answered {status}: not an OpenID provider?"
            )));
        }
        let discovery: Discovery = resp
            .json()
            .await
            .map_err(|e| sign_in_error(format!("{well_known} is not a discovery document: {e}")))?;
        if !same_issuer(&discovery.issuer, issuer) {
            return Err(sign_in_error(format!(
                "{well_known} names the issuer `{}`, not `{issuer}`",
                discovery.issuer
            )));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            http,
            discovery,
        })
    }

    fn client(&self) -> Result<OAuthClient, CommandError> {
        crate::auth::oauth::client(
            &self.client_id,
            None,
            &self.discovery.authorization_endpoint,
            &self.discovery.token_endpoint,
        )
        .map_err(sign_in_error)
    }

    /// `requested` (with `openid` added), else `openid` and those of `offline_access`,
    /// `email`, `profile` and `groups` the provider supports (all but `groups` when it does
    /// not list its scopes).
    fn scopes(&self, requested: &[String]) -> Vec<String> {
        if requested.is_empty() {
            return crate::auth::oauth::default_scopes(self.discovery.scopes_supported.as_deref());
        }
        let mut scopes: Vec<String> = vec!["openid".to_owned()];
        scopes.extend(
            requested
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s != "openid"),
        );
        scopes
    }

    /// Checks the token endpoint's answer: an ID token for this issuer and client, not
    /// expired, with the nonce of this sign-in when there was one.
    fn signed_in(
        &self,
        answer: &TokenAnswer,
        nonce: Option<&str>,
        previous_refresh: Option<&str>,
    ) -> Result<SignedIn, CommandError> {
        let id_token = answer.extra_fields().id_token.clone().ok_or_else(|| {
            sign_in_error("the provider answered without an ID token (is `openid` a scope?)")
        })?;
        let claims = jwt_claims(&id_token)
            .ok_or_else(|| sign_in_error("the provider's ID token is not a JWT"))?;
        let iss = claims["iss"].as_str().unwrap_or_default();
        if !same_issuer(iss, &self.issuer) {
            return Err(sign_in_error(format!(
                "the ID token's issuer is `{iss}`, not `{}`",
                self.issuer
            )));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(aud) => *aud == self.client_id,
            Value::Array(auds) => auds.iter().any(|a| *a == self.client_id.as_str()),
            _ => false,
        };
        if !audience_ok {
            return Err(sign_in_error(format!(
                "the ID token is not for client `{}`",
                self.client_id
            )));
        }
        let expiry = claims["exp"]
            .as_i64()
            .ok_or_else(|| sign_in_error("the ID token has no `exp`"))?;
        if expiry <= now_seconds() {
            return Err(sign_in_error("the provider handed out an expired ID token"));
        }
        if let Some(nonce) = nonce
            && claims["nonce"].as_str() != Some(nonce)
        {
            return Err(sign_in_error(
                "the ID token does not carry this sign-in's nonce",
            ));
        }
        Ok(SignedIn {
            id_token,
            refresh_token: answer
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous_refresh.map(str::to_owned)),
            claims,
            expiry,
        })
    }

    /// The authorization-code flow with PKCE and a loopback redirect.
    async fn code_flow(
        &self,
        scopes: &[String],
        open_browser: bool,
        timeout: Duration,
    ) -> Result<SignedIn, CommandError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| CommandError::Failed(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| CommandError::Failed(format!("loopback listener: {e}")))?
            .port();
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let client = self.client()?.set_redirect_uri(
            RedirectUrl::new(redirect).expect("a loopback URL built here parses"),
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .add_extra_param("nonce", &nonce)
            .set_pkce_challenge(challenge)
            .url();
        eprintln!(
            "Open this address in a browser to sign in (waiting up to {} s):\n\n    {url}\n",
            timeout.as_secs()
        );
        if open_browser {
            open_in_browser(url.as_str());
        }
        let query = tokio::time::timeout(timeout, wait_for_redirect(&listener))
            .await
            .map_err(|_| {
                sign_in_error(format!(
                    "the sign-in did not finish within {} s",
                    timeout.as_secs()
                ))
            })??;
        if query.get("state").map(String::as_str) != Some(state.secret().as_str()) {
            return Err(sign_in_error(
                "the redirect does not carry this sign-in's state (a stale or forged redirect)",
            ));
        }
        if let Some(error) = query.get("error") {
            return Err(sign_in_error(format!(
                "the provider refused the sign-in: {error}{}",
                query
                    .get("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )));
        }
        let code = query
            .get("code")
            .ok_or_else(|| sign_in_error("the redirect carries no code"))?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                sign_in_error(format!(
                    "the token endpoint refused the code: {}",
                    error_chain(&e)
                ))
            })?;
        self.signed_in(&answer, Some(&nonce), None)
    }

    /// The device-code flow (RFC 8628): print where to go and the code, then poll.
    async fn device_flow(
        &self,
        scopes: &[String],
        timeout: Duration,
    ) -> Result<SignedIn, CommandError> {
        let endpoint = self
            .discovery
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| {
                sign_in_error(format!(
                    "{} offers no device authorization endpoint: sign in without --device",
                    self.issuer
                ))
            })?;
        let client = self.client()?.set_device_authorization_url(
            DeviceAuthorizationUrl::new(endpoint).map_err(|e| {
                sign_in_error(format!("device_authorization_endpoint is not a URL: {e}"))
            })?,
        );
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                sign_in_error(format!(
                    "the device authorization endpoint refused: {}",
                    error_chain(&e)
                ))
            })?;
        eprintln!(
            "To sign in, open {} on any device and enter the code\n\n    {}\n",
            details.verification_uri().as_str(),
            details.user_code().secret()
        );
        if let Some(complete) = details.verification_uri_complete() {
            eprintln!("(or open {})\n", complete.secret());
        }
        let answer = client
            .exchange_device_access_token(&details)
            .request_async(&self.http, tokio::time::sleep, Some(timeout))
            .await
            .map_err(|e| {
                sign_in_error(format!("the device sign-in failed: {}", error_chain(&e)))
            })?;
        self.signed_in(&answer, None, None)
    }

    /// Trades a refresh token for new tokens.
    async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, CommandError> {
        let token = RefreshToken::new(refresh_token.to_owned());
        let answer = self
            .client()?
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                sign_in_error(format!(
                    "the provider refused the refresh token: {}",
                    error_chain(&e)
                ))
            })?;
        self.signed_in(&answer, None, Some(refresh_token))
    }
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Opens `url` in the person's browser when the platform has a way to (best effort: the
/// address is printed anyway).
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Serves the loopback redirect: waits for `GET /callback?…` and returns its query. Other
/// paths (a browser's favicon) get a 404 and the wait goes on.
async fn wait_for_redirect(
    listener: &TcpListener,
) -> Result<BTreeMap<String, String>, CommandError> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| CommandError::Failed(format!("loopback listener: {e}")))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        if !matches!(read, Ok(Ok(()))) {
            continue;
        }
        let text = String::from_utf8_lossy(&head);
        let target = text
            .lines()
            .next()
            .and_then(|line| {
                let mut parts = line.split(' ');
                (parts.next() == Some("GET"))
                    .then(|| parts.next())
                    .flatten()
            })
            .unwrap_or_default()
            .to_owned();
        let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let body = if query.contains_key("code") {
            "<!DOCTYPE html><title>Portico</title><p>Signed in. You can close this tab and go \
             back to the terminal.</p>"
        } else {
            "<!DOCTYPE html><title>Portico</title><p>The sign-in did not succeed; the terminal \
             says why.</p>"
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Ok(query);
    }
}

/// The cache folder: `--token-cache-dir`, else `$XDG_CACHE_HOME/portico/oidc`, else
/// `~/.cache/portico/oidc`; made absolute (kubeconfigs name it).
fn cache_dir(args: &OidcClientArgs, home: Option<&Path>) -> Result<PathBuf, CommandError> {
    let nonempty = |p: &&PathBuf| !p.as_os_str().is_empty();
    let dir = if let Some(dir) = args.token_cache_dir.as_ref().filter(nonempty) {
        dir.clone()
    } else if let Some(xdg) = args.xdg_cache_home.as_ref().filter(nonempty) {
        xdg.join("portico").join("oidc")
    } else if let Some(home) = home.filter(|h| !h.as_os_str().is_empty()) {
        home.join(".cache").join("portico").join("oidc")
    } else {
        return Err(CommandError::Usage(
            "no place for the token cache: pass --token-cache-dir, or set XDG_CACHE_HOME or HOME"
                .to_owned(),
        ));
    };
    std::path::absolute(&dir)
        .map_err(|e| CommandError::Usage(format!("token cache {}: {e}", dir.display())))
}

fn absolute(path: &Path) -> Result<PathBuf, CommandError> {
    std::path::absolute(path).map_err(|e| CommandError::Usage(format!("{}: {e}", path.display())))
}

/// The `ExecCredential` kubectl reads.
fn exec_credential(api_version: &str, tokens: &CachedTokens) -> Output {
    let expiry = jiff::Timestamp::from_second(tokens.expiry)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let value = json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {"token": tokens.id_token, "expirationTimestamp": expiry},
    });
    Output::raw(format!(
        "{}\n",
        serde_json::to_string(&value).expect("a JSON value serializes")
    ))
}

/// What kubectl says in `KUBERNETES_EXEC_INFO`: the `apiVersion` to answer with and whether
/// the person may be asked to sign in.
fn exec_info(raw: Option<&str>) -> (String, bool) {
    let info: Value = raw
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let api_version = info["apiVersion"]
        .as_str()
        .filter(|v| v.starts_with("client.authentication.k8s.io/"))
        .unwrap_or(EXEC_API_VERSION)
        .to_owned();
    let interactive = info["spec"]["interactive"].as_bool().unwrap_or(false);
    (api_version, interactive)
}

fn cached(provider_issuer: &str, client_id: &str, signed_in: SignedIn) -> CachedTokens {
    CachedTokens {
        issuer_url: provider_issuer.to_owned(),
        client_id: client_id.to_owned(),
        id_token: signed_in.id_token,
        refresh_token: signed_in.refresh_token,
        expiry: signed_in.expiry,
    }
}

/// `portico credential`: the exec credential plugin.
pub async fn credential(args: &CredentialArgs) -> Result<Output, CommandError> {
    let issuer = args.oidc.oidc_issuer_url.clone().ok_or_else(|| {
        CommandError::Usage("portico credential needs --oidc-issuer-url".to_owned())
    })?;
    let client_id = args.oidc.oidc_client_id.clone().ok_or_else(|| {
        CommandError::Usage("portico credential needs --oidc-client-id".to_owned())
    })?;
    let (api_version, interactive) = exec_info(args.exec_info.as_deref());
    let cache = TokenCache::new(cache_dir(&args.oidc, args.home.as_deref())?);
    // Held until the answer is printed: a concurrent run waits, then finds the fresh token.
    let _lock = cache.lock(&issuer, &client_id).await?;
    let entry = cache.read(&issuer, &client_id);
    if let Some(entry) = &entry
        && entry.expiry - now_seconds() > REFRESH_MARGIN_SECONDS
    {
        return Ok(exec_credential(&api_version, entry));
    }
    let mut why = format!("no ID token for {issuer} in {}", cache.dir().display());
    let mut provider = None;
    if let Some(refresh_token) = entry.as_ref().and_then(|e| e.refresh_token.clone()) {
        match Provider::discover(&issuer, &client_id, args.oidc.oidc_ca_file.as_deref()).await {
            Ok(found) => {
                match found.refresh(&refresh_token).await {
                    Ok(signed_in) => {
                        let tokens = cached(&issuer, &client_id, signed_in);
                        cache.write(&tokens)?;
                        return Ok(exec_credential(&api_version, &tokens));
                    }
                    Err(e) => {
                        why = format!("the ID token has expired and refreshing it failed: {e}")
                    }
                }
                provider = Some(found);
            }
            Err(e) => {
                why = format!("the ID token has expired and the provider cannot be asked: {e}")
            }
        }
    } else if entry.is_some() {
        why = "the ID token has expired and there is no refresh token".to_owned();
    }
    if interactive {
        eprintln!("portico: {why}; signing in again.");
        let provider = match provider {
            Some(p) => p,
            None => {
                Provider::discover(&issuer, &client_id, args.oidc.oidc_ca_file.as_deref()).await?
            }
        };
        let scopes = provider.scopes(&args.oidc.oidc_scope);
        let signed_in = provider
            .code_flow(&scopes, !args.no_browser, Duration::from_secs(300))
            .await?;
        let tokens = cached(&issuer, &client_id, signed_in);
        cache.write(&tokens)?;
        return Ok(exec_credential(&api_version, &tokens));
    }
    Err(sign_in_error(format!(
        "{why}. Sign in again: portico login --sso (issuer {issuer})"
    )))
}

/// The cached ID token of a context that signed in with `login --sso`, for the commands that
/// talk to the gateway's API (they do not refresh it; kubectl's `portico credential` and
/// `login --sso` do).
pub(super) fn cached_id_token(
    issuer: &str,
    client_id: &str,
    dir: &Path,
) -> Result<String, CommandError> {
    let cache = TokenCache::new(dir.to_path_buf());
    match cache.read(issuer, client_id) {
        Some(entry) if entry.expiry - now_seconds() > REFRESH_MARGIN_SECONDS => Ok(entry.id_token),
        Some(_) => Err(sign_in_error(format!(
            "the ID token from {issuer} has expired: run `portico login --sso` again (kubectl \
             through the kubeconfig it wrote refreshes it by itself)"
        ))),
        None => Err(sign_in_error(format!(
            "no ID token from {issuer} in {}: run `portico login --sso`",
            dir.display()
        ))),
    }
}

/// The gateway's announcement of its provider (`GET /api/v1/auth/oidc`).
async fn announced(target: &Target) -> Result<(String, String), CommandError> {
    let client = GatewayClient::connect(Target {
        token: None,
        ..target.clone()
    })?;
    let answer = client
        .json(reqwest::Method::GET, client.url(&["auth", "oidc"]), None)
        .await
        .map_err(|e| match e {
            CommandError::Api { status: 404, .. } => CommandError::Usage(format!(
                "{} announces no OpenID provider (it runs without --oidc-issuer-url?): pass \
                 --oidc-issuer-url and --oidc-client-id",
                target.server
            )),
            other => other,
        })?;
    let field = |name: &str| {
        answer[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match (field("issuerUrl"), field("clientId")) {
        (Some(issuer), Some(client)) => Ok((issuer, client)),
        _ => Err(CommandError::Http(format!(
            "{}/api/v1/auth/oidc: no issuerUrl and clientId in {answer}",
            target.server
        ))),
    }
}

/// The kubeconfig of `login --sso`: the gateway's export for the person (every cluster they
/// may reach), each user replaced by the exec plugin.
fn exec_kubeconfig(exported: &str, exec: &Value) -> Result<String, CommandError> {
    let mut config: serde_json::Value = serde_saphyr::from_str(exported)
        .map_err(|e| CommandError::Http(format!("the exported kubeconfig does not parse: {e}")))?;
    let users = config["users"]
        .as_array_mut()
        .ok_or_else(|| CommandError::Http("the exported kubeconfig has no users".to_owned()))?;
    for user in users.iter_mut() {
        user["user"] = json!({"exec": exec});
    }
    serde_saphyr::to_string(&config)
        .map_err(|e| CommandError::Failed(format!("writing the kubeconfig: {e}")))
}

/// Writes a file whole, 0600 (it names no secret, but it is the person's own).
fn write_private(path: &Path, text: &str) -> Result<(), CommandError> {
    let failed =
        |e: std::io::Error| CommandError::Failed(format!("cannot write {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(failed)?;
    }
    let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// A file name from a context name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `portico login --sso`.
pub async fn login(
    args: &LoginArgs,
    path: &Path,
    name: String,
    target: Target,
) -> Result<Output, CommandError> {
    let (issuer, client_id) = match (&args.oidc.oidc_issuer_url, &args.oidc.oidc_client_id) {
        (Some(issuer), Some(client)) => (issuer.clone(), client.clone()),
        (issuer, client) => {
            let (announced_issuer, announced_client) = announced(&target).await?;
            (
                issuer.clone().unwrap_or(announced_issuer),
                client.clone().unwrap_or(announced_client),
            )
        }
    };
    let ca_file = args
        .oidc
        .oidc_ca_file
        .as_deref()
        .map(absolute)
        .transpose()?;
    let provider = Provider::discover(&issuer, &client_id, ca_file.as_deref()).await?;
    let scopes = provider.scopes(&args.oidc.oidc_scope);
    let timeout = Duration::from_secs(args.sso_timeout_seconds.max(1));
    let signed_in = if args.device {
        provider.device_flow(&scopes, timeout).await?
    } else {
        provider
            .code_flow(&scopes, !args.no_browser, timeout)
            .await?
    };
    let claims = signed_in.claims.clone();
    let cache_dir = cache_dir(&args.oidc, args.gateway.config.home.as_deref())?;
    let cache = TokenCache::new(cache_dir.clone());
    let tokens = cached(&issuer, &client_id, signed_in);
    {
        let _lock = cache.lock(&issuer, &client_id).await?;
        cache.write(&tokens)?;
    }

    let mut config = load(path)?;
    let context = Context {
        name: name.clone(),
        server: target.server.clone(),
        certificate_authority: target.ca_pem.clone(),
        credential: Some(Credential::Oidc {
            issuer_url: issuer.clone(),
            client_id: client_id.clone(),
            ca_file: ca_file.as_ref().map(|p| p.display().to_string()),
            token_cache_dir: Some(cache_dir.display().to_string()),
        }),
    };
    match config.get_mut(&name) {
        Some(slot) => *slot = context,
        None => config.contexts.push(context),
    }
    config.current_context = Some(name.clone());
    save(path, &config)?;

    let who = claims["email"]
        .as_str()
        .or_else(|| claims["sub"].as_str())
        .unwrap_or("?")
        .to_owned();
    let groups: Vec<String> = claims["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut value = json!({
        "context": name, "server": target.server, "issuerUrl": issuer, "clientId": client_id,
        "user": who, "groups": groups, "expiry": tokens.expiry,
        "configFile": path.display().to_string(),
        "tokenCache": cache.file(&issuer, &client_id).display().to_string(),
    });
    let mut text = format!(
        "Signed in to {issuer} as {who}{} for {} as context `{name}` (now the current \
         context).\n",
        if groups.is_empty() {
            String::new()
        } else {
            format!(" (groups {})", groups.join(", "))
        },
        target.server
    );
    if args.no_kubeconfig {
        return Ok(Output::new(value, text, args.output));
    }

    let kubeconfig_path = match &args.kubeconfig {
        Some(p) => absolute(p)?,
        None => {
            let home = args.gateway.config.home.as_ref().ok_or_else(|| {
                CommandError::Usage("no home for the kubeconfig: pass --kubeconfig".to_owned())
            })?;
            home.join(".kube")
                .join(format!("portico-{}.yaml", file_safe(&name)))
        }
    };
    let mut exec_args = vec![
        "credential".to_owned(),
        "--oidc-issuer-url".to_owned(),
        issuer.clone(),
        "--oidc-client-id".to_owned(),
        client_id.clone(),
        "--token-cache-dir".to_owned(),
        cache_dir.display().to_string(),
    ];
    if let Some(ca) = &ca_file {
        exec_args.extend(["--oidc-ca-file".to_owned(), ca.display().to_string()]);
    }
    if !args.oidc.oidc_scope.is_empty() {
        exec_args.extend(["--oidc-scope".to_owned(), scopes.join(",")]);
    }
    let command = std::env::current_exe()
        .map_err(|e| CommandError::Failed(format!("cannot find this program's path: {e}")))?;
    let exec = json!({
        "apiVersion": EXEC_API_VERSION,
        "command": command.display().to_string(),
        "args": exec_args,
        "interactiveMode": args.interactive_mode.as_str(),
        "provideClusterInfo": false,
    });
    let gateway = GatewayClient::connect(Target {
        token: Some(tokens.id_token.clone()),
        ..target.clone()
    })?;
    let exported = gateway
        .send(reqwest::Method::GET, gateway.url(&["kubeconfig"]), None)
        .await
        .map_err(|e| {
            CommandError::Failed(format!(
                "signed in and stored context `{name}`, but the gateway's kubeconfig export \
                 failed: {e}"
            ))
        })?;
    write_private(&kubeconfig_path, &exec_kubeconfig(&exported, &exec)?)?;
    value["kubeconfig"] = json!(kubeconfig_path.display().to_string());
    text.push_str(&format!(
        "Kubeconfig written to {0}; kubectl gets its token from `portico credential`:\n\n    \
         export KUBECONFIG={0}\n",
        kubeconfig_path.display()
    ));
    Ok(Output::new(value, text, args.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_reads_interactivity_and_version() {
        assert_eq!(exec_info(None), (EXEC_API_VERSION.to_owned(), false));
        let info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":true}}"#;
        assert_eq!(
            exec_info(Some(info)),
            ("client.authentication.k8s.io/v1beta1".to_owned(), true)
        );
        assert!(!exec_info(Some("not json")).1);
    }

    #[test]
    fn the_kubeconfig_users_run_the_plugin() {
        let exported = "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    \
                        server: https://gw/k8s/clusters/a\ncontexts:\n- name: a\n  context:\n    \
                        cluster: a\n    user: me\nusers:\n- name: me\n  user:\n    token: secret\n";
        let exec = json!({"apiVersion": EXEC_API_VERSION, "command": "/bin/portico"});
        let text = exec_kubeconfig(exported, &exec).unwrap();
        assert!(!text.contains("secret"), "{text}");
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back["users"][0]["name"], "me");
        assert_eq!(back["users"][0]["user"]["exec"]["command"], "/bin/portico");
        assert_eq!(back["contexts"][0]["context"]["user"], "me");
    }

    #[test]
    fn claims_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
        assert_eq!(jwt_claims(&format!("h.{payload}.s")).unwrap()["sub"], "a");
        assert!(jwt_claims("nonsense").is_none());
    }
}
