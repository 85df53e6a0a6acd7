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

use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde_json::json;

use crate::app::App;
use crate::audit::AuditEntry;
use crate::auth::{Access, AuthError, Principal};
use crate::cluster::{self, ClusterError};

/// Where the proxy is mounted.
pub const PREFIX: &str = "/k8s/clusters/";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    cluster: String,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster: String,
}

/// Per-cluster proxy metrics.
#[derive(Debug)]
pub struct ProxyMetrics {
    requests: Family<CodeLabels, Counter>,
    upstream_latency: Family<ClusterLabel, Histogram>,
    in_flight: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
    open_upgrades: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
}

impl ProxyMetrics {
    pub fn new(metrics: &crate::telemetry::Metrics) -> Self {
        let this = Self {
            requests: Family::default(),
            upstream_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 20))
            }),
            in_flight: Family::default(),
            open_upgrades: Family::default(),
        };
        metrics.register(|registry| {
            registry.register(
                "proxy_requests",
                "Proxied requests by cluster and status code (Portico's own errors included)",
                this.requests.clone(),
            );
            registry.register(
                "proxy_upstream_duration_seconds",
                "Time from sending upstream to the response head, by cluster",
                this.upstream_latency.clone(),
            );
            registry.register(
                "proxy_in_flight_requests",
                "Proxied requests whose response is still streaming, by cluster",
                this.in_flight.clone(),
            );
            registry.register(
                "proxy_open_upgrades",
                "Spliced upgraded connections (exec, attach, port-forward), by cluster",
                this.open_upgrades.clone(),
            );
        });
        this
    }

    fn count(&self, cluster: &str, code: StatusCode) {
        self.requests
            .get_or_create(&CodeLabels {
                cluster: cluster.to_owned(),
                code: code.as_u16(),
            })
            .inc();
    }
}

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

/// The cluster id and upstream path of a proxy URL, vetted.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub cluster: &'a str,
    /// Starts with `/`; the raw (still percent-encoded) path after the id.
    pub path: &'a str,
}

/// Splits and vets the raw request path. Works on the encoded form: an encoded slash in the id
/// or a `..` segment in any spelling is refused, never normalised into another resource.
pub fn parse_target(raw_path: &str) -> Result<Target<'_>, StatusError> {
    let bad = |message: String| StatusError::new(StatusCode::BAD_REQUEST, "BadRequest", message);
    let rest = raw_path
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("not a proxy path".to_owned()))?;
    let (cluster, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if cluster.contains('%') {
        return Err(bad(format!(
            "encoded characters are not allowed in the cluster id `{cluster}`"
        )));
    }
    cluster::validate_id(cluster).map_err(|e| bad(e.to_string()))?;
    if path.split('/').any(is_dot_segment) {
        return Err(bad("`.` and `..` path segments are not allowed".to_owned()));
    }
    Ok(Target { cluster, path })
}

/// `.` or `..`, each dot written as `.`, `%2e` or `%2E` (no allocation: every request passes
/// here).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// Headers that describe one hop and never cross the proxy (RFC 9110 §7.6.1), plus the
/// caller's credentials and identity claims, which the cluster must not see.
fn strip_request_headers(headers: &mut HeaderMap, keep_upgrade: bool) {
    strip_hop_by_hop(headers, keep_upgrade);
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    headers.remove(header::PROXY_AUTHORIZATION);
    let impersonation: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for name in impersonation {
        headers.remove(name);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the audit log calls a request.
fn verb(method: &Method, path: &str, upgrade: bool) -> Option<String> {
    let sub = path.rsplit('/').next().unwrap_or_default();
    if upgrade || matches!(sub, "exec" | "attach" | "portforward") && *method == Method::POST {
        return Some(match sub {
            "exec" | "attach" | "portforward" => sub.to_owned(),
            _ => "upgrade".to_owned(),
        });
    }
    match *method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            Some(method.as_str().to_ascii_lowercase())
        }
        _ => None,
    }
}

/// Bound on waiting for the response head: the configured timeout, or longer when the client
/// asked the apiserver for a longer server-side `timeout`/`timeoutSeconds`.
fn head_timeout(default: Duration, query: Option<&str>) -> Duration {
    let requested = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, v)| match k {
            "timeoutSeconds" => v.parse::<u64>().ok().map(Duration::from_secs),
            "timeout" => parse_go_duration(v),
            _ => None,
        })
        .max();
    match requested {
        Some(t) => default.max(t + Duration::from_secs(5)),
        None => default,
    }
}

/// `30s`, `1m`, `1m30s`, `500ms` (what clients put in `?timeout=`).
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => value * 3600.0,
            "m" => value * 60.0,
            "s" => value,
            "ms" => value / 1000.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(seconds).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// The proxy handler.
