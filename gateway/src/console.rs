//! The web console under `/ui`: server-rendered pages (maud) over the admin API.
//!
//! The console holds no rules of its own. Every page reads, and every form writes, through the
//! admin API's own routes, called in process for the signed-in user ([`Ui::get`], [`Ui::send`]):
//! the same validation, the same grants (a read-only user's post is refused exactly as the API
//! refuses it), the same audit log (entries of kind `console`).
//!
//! Security: sessions live in the database ([`session`]) behind an HttpOnly, Secure,
//! SameSite=Lax `__Host-` cookie; every form posts the session's CSRF token and cross-site posts
//! are refused before any handler runs; every response carries a Content-Security-Policy that
//! allows only this origin's script and style (no inline script, no inline style).

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, html};
use serde_json::Value;

use crate::app::App;
use crate::auth::Principal;

mod assets;
mod audit;
mod clusters;
mod form;
mod helm;
mod inspections;
mod overview;
mod plugins;
mod replicas;
pub(crate) mod session;
mod sso;
mod tokens;
mod view;
mod webhooks;

pub(crate) use form::CsrfForm;
pub(crate) use view::*;

/// The Content-Security-Policy of every console response.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, mounted at `/ui`.
pub fn router(app: App) -> Router<App> {
    let api = ApiClient(crate::api::v1(app.clone()).with_state(app.clone()));
    let signed_in = Router::new()
        .route("/", get(overview::page_handler))
        .route("/logout", post(session::logout))
        .merge(clusters::routes())
        .merge(replicas::routes())
        .merge(inspections::routes())
        .merge(plugins::routes())
        .merge(helm::routes())
        .merge(audit::routes())
        .merge(tokens::routes())
        .merge(webhooks::routes())
        .layer(middleware::from_fn_with_state(
            app.clone(),
            session::require,
        ));
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .route("/login/sso", get(sso::start))
        .route("/login/sso/callback", get(sso::callback))
        .route("/assets/{name}", get(assets::serve))
        .merge(signed_in)
        .fallback(not_found)
        .layer(axum::Extension(api))
        .layer(middleware::from_fn(same_origin_posts))
        .layer(middleware::from_fn(security_headers))
}

/// The admin API's router, called in process by the console.
#[derive(Clone)]
pub(crate) struct ApiClient(Router);

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiClient")
    }
}

/// Headers every console response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Refuses a POST that a browser says comes from another site (`Sec-Fetch-Site`, or an
/// `Origin` that is not this host), before any handler or body parsing: defence in depth
/// beside the CSRF token every form carries.
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "This form was posted from another site. Open the console and try again.",
        );
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let origin = origin.to_str().unwrap_or_default();
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            !host.is_empty() && origin_host == Some(host)
        }
    }
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
    )
}

/// A signed-in request: who, with which session, and the admin API on their behalf.
#[derive(Debug, Clone)]
pub(crate) struct Ui {
    pub principal: Principal,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    /// The id hash of the session.
    pub session: String,
    /// The credential the session signed in with, opened (kubeconfig downloads embed it).
    pub secret: Option<secrecy::SecretString>,
    /// A message from the previous action (flash cookie), shown once.
    pub flash: Option<Flash>,
    api: ApiClient,
    forwarded: HeaderMap,
}

impl FromRequestParts<App> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &App) -> Result<Self, Self::Rejection> {
        let signed_in = parts
            .extensions
            .get::<session::SignedIn>()
            .cloned()
            .ok_or_else(|| Redirect::to("/ui/login").into_response())?;
        let api = parts
            .extensions
            .get::<ApiClient>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        // What the API needs to build URLs back to this gateway (kubeconfig exports).
        let mut forwarded = HeaderMap::new();
        for name in [
            header::HOST,
            header::HeaderName::from_static("x-forwarded-proto"),
            header::HeaderName::from_static("x-forwarded-host"),
            header::HeaderName::from_static("x-forwarded-prefix"),
        ] {
            if let Some(value) = parts.headers.get(&name) {
                forwarded.insert(name, value.clone());
            }
        }
        Ok(Self {
            principal: signed_in.principal,
            csrf: signed_in.csrf,
            session: signed_in.id_hash,
            secret: signed_in.secret,
            flash: Flash::from_headers(&parts.headers),
            api,
            forwarded,
        })
    }
}

