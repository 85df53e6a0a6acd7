//! What a guest sees of the host during one call: the store's data and what each call may
//! use. The import implementations, the log budget and the conversion of outputs live in the
//! submodules.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::types;
use super::http::HttpClients;
use super::kube::KubeApi;
use super::manifest::{Capabilities, Limits};

mod imports;
mod log_budget;
mod output;

pub(super) use log_budget::{LogBudget, StdioPipe};
pub(super) use output::{Output, error_kind};

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;

pub use crate::records::plugin::{
    Chart, ChartIndex, ClusterInfo, ConfigIssue, Finding, LogLine, ObjectRef, RepositoryAuth,
    RepositoryInfo, Severity, SyncOutcome,
};

/// A call's value plus what the plugin logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallReport<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    pub elapsed_ms: u64,
}

/// Everything one call may use.
pub(super) struct CallContext {
    pub plugin: String,
    pub capabilities: Capabilities,
    pub limits: Limits,
    pub config: String,
    pub kube: Option<Arc<dyn KubeApi>>,
    /// Allow-list: the manifest's, plus hosts the call itself implies (a repository's).
    pub http_allow: Vec<String>,
    /// The host's shared client, and for a repo-sync call whose repository has a CA, one
    /// trusting it for that repository's host.
    pub http_clients: HttpClients,
    pub deadline: Instant,
}

/// The store's data.
pub(super) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub call: CallContext,
    pub limiter: MemoryLimiter,
    pub logs: Vec<LogLine>,
    /// Shared with the stdio pipe.
    pub log_budget: Arc<LogBudget>,
}

impl HostState {
    pub fn new(call: CallContext, wasi: WasiCtx, log_budget: Arc<LogBudget>) -> Self {
        let limiter = MemoryLimiter {
            limit: call.limits.memory_bytes(),
            used: 0,
            exceeded: false,
        };
        Self {
            wasi,
            table: ResourceTable::new(),
            call,
            limiter,
            logs: Vec::new(),
            log_budget,
        }
    }

    /// Keeps a log line, charged to the call's log budget; `false` when it does not fit.
    fn record_log(&mut self, level: &str, message: &str) -> bool {
        if !self.log_budget.charge(message.len()) {
            return false;
        }
        self.push_log(level, message);
        true
    }

    /// Keeps a log line already charged (stdout/stderr are charged as they are written).
    pub fn push_log(&mut self, level: &str, message: &str) {
        let mut message = message.to_owned();
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        self.logs.push(LogLine {
            level: level.to_owned(),
            message,
        });
    }

    fn require(&self, allowed: bool, capability: &str) -> Result<(), types::Error> {
        if allowed {
            Ok(())
        } else {
            Err(guest_error(
                types::ErrorKind::Denied,
                format!(
                    "capability `{capability}` is not declared in plugin `{}`'s manifest",
                    self.call.plugin
                ),
            ))
        }
    }

    /// `future` under the host-call timeout (and never past the call's deadline). The
    /// returned future does not borrow the state.
    fn host_call<T, F>(
        &self,
        future: F,
    ) -> impl Future<Output = Result<T, types::Error>> + use<T, F>
    where
        F: Future<Output = Result<T, types::Error>>,
    {
        let remaining = self.call.deadline.saturating_duration_since(Instant::now());
        let limit = self.call.limits.host_call_timeout().min(remaining);
        async move {
            tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| {
                    Err(guest_error(
                        types::ErrorKind::Timeout,
                        format!("host call timed out after {} ms", limit.as_millis()),
                    ))
                })
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the instance's linear memories together and remembers a refusal, so a trap that
/// follows can be reported as what it is.
pub(super) struct MemoryLimiter {
    limit: u64,
    used: u64,
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        if self.used + grow > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

pub(super) fn guest_error(kind: types::ErrorKind, message: impl Into<String>) -> types::Error {
    types::Error {
        kind,
        message: message.into(),
    }
}
