//! The import implementations a guest calls: `config`, `log`, `http` and `kube`, each behind
//! its capability, with host calls under the call's timeout and response caps.

use super::{HostState, guest_error};
use crate::plugin::bindings::{config, http as wit_http, kube as wit_kube, log as wit_log, types};
use crate::plugin::http::{self, HttpError, OutboundRequest};
use crate::plugin::kube::{self, KubeError};

impl HostState {
    /// A GET through the call's `KubeApi`; the future does not borrow the state.
    fn kube_get(
        &self,
        path: String,
        what: String,
    ) -> impl Future<Output = Result<(u16, bytes::Bytes), types::Error>> + Send + use<> {
        let api =
            self.call.kube.clone().ok_or_else(|| {
                guest_error(types::ErrorKind::Unavailable, "no cluster for this call")
            });
        let max = self.call.limits.max_kube_response_bytes;
        self.host_call(async move {
            let (status, body) = api?
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
    async fn get(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> Result<Option<String>, types::Error> {
        self.require(self.call.capabilities.kube, "kube")?;
        let path = kube::resource_path(&api_version, &kind, namespace.as_deref(), Some(&name))
            .map_err(|e| guest_error(types::ErrorKind::Invalid, e.to_string()))?;
        let what = format!("get {kind} {}/{name}", namespace.as_deref().unwrap_or(""));
        let (status, body) = self.kube_get(path, what.clone()).await?;
        match status {
            200..=299 => kube::object_json(&api_version, &kind, &body)
                .map(Some)
                .map_err(kube_error),
            404 => Ok(None),
            _ => Err(kube_error(kube::status_error(status, &body, &what))),
        }
    }

    async fn list(
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
        let (status, body) = self.kube_get(path, what.clone()).await?;
        match status {
            200..=299 => kube::list_items(&api_version, &kind, &body).map_err(kube_error),
            _ => Err(kube_error(kube::status_error(status, &body, &what))),
        }
    }

    async fn pod_logs(
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
        let (status, body) = self.kube_get(path, what.clone()).await?;
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
    async fn send(
        &mut self,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, types::Error> {
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
        let response = self
            .host_call(async move {
                http::send(&clients, &allow, outbound, max)
                    .await
                    .map_err(http_error)
            })
            .await?;
        Ok(wit_http::Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}
