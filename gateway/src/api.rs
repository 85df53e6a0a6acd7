//! The admin REST API under `/api/v1`, health and metrics endpoints.
//!
//! Errors are JSON `{"error": {"code", "message"}}`; `code` is a stable machine-readable word.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Router, middleware};
use serde_json::json;

use crate::app::App;
use crate::auth::{AuthError, Principal};
use crate::storage::StorageError;
use crate::telemetry;

mod audit;
pub mod clusters;
mod coord;
mod health;
mod helm;
mod jobs;
mod plugins;
mod tokens;
mod webhooks;

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"portico\""),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            _ => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal storage error; see the gateway's log",
                )
            }
        }
    }
}

/// JSON bodies that do not parse become our error shape, not axum's plain text.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl FromRequestParts<App> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => Some(value.to_str().map_err(|_| AuthError::Invalid)?),
            None => None,
        };
        Ok(app.auth.authenticate(header).await?)
    }
}

/// A caller with the admin role (403 for other valid tokens).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, app).await?;
        if !principal.is_admin() {
            return Err(ApiError::forbidden(format!(
                "token `{}` lacks the admin role",
                principal.token.name
            )));
        }
        Ok(Self(principal))
    }
}

/// Names of tokens and webhooks: 1-63 letters, digits, `-`, `_` or `.`.
pub(crate) fn validate_name(name: &str) -> ApiResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "`name` must be 1-63 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// The whole HTTP surface.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .merge(tokens::routes())
        .merge(clusters::routes())
        .merge(audit::routes())
        .merge(coord::routes())
        .merge(plugins::routes())
        .merge(webhooks::routes())
        .merge(jobs::routes())
        .merge(helm::routes());
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api)
        .route("/k8s/clusters/{*rest}", any(crate::proxy::handle))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(
            app.metrics.clone(),
            telemetry::track_http,
        ))
        .with_state(app)
}
