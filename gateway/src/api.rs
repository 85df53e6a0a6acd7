//! The admin REST API under `/api/v1`, health and metrics endpoints.
//!
//! Errors are JSON `{"error": {"code", "message"}}`; `code` is a stable machine-readable word.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Router, middleware};
use serde_json::json;

use crate::app::App;
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::{AuthError, Principal};
use crate::peer::ClientAddr;
use crate::storage::StorageError;
use crate::telemetry;

mod audit;
pub mod clusters;
mod coord;
mod grants;
mod health;
mod helm;
mod jobs;
pub mod kubeconfig;
mod plugins;
mod sso;
mod tokens;
mod webhooks;

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Structured detail beside the message, such as the causes of a refused plugin
    /// configuration (`{"causes": [{"field", "message", "line", "column"}]}`, after
    /// Kubernetes' `Status.details.causes`).
    pub details: Option<serde_json::Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// With structured `details` in the error body.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
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
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let body = Json(json!({ "error": error }));
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
        if let Some(Authenticated(result)) = parts.extensions.get::<Authenticated>() {
            return Ok(result.clone()?);
        }
        Ok(app.auth.authenticate_headers(&parts.headers).await?)
    }
}

/// The caller of an admin API request, authenticated once by [`authenticate_and_audit`].
#[derive(Debug, Clone)]
struct Authenticated(Result<Principal, AuthError>);

/// Marks an in-process API request made by the console for its signed-in user: the caller is
/// already known (the session's principal), and audit entries say `console`. Only code inside
/// the gateway can set a request extension, so no client can claim it.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleCaller(pub Principal);

/// Middleware of `/api/v1`: authenticates the caller once for the handler, and audits every
/// change (POST, PUT, PATCH, DELETE), refused ones included.
async fn authenticate_and_audit(
    State(app): State<App>,
    mut request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let console = request.extensions().get::<ConsoleCaller>().cloned();
    let caller = match &console {
        Some(ConsoleCaller(principal)) => Ok(principal.clone()),
        None => app.auth.authenticate_headers(request.headers()).await,
    };
    request
        .extensions_mut()
        .insert(Authenticated(caller.clone()));
    let method = request.method().clone();
    let change = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // The full path: inside the nested router the URI has lost its `/api/v1` prefix.
    if !change {
        return next.run(request).await;
    }
    let path: String = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |uri| uri.0.path())
        .chars()
        .take(2048)
        .collect();
    let source = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    let caller = caller.ok();
    app.audit.record(AuditEntry {
        at: crate::clock::now_millis(),
        kind: if console.is_some() {
            AuditKind::Console
        } else {
            AuditKind::Api
        },
        token_id: caller
            .as_ref()
            .map(|p| p.id().to_owned())
            .unwrap_or_default(),
        token_name: caller.map(|p| p.name().to_owned()).unwrap_or_default(),
        cluster: String::new(),
        verb: method.as_str().to_ascii_lowercase(),
        path,
        status: response.status().as_u16(),
        source,
    });
    response
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
                "{} `{}` lacks the admin role",
                principal.kind(),
                principal.name()
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

/// The `url` of a webhook or a Helm repository: absolute http(s) with a host. Nothing else is
/// restricted (internal addresses included: the admin decides where these point).
pub(crate) fn validate_url(url: &str) -> ApiResult<()> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ApiError::bad_request(format!("`url` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::bad_request(format!(
            "`url` must be http:// or https://, not {}://",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("`url` has no host"));
    }
    Ok(())
}

/// The `--metrics-listen` listener's surface: `GET /metrics` without a token.
pub fn metrics_router(metrics: std::sync::Arc<crate::telemetry::Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(health::open_metrics))
        .fallback(|| async { ApiError::not_found("this listener serves only /metrics") })
        .with_state(metrics)
}

/// The whole HTTP surface; `console` is mounted at `/ui` (and `/` leads there).
pub fn router(app: App, console: Router<App>) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/ui") }))
        .route(
            "/ui/",
            get(|| async { axum::response::Redirect::to("/ui") }),
        )
        .nest("/ui", console)
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/version", get(health::version))
        .route("/metrics", get(health::metrics))
        // Before the token check: `portico login --sso` asks it before anyone has a token.
        .route("/api/v1/auth/oidc", get(sso::announce))
        .nest("/api/v1", v1(app.clone()))
        .route(crate::proxy::ROUTE, any(crate::proxy::handle))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(
            app.metrics.clone(),
            telemetry::track_http,
        ))
        .with_state(app)
}

/// The admin API's routes (`/api/v1/…` without the prefix), authenticated and audited.
pub(crate) fn v1(app: App) -> Router<App> {
    Router::new()
        .merge(tokens::routes())
        .merge(grants::routes())
        .merge(clusters::routes())
        .merge(kubeconfig::routes())
        .merge(audit::routes())
        .merge(coord::routes())
        .merge(plugins::routes())
        .merge(webhooks::routes())
        .merge(jobs::routes())
        .merge(helm::routes())
        .layer(middleware::from_fn_with_state(app, authenticate_and_audit))
}

#[cfg(test)]
mod tests;
