//! The call path: a fresh store per call, under the epoch deadline, the memory cap and the
//! log budget, and how a trap is explained.
//!
//! A call runs on a fiber (wasmtime's async support). Its first slice runs on the caller's
//! thread: a short call (a lifecycle hook, most configuration checks) is over before it would
//! pay for a hop to another thread. At the first point where it waits (the next epoch tick,
//! at most [`HostSettings::epoch_tick`] away, or a host call that waits on the network) the
//! call is handed to the blocking thread pool and finishes there, as every call did before:
//! a long guest never holds one of the runtime's threads for more than one tick.
//!
//! [`HostSettings::epoch_tick`]: super::HostSettings::epoch_tick

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::{PluginHost, Prepared};
use crate::plugin::bindings::types;
use crate::plugin::host::{CallContext, CallReport, HostState, LogBudget, StdioPipe, error_kind};
use crate::plugin::manifest::Limits;
use crate::plugin::{Error, Result, TrapReason};

/// Why the epoch callback stopped a guest.
#[derive(Debug, thiserror::Error)]
enum Interrupt {
    #[error("deadline exceeded")]
    Deadline,
    #[error("cancelled")]
    Cancelled,
}

/// What a call runs against its fresh store: instantiate, then call one export.
pub(in crate::plugin) type CallFuture<'a, R> = Pin<
    Box<dyn Future<Output = wasmtime::Result<std::result::Result<R, types::Error>>> + Send + 'a>,
>;

impl PluginHost {
    /// Runs `f` against a fresh instance under the call's limits: its first slice on this
    /// thread, the rest (if any) on the blocking pool.
    pub(in crate::plugin) async fn call<R, F>(
        &self,
        prepared: Arc<Prepared>,
        mut context: CallContext,
        cancel: CancellationToken,
        f: F,
    ) -> Result<CallReport<R>>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<HostState>, &'a Prepared) -> CallFuture<'a, R>
            + Send
            + 'static,
    {
        // Held by the call's future: an abandoned call keeps its pool slot until the guest
        // has stopped (at the next epoch tick).
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Host("the plugin host is shutting down".to_owned()))?;
        let started = Instant::now();
        let limits = context.limits.clone();
        context.deadline = started + limits.timeout();
        let plugin = context.plugin.clone();
        let engine = self.inner.engine.clone();
        let guard = cancel.clone().drop_guard();
        let max_log_bytes = limits.max_log_bytes;
        let run = async move {
            let _permit = permit;
            // Log lines, stdout and stderr share the call's `max-log-bytes`.
            let log_budget = LogBudget::new(max_log_bytes);
            let stdio = StdioPipe::new(log_budget.clone());
            let deadline = context.deadline;
            let wasi = wasi_context(&stdio);
            let mut store = Store::new(&engine, HostState::new(context, wasi, log_budget));
            store.limiter(|state| &mut state.limiter);
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                if cancel.is_cancelled() {
                    Err(Interrupt::Cancelled.into())
                } else if Instant::now() >= deadline {
                    Err(Interrupt::Deadline.into())
                } else {
                    // Yielding is what moves a call still running after its first slice to
                    // the blocking pool; there, it only lets `block_on` poll again.
                    Ok(UpdateDeadline::Yield(1))
                }
            });
            let result = f(&mut store, &prepared).await;
            let state = store.into_data();
            (result, state, stdio.contents())
        };
        let mut run = Box::pin(run);
        let outcome = match futures::poll!(run.as_mut()) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || runtime.block_on(run))
                    .await
                    .map_err(|e| Error::Host(format!("plugin call task: {e}")))?
            }
        };
        guard.disarm();
        let (result, mut state, stdio) = outcome;
        let stdio = String::from_utf8_lossy(&stdio).into_owned();
        if result.is_ok() && state.log_budget.exceeded() {
            // Every write past the budget traps; this only guards against one that did not.
            let reason = TrapReason::LogLimit(state.log_budget.limit());
            tracing::warn!(plugin, %reason, "plugin call failed");
            return Err(Error::Trap { plugin, reason });
        }
        let value = match result {
            Ok(Ok(value)) => value,
            Ok(Err(guest)) => {
                return Err(Error::Guest {
                    plugin,
                    kind: error_kind(guest.kind).to_owned(),
                    message: guest.message,
                });
            }
            Err(trap) => {
                let reason = trap_reason(&trap, &state, &stdio, &limits);
                tracing::warn!(plugin, %reason, "plugin call trapped");
                return Err(Error::Trap { plugin, reason });
            }
        };
        for line in stdio.lines().filter(|l| !l.trim().is_empty()) {
            state.push_log("stdio", line);
        }
        Ok(CallReport {
            value,
            logs: std::mem::take(&mut state.logs),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// The WASI context of one call: stdout and stderr go to the call's pipe; no environment, no
/// arguments, no preopened folders, no sockets (WASI's defaults).
fn wasi_context(stdio: &StdioPipe) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(stdio.clone())
        .stderr(stdio.clone())
        .build()
}

/// Explains a trap: our own interrupts first, then the memory cap, then the log cap, then a
/// panic message.
fn trap_reason(
    trap: &wasmtime::Error,
    state: &HostState,
    stdio: &str,
    limits: &Limits,
) -> TrapReason {
    for cause in trap.chain() {
        match cause.downcast_ref::<Interrupt>() {
            Some(Interrupt::Deadline) => return TrapReason::Timeout(limits.timeout()),
            Some(Interrupt::Cancelled) => return TrapReason::Cancelled,
            None => {}
        }
    }
    if state.limiter.exceeded {
        return TrapReason::Memory(state.limiter.limit());
    }
    // A full log budget also stops the panic message or allocation failure that may have been
    // on its way to stderr: that write is what trapped.
    if state.log_budget.exceeded() {
        return TrapReason::LogLimit(state.log_budget.limit());
    }
    if stdio.contains("memory allocation of") {
        return TrapReason::Memory(state.limiter.limit());
    }
    if let Some(message) = panic_message(stdio) {
        return TrapReason::Panic(message);
    }
    let message = match trap.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{trap:#}"),
    };
    let tail: String = stdio.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
    if tail.is_empty() {
        TrapReason::Other(message)
    } else {
        TrapReason::Other(format!("{message} (output: {tail})"))
    }
}

/// The message of a Rust panic as std prints it to stderr:
/// `thread '…' panicked at src/lib.rs:1:2:\nmessage\nnote: …`.
pub(crate) fn panic_message(stdio: &str) -> Option<String> {
    let start = stdio.find("panicked at ")?;
    let rest = &stdio[start + "panicked at ".len()..];
    let (location, rest) = rest.split_once('\n').unwrap_or((rest, ""));
    let message: Vec<&str> = rest
        .lines()
        .take_while(|l| !l.starts_with("note: "))
        .collect();
    let mut message = message.join("\n").trim().to_owned();
    if message.len() > 1024 {
        let mut end = 1024;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    Some(format!(
        "{message} (at {})",
        location.trim_end_matches(':').trim()
    ))
}
