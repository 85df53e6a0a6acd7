//! `/k8s/clusters/{id}/{path}?{query}` → `{cluster server}/{path}?{query}`.
//!
//! A request's life:
//!
//! ```text
//! parse + vet path ─▶ authenticate ─▶ authorize (grant) ─▶ local connection ─▶ rewrite headers
//!        │400             │401             │403                 │404/503            │
//!        ▼                ▼                ▼                    ▼                   ▼
//!   Status JSON     Status JSON       Status JSON          Status JSON     send over the pool
//!                                                                            │502/504 on failure
//!                        101 Switching Protocols? ─ yes ─▶ splice both upgraded streams
//!                                                  └ no ──▶ stream the body back as it arrives
//! ```
//!
//! Errors are Kubernetes `Status` objects so `kubectl` prints them. Bodies are never buffered:
//! a watch event reaches the client when the apiserver sends it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use serde_json::json;

use crate::audit::{AuditEntry, AuditKind, AuditLog};
use crate::auth::{Access, AuthError, Authenticator, Grant, Principal, Token};
use crate::cluster::{self, ClusterError, ClusterManager};
use crate::peer::ClientAddr;
use headers::{
    X_FORWARDED_FOR, head_timeout, is_upgrade, strip_hop_by_hop, strip_request_headers, verb,
};
pub use metrics::ProxyMetrics;
use metrics::{ClusterLabel, GaugeGuard};
pub use path::{Target, parse_target};
use stream::{Revocable, splice};

/// Where the proxy is mounted.
pub const PREFIX: &str = "/k8s/clusters/";

/// A Kubernetes `Status` failure.
#[derive(Debug)]
pub struct StatusError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl StatusError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        let mut response = (self.code, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.code == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portico\""),
            );
        }
        response
    }
}

/// What the proxy works with: callers' tokens, this replica's connections, the audit log and
/// its own metrics. Cheap to clone; the router hands it to [`handle`] as its state.
#[derive(Debug, Clone)]
pub struct Proxy {
    auth: Arc<Authenticator>,
    clusters: Arc<ClusterManager>,
    audit: Arc<AuditLog>,
    metrics: Arc<ProxyMetrics>,
    /// Bound on an upstream's response head (`--upstream-timeout-seconds`).
    upstream_timeout: Duration,
}

impl Proxy {
    pub fn new(
        auth: Arc<Authenticator>,
        clusters: Arc<ClusterManager>,
        audit: Arc<AuditLog>,
        metrics: ProxyMetrics,
        upstream_timeout: Duration,
    ) -> Self {
        Self {
            auth,
            clusters,
            audit,
            metrics: Arc::new(metrics),
            upstream_timeout,
        }
    }
}

/// The proxy handler.
pub async fn handle(State(proxy): State<Proxy>, request: Request) -> Response {
    let raw_path = request.uri().path().to_owned();
    let target = match parse_target(&raw_path) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let mut registered = false;
    let response = match forward(&proxy, &target, &mut registered, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    // Only registered clusters get a series of their own: anyone can send any id.
    let label = if registered {
        target.cluster
    } else {
        UNREGISTERED
    };
    proxy.metrics.count(label, response.status());
    response
}

/// The metric label of requests for ids that are not registered clusters (or not known to be,
/// for callers who did not authenticate). Cluster ids start with a letter or digit.
pub const UNREGISTERED: &str = "_unregistered";

/// What the audit log needs to know about one request, gathered as it is vetted.
struct Call<'a> {
    target: &'a Target<'a>,
    method: Method,
    upgrade: bool,
    /// Path and query as forwarded.
    path_and_query: String,
    client: Option<ClientAddr>,
}

