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
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::cluster::{ClusterError, ClusterManager, Connection};
use crate::peer::ClientAddr;
use headers::is_upgrade;
use metrics::ClusterSeries;
pub use metrics::ProxyMetrics;
pub use path::{Target, parse_target};
pub use status::StatusError;
use status::not_connected;
pub use stream::Drain;
use upstream::upstream_request;

/// Where the proxy is mounted.
pub const PREFIX: &str = "/k8s/clusters/";

/// The proxy's route template: the router's route, and the `route` label of its HTTP metrics
/// when the listener serves it without the router.
pub const ROUTE: &str = "/k8s/clusters/{*rest}";

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
    /// How long-lived streams end when the gateway stops.
    drain: Drain,
}

impl Proxy {
    pub fn new(
        auth: Arc<Authenticator>,
        clusters: Arc<ClusterManager>,
        audit: Arc<AuditLog>,
        metrics: ProxyMetrics,
        upstream_timeout: Duration,
        drain: Drain,
    ) -> Self {
        Self {
            auth,
            clusters,
            audit,
            metrics: Arc::new(metrics),
            upstream_timeout,
            drain,
        }
    }
}

/// The proxy handler, for the router. The listeners serve the proxy's routes through
/// [`Proxy::serve`] without the router (see `server::listener`); this is the same request path.
pub async fn handle(State(proxy): State<Proxy>, request: Request) -> Response {
    proxy.serve(request).await
}

impl Proxy {
    /// Serves one request for `/k8s/clusters/…`.
    pub async fn serve(&self, request: Request) -> Response {
        // A clone of the request's own bytes (no copy): the target borrows from it.
        let uri = request.uri().clone();
        let target = match parse_target(uri.path()) {
            Ok(target) => target,
            Err(e) => return e.into_response(),
        };
        let mut series = None;
        let response = match self.forward(&target, &mut series, request).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        // Only registered clusters get a series of their own: anyone can send any id.
        let series = series.unwrap_or_else(|| self.metrics.series(UNREGISTERED));
        self.metrics.count(&series, response.status());
        response
    }
}

/// The metric label of requests for ids that are not registered clusters (or not known to be,
/// for callers who did not authenticate). Cluster ids start with a letter or digit.
pub const UNREGISTERED: &str = "_unregistered";

/// What the audit log needs to know about one request, gathered as it is vetted.
struct Call<'a> {
    target: &'a Target<'a>,
    method: Method,
    upgrade: bool,
    query: Option<String>,
    /// Path and query as forwarded.
    path_and_query: String,
    client: Option<ClientAddr>,
}

impl<'a> Call<'a> {
    fn new(target: &'a Target<'a>, request: &Request) -> Self {
        let query = request.uri().query().map(str::to_owned);
        Self {
            target,
            method: request.method().clone(),
            upgrade: is_upgrade(request.headers()),
            path_and_query: match &query {
                Some(q) => format!("{}?{q}", target.path),
                None => target.path.to_owned(),
            },
            query,
            client: request.extensions().get::<ClientAddr>().copied(),
        }
    }
}

impl Proxy {
    /// One proxied request, phase by phase. `series` is set once the cluster is known to be
    /// registered.
    async fn forward(
        &self,
        target: &Target<'_>,
        series: &mut Option<Arc<ClusterSeries>>,
        mut request: Request,
    ) -> Result<Response, StatusError> {
        let call = Call::new(target, &request);
        // In memory and bounded by the registry: safe before authentication.
        let local = self.clusters.connection(target.cluster);
        if local.is_some() {
            *series = Some(self.metrics.series(target.cluster));
        }

        // 1. Who is calling, and may they do this here?
        let admitted = self.admit(&call, request.headers()).await?;
        // 2. Is the cluster connected here?
        let connection = self.connected(target.cluster, local, series).await?;
        let series = series
            .clone()
            .unwrap_or_else(|| self.metrics.series(target.cluster));
        // 3. A long-lived request holds one of the token's stream slots.
        let stream = self.stream_slot(&call, &admitted.principal)?;
        // 4. The upstream request: the cluster's credentials, the caller's identity if the grant
        //    impersonates, nothing of the caller's own credentials or identity claims.
        let client_upgrade = call.upgrade.then(|| hyper::upgrade::on(&mut request));
        let upstream_request =
            upstream_request(&call, &connection, admitted.impersonation, request)?;
        // 5. Send, bounded until the response head; audit the outcome.
        let (upstream_response, in_flight) = self
            .send(
                &call,
                &series,
                &connection,
                &admitted.principal,
                upstream_request,
            )
            .await?;
        // 6. Hand the answer back: splice an upgrade, or stream the body as it arrives.
        Ok(self.respond(
            &call,
            &series,
            upstream_response,
            client_upgrade,
            (in_flight, stream),
        ))
    }

    /// This replica's connection to the cluster, if it is connected.
    async fn connected(
        &self,
        cluster: &str,
        local: Option<Arc<Connection>>,
        series: &mut Option<Arc<ClusterSeries>>,
    ) -> Result<Arc<Connection>, StatusError> {
        match local {
            Some(c) if c.is_connected() => Ok(c),
            Some(c) => Err(not_connected(cluster, Some(c.state()))),
            None => Err(match self.clusters.record(cluster).await {
                Err(ClusterError::NotFound(_)) => StatusError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("cluster `{cluster}` not found"),
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
                    *series = Some(self.metrics.series(cluster));
                    not_connected(cluster, None)
                }
            }),
        }
    }
}

mod admit;
mod headers;
mod metrics;
mod path;
mod status;
mod stream;
mod upstream;

#[cfg(test)]
mod tests;
