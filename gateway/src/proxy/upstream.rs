//! Phases 4-6 of a proxied request: build the upstream request, send it over the cluster's
//! pool (bounded until the response head, audited), and hand the answer back.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;

use super::admit::is_watch;
use super::headers::{
    X_FORWARDED_FOR, head_timeout, strip_hop_by_hop, strip_request_headers, verb,
};
use super::metrics::{ClusterSeries, GaugeGuard};
use super::status::StatusError;
use super::stream::{Revocable, splice};
use super::{Call, Proxy};
use crate::auth::{Principal, StreamGuard};
use crate::cluster::Connection;
use crate::cluster::upstream::UpstreamError;
use crate::peer::ClientAddr;

/// The request as the cluster gets it: its path on the cluster's server (the cluster's
/// credentials are added as it is sent), the caller's identity if the grant impersonates, and nothing of the caller's
/// own credentials or identity claims.
pub(super) fn upstream_request(
    call: &Call<'_>,
    connection: &Connection,
    impersonation: Vec<(HeaderName, HeaderValue)>,
    request: Request,
) -> Result<http::Request<Body>, StatusError> {
    let uri = connection.upstream.uri(&call.path_and_query).map_err(|e| {
        StatusError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("bad path: {e}"),
        )
    })?;
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
    for (name, value) in impersonation {
        parts.headers.append(name, value);
    }
    let mut upstream_request = http::Request::from_parts(parts, body);
    *upstream_request.uri_mut() = uri;
    *upstream_request.version_mut() = Version::HTTP_11;
    Ok(upstream_request)
}

impl Proxy {
    /// Sends the request, bounded until the response head, and audits the outcome. A 401 from
    /// the cluster drops its cached credentials (in `send_with_credentials`). The guard counts the request in flight for
    /// as long as its response lives.
    pub(super) async fn send(
        &self,
        call: &Call<'_>,
        series: &ClusterSeries,
        connection: &Connection,
        principal: &Principal,
        request: http::Request<Body>,
    ) -> Result<(http::Response<hyper::body::Incoming>, GaugeGuard), StatusError> {
        let in_flight = series.in_flight.clone();
        in_flight.inc();
        let guard = GaugeGuard(in_flight);
        let timeout = head_timeout(self.upstream_timeout, call.query.as_deref());
        let started = Instant::now();
        let sent = tokio::time::timeout(
            timeout,
            connection
                .upstream
                .send_with_credentials(request, call.upgrade),
        )
        .await;
        series
            .upstream_latency
            .observe(started.elapsed().as_secs_f64());
        let cluster = call.target.cluster;
        let outcome = match sent {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(UpstreamError::Credential(e))) => Err(StatusError::new(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                format!("cluster `{cluster}` credentials: {e}"),
            )),
            Ok(Err(e)) => Err(StatusError::new(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                format!("cluster `{cluster}`: {e}"),
            )),
            Err(_) => Err(StatusError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout",
                format!(
                    "cluster `{cluster}` did not answer within {}s",
                    timeout.as_secs()
                ),
            )),
        };
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(e) => e.code,
        };
        if let Some(verb) = verb(&call.method, call.target.path, call.upgrade) {
            self.record(Some(principal), call, verb, status);
        }
        Ok((outcome?, guard))
    }

    /// The client's response: an upgrade is spliced in the background (holding the guards
    /// until either side closes); any other body streams back as it arrives, revocable when
    /// it is long-lived.
    pub(super) fn respond(
        &self,
        call: &Call<'_>,
        series: &ClusterSeries,
        mut upstream_response: http::Response<hyper::body::Incoming>,
        client_upgrade: Option<OnUpgrade>,
        (guard, stream): (GaugeGuard, Option<StreamGuard>),
    ) -> Response {
        if upstream_response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let upstream_upgrade = hyper::upgrade::on(&mut upstream_response);
            let open = series.open_upgrades.clone();
            self.drain.spawn_upgrade(splice(
                call.target.cluster.to_owned(),
                client_upgrade,
                upstream_upgrade,
                open,
                (guard, stream),
            ));
            let (mut parts, _) = upstream_response.into_parts();
            parts.headers.remove(header::TRANSFER_ENCODING);
            return Response::from_parts(parts, Body::empty());
        }

        let (mut parts, body) = upstream_response.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        parts.version = Version::HTTP_11;
        let body = match stream {
            Some(stream) if is_watch(call.target.path, call.query.as_deref()) => {
                Body::new(Revocable::new(body, stream, guard).watch(&self.drain))
            }
            Some(stream) => Body::new(Revocable::new(body, stream, guard)),
            // The guard lives as long as the body streams.
            None => Body::new(body.map_frame(move |frame| {
                let _ = &guard;
                frame
            })),
        };
        Response::from_parts(parts, body)
    }
}
