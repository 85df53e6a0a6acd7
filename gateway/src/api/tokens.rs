//! `POST/GET/DELETE /api/v1/tokens`: admin-only token management.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult, validate_name};
use crate::app::App;
use crate::auth::{Grant, Role, Token};
use crate::clock::now_millis;
use crate::crypto::{generate_token, token_hash};
use crate::ids::random_id;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", get(show).delete(delete))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateToken {
    name: String,
    #[serde(default = "default_role")]
    role: Role,
    #[serde(default)]
    grants: Vec<Grant>,
    /// RFC 3339 time after which the token is refused.
    expires_at: Option<String>,
    /// Alternative to `expiresAt`: lifetime from now.
    ttl_seconds: Option<u64>,
    impersonate_user: Option<String>,
    #[serde(default)]
    impersonate_groups: Vec<String>,
}

fn default_role() -> Role {
    Role::User
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    validate_name(&body.name)?;
    for grant in &body.grants {
        if grant.cluster.is_empty() {
            return Err(ApiError::bad_request(
                "a grant's `cluster` must be a cluster id or `*`",
            ));
        }
    }
    // What the proxy sends as `Impersonate-User`/`Impersonate-Group` must be sendable, or
    // it would have to refuse every request of the token.
    if let Some(user) = body.impersonate_user.as_deref().filter(|u| !u.is_empty()) {
        crate::auth::impersonation_header(user)
            .map_err(|e| ApiError::bad_request(format!("`impersonateUser` {e}")))?;
    }
    for group in &body.impersonate_groups {
        crate::auth::impersonation_header(group)
            .map_err(|e| ApiError::bad_request(format!("`impersonateGroups`: each group {e}")))?;
    }
    let now = now_millis();
    let expires_at = match (&body.expires_at, body.ttl_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give `expiresAt` or `ttlSeconds`, not both",
            ));
        }
        (Some(at), None) => {
            let at: jiff::Timestamp = at.parse().map_err(|e| {
                ApiError::bad_request(format!("`expiresAt` is not an RFC 3339 time: {e}"))
            })?;
            Some(at.as_millisecond())
        }
        (None, Some(ttl)) => {
            let ttl = i64::try_from(ttl).ok().and_then(|t| t.checked_mul(1000));
            Some(
                ttl.and_then(|t| now.checked_add(t))
                    .ok_or_else(|| ApiError::bad_request("`ttlSeconds` is too large"))?,
            )
        }
        (None, None) => None,
    };
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::bad_request("the token would already be expired"));
    }
    let token = Token {
        id: random_id(),
        name: body.name,
        role: body.role,
        grants: body.grants,
        impersonate_user: body.impersonate_user.filter(|u| !u.is_empty()),
        impersonate_groups: body.impersonate_groups,
        created_at: now,
        expires_at,
    };
    let secret = generate_token();
    app.db.insert_token(&token, &token_hash(&secret)).await?;
    tracing::info!(token = %token.name, role = token.role.as_str(), "token created");
    let mut value = serde_json::to_value(&token).expect("token serializes");
    value["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(value)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    let tokens = app.db.tokens().await?;
    Ok(Json(json!({ "items": tokens })))
}

async fn show(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Token>> {
    let token = app.db.token(&id).await?;
    token
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no token with id `{id}`")))
}

async fn delete(
    State(app): State<App>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if caller.id() == id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a token cannot delete itself; use another admin token",
        ));
    }
    if !app.db.delete_token(&id).await? {
        return Err(ApiError::not_found(format!("no token with id `{id}`")));
    }
    app.auth.forget(&id);
    tracing::info!(token_id = %id, "token deleted");
    Ok(StatusCode::NO_CONTENT)
}