pub async fn handle(State(app): State<App>, request: Request) -> Response {
    let raw_path = request.uri().path().to_owned();
    let target = match parse_target(&raw_path) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let response = match forward(&app, &target, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    app.proxy_metrics.count(target.cluster, response.status());
    response
}

async fn forward(
    app: &App,
    target: &Target<'_>,
    mut request: Request,
) -> Result<Response, StatusError> {
    let principal = authenticate(app, request.headers()).await?;
    let upgrade = is_upgrade(request.headers());
    let method = request.method().clone();
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
    let read_only = matches!(method, Method::GET | Method::HEAD) && !upgrade;
    if grant.access == Access::Read && !read_only {
        return Err(StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "token `{}` has read access to cluster `{}`: {} {} needs write access",
                principal.token.name,
                target.cluster,
                if upgrade { "upgrade" } else { method.as_str() },
                target.path
            ),
        ));
    }

    let connection = match app.clusters.connection(target.cluster) {
        Some(c) if c.is_connected() => c,
        Some(c) => {
            let state = c.state();
            return Err(StatusError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!(
                    "cluster `{}` is not connected on this replica ({:?}{})",
                    target.cluster,
                    state.phase,
                    state
                        .last_error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )
                .to_lowercase(),
            ));
        }
        None => {
            return Err(match app.clusters.record(target.cluster).await {
                Err(ClusterError::NotFound(_)) => StatusError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("cluster `{}` not found", target.cluster),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cluster lookup failed");
                    StatusError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        "cluster lookup failed",
                    )
                }
                Ok(_) => StatusError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!(
                        "cluster `{}` is not connected on this replica",
                        target.cluster
                    ),
                ),
            });
        }
    };

    let query = request.uri().query().map(str::to_owned);
    let path_and_query = match &query {
        Some(q) => format!("{}?{q}", target.path),
        None => target.path.to_owned(),
    };
    let uri = connection.upstream.uri(&path_and_query).map_err(|e| {
        StatusError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("bad path: {e}"),
        )
    })?;
    let audit_verb = verb(&method, target.path, upgrade);

    // Take the client side's upgrade handle before the request is consumed.
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    strip_request_headers(&mut parts.headers, upgrade);
    if upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
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
    if grant.impersonate {
        let token = &principal.token;
        let user = token.impersonate_user.as_deref().unwrap_or(&token.name);
        if let Ok(value) = HeaderValue::from_str(user) {
            parts.headers.insert("impersonate-user", value);
        }
        for group in &token.impersonate_groups {
            if let Ok(value) = HeaderValue::from_str(group) {
                parts.headers.append("impersonate-group", value);
            }
        }
    }
    let mut upstream_request = http::Request::from_parts(parts, body);
    *upstream_request.uri_mut() = uri;
    *upstream_request.version_mut() = Version::HTTP_11;

    let cluster_label = ClusterLabel {
        cluster: target.cluster.to_owned(),
    };
    let in_flight = app
        .proxy_metrics
        .in_flight
        .get_or_create(&cluster_label)
        .clone();
    in_flight.inc();
    let guard = GaugeGuard(in_flight);

    let timeout = head_timeout(app.config.upstream_timeout, query.as_deref());
    let started = Instant::now();
    let sent =
        tokio::time::timeout(timeout, connection.upstream.send(upstream_request, upgrade)).await;
    app.proxy_metrics
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
    record_audit(app, &principal, target, &path_and_query, audit_verb, status);
    let mut upstream_response = outcome?;
    if upstream_response.status() == StatusCode::UNAUTHORIZED {
        connection.upstream.invalidate_credentials();
    }

    if upstream_response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut upstream_response);
        let open = app
            .proxy_metrics
            .open_upgrades
            .get_or_create(&cluster_label)
            .clone();
        let cluster_id = target.cluster.to_owned();
        tokio::spawn(async move {
            let _in_flight = guard;
            let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(cluster = %cluster_id, error = %e, "upgrade failed");
                    return;
                }
            };
            open.inc();
            let _open = GaugeGuard(open);
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(cluster = %cluster_id, error = %e, "upgraded stream ended");
            }
        });
        let (mut parts, _) = upstream_response.into_parts();
        parts.headers.remove(header::TRANSFER_ENCODING);
        return Ok(Response::from_parts(parts, Body::empty()));
    }

    let (mut parts, body) = upstream_response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    parts.version = Version::HTTP_11;
    // The guard lives as long as the body streams.
    let body = body.map_frame(move |frame| {
        let _ = &guard;
        frame
    });
    Ok(Response::from_parts(parts, Body::new(body)))
}

async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Principal, StatusError> {
    let header = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| auth_status(AuthError::Invalid))?,
        ),
        None => None,
    };
    app.auth.authenticate(header).await.map_err(auth_status)
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

fn record_audit(
    app: &App,
    principal: &Principal,
    target: &Target<'_>,
    path_and_query: &str,
    verb: Option<String>,
    status: StatusCode,
) {
    if let Some(verb) = verb {
        app.audit.record(AuditEntry {
            at: crate::storage::now_millis(),
            token_id: principal.token.id.clone(),
            token_name: principal.token.name.clone(),
            cluster: target.cluster.to_owned(),
            verb,
            path: path_and_query.chars().take(2048).collect(),
            status: status.as_u16(),
        });
    }
}

/// Decrements a gauge when dropped.
struct GaugeGuard(Gauge<i64, AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
