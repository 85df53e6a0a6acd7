//! `GET /api/v1/audit`: mutating and refused proxied requests and admin API changes, newest
//! first.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::audit::AuditKind;
use crate::storage::audit::AuditQuery;

pub fn routes() -> Router<App> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `proxy`, `api` or `console`.
    kind: Option<String>,
    cluster: Option<String>,
    token: Option<String>,
    /// Unix milliseconds: entries older than this.
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    State(app): State<App>,
    Admin(_): Admin,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    let kind =
        match params.kind.as_deref() {
            None => None,
            Some(text) => Some(AuditKind::parse(text).ok_or_else(|| {
                ApiError::bad_request("`kind` must be `proxy`, `api` or `console`")
            })?),
        };
    let items = app
        .db
        .audit(&AuditQuery {
            kind,
            cluster: params.cluster,
            token_name: params.token,
            before: params.before,
            limit,
        })
        .await?;
    Ok(Json(json!({ "items": items })))
}