async fn forward(
    proxy: &Proxy,
    target: &Target<'_>,
    registered: &mut bool,
    mut request: Request,
) -> Result<Response, StatusError> {
    let query = request.uri().query().map(str::to_owned);
    let call = Call {
        target,
        method: request.method().clone(),
        upgrade: is_upgrade(request.headers()),
        path_and_query: match &query {
            Some(q) => format!("{}?{q}", target.path),
            None => target.path.to_owned(),
        },
        client: request.extensions().get::<ClientAddr>().copied(),
    };
    // In memory and bounded by the registry: safe before authentication.
    let local = proxy.clusters.connection(target.cluster);
    *registered = local.is_some();

    // 1. Who is calling, and may they do this here?
    let principal = match proxy
        .auth
        .authenticate_headers(request.headers())
        .await
        .map_err(auth_status)
    {
        Ok(principal) => principal,
        Err(e) => {
            record_refusal(proxy, None, &call, e.code);
            return Err(e);
        }
    };
    let grant = authorize(&principal, &call).inspect_err(|e| {
        record_refusal(proxy, Some(&principal), &call, e.code);
    })?;
    // Built before anything is sent: a request whose identity cannot be expressed is refused.
    let impersonation = if grant.impersonate {
        impersonation_headers(&principal.token).inspect_err(|e| {
            record_refusal(proxy, Some(&principal), &call, e.code);
        })?
    } else {
        Vec::new()
    };

    // 2. Is the cluster connected here?
    let connection = match local {
        Some(c) if c.is_connected() => c,
        Some(c) => return Err(not_connected(target.cluster, Some(c.state()))),
        None => {
            return Err(match proxy.clusters.record(target.cluster).await {
                Err(ClusterError::NotFound(_)) => StatusError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("cluster `{}` not found", target.cluster),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cluster lookup failed");
                    StatusError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "cluster lookup failed; try again",
                    )
                }
                Ok(_) => {
                    *registered = true;
                    not_connected(target.cluster, None)
                }
            });
        }
    };

    // 3. A long-lived request holds one of the token's stream slots and ends when the token
    //    is revoked or expires.
    let stream = if is_long_lived(target.path, query.as_deref(), call.upgrade) {
        match proxy.auth.open_stream(&principal.token) {
            Ok(stream) => Some(stream),
            Err(limit) => {
                let e = StatusError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    format!(
                        "token `{}` already has {limit} long-lived requests (watches, streams, \
                         exec) open; close some first",
                        principal.token.name
                    ),
                );
                record_refusal(proxy, Some(&principal), &call, e.code);
                return Err(e);
            }
        }
    } else {
        None
    };

    // 4. The upstream request: the cluster's credentials, the caller's identity if the grant
    //    impersonates, nothing of the caller's own credentials or identity claims.
    let uri = connection.upstream.uri(&call.path_and_query).map_err(|e| {
        StatusError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("bad path: {e}"),
        )
    })?;
    let client_upgrade = call.upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    strip_request_headers(&mut parts.headers, call.upgrade);
    if call.upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    if let Some(ClientAddr(peer)) = call.client
        && let Ok(value) = HeaderValue::from_str(&peer.ip().to_string())
    {
        parts.headers.insert(X_FORWARDED_FOR, value);
    }
    match connection.upstream.authorization().await {
        Ok(Some(value)) => {
            parts.headers.insert(header::AUTHORIZATION, value);
        }
        Ok(None) => {}
        Err(e) => {
            return Err(StatusError::new(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                format!("cluster `{}` credentials: {e}", target.cluster),
            ));
        }
    }
    for (name, value) in impersonation {
        parts.headers.append(name, value);
    }
    let mut upstream_request = http::Request::from_parts(parts, body);
    *upstream_request.uri_mut() = uri;
    *upstream_request.version_mut() = Version::HTTP_11;

    // 5. Send, bounded until the response head.
    let cluster_label = ClusterLabel {
        cluster: target.cluster.to_owned(),
    };
    let in_flight = proxy
        .metrics
        .in_flight
        .get_or_create(&cluster_label)
        .clone();
    in_flight.inc();
    let guard = GaugeGuard(in_flight);
    let timeout = head_timeout(proxy.upstream_timeout, query.as_deref());
    let started = Instant::now();
    let sent = tokio::time::timeout(
        timeout,
        connection.upstream.send(upstream_request, call.upgrade),
    )
    .await;
    proxy
        .metrics
        .upstream_latency
        .get_or_create(&cluster_label)
        .observe(started.elapsed().as_secs_f64());
    let outcome = match sent {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(StatusError::new(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!("cluster `{}`: {e}", target.cluster),
        )),
        Err(_) => Err(StatusError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!(
                "cluster `{}` did not answer within {}s",
                target.cluster,
                timeout.as_secs()
            ),
        )),
    };
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(e) => e.code,
    };
    if let Some(verb) = verb(&call.method, target.path, call.upgrade) {
        record(proxy, Some(&principal), &call, verb, status);
    }
    let mut upstream_response = outcome?;
    if upstream_response.status() == StatusCode::UNAUTHORIZED {
        connection.upstream.invalidate_credentials();
    }

    // 6. Hand the answer back: splice an upgrade, or stream the body as it arrives.
    if upstream_response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut upstream_response);
        let open = proxy
            .metrics
            .open_upgrades
            .get_or_create(&cluster_label)
            .clone();
        tokio::spawn(splice(
            target.cluster.to_owned(),
            client_upgrade,
            upstream_upgrade,
            open,
            (guard, stream),
        ));
        let (mut parts, _) = upstream_response.into_parts();
        parts.headers.remove(header::TRANSFER_ENCODING);
        return Ok(Response::from_parts(parts, Body::empty()));
    }

    let (mut parts, body) = upstream_response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    let body = match stream {
        Some(stream) => Body::new(Revocable::new(body, stream, guard)),
        // The guard lives as long as the body streams.
        None => Body::new(body.map_frame(move |frame| {
            let _ = &guard;
            frame
        })),
    };
    Ok(Response::from_parts(parts, body))
}

