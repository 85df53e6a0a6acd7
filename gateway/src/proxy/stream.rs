//! Long-lived responses: spliced upgrades and bodies that end when their token is revoked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use prometheus_client::metrics::gauge::Gauge;

use super::metrics::GaugeGuard;
use crate::auth::StreamGuard;

/// Splices an upgraded connection until either side closes or the token loses its right.
pub(super) async fn splice(
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
pub(super) struct Revocable {
    inner: hyper::body::Incoming,
    revoked: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    _guards: (StreamGuard, GaugeGuard),
}

impl Revocable {
    pub(super) fn new(
        inner: hyper::body::Incoming,
        stream: StreamGuard,
        in_flight: GaugeGuard,
    ) -> Self {
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
