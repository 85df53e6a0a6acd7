//! The call's log budget (`max-log-bytes`), shared by the `log` import and stdout/stderr, and
//! the in-memory pipe stdout and stderr go to.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// What one call may write to its log and to stdout/stderr together (`max-log-bytes`), shared
/// by the `log` import and the stdio pipe. Going past it stops the call.
#[derive(Debug)]
pub(crate) struct LogBudget {
    limit: usize,
    used: AtomicUsize,
    exceeded: AtomicBool,
}

impl LogBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Counts `bytes` written; `false` (and remembered) when they do not fit.
    pub fn charge(&self, bytes: usize) -> bool {
        let fits = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if !fits {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        fits
    }

    /// Whether a write did not fit.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The trap a write past the budget raises.
    pub(super) fn trap(&self) -> wasmtime::Error {
        wasmtime::Error::new(LogLimitExceeded(self.limit))
    }
}

/// Why a guest was trapped in a write to its log or stdout/stderr.
#[derive(Debug, thiserror::Error)]
#[error("log limit of {0} bytes exceeded")]
struct LogLimitExceeded(usize);

/// stdout and stderr of one call: kept in memory and charged to the call's [`LogBudget`]; a
/// write past it traps the guest.
#[derive(Debug, Clone)]
pub(crate) struct StdioPipe {
    budget: Arc<LogBudget>,
    buffer: Arc<Mutex<BytesMut>>,
}

impl StdioPipe {
    /// A guest may write this much at once (`check-write`'s permit).
    const PERMIT: usize = 64 << 10;

    pub fn new(budget: Arc<LogBudget>) -> Self {
        Self {
            budget,
            buffer: Arc::default(),
        }
    }

    /// What the guest wrote.
    pub fn contents(&self) -> Bytes {
        self.buffer.lock().clone().freeze()
    }

    fn append(&self, bytes: &[u8]) -> bool {
        if !self.budget.charge(bytes.len()) {
            return false;
        }
        self.buffer.lock().extend_from_slice(bytes);
        true
    }
}

impl IsTerminal for StdioPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StdioPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for StdioPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.append(&bytes) {
            Ok(())
        } else {
            Err(StreamError::Trap(self.budget.trap()))
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(Self::PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StdioPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StdioPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(if self.append(buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other(LogLimitExceeded(self.budget.limit)))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
