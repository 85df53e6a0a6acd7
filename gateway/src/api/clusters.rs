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
        .route("/replica-states", get(replica_states))
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

/// [`view_of`] with every replica's published state of the cluster.
pub async fn full_view(
    app: &App,
    record: crate::storage::clusters::ClusterRecord,
) -> ApiResult<crate::cluster::ClusterView> {
    let mut replicas = app.replicas.of(&record.id).await?;
    let mut view = view_of(app, record);
    overlay_local(app, &view.id, &mut replicas);
    view.replicas = replicas;
    Ok(view)
}

/// While this replica has a connection, its own row is the live local state, not the
/// published copy (which trails it by the publisher's coalescing delay): a connect call's
/// answer shows its own result. Without one, the published row (with the time of the
/// disconnect) stands.
fn overlay_local(
    app: &App,
    cluster_id: &str,
    replicas: &mut Vec<crate::storage::replica_states::ReplicaState>,
) {
    let instance = &app.config.instance_id;
    let Some(connection) = app.clusters.connection(cluster_id) else {
        return;
    };
    let own = replicas.iter().position(|r| &r.instance == instance);
    let local = connection.state();
    let row = crate::storage::replica_states::ReplicaState {
        instance: instance.clone(),
        state: crate::coord::replicas::phase_name(local.phase).to_owned(),
        error: local.last_error,
        since: local.since,
        updated_at: crate::clock::now_millis(),
        stale: false,
    };
    match own {
        Some(i) => replicas[i] = row,
        None => {
            let at = replicas.partition_point(|r| r.instance < row.instance);
            replicas.insert(at, row);
        }
    }
}

/// Views of `records` with their rows of `replicas` (every replica's states by cluster, as
/// `app.replicas.all()` returns them: one query for any number of clusters).
pub fn with_replicas(
    app: &App,
    records: Vec<crate::storage::clusters::ClusterRecord>,
    mut replicas: std::collections::HashMap<
        String,
        Vec<crate::storage::replica_states::ReplicaState>,
    >,
) -> Vec<crate::cluster::ClusterView> {
    records
        .into_iter()
        .map(|record| {
            let mut states = replicas.remove(&record.id).unwrap_or_default();
            let mut view = view_of(app, record);
            overlay_local(app, &view.id, &mut states);
            view.replicas = states;
            view
        })
        .collect()
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
    let view = serde_json::to_value(full_view(&app, record).await?).expect("view serializes");
    Ok((StatusCode::CREATED, Json(with_warnings(view, warnings))))
}

async fn list(State(app): State<App>, principal: Principal) -> ApiResult<Json<Value>> {
    // Both reads at once: the list's cost is one round trip, not two.
    let (records, replicas) = tokio::try_join!(app.db.clusters(), app.replicas.all())?;
    let records: Vec<_> = records
        .into_iter()
        .filter(|c| principal.grant_for_labels(&c.id, &c.labels).is_some())
        .collect();
    let items = with_replicas(&app, records, replicas);
    Ok(Json(json!({ "items": items })))
}

/// The matrix of every replica's state of every cluster the caller may see, in one query:
/// `{"instances": [..], "items": [{"cluster", "replicas": [..]}]}`, clusters without any
/// published state left out.
async fn replica_states(State(app): State<App>, principal: Principal) -> ApiResult<Json<Value>> {
    let mut instances = std::collections::BTreeSet::new();
    let mut items: Vec<(String, Vec<_>)> = app
        .replicas
        .all()
        .await?
        .into_iter()
        .filter(|(cluster, _)| principal.grant_for(cluster).is_some())
        .inspect(|(_, replicas)| {
            instances.extend(replicas.iter().map(|r| r.instance.clone()));
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<Value> = items
        .into_iter()
        .map(|(cluster, replicas)| json!({ "cluster": cluster, "replicas": replicas }))
        .collect();
    Ok(Json(json!({ "instances": instances, "items": items })))
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
        serde_json::to_value(full_view(&app, record).await?).expect("view serializes"),
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
    let view = serde_json::to_value(full_view(&app, record).await?).expect("view serializes");
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
    let view = full_view(&app, app.clusters.record(&id).await?).await?;
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
    let view = full_view(&app, app.clusters.record(&id).await?).await?;
    Ok(Json(serde_json::to_value(view).expect("view serializes")))
}
