//! `/api/v1/clusters`: the registry and local connect/disconnect (kubeconfig export is in
//! `kubeconfig.rs`).

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::auth::Principal;
use crate::cluster::{ClusterError, ClusterUpdate, ClusterView, LocalState, NewCluster, Phase};
use crate::storage::clusters::{ClusterEntry, ClusterRecord, DesiredState};
use crate::storage::replica_states::STATES;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/clusters", get(list).post(create))
        .route("/clusters/{id}", get(show).put(update).delete(delete))
        .route("/clusters/{id}/connect", post(connect))
        .route("/clusters/{id}/disconnect", post(disconnect))
        .route("/replica-states", get(replica_states))
        .route("/cluster-counts", get(counts))
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
pub fn view_of(app: &App, record: impl Into<ClusterEntry>) -> ClusterView {
    let record = record.into();
    let local = app.clusters.local_state(&record.id);
    view_with(app, record, local)
}

/// [`view_of`] with this replica's state already read.
fn view_with(app: &App, record: ClusterEntry, local: LocalState) -> ClusterView {
    let holder = app.coord.lease_holder(&record.id);
    let mut view = crate::cluster::ClusterManager::view_with(record, local);
    view.lease_holder = holder;
    view
}

/// [`view_of`] with every replica's published state of the cluster.
pub async fn full_view(app: &App, record: ClusterRecord) -> ApiResult<ClusterView> {
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

/// `GET /clusters` parameters, all optional: without `limit`, every cluster the caller may
/// see.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Only clusters in this state on this replica.
    state: Option<String>,
    /// Only clusters with this text (any case) in their id, name, server, a label
    /// (`key=value`), server version or last error.
    q: Option<String>,
    /// At most this many items; the answer's `continue` asks for the next page.
    limit: Option<usize>,
    /// The `continue` of the page before: the items after it.
    #[serde(rename = "continue")]
    after: Option<String>,
}

/// Answers of up to this many clusters read their replicas' states by id; larger ones read them all.
const PAGE_BY_ID: usize = 500;

/// The caller's clusters, by id, filtered and paged; each with every replica's state.
/// `total` counts the items the filters match (every page); `continue` is there when more
/// follow.
async fn list(
    State(app): State<App>,
    principal: Principal,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let state = match params.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(parse_phase(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state `{s}`: expected connecting, connected, failed or disconnected"
            ))
        })?),
    };
    if params.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let needle = params.q.as_deref().unwrap_or_default().to_lowercase();
    let mut matching: Vec<(ClusterEntry, LocalState)> = visible_entries(&app, &principal)
        .await?
        .into_iter()
        .map(|c| {
            let local = app.clusters.local_state(&c.id);
            (c, local)
        })
        .filter(|(_, local)| state.is_none_or(|s| local.phase == s))
        .filter(|(c, local)| needle.is_empty() || mentions(c, local, &needle))
        .collect();
    let total = matching.len();
    if let Some(after) = params.after.as_deref() {
        // Sorted by id: the page starts after the last id of the one before.
        let start = matching.partition_point(|(c, _)| c.id.as_str() <= after);
        matching.drain(..start);
    }
    let more = params.limit.is_some_and(|limit| matching.len() > limit);
    if let Some(limit) = params.limit {
        matching.truncate(limit);
    }
    let mut replicas = if matching.len() <= PAGE_BY_ID {
        let ids: Vec<&str> = matching.iter().map(|(c, _)| c.id.as_str()).collect();
        app.replicas.of_many(&ids).await?
    } else {
        app.replicas.all().await?
    };
    let items: Vec<ClusterView> = matching
        .into_iter()
        .map(|(record, local)| {
            let mut states = replicas.remove(&record.id).unwrap_or_default();
            let mut view = view_with(&app, record, local);
            overlay_local(&app, &view.id, &mut states);
            view.replicas = states;
            view
        })
        .collect();
    let mut answer = json!({ "items": items, "total": total });
    if more && let Some(last) = items.last() {
        answer["continue"] = json!(last.id);
    }
    Ok(Json(answer))
}

/// Every stored cluster `principal` has a grant for, by id, without credentials.
async fn visible_entries(app: &App, principal: &Principal) -> ApiResult<Vec<ClusterEntry>> {
    let mut entries = app.db.cluster_entries().await?;
    entries.retain(|c| principal.grant_for_labels(&c.id, &c.labels).is_some());
    Ok(entries)
}

fn parse_phase(name: &str) -> Option<Phase> {
    [
        Phase::Connecting,
        Phase::Connected,
        Phase::Failed,
        Phase::Disconnected,
    ]
    .into_iter()
    .find(|p| crate::coord::replicas::phase_name(*p) == name)
}

/// Whether `needle` (lower case) is in the cluster's id, name, server, a `key=value` label,
/// server version or last error.
fn mentions(c: &ClusterEntry, local: &LocalState, needle: &str) -> bool {
    let has = |text: &str| text.to_lowercase().contains(needle);
    has(&c.id)
        || has(&c.name)
        || has(&c.server)
        || c.labels.iter().any(|(k, v)| has(&format!("{k}={v}")))
        || local.server_version.as_deref().is_some_and(has)
        || local.last_error.as_deref().is_some_and(has)
}

/// How many clusters the caller may see, in all and by this replica's state:
/// `{"registered": n, "states": {"connected": n, "connecting": n, "failed": n, "disconnected": n}}`.
async fn counts(State(app): State<App>, principal: Principal) -> ApiResult<Json<Value>> {
    let mut states: BTreeMap<&str, usize> = STATES.into_iter().map(|s| (s, 0)).collect();
    let mut registered = 0;
    for c in visible_entries(&app, &principal).await? {
        registered += 1;
        let phase = app.clusters.local_state(&c.id).phase;
        *states
            .entry(crate::coord::replicas::phase_name(phase))
            .or_default() += 1;
    }
    Ok(Json(json!({ "registered": registered, "states": states })))
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
