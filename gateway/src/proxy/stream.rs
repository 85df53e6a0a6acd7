//! Long-lived responses: spliced upgrades and bodies that end when their token is revoked, and
//! how both end when the gateway stops.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

use super::metrics::GaugeGuard;
use crate::auth::StreamGuard;

/// How the proxy's long-lived streams end when the gateway stops.
///
/// - **Watches** end cleanly (the body's last chunk, or `END_STREAM`) as soon as the gateway
///   stops accepting: a client resumes from its last `resourceVersion` on another replica, and
///   the stop does not wait for watches that would never end on their own.
/// - **Followed logs and upgrades** (exec, attach, port-forward) cannot be resumed: they get the
///   shutdown bound (`--shutdown-timeout-seconds`) to finish, then are closed. Spliced upgrades
///   have left the HTTP server, so they are tracked here for the stop to wait for them.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    stopping: CancellationToken,
    closing: CancellationToken,
    upgrades: TaskTracker,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the gateway stops accepting connections.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Cancelled when the shutdown bound is reached (or at a crash): everything closes.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// The graceful stop begins: no new connections, watches end.
    pub fn stop(&self) {
        self.stopping.cancel();
        self.upgrades.close();
    }

    /// Close whatever is still open.
    pub fn close(&self) {
        self.stop();
        self.closing.cancel();
    }

    /// Resolves when every spliced upgrade has ended (after [`Drain::stop`]).
    pub async fn upgrades_finished(&self) {
        self.upgrades.wait().await;
    }

    pub(super) fn spawn_upgrade<F>(&self, splice: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let closing = self.closing.clone();
        self.upgrades.spawn(async move {
            tokio::select! {
                () = splice => {}
                () = closing.cancelled() => {
                    tracing::debug!("gateway stopping: upgraded stream closed");
                }
            }
        });
    }

    fn watch_end(&self) -> WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }
}

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

/// A long-lived response body that ends with an error (the client sees a cut stream, not a
/// clean end) when its token is revoked or expires, and, for a watch, cleanly when the gateway
/// stops (see [`Drain`]).
pub(super) struct Revocable {
    inner: hyper::body::Incoming,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    stopping: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
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
            stopping: None,
            _guards: (stream, in_flight),
        }
    }

    /// A watch: ends cleanly when the gateway stops.
    pub(super) fn watch(mut self, drain: &Drain) -> Self {
        self.stopping = Some(Box::pin(drain.watch_end()));
        self
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
        if let Some(stopping) = self.stopping.as_mut()
            && stopping.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
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
