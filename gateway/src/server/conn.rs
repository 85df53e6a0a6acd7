//! One client connection: the header-read and idle timeouts, the peer address for the proxy,
//! and a close that is graceful on shutdown and at once when the client misbehaves.
//!
//! hyper's own HTTP/1 header timeout also runs while a keep-alive connection waits for its next
//! request, so it cannot tell "slow headers" from "idle". Instead the connection's bytes and its
//! requests are watched here:
//!
//! - **header timeout**: from the connection's start (after the TLS handshake), or from the first
//!   byte of a later HTTP/1 request, until hyper hands the request to the router. A client that
//!   trickles headers (or sends nothing at all) is cut off.
//! - **idle timeout**: no request in flight and no byte either way for this long → a graceful
//!   close (HTTP/1: at once, HTTP/2: `GOAWAY`). Watches and other streams count as in flight
//!   however quiet they are.
//!
//! An upgraded connection (exec, attach, port-forward) leaves hyper, and this watch, when the
//! upgrade completes; the proxy owns it from there.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::ConnectionLimits;

/// The first bytes of an HTTP/2 connection without TLS (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What one connection has been doing. Times are milliseconds since `epoch`; `0` in
/// `head_since` means "no request is being read".
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    last: AtomicU64,
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    h2: AtomicBool,
    first_read: AtomicBool,
}

/// What the watch decides for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it alone.
    Keep,
    /// Idle too long: close gracefully.
    Idle,
    /// Headers not complete in time: close at once.
    HeaderTimeout,
}

impl Activity {
    /// A connection that just started: its first request's headers are awaited from now.
    pub fn new(h2: bool) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            // 1 ms past the epoch, so that `0` stays "not reading".
            head_since: AtomicU64::new(if h2 { 0 } else { 1 }),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(h2),
            first_read: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        // +1: a reading that starts at the epoch is still distinct from "not reading".
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn on_read(&self, bytes: &[u8]) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if !self.first_read.swap(true, Ordering::Relaxed) && bytes.starts_with(H2_PREFACE) {
            // HTTP/2 clients send frames (PING, SETTINGS) between requests: only the idle
            // timeout applies to them.
            self.h2.store(true, Ordering::Relaxed);
            self.head_since.store(0, Ordering::Relaxed);
            return;
        }
        if !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// A request reached the router; the guard ends it when its response body is done.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Decides about the connection now.
    pub fn verdict(&self, limits: &ConnectionLimits) -> Verdict {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Keep;
        }
        let now = self.now();
        let since = |at: u64| Duration::from_millis(now.saturating_sub(at));
        let head = self.head_since.load(Ordering::Relaxed);
        if head != 0 && since(head) >= limits.header_timeout {
            return Verdict::HeaderTimeout;
        }
        if since(self.last.load(Ordering::Relaxed)) >= limits.idle_timeout {
            return Verdict::Idle;
        }
        Verdict::Keep
    }
}

/// Held while a request is in flight (until its response body ends or is dropped).
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.last.store(activity.now(), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`RequestGuard`] until it ends.
#[derive(Debug)]
pub struct GuardedBody {
    inner: axum::body::Body,
    guard: Option<RequestGuard>,
}

impl GuardedBody {
    pub fn new(inner: axum::body::Body, guard: RequestGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's byte stream, reporting reads and writes to its [`Activity`].
#[derive(Debug)]
pub struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> Tracked<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity.on_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How often a connection's [`Activity`] is checked: often enough that a timeout is enforced
/// within a quarter of its length.
pub fn check_interval(limits: &ConnectionLimits) -> Duration {
    (limits.header_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 10,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_hits_the_header_timeout() {
        let activity = Activity::new(false);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Keep);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn trickled_headers_hit_the_header_timeout_though_bytes_arrive() {
        let activity = Activity::new(false);
        for _ in 0..11 {
            activity.on_read(b"X");
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(activity.verdict(&limits()), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_connection_between_requests_is_idle_not_slow() {
        let activity = Activity::new(false);
        activity.on_read(b"GET / HTTP/1.1\r\n\r\n");
        let guard = activity.request_started();
        // A long watch: in flight, however quiet.
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Keep);
        drop(guard);
        tokio::time::advance(Duration::from_secs(119)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Keep);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_request_starts_the_header_clock_at_its_first_byte() {
        let activity = Activity::new(false);
        activity.on_read(b"GET / HTTP/1.1\r\n\r\n");
        drop(activity.request_started());
        tokio::time::advance(Duration::from_secs(60)).await;
        activity.on_read(b"GE");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Keep);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_between_requests_only_count_as_activity() {
        let activity = Activity::new(false);
        activity.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(activity.request_started());
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(20)).await;
            activity.on_read(b"ping frame");
        }
        assert_eq!(activity.verdict(&limits()), Verdict::Keep);
        tokio::time::advance(Duration::from_secs(121)).await;
        assert_eq!(activity.verdict(&limits()), Verdict::Idle);
    }
}
