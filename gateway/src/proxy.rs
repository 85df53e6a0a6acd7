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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::task::{Context, Poll};
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
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::{Access, AuthError, Grant, Principal, StreamGuard, Token};
use crate::cluster::{self, ClusterError};
use crate::server::ClientAddr;

/// Set from the TCP peer; a client's own value is never forwarded.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

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
    if let Some(problem) = path_problem(path) {
        return Err(bad(format!("{problem} in the path are not allowed")));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(bad("`.` and `..` path segments are not allowed".to_owned()));
    }
    Ok(Target { cluster, path })
}

/// Spellings that a server or proxy behind the cluster might decode into another path than
/// the one vetted here: encoded `/` and `\`, an encoded `%` (double encoding: `%252e%252e`),
/// `;` path parameters (`..;`), encoded control characters, a raw `\`, and a `%` that is not
/// followed by two hex digits. No Kubernetes resource path needs any of them.
fn path_problem(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match decoded {
                    None => return Some("malformed percent-encodings"),
                    Some(b'/' | b'\\') => return Some("encoded slashes"),
                    Some(b'%') => return Some("encoded `%` (double encoding)"),
                    Some(b';') => return Some("`;` path parameters"),
                    Some(c) if c < 0x20 || c == 0x7f => return Some("encoded control characters"),
                    Some(_) => i += 3,
                }
            }
            b';' => return Some("`;` path parameters"),
            b'\\' => return Some("backslashes"),
            _ => i += 1,
        }
    }
    None
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
    // Portico's own session, never the cluster's business.
    headers.remove(header::COOKIE);
    // Claims about the client's address: X-Forwarded-For is set from the TCP peer.
    headers.remove(header::FORWARDED);
    headers.remove(X_FORWARDED_FOR);
    headers.remove("x-real-ip");
    // Identity claims: impersonation, and the apiserver's front-proxy headers
    // (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`).
    let claims: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.starts_with("impersonate-") || name.starts_with("x-remote-")
        })
        .cloned()
        .collect();
    for name in claims {
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
    let mut registered = false;
    let response = match forward(&app, &target, &mut registered, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    // Only registered clusters get a series of their own: anyone can send any id.
    let label = if registered {
        target.cluster
    } else {
        UNREGISTERED
    };
    app.proxy_metrics.count(label, response.status());
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
    app: &App,
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
    let local = app.clusters.connection(target.cluster);
    *registered = local.is_some();

    // 1. Who is calling, and may they do this here?
    let principal = match authenticate(app, request.headers()).await {
        Ok(principal) => principal,
        Err(e) => {
            record_refusal(app, None, &call, e.code);
            return Err(e);
        }
    };
    let grant = authorize(&principal, &call).inspect_err(|e| {
        record_refusal(app, Some(&principal), &call, e.code);
    })?;
    // Built before anything is sent: a request whose identity cannot be expressed is refused.
    let impersonation = if grant.impersonate {
        impersonation_headers(&principal.token).inspect_err(|e| {
            record_refusal(app, Some(&principal), &call, e.code);
        })?
    } else {
        Vec::new()
    };

    // 2. Is the cluster connected here?
    let connection = match local {
        Some(c) if c.is_connected() => c,
        Some(c) => return Err(not_connected(target.cluster, Some(c.state()))),
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
        match app.auth.open_stream(&principal.token) {
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
                record_refusal(app, Some(&principal), &call, e.code);
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
    let in_flight = app
        .proxy_metrics
        .in_flight
        .get_or_create(&cluster_label)
        .clone();
    in_flight.inc();
    let guard = GaugeGuard(in_flight);
    let timeout = head_timeout(app.config.upstream_timeout, query.as_deref());
    let started = Instant::now();
    let sent = tokio::time::timeout(
        timeout,
        connection.upstream.send(upstream_request, call.upgrade),
    )
    .await;
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
    if let Some(verb) = verb(&call.method, target.path, call.upgrade) {
        record(app, Some(&principal), &call, verb, status);
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
        let open = app
            .proxy_metrics
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

/// Splices an upgraded connection until either side closes or the token loses its right.
async fn splice(
    cluster: String,
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    open: Gauge<i64, AtomicI64>,
    guards: (GaugeGuard, Option<StreamGuard>),
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(%cluster, error = %e, "upgrade failed");
            return;
        }
    };
    open.inc();
    let _open = GaugeGuard(open);
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let revoked = guards.1.as_ref().map(StreamGuard::revoked);
    let revoked = async {
        match revoked {
            Some(revoked) => revoked.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = result {
                tracing::debug!(%cluster, error = %e, "upgraded stream ended");
            }
        }
        () = revoked => {
            tracing::info!(%cluster, "token revoked or expired: upgraded stream closed");
        }
    }
}

/// A long-lived response body that ends (with an error, so the client sees a cut stream, not
/// a clean end) when its token is revoked or expires.
struct Revocable {
    inner: hyper::body::Incoming,
    revoked: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    _guards: (StreamGuard, GaugeGuard),
}

impl Revocable {
    fn new(inner: hyper::body::Incoming, stream: StreamGuard, in_flight: GaugeGuard) -> Self {
        Self {
            inner,
            revoked: Box::pin(stream.revoked()),
            _guards: (stream, in_flight),
        }
    }
}

impl hyper::body::Body for Revocable {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, axum::Error>>> {
        if self.revoked.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(
                "the token was revoked or expired",
            ))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(axum::Error::new)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
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

/// Audits a request Portico refused itself (401, 403, 429), whatever its method.
fn record_refusal(app: &App, principal: Option<&Principal>, call: &Call<'_>, status: StatusCode) {
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        let verb = verb(&call.method, call.target.path, call.upgrade)
            .unwrap_or_else(|| call.method.as_str().to_ascii_lowercase());
        record(app, principal, call, verb, status);
    }
}

fn record(
    app: &App,
    principal: Option<&Principal>,
    call: &Call<'_>,
    verb: String,
    status: StatusCode,
) {
    app.audit.record(AuditEntry {
        at: crate::storage::now_millis(),
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

/// Decrements a gauge when dropped.
struct GaugeGuard(Gauge<i64, AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
