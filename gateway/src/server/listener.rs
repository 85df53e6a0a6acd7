//! The accept loop: TLS handshakes, the connection cap, and one task per connection.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures::future::Either;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use super::conn::{self, Activity, Verdict};
use crate::config::ConnectionLimits;
use crate::peer::ClientAddr;
use crate::proxy::{self, PREFIX, Proxy};
use crate::telemetry::Metrics;
use crate::tls::ServerTls;

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the accept loop needs besides the listener.
#[derive(Debug, Clone)]
pub(super) struct Listener {
    pub(super) tls: Option<ServerTls>,
    pub(super) router: axum::Router,
    /// `/k8s/clusters/…`, served without the router (on the API listener only).
    pub(super) proxy: Option<Arc<ProxyRoute>>,
    pub(super) limits: ConnectionLimits,
    /// Open connections; accepting waits for a permit.
    pub(super) slots: Arc<Semaphore>,
    pub(super) metrics: Arc<ConnectionMetrics>,
}

/// The proxy's routes, served straight from the connection: every `kubectl` call comes this
/// way, and through the router's matching and middleware a small GET cost 1.36–1.42× the
/// floor proxy's CPU, without them 1.07–1.24× (`bench/README.md`). The
/// request path is the router's own (`proxy::handle` calls the same [`Proxy::serve`]); the
/// HTTP metrics are kept here as `telemetry::track_http` keeps them for every other route.
#[derive(Debug)]
pub(super) struct ProxyRoute {
    pub(super) proxy: Proxy,
    pub(super) metrics: Arc<Metrics>,
}

impl ProxyRoute {
    async fn serve(
        self: Arc<Self>,
        request: http::Request<Incoming>,
    ) -> Result<axum::response::Response, Infallible> {
        let started = Instant::now();
        let method = request.method().clone();
        let response = self.proxy.serve(request.map(axum::body::Body::new)).await;
        self.metrics.observe(
            Cow::Borrowed(proxy::ROUTE),
            &method,
            response.status().as_u16(),
            started,
        );
        Ok(response)
    }
}

/// Accepts connections until `stop`, serving HTTP/1.1 (with upgrades) and HTTP/2 over plain TCP
/// or TLS, then waits for open connections to finish gracefully, or until `force` closes them.
pub(super) async fn serve_connections(
    listener: TcpListener,
    config: Listener,
    stop: CancellationToken,
    force: CancellationToken,
) {
    let connections = TaskTracker::new();
    let builder = ConnectionBuilder::new(TokioExecutor::new());
    loop {
        let permit = tokio::select! {
            permit = config.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let config = config.clone();
        let (stop, force) = (stop.clone(), force.clone());
        connections.spawn(async move {
            let _permit = permit;
            config.metrics.open.inc();
            let _open = OpenConnection(config.metrics.clone());
            let Some(tls) = config.tls.clone() else {
                let activity = Activity::new(false);
                let io = conn::Tracked::new(stream, activity.clone());
                serve_one(io, peer, activity, &config, &builder, stop, force).await;
                return;
            };
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        config.metrics.closed("handshake_timeout");
                        return;
                    }
                };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let activity = Activity::new(h2);
            let io = conn::Tracked::new(stream, activity.clone());
            serve_one(io, peer, activity, &config, &builder, stop, force).await;
        });
    }
    drop(listener);
    connections.close();
    tokio::select! {
        () = connections.wait() => {}
        () = force.cancelled() => {}
    }
}

/// Serves one connection until it ends, the client misbehaves (header timeout: closed at
/// once), it idles (closed gracefully), the gateway stops (graceful) or `force` fires.
async fn serve_one<I>(
    io: I,
    peer: SocketAddr,
    activity: Arc<Activity>,
    config: &Listener,
    builder: &ConnectionBuilder<TokioExecutor>,
    stop: CancellationToken,
    force: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper::service::Service as _;
    let router = TowerToHyperService::new(config.router.clone());
    let requests = activity.clone();
    let proxy = config.proxy.clone();
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ClientAddr(peer));
        let guard = requests.request_started();
        let response = match &proxy {
            Some(proxy) if request.uri().path().starts_with(PREFIX) => {
                Either::Left(proxy.clone().serve(request))
            }
            _ => Either::Right(router.call(request)),
        };
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(
                response.map(|body| conn::GuardedBody::new(body, guard)),
            )
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    // The timeouts, the stop and the forced close are watched by a task of their own: polled
    // here, next to the connection, they would be polled on every wake of every request, and
    // the stop signals are shared by all connections.
    let signal = Arc::new(Signal::default());
    let _watch = AbortOnDropHandle::new(tokio::spawn(watch(
        activity,
        config.limits,
        config.metrics.clone(),
        peer,
        (stop, force),
        signal.clone(),
    )));
    let mut closing = false;
    loop {
        let notified = signal.notify.notified();
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = notified => match signal.action.load(Ordering::Acquire) {
                CLOSE => return,
                GRACEFUL if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ => {}
            },
        }
    }
}

/// What a connection's watch asks of it: [`GRACEFUL`] or [`CLOSE`].
#[derive(Debug, Default)]
struct Signal {
    action: AtomicU8,
    notify: Notify,
}

/// Finish the requests in flight, then close (HTTP/1: at once when idle, HTTP/2: `GOAWAY`).
const GRACEFUL: u8 = 1;
/// Close at once.
const CLOSE: u8 = 2;

/// Watches one connection until it must close at once: a graceful close when the gateway
/// stops or the connection idles, at once when `force` fires, the client misbehaves (header
/// timeout) or it is still idle after a graceful close was asked for.
async fn watch(
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    metrics: Arc<ConnectionMetrics>,
    peer: SocketAddr,
    (stop, force): (CancellationToken, CancellationToken),
    signal: Arc<Signal>,
) {
    let mut check = tokio::time::interval(conn::check_interval(&limits));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    loop {
        let action = tokio::select! {
            () = stop.cancelled(), if !closing => GRACEFUL,
            () = force.cancelled() => CLOSE,
            _ = check.tick() => match activity.verdict(&limits) {
                Verdict::Keep => continue,
                Verdict::HeaderTimeout => {
                    tracing::debug!(%peer, "request headers not complete in time: closing");
                    metrics.closed("header_timeout");
                    CLOSE
                }
                Verdict::Idle if !closing => {
                    metrics.closed("idle");
                    GRACEFUL
                }
                // Still idle after a graceful close was asked for: close at once.
                Verdict::Idle => CLOSE,
            },
        };
        closing = true;
        signal.action.store(action, Ordering::Release);
        signal.notify.notify_one();
        if action == CLOSE {
            return;
        }
    }
}

/// Connection counts for `/metrics`.
#[derive(Debug, Default)]
pub(super) struct ConnectionMetrics {
    open: Gauge,
    closed: Family<ReasonLabel, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

impl ConnectionMetrics {
    pub(super) fn new(metrics: &Metrics) -> Arc<Self> {
        let this = Arc::new(Self::default());
        metrics.register(|registry| {
            registry.register(
                "http_connections_open",
                "Open client connections",
                this.open.clone(),
            );
            registry.register(
                "http_connections_closed_by_gateway",
                "Client connections the gateway closed, by reason (header_timeout, idle, \
                 handshake_timeout)",
                this.closed.clone(),
            );
        });
        this
    }

    fn closed(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabel { reason }).inc();
    }
}

/// Decrements the open-connection gauge when the connection's task ends.
struct OpenConnection(Arc<ConnectionMetrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.dec();
    }
}
