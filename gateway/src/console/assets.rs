//! The console's stylesheet and script, embedded in the binary (no CDN, no build step).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLE: &str = include_str!("../../assets/console/style.css");
const SCRIPT: &str = include_str!("../../assets/console/console.js");

/// Versioned URLs: a new release's assets are new URLs, so they may be cached for long.
pub(crate) const STYLE_URL: &str = concat!("/ui/assets/style.css?v=", env!("CARGO_PKG_VERSION"));
pub(crate) const SCRIPT_URL: &str = concat!("/ui/assets/console.js?v=", env!("CARGO_PKG_VERSION"));

/// `GET /ui/assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
