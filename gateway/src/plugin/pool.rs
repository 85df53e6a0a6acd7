//! [`KubeApi`] over a registered cluster's pooled connection: what plugins read registered
//! clusters through (scheduled inspections, lifecycle hooks, `portico plugin run`).

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{Request, header};
use http_body_util::BodyExt;

use super::kube::{KubeApi, KubeFuture, KubeGetError};
use crate::cluster::Connection;
use crate::cluster::upstream::UpstreamError;

/// Reads one cluster through its [`Connection`]: the pooled client, with the cluster's
/// credentials. Bodies are collected up to a cap, so a plugin with a small response limit
/// never makes the gateway buffer a huge list: past the cap the body is cut at `cap + 1`
/// bytes, which the plugin host reports to the guest as `too-large`.
#[derive(Debug, Clone)]
pub struct PoolKubeApi {
    connection: Arc<Connection>,
    max_body: usize,
}

impl PoolKubeApi {
    /// Reads through `connection`, collecting at most `max_body` bytes of a body (pass the
    /// plugin's `max-kube-response-bytes`).
    pub fn new(connection: Arc<Connection>, max_body: usize) -> Self {
        Self {
            connection,
            max_body,
        }
    }
}

impl KubeApi for PoolKubeApi {
    fn get(&self, path_and_query: String) -> KubeFuture {
        let connection = self.connection.clone();
        let max_body = self.max_body;
        Box::pin(async move {
            let upstream = &connection.upstream;
            let uri = upstream
                .uri(&path_and_query)
                .map_err(|source| KubeGetError::Path {
                    path: path_and_query.clone(),
                    source,
                })?;
            let request = Request::get(uri)
                .header(header::ACCEPT, "application/json, */*")
                .body(Body::empty())
                .map_err(KubeGetError::Request)?;
            let response = upstream
                .send_with_credentials(request, false)
                .await
                .map_err(|e| match e {
                    UpstreamError::Credential(source) => KubeGetError::Credentials {
                        cluster: connection.id.clone(),
                        source,
                    },
                    e => e.into(),
                })?;
            let status = response.status();
            let mut body = response.into_body();
            let mut collected = BytesMut::new();
            while collected.len() <= max_body {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            collected.extend_from_slice(&data);
                        }
                    }
                    Some(Err(source)) => {
                        return Err(KubeGetError::Body {
                            server: upstream.server().to_owned(),
                            source,
                        });
                    }
                    None => break,
                }
            }
            collected.truncate(max_body.saturating_add(1));
            Ok((status.as_u16(), Bytes::from(collected)))
        })
    }
}

/// `kube` for a cluster this replica is not connected to (a lifecycle hook's `on-disconnect`):
/// every read fails, which the guest sees as `unavailable`.
#[derive(Debug, Clone)]
pub struct DisconnectedKubeApi {
    cluster: String,
}

impl DisconnectedKubeApi {
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
        }
    }
}

impl KubeApi for DisconnectedKubeApi {
    fn get(&self, _path_and_query: String) -> KubeFuture {
        let error = KubeGetError::Disconnected {
            cluster: self.cluster.clone(),
        };
        Box::pin(async move { Err(error) })
    }
}
