//! `/api/v1/clusters`: the registry and local connect/disconnect (kubeconfig export is in
//! `kubeconfig.rs`).

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::auth::Principal;
use crate::cluster::{ClusterError, ClusterUpdate, NewCluster};
use crate::storage::clusters::{ClusterRecord, DesiredState};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/clusters", get(list).post(create))
        .route("/clusters/{id}", get(show).put(update).delete(delete))
        .route("/clusters/{id}/connect", post(connect))
        .route("/clusters/{id}/disconnect", post(disconnect))
}

impl From<crate::coord::CoordError> for ApiError {
    fn from(e: crate::coord::CoordError) -> Self {
        match e {
            crate::coord::CoordError::Cluster(e) => e.into(),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                other.to_string(),
            ),
        }
    }
}

/// A cluster's view with the lease holder as this replica last saw it.
pub fn view_of(app: &App, record: ClusterRecord) -> crate::cluster::ClusterView {
    let holder = app.coord.lease_holder(&record.id);
    let mut view = app.clusters.view(record);
    view.lease_holder = holder;
    view
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NotFound(_) => ApiError::not_found(e.to_string()),
            ClusterError::InvalidId(_) | ClusterError::Spec(_) => {
                ApiError::bad_request(e.to_string())
            }
            ClusterError::Storage(e) => e.into(),
            ClusterError::Sealed(..) => {
                tracing::error!(error = %e, "cluster credentials do not open");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            ClusterError::Upstream(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCluster {
    id: String,
    name: Option<String>,
    kubeconfig: String,
    context: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateCluster {
    name: Option<String>,
    kubeconfig: Option<String>,
    context: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

fn with_warnings(mut view: Value, warnings: Vec<String>) -> Value {
    if !warnings.is_empty() {
        view["warnings"] = json!(warnings);
    }
    view
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateCluster>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let (record, warnings) = app
        .clusters
        .create(NewCluster {
            id: body.id,
            name: body.name,
            kubeconfig: body.kubeconfig,
            context: body.context,
            namespace: body.namespace,
            labels: body.labels,
        })
        .await?;
    for warning in &warnings {
        tracing::warn!(cluster = %record.id, "{warning}");
    }
    tracing::info!(cluster = %record.id, server = %record.server, "cluster registered");
    let view = serde_json::to_value(view_of(&app, record)).expect("view serializes");
    Ok((StatusCode::CREATED, Json(with_warnings(view, warnings))))
}

async fn list(State(app): State<App>, principal: Principal) -> ApiResult<Json<Value>> {
    let items: Vec<_> = app
        .db
        .clusters()
        .await?
        .into_iter()
        .filter(|c| principal.grant_for_labels(&c.id, &c.labels).is_some())
        .map(|c| view_of(&app, c))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// A cluster the caller may see: 404 when it does not exist, 403 without a grant.
pub(super) fn visible(principal: &Principal, record: &ClusterRecord) -> ApiResult<()> {
    if principal
        .grant_for_labels(&record.id, &record.labels)
        .is_none()
    {
        return Err(ApiError::forbidden(format!(
            "{} `{}` has no grant for cluster `{}`",
            principal.kind(),
            principal.name(),
            record.id
        )));
    }
    Ok(())
}

async fn show(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = app.clusters.record(&id).await?;
    visible(&principal, &record)?;
    Ok(Json(
        serde_json::to_value(view_of(&app, record)).expect("view serializes"),
    ))
}

async fn update(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
    body: Result<Json<UpdateCluster>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let warnings = app
        .clusters
        .update(
            &id,
            ClusterUpdate {
                name: body.name,
                kubeconfig: body.kubeconfig,
                context: body.context,
                namespace: body.namespace,
                labels: body.labels,
            },
        )
        .await?;
    let record = app.clusters.record(&id).await?;
    app.coord.config_changed(&id, record.config_revision).await;
    let view = serde_json::to_value(view_of(&app, record)).expect("view serializes");
    Ok(Json(with_warnings(view, warnings)))
}

async fn delete(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    // Its lease goes first, so that every replica lets go of it, not only this one.
    app.clusters.record(&id).await?;
    app.clusters
        .set_desired(&id, DesiredState::Disconnected)
        .await?;
    app.coord.disconnect(&app.clusters, &id).await?;
    app.clusters.delete(&id).await?;
    tracing::info!(cluster = %id, "cluster deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Records the wish and connects this replica; answers with the resulting state (`failed`
/// with `lastError` when the check did not pass: the gateway keeps retrying).
async fn connect(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.clusters
        .set_desired(&id, DesiredState::Connected)
        .await?;
    app.coord.connect(&app.clusters, &id).await?;
    let view = view_of(&app, app.clusters.record(&id).await?);
    Ok(Json(serde_json::to_value(view).expect("view serializes")))
}

async fn disconnect(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.clusters
        .set_desired(&id, DesiredState::Disconnected)
        .await?;
    app.coord.disconnect(&app.clusters, &id).await?;
    let view = view_of(&app, app.clusters.record(&id).await?);
    Ok(Json(serde_json::to_value(view).expect("view serializes")))
}
