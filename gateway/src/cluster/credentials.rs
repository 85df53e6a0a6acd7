//! The `Authorization` header sent to a cluster: static, re-read from a rotating token file, or
//! obtained from a client-go exec credential plugin and cached until it expires.

use parking_lot::Mutex;
use std::time::Duration;

use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::spec::{ExecSpec, RequestAuth};

/// How long a token file's content is trusted before it is read again. kubelet rotates
/// projected tokens well before they expire, so a minute is plenty.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);
/// An exec plugin gets this long to answer.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh exec credentials this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// A credential that cannot be produced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The token file cannot be read.
    #[error("cannot read token file `{path}`: {message}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The exec plugin failed or printed something unusable.
    #[error("exec credential plugin `{command}`: {message}")]
    Exec {
        /// The plugin's command.
        command: String,
        /// Why.
        message: String,
    },
    /// The credential is not a valid header value.
    #[error("credential contains characters not allowed in an HTTP header")]
    Header,
}

type Cached = Mutex<Option<(HeaderValue, Option<Instant>)>>;

/// Produces the `Authorization` header for one cluster.
#[derive(Debug)]
pub struct Credentials {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    None,
    Static(HeaderValue),
    TokenFile {
        path: String,
        cached: Cached,
    },
    Exec {
        spec: ExecSpec,
        cached: Cached,
        /// Serialises plugin runs: concurrent requests wait for one run instead of forking many.
        running: tokio::sync::Mutex<()>,
    },
}

impl Credentials {
    pub fn new(auth: &RequestAuth) -> Result<Self, CredentialError> {
        let kind = match auth {
            RequestAuth::None => Kind::None,
            RequestAuth::Token { token } => Kind::Static(bearer(token)?),
            RequestAuth::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Kind::Static(sensitive(&format!("Basic {encoded}"))?)
            }
            RequestAuth::TokenFile { path } => Kind::TokenFile {
                path: path.clone(),
                cached: Mutex::new(None),
            },
            RequestAuth::Exec(spec) => Kind::Exec {
                spec: spec.clone(),
                cached: Mutex::new(None),
                running: tokio::sync::Mutex::new(()),
            },
        };
        Ok(Self { kind })
    }

    /// The header to send, if any. Cheap when cached (the proxy's hot path).
    pub async fn header(&self) -> Result<Option<HeaderValue>, CredentialError> {
        match &self.kind {
            Kind::None => Ok(None),
            Kind::Static(value) => Ok(Some(value.clone())),
            Kind::TokenFile { path, cached } => {
                if let Some(value) = fresh(cached) {
                    return Ok(Some(value));
                }
                let token = tokio::fs::read_to_string(path).await.map_err(|e| {
                    CredentialError::TokenFile {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
                let value = bearer(token.trim())?;
                store(cached, &value, Some(Instant::now() + TOKEN_FILE_REFRESH));
                Ok(Some(value))
            }
            Kind::Exec {
                spec,
                cached,
                running,
            } => {
                if let Some(value) = fresh(cached) {
                    return Ok(Some(value));
                }
                let _one_at_a_time = running.lock().await;
                if let Some(value) = fresh(cached) {
                    return Ok(Some(value));
                }
                let (token, expires) = run_exec(spec).await?;
                let value = bearer(&token)?;
                store(cached, &value, expires);
                Ok(Some(value))
            }
        }
    }

    /// Forgets a cached credential (the cluster answered 401: client-go re-runs exec then).
    pub fn invalidate(&self) {
        match &self.kind {
            Kind::TokenFile { cached, .. } | Kind::Exec { cached, .. } => {
                *cached.lock() = None;
            }
            Kind::None | Kind::Static(_) => {}
        }
    }
}

fn fresh(cached: &Cached) -> Option<HeaderValue> {
    let cached = cached.lock();
    match &*cached {
        Some((value, None)) => Some(value.clone()),
        Some((value, Some(until))) if Instant::now() < *until => Some(value.clone()),
        _ => None,
    }
}

fn store(cached: &Cached, value: &HeaderValue, until: Option<Instant>) {
    *cached.lock() = Some((value.clone(), until));
}

fn bearer(token: &str) -> Result<HeaderValue, CredentialError> {
    sensitive(&format!("Bearer {token}"))
}

fn sensitive(text: &str) -> Result<HeaderValue, CredentialError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| CredentialError::Header)?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    expiration_timestamp: Option<jiff::Timestamp>,
    client_certificate_data: Option<String>,
}

/// Runs the plugin as client-go does: `KUBERNETES_EXEC_INFO` describes the request, stdout is an
/// `ExecCredential`. Returns the token and when to refresh it.
async fn run_exec(spec: &ExecSpec) -> Result<(String, Option<Instant>), CredentialError> {
    let fail = |message: String| CredentialError::Exec {
        command: spec.command.clone(),
        message,
    };
    let info = serde_json::json!({
        "apiVersion": spec.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    });
    let mut command = tokio::process::Command::new(&spec.command);
    command
        .args(&spec.args)
        .envs(&spec.env)
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(EXEC_TIMEOUT, command.output())
        .await
        .map_err(|_| fail(format!("no answer within {}s", EXEC_TIMEOUT.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!(
            "exited with {}: {}",
            output.status,
            stderr.trim().chars().take(500).collect::<String>()
        )));
    }
    let credential: ExecCredential = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(format!("stdout is not an ExecCredential: {e}")))?;
    let status = credential
        .status
        .ok_or_else(|| fail("ExecCredential has no status".to_owned()))?;
    let token = match (status.token, status.client_certificate_data) {
        (Some(token), _) if !token.is_empty() => token,
        (_, Some(_)) => {
            return Err(fail(
                "returned a client certificate; Portico supports token exec credentials only"
                    .to_owned(),
            ));
        }
        _ => return Err(fail("ExecCredential status has no token".to_owned())),
    };
    let refresh_at = status.expiration_timestamp.map(|at| {
        let left = at.duration_since(jiff::Timestamp::now());
        let left = Duration::try_from(left).unwrap_or_default();
        Instant::now() + left.saturating_sub(EXPIRY_MARGIN)
    });
    Ok((token, refresh_at))
}
