//! The proxy's own answers: Kubernetes `Status` objects that `kubectl` prints.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderValue};
use serde_json::json;

use crate::cluster;

/// A Kubernetes `Status` failure.
#[derive(Debug)]
pub struct StatusError {
    pub(super) code: StatusCode,
    reason: &'static str,
    message: String,
}

impl StatusError {
    pub(super) fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        let mut response = (self.code, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.code == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portico\""),
            );
        }
        response
    }
}

pub(super) fn not_connected(cluster: &str, state: Option<cluster::LocalState>) -> StatusError {
    let detail = state
        .map(|state| {
            format!(
                " ({:?}{})",
                state.phase,
                state
                    .last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
            .to_lowercase()
        })
        .unwrap_or_default();
    StatusError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!("cluster `{cluster}` is not connected on this replica{detail}"),
    )
}
