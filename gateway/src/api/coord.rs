//! `GET /api/v1/leader`, `GET /api/v1/instances` and the manual reload.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::auth::Principal;
use crate::cluster::Initiator;
use crate::coord::{InstanceView, LeaderView};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/leader", get(leader))
        .route("/instances", get(instances))
        .route("/internal/clusters/{id}/reload", post(reload))
}

async fn leader(State(app): State<App>, _: Principal) -> ApiResult<Json<LeaderView>> {
    Ok(Json(app.coord.leader().await?))
}

async fn instances(State(app): State<App>, _: Principal) -> ApiResult<Json<Value>> {
    let items: Vec<InstanceView> = app.coord.instances(app.clusters.local_ids().len()).await?;
    Ok(Json(json!({ "items": items })))
}

/// Reloads one cluster from the database on this replica (a manual fallback: configuration
/// normally travels through the cluster lease's revision annotation).
async fn reload(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = app.clusters.record(&id).await?;
    if app.clusters.connection(&id).is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_connected",
            format!("cluster `{id}` is not connected on this replica; nothing to reload"),
        ));
    }
    // A rebuild of this replica's own connection: no lifecycle change, so `cluster`-scoped
    // hooks stay quiet.
    app.clusters
        .connect_record(&record, Initiator::OtherReplica)
        .await?;
    let view = super::clusters::full_view(&app, record).await?;
    Ok(Json(serde_json::to_value(view).expect("view serializes")))
}
