//! `GET /api/v1/auth/oidc`, without a token: the OpenID provider and client id this gateway
//! accepts ID tokens from (its `--oidc-issuer-url` and `--oidc-client-id`), so that
//! `portico login --sso --server …` needs nothing else. Both values are public (they are in
//! every ID token and in the provider's sign-in address); 404 when OIDC is off.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiError, ApiResult};
use crate::app::App;

/// `GET /api/v1/auth/oidc`: `{"issuerUrl", "clientId"}`.
pub async fn announce(State(app): State<App>) -> ApiResult<Json<Value>> {
    let oidc = app.config.oidc.as_ref().ok_or_else(|| {
        ApiError::not_found("this gateway accepts no OIDC ID tokens (no --oidc-issuer-url)")
    })?;
    Ok(Json(json!({
        "issuerUrl": oidc.issuer_url,
        "clientId": oidc.client_id,
    })))
}
