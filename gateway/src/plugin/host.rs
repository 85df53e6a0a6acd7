//! What a guest sees of the host during one call: the store's data, the import
//! implementations, and the values calls return in the gateway's own types.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{config, http as wit_http, kube as wit_kube, log as wit_log, types};
use super::http::{self, HttpClients, HttpError, OutboundRequest};
use super::kube::{self, KubeApi, KubeError};
use super::manifest::{Capabilities, Limits};
use super::{Error, Result};

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;

pub use crate::records::plugin::{
    Chart, ChartIndex, ClusterInfo, Finding, LogLine, ObjectRef, RepositoryAuth, RepositoryInfo,
    Severity, SyncOutcome,
};

/// A call's value plus what the plugin logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallReport<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    pub elapsed_ms: u64,
}

/// What one call may write to its log and to stdout/stderr together (`max-log-bytes`), shared
/// by the `log` import and the stdio pipe. Going past it stops the call.
#[derive(Debug)]
pub(super) struct LogBudget {
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
    fn trap(&self) -> wasmtime::Error {
        wasmtime::Error::new(LogLimitExceeded(self.limit))
    }
}

/// Why a guest was trapped in a write to its log or stdout/stderr.
#[derive(Debug, thiserror::Error)]
#[error("log limit of {0} bytes exceeded")]
pub(super) struct LogLimitExceeded(pub usize);

/// stdout and stderr of one call: kept in memory and charged to the call's [`LogBudget`]; a
/// write past it traps the guest.
#[derive(Debug, Clone)]
pub(super) struct StdioPipe {
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
    pub runtime: tokio::runtime::Handle,
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