/// An admin API error as the console shows it.
#[derive(Debug, Clone)]
pub(crate) struct UiError {
    pub status: StatusCode,
    pub message: String,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Refused",
            s if s.is_server_error() => "The gateway could not answer",
            _ => "Error",
        };
        error_page(self.status, title, &self.message)
    }
}

impl Ui {
    pub fn is_admin(&self) -> bool {
        self.principal.is_admin()
    }

    /// `GET /api/v1{path}` as the signed-in user.
    pub async fn get(&self, path: &str) -> Result<Value, UiError> {
        self.call(Method::GET, path, None, None).await
    }

    /// A change through the admin API as the signed-in user (audited as `console`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, UiError> {
        let body = body.map(|b| {
            (
                HeaderValue::from_static("application/json"),
                axum::body::Body::from(serde_json::to_vec(&b).expect("JSON serializes")),
            )
        });
        self.call(method, path, body, None).await
    }

    /// An admin API call with a raw body (a multipart upload) as the signed-in user.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: HeaderValue,
        body: axum::body::Body,
    ) -> Result<Value, UiError> {
        self.call(method, path, Some((content_type, body)), None)
            .await
    }

    /// The raw response of an admin API GET, sending the session's own credential as the
    /// bearer token (a kubeconfig export embeds the caller's token).
    pub async fn get_raw_with_credential(&self, path: &str) -> Result<Response, UiError> {
        use secrecy::ExposeSecret;
        let bearer = self
            .secret
            .as_ref()
            .and_then(|s| HeaderValue::from_str(&format!("Bearer {}", s.expose_secret())).ok());
        let response = self.request(Method::GET, path, None, bearer).await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        Ok(response)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(HeaderValue, axum::body::Body)>,
        bearer: Option<HeaderValue>,
    ) -> Result<Value, UiError> {
        let response = self.request(method, path, body, bearer).await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| UiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(HeaderValue, axum::body::Body)>,
        bearer: Option<HeaderValue>,
    ) -> Result<Response, UiError> {
        use tower_service::Service;
        let uri: Uri = path
            .parse()
            .map_err(|_| UiError::new(StatusCode::BAD_REQUEST, format!("bad path `{path}`")))?;
        let (content_type, body) = match body {
            Some((content_type, body)) => (Some(content_type), body),
            None => (None, axum::body::Body::empty()),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        *request.headers_mut() = self.forwarded.clone();
        if let Some(content_type) = content_type {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        match bearer {
            Some(bearer) => {
                request.headers_mut().insert(header::AUTHORIZATION, bearer);
            }
            None => {
                request
                    .extensions_mut()
                    .insert(crate::api::ConsoleCaller(self.principal.clone()));
            }
        }
        // The audit entry's path and source, as for a direct API call.
        let original = format!("/api/v1{path}")
            .parse::<Uri>()
            .map_err(|_| UiError::new(StatusCode::BAD_REQUEST, format!("bad path `{path}`")))?;
        request
            .extensions_mut()
            .insert(axum::extract::OriginalUri(original));
        let mut router = self.api.0.clone();
        let response = router
            .call(request)
            .await
            .unwrap_or_else(|never| match never {});
        Ok(response)
    }
}

/// The message of an admin API error response.
async fn error_of(response: Response) -> UiError {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            let error = v.get("error")?;
            let mut message = error.get("message")?.as_str()?.to_owned();
            if let Some(causes) = error.pointer("/details/causes").and_then(Value::as_array) {
                for cause in causes {
                    if let Some(text) = cause.get("message").and_then(Value::as_str) {
                        message.push_str("\n• ");
                        message.push_str(text);
                    }
                }
            }
            Some(message)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    UiError::new(status, message)
}

/// A page for a request that has no signed-in layout (errors, refusals).
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Portico" }
                link rel="stylesheet" href=(assets::STYLE_URL);
            }
            body.bare {
                main.narrow {
                    h1 { (title) }
                    p.error-text { (message) }
                    p { a href="/ui" { "Back to the console" } }
                }
            }
        }
    };
    (status, markup).into_response()
}