/// The strongest grant of `principal` for the call's cluster, if it allows the call.
fn authorize(principal: &Principal, call: &Call<'_>) -> Result<Grant, StatusError> {
    let target = call.target;
    let grant = principal.grant_for(target.cluster).ok_or_else(|| {
        StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}` has no grant for cluster `{}`",
                principal.token.name, target.cluster
            ),
        )
    })?;
    let read_only = matches!(call.method, Method::GET | Method::HEAD) && !call.upgrade;
    if grant.access == Access::Read && !read_only {
        return Err(StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}` has read access to cluster `{}`: {} {} needs write access",
                principal.token.name,
                target.cluster,
                if call.upgrade {
                    "upgrade"
                } else {
                    call.method.as_str()
                },
                target.path
            ),
        ));
    }
    Ok(grant)
}

/// `Impersonate-User` and `Impersonate-Group` for a grant that impersonates. Names are checked
/// when a token is created; one that still cannot be sent (a token stored before that check)
/// refuses the request: sending it without the headers would act with the gateway's own
/// credential.
fn impersonation_headers(token: &Token) -> Result<Vec<(HeaderName, HeaderValue)>, StatusError> {
    let refuse = |what: &str| {
        StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}`: its impersonated {what} cannot be sent as a header; the request \
                 was refused (recreate the token with a valid name)",
                token.name
            ),
        )
    };
    let user = token.impersonate_user.as_deref().unwrap_or(&token.name);
    let mut headers = Vec::with_capacity(1 + token.impersonate_groups.len());
    let value = crate::auth::impersonation_header(user).map_err(|_| refuse("user"))?;
    headers.push((HeaderName::from_static("impersonate-user"), value));
    for group in &token.impersonate_groups {
        let value = crate::auth::impersonation_header(group).map_err(|_| refuse("group"))?;
        headers.push((HeaderName::from_static("impersonate-group"), value));
    }
    Ok(headers)
}

fn not_connected(cluster: &str, state: Option<cluster::LocalState>) -> StatusError {
    let detail = state
        .map(|state| {
            format!(
                " ({:?}{})",
                state.phase,
                state
                    .last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
            .to_lowercase()
        })
        .unwrap_or_default();
    StatusError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!("cluster `{cluster}` is not connected on this replica{detail}"),
    )
}

/// Watches (`?watch=true`, `/watch/` paths), followed logs and upgrades: requests that stay
/// open as long as the client wants.
fn is_long_lived(path: &str, query: Option<&str>, upgrade: bool) -> bool {
    // Go's strconv.ParseBool, as the apiserver reads these parameters.
    let truthy = |v: &str| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True");
    upgrade
        || path.contains("/watch/")
        || query.is_some_and(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .any(|(k, v)| matches!(k, "watch" | "follow") && truthy(v))
        })
}

fn auth_status(e: AuthError) -> StatusError {
    match e {
        AuthError::Unavailable => StatusError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        ),
        _ => StatusError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("portico: {e}"),
        ),
    }
}

/// Audits a request Portico refused itself (401, 403, 429), whatever its method.
fn record_refusal(
    proxy: &Proxy,
    principal: Option<&Principal>,
    call: &Call<'_>,
    status: StatusCode,
) {
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        let verb = verb(&call.method, call.target.path, call.upgrade)
            .unwrap_or_else(|| call.method.as_str().to_ascii_lowercase());
        record(proxy, principal, call, verb, status);
    }
}

fn record(
    proxy: &Proxy,
    principal: Option<&Principal>,
    call: &Call<'_>,
    verb: String,
    status: StatusCode,
) {
    proxy.audit.record(AuditEntry {
        at: crate::clock::now_millis(),
        kind: AuditKind::Proxy,
        token_id: principal.map(|p| p.token.id.clone()).unwrap_or_default(),
        token_name: principal.map(|p| p.token.name.clone()).unwrap_or_default(),
        cluster: call.target.cluster.to_owned(),
        verb,
        path: call.path_and_query.chars().take(2048).collect(),
        status: status.as_u16(),
        source: call
            .client
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default(),
    });
}

mod headers;
mod metrics;
mod path;
mod stream;

#[cfg(test)]
mod tests;