    /// Runs `future` on the gateway's runtime under the host-call timeout (and never past the
    /// call's deadline).
    fn block_on<T>(
        &self,
        future: impl Future<Output = Result<T, types::Error>>,
    ) -> Result<T, types::Error> {
        let remaining = self.call.deadline.saturating_duration_since(Instant::now());
        let limit = self.call.limits.host_call_timeout().min(remaining);
        self.call.runtime.block_on(async move {
            tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| {
                    Err(guest_error(
                        types::ErrorKind::Timeout,
                        format!("host call timed out after {} ms", limit.as_millis()),
                    ))
                })
        })
    }

    fn kube_get(&self, path: String, what: String) -> Result<(u16, bytes::Bytes), types::Error> {
        let api = self.call.kube.clone().ok_or_else(|| {
            guest_error(types::ErrorKind::Unavailable, "no cluster for this call")
        })?;
        let max = self.call.limits.max_kube_response_bytes;
        self.block_on(async move {
            let (status, body) = api
                .get(path)
                .await
                .map_err(|e| guest_error(types::ErrorKind::Unavailable, format!("{what}: {e}")))?;
            if body.len() > max {
                return Err(kube_error(KubeError::TooLarge(format!(
                    "{what}: response of {} bytes exceeds the plugin's limit of {max}",
                    body.len()
                ))));
            }
            Ok((status, body))
        })
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

fn kube_error(e: KubeError) -> types::Error {
    match e {
        KubeError::Invalid(m) => guest_error(types::ErrorKind::Invalid, m),
        KubeError::NotFound(m) => guest_error(types::ErrorKind::NotFound, m),
        KubeError::Denied(m) => guest_error(types::ErrorKind::Denied, m),
        KubeError::Unavailable(m) => guest_error(types::ErrorKind::Unavailable, m),
        KubeError::TooLarge(m) => guest_error(types::ErrorKind::TooLarge, m),
    }
}

fn http_error(e: HttpError) -> types::Error {
    match e {
        HttpError::Denied(m) => guest_error(types::ErrorKind::Denied, m),
        HttpError::Invalid(m) => guest_error(types::ErrorKind::Invalid, m),
        HttpError::TooLarge(m) => guest_error(types::ErrorKind::TooLarge, m),
        HttpError::Unavailable(m) => guest_error(types::ErrorKind::Unavailable, m),
    }
}

impl types::Host for HostState {}

impl wit_kube::Host for HostState {
    fn get(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> Result<Option<String>, types::Error> {
        self.require(self.call.capabilities.kube, "kube")?;
        let path = kube::resource_path(&api_version, &kind, namespace.as_deref(), Some(&name))
            .map_err(|m| guest_error(types::ErrorKind::Invalid, m))?;
        let what = format!("get {kind} {}/{name}", namespace.as_deref().unwrap_or(""));
        let (status, body) = self.kube_get(path, what.clone())?;
        match status {
            200..=299 => kube::object_json(&api_version, &kind, &body)
                .map(Some)
                .map_err(kube_error),
            404 => Ok(None),
            _ => Err(kube_error(kube::status_error(status, &body, &what))),
        }
    }

    fn list(
        &mut self,
        api_version: String,
        kind: String,
        options: wit_kube::ListOptions,
    ) -> Result<Vec<String>, types::Error> {
        self.require(self.call.capabilities.kube, "kube")?;
        let path = kube::list_request(
            &api_version,
            &kind,
            options.namespace.as_deref(),
            options.label_selector.as_deref(),
            options.field_selector.as_deref(),
        )
        .map_err(kube_error)?;
        let what = format!("list {kind} in {api_version}");
        let (status, body) = self.kube_get(path, what.clone())?;
        match status {
            200..=299 => kube::list_items(&api_version, &kind, &body).map_err(kube_error),
            _ => Err(kube_error(kube::status_error(status, &body, &what))),
        }
    }

    fn pod_logs(
        &mut self,
        namespace: String,
        name: String,
        container: Option<String>,
        tail_lines: Option<u32>,
    ) -> Result<String, types::Error> {
        self.require(self.call.capabilities.kube, "kube")?;
        let path = kube::logs_request(
            &namespace,
            &name,
            container.as_deref(),
            tail_lines,
            self.call.limits.max_kube_response_bytes,
        )
        .map_err(kube_error)?;
        let what = format!("logs of pod {namespace}/{name}");
        let (status, body) = self.kube_get(path, what.clone())?;
        match status {
            200..=299 => Ok(String::from_utf8_lossy(&body).into_owned()),
            _ => Err(kube_error(kube::status_error(status, &body, &what))),
        }
    }
}

impl wit_log::Host for HostState {
    /// Traps the guest when the line does not fit in the call's log budget.
    fn log(
        &mut self,
        level: wit_log::Level,
        message: String,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        if let Err(denied) = self.require(self.call.capabilities.log, "log") {
            return Ok(Err(denied));
        }
        let name = match level {
            wit_log::Level::Trace => "trace",
            wit_log::Level::Debug => "debug",
            wit_log::Level::Info => "info",
            wit_log::Level::Warn => "warn",
            wit_log::Level::Error => "error",
        };
        if !self.record_log(name, &message) {
            return Err(self.log_budget.trap());
        }
        let plugin = self.call.plugin.as_str();
        match level {
            wit_log::Level::Trace => {
                tracing::trace!(target: "portico::plugin", plugin, "{message}")
            }
            wit_log::Level::Debug => {
                tracing::debug!(target: "portico::plugin", plugin, "{message}")
            }
            wit_log::Level::Info => tracing::info!(target: "portico::plugin", plugin, "{message}"),
            wit_log::Level::Warn => tracing::warn!(target: "portico::plugin", plugin, "{message}"),
            wit_log::Level::Error => {
                tracing::error!(target: "portico::plugin", plugin, "{message}")
            }
        }
        Ok(Ok(()))
    }
}

impl config::Host for HostState {
    fn get(&mut self) -> Result<String, types::Error> {
        self.require(self.call.capabilities.config, "config")?;
        Ok(self.call.config.clone())
    }
}

impl wit_http::Host for HostState {
    fn send(&mut self, request: wit_http::Request) -> Result<wit_http::Response, types::Error> {
        self.require(self.call.capabilities.http.is_some(), "http")?;
        let clients = self.call.http_clients.clone();
        let allow = self.call.http_allow.clone();
        let max = self.call.limits.max_http_response_bytes;
        let outbound = OutboundRequest {
            post: matches!(request.method, wit_http::Method::Post),
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let response = self.block_on(async move {
            http::send(&clients, &allow, outbound, max)
                .await
                .map_err(http_error)
        })?;
        Ok(wit_http::Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// Converts and measures an export's output.
pub(super) struct Output {
    plugin: String,
    limit: usize,
    size: usize,
}

impl Output {
    pub fn new(plugin: &str, limit: usize) -> Self {
        Self {
            plugin: plugin.to_owned(),
            limit,
            size: 0,
        }
    }

    fn add(&mut self, bytes: usize) -> Result<()> {
        self.size += bytes;
        if self.size > self.limit {
            return Err(Error::OutputTooLarge {
                plugin: self.plugin.clone(),
                size: self.size,
                limit: self.limit,
            });
        }
        Ok(())
    }

    fn add_str(&mut self, s: &str) -> Result<()> {
        self.add(s.len())
    }

    fn add_opt(&mut self, s: &Option<String>) -> Result<()> {
        self.add(s.as_ref().map_or(0, String::len))
    }

    /// Every string counts, plus a fixed overhead per list element.
    pub fn findings(&mut self, findings: Vec<types::Finding>) -> Result<Vec<Finding>> {
        // Measure everything first: a too-large output is refused before any conversion.
        for f in &findings {
            self.add(16)?;
            self.add_str(&f.check_id)?;
            self.add_str(&f.message)?;
            self.add_str(&f.extra)?;
            if let Some(t) = &f.target {
                self.add_str(&t.kind)?;
                self.add_opt(&t.namespace)?;
                self.add_str(&t.name)?;
            }
        }
        findings
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let extra = if f.extra.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(&f.extra).map_err(|e| Error::InvalidOutput {
                        plugin: self.plugin.clone(),
                        detail: format!("finding {i} (`{}`): extra is not JSON: {e}", f.check_id),
                    })?
                };
                Ok(Finding {
                    check_id: f.check_id,
                    severity: match f.severity {
                        types::Severity::Info => Severity::Info,
                        types::Severity::Low => Severity::Low,
                        types::Severity::Medium => Severity::Medium,
                        types::Severity::High => Severity::High,
                        types::Severity::Critical => Severity::Critical,
                    },
                    passed: f.passed,
                    message: f.message,
                    target: f.target.map(|t| ObjectRef {
                        kind: t.kind,
                        namespace: t.namespace,
                        name: t.name,
                    }),
                    extra,
                })
            })
            .collect()
    }

    pub fn sync(&mut self, outcome: types::SyncOutcome) -> Result<SyncOutcome> {
        let index = match outcome {
            types::SyncOutcome::Unchanged => return Ok(SyncOutcome::Unchanged),
            types::SyncOutcome::Updated(index) => index,
        };
        self.add_opt(&index.etag)?;
        for c in &index.charts {
            self.add(16)?;
            self.add_str(&c.name)?;
            self.add_str(&c.version)?;
            self.add_opt(&c.app_version)?;
            self.add_opt(&c.description)?;
            self.add_opt(&c.digest)?;
            self.add_opt(&c.created)?;
            self.add_opt(&c.icon)?;
            for text in c.urls.iter().chain(&c.keywords) {
                self.add_str(text)?;
            }
        }
        Ok(SyncOutcome::Updated(ChartIndex {
            etag: index.etag,
            charts: index
                .charts
                .into_iter()
                .map(|c| Chart {
                    name: c.name,
                    version: c.version,
                    app_version: c.app_version,
                    description: c.description,
                    digest: c.digest,
                    urls: c.urls,
                    created: c.created,
                    deprecated: c.deprecated,
                    icon: c.icon,
                    keywords: c.keywords,
                })
                .collect(),
        }))
    }
}

impl From<&ClusterInfo> for types::Cluster {
    fn from(c: &ClusterInfo) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl From<&RepositoryInfo> for types::Repository {
    fn from(r: &RepositoryInfo) -> Self {
        Self {
            name: r.name.clone(),
            url: r.url.clone(),
            auth: r.auth.as_ref().map(|a| match a {
                RepositoryAuth::Basic { username, password } => {
                    types::RepositoryAuth::Basic(types::BasicAuth {
                        username: username.clone(),
                        password: password.clone(),
                    })
                }
                RepositoryAuth::Bearer { token } => types::RepositoryAuth::Bearer(token.clone()),
            }),
            etag: r.etag.clone(),
        }
    }
}

/// The guest's error kind as text.
pub(super) fn error_kind(kind: types::ErrorKind) -> &'static str {
    match kind {
        types::ErrorKind::Denied => "denied",
        types::ErrorKind::NotFound => "not-found",
        types::ErrorKind::Timeout => "timeout",
        types::ErrorKind::TooLarge => "too-large",
        types::ErrorKind::Invalid => "invalid",
        types::ErrorKind::Unavailable => "unavailable",
        types::ErrorKind::Internal => "internal",
    }
}
