//! Form posts that must carry the session's CSRF token.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error_page;
use super::session::SignedIn;
use crate::app::App;

/// Largest form body the console reads (plugin configurations are the largest forms).
const MAX_FORM_BYTES: usize = 1 << 20;

/// An `application/x-www-form-urlencoded` post whose `_csrf` field matches the session's
/// token; `T` gets the other fields. A missing or wrong token is a 403 before `T` is read.
#[derive(Debug)]
pub(crate) struct CsrfForm<T>(pub T);

/// Whether `given` is the session's CSRF token (constant time).
pub(crate) fn csrf_matches(signed_in: &SignedIn, given: &str) -> bool {
    !given.is_empty() && bool::from(signed_in.csrf.as_bytes().ct_eq(given.as_bytes()))
}

pub(crate) fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form's security token is missing or does not match your session. Reload the page \
         and try again.",
    )
}

impl<T: DeserializeOwned + Send> FromRequest<App> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _: &App) -> Result<Self, Self::Rejection> {
        let signed_in = request
            .extensions()
            .get::<SignedIn>()
            .cloned()
            .ok_or_else(csrf_refused)?;
        let urlencoded = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err(error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "The console accepts only HTML form posts here.",
            ));
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Form too large",
                    "The form is larger than the console accepts (1 MiB).",
                )
            })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| error_page(StatusCode::BAD_REQUEST, "Bad form", &e.to_string()))?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map_or("", |(_, v)| v.as_str());
        if !csrf_matches(&signed_in, token) {
            return Err(csrf_refused());
        }
        let value = serde_urlencoded::from_bytes(&body)
            .map_err(|e| error_page(StatusCode::BAD_REQUEST, "Bad form", &e.to_string()))?;
        Ok(Self(value))
    }
}
