//! `GET/POST /api/v1/grants`, `DELETE /api/v1/grants/{id}`: admin-only grants for people and
//! groups signed in through OIDC.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::auth::{PersonAccess, Selector, Subject, SubjectGrant};
use crate::clock::now_millis;
use crate::ids::random_id;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/grants", get(list).post(create))
        .route("/grants/{id}", delete(remove))
}

/// Body of `POST /api/v1/grants`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateGrant {
    subject: Subject,
    /// A cluster id, or `*` for every cluster.
    cluster: Option<String>,
    /// A cluster label selector (`env=prod,team in (a,b)`).
    selector: Option<String>,
    access: PersonAccess,
    #[serde(default)]
    impersonate: bool,
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateGrant>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SubjectGrant>)> {
    let Json(body) = body?;
    let name = &body.subject.name;
    if name.is_empty() || name.len() > 1024 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "`subject.name` must be 1-1024 characters without control characters",
        ));
    }
    let (cluster, selector) = match (body.cluster, body.selector) {
        (Some(cluster), None) => {
            if cluster != "*" {
                crate::cluster::validate_id(&cluster).map_err(|_| {
                    ApiError::bad_request(format!(
                        "`cluster`: `{cluster}` is neither a cluster id nor `*`"
                    ))
                })?;
            }
            (Some(cluster), None)
        }
        (None, Some(selector)) => {
            Selector::parse(&selector).map_err(|e| ApiError::bad_request(e.to_string()))?;
            (None, Some(selector))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `cluster` (an id or `*`) and `selector` (cluster labels)",
            ));
        }
    };
    let grant = SubjectGrant {
        id: random_id(),
        subject: body.subject,
        cluster,
        selector,
        access: body.access,
        impersonate: body.impersonate,
        created_at: now_millis(),
    };
    app.db.insert_subject_grant(&grant).await?;
    app.auth.forget_person_grants();
    tracing::info!(
        grant = %grant.id,
        subject = %grant.subject.name,
        kind = grant.subject.kind.as_str(),
        access = grant.access.as_str(),
        "grant created"
    );
    Ok((StatusCode::CREATED, Json(grant)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    let grants = app.db.subject_grants().await?;
    Ok(Json(json!({ "items": grants })))
}

async fn remove(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !app.db.delete_subject_grant(&id).await? {
        return Err(ApiError::not_found(format!("no grant with id `{id}`")));
    }
    app.auth.forget_person_grants();
    tracing::info!(grant = %id, "grant deleted");
    Ok(StatusCode::NO_CONTENT)
}
