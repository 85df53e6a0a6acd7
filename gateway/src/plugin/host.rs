//! What a guest sees of the host during one call: the store's data, the import
//! implementations, and the values calls return in the gateway's own types.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{config, http as wit_http, kube as wit_kube, log as wit_log, types};
use super::http::{self, HttpClients, HttpError, OutboundRequest};
use super::kube::{self, KubeApi, KubeError};
use super::manifest::{Capabilities, Limits};
use super::{Error, Result};

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;

/// The cluster a plugin is called for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Credentials of a Helm repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryAuth {
    Basic { username: String, password: String },
    Bearer { token: String },
}

/// A Helm repository to synchronise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryInfo {
    pub name: String,
    pub url: String,
    pub auth: Option<RepositoryAuth>,
    /// The ETag the last successful sync saw.
    pub etag: Option<String>,
    /// PEM of a private CA the repository's host is trusted with (besides the web PKI).
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// How serious a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check_id: String,
    pub severity: Severity,
    pub passed: bool,
    pub message: String,
    pub target: Option<ObjectRef>,
    pub extra: serde_json::Value,
}

/// One chart version of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub description: Option<String>,
    pub digest: Option<String>,
    pub urls: Vec<String>,
    pub created: Option<String>,
    pub deprecated: bool,
    pub icon: Option<String>,
    pub keywords: Vec<String>,
}

/// A repository's charts and the index's ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartIndex {
    pub charts: Vec<Chart>,
    pub etag: Option<String>,
}

/// The result of a repository sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum SyncOutcome {
    /// The index did not change since the ETag given.
    Unchanged,
    /// The index, read anew.
    Updated(ChartIndex),
}

/// A line the plugin logged (or wrote to stdout/stderr, as level `stdio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// A call's value plus what the plugin logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallReport<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    /// Lines dropped over the log cap.
    pub dropped_log_lines: usize,
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
    log_bytes: usize,
    pub dropped_logs: usize,
}

impl HostState {
    pub fn new(call: CallContext, wasi: WasiCtx) -> Self {
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
            log_bytes: 0,
            dropped_logs: 0,
        }
    }

    /// Keeps a log line within the per-call cap.
    pub fn record_log(&mut self, level: &str, message: &str) -> bool {
        let mut message = message.to_owned();
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        if self.log_bytes + message.len() > self.call.limits.max_log_bytes {
            self.dropped_logs += 1;
            return false;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine {
            level: level.to_owned(),
            message,
        });
        true
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
    fn log(&mut self, level: wit_log::Level, message: String) -> Result<(), types::Error> {
        self.require(self.call.capabilities.log, "log")?;
        let name = match level {
            wit_log::Level::Trace => "trace",
            wit_log::Level::Debug => "debug",
            wit_log::Level::Info => "info",
            wit_log::Level::Warn => "warn",
            wit_log::Level::Error => "error",
        };
        if !self.record_log(name, &message) {
            return Ok(());
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
        Ok(())
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
