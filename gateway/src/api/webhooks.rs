//! `/api/v1/webhooks`: webhooks fired on cluster connect and disconnect, and their delivery
//! log. Admin only. Secrets are write-only.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult, validate_name, validate_url};
use crate::app::App;
use crate::clock::now_millis;
use crate::cluster::validate_id;
use crate::hooks::{EventKind, HookScope, Webhook};
use crate::ids::random_id;

/// The longest secret accepted.
const MAX_SECRET: usize = 1024;
const DEFAULT_DELIVERIES: i64 = 50;
const MAX_DELIVERIES: i64 = 500;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show).put(update).delete(delete))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateWebhook {
    name: String,
    url: String,
    secret: String,
    /// Default: every event.
    events: Option<Vec<EventKind>>,
    #[serde(default)]
    scope: HookScope,
    /// Absent, `null` or empty: every cluster.
    clusters: Option<Vec<String>>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Body of `PUT /api/v1/webhooks/{id}`: absent fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateWebhook {
    name: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<EventKind>>,
    scope: Option<HookScope>,
    /// `null` or empty: every cluster.
    #[serde(default, deserialize_with = "present")]
    clusters: Option<Option<Vec<String>>>,
    enabled: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(deserializer).map(Some)
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateWebhook>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let Json(body) = body?;
    validate_name(&body.name)?;
    validate_url(&body.url)?;
    validate_secret(&body.secret)?;
    let now = now_millis();
    let id = random_id();
    let webhook = Webhook {
        sealed_secret: Webhook::seal_secret(&app.secret_key, &id, &body.secret),
        id,
        name: body.name,
        url: body.url,
        events: events(body.events)?,
        scope: body.scope,
        clusters: clusters(body.clusters)?,
        enabled: body.enabled,
        created_at: now,
        updated_at: now,
    };
    app.db.insert_webhook(&webhook).await?;
    tracing::info!(webhook = %webhook.name, url = %webhook.url, "webhook created");
    Ok((StatusCode::CREATED, Json(webhook)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    let webhooks = app.db.webhooks().await?;
    Ok(Json(json!({ "items": webhooks })))
}

async fn find(app: &App, id: &str) -> ApiResult<Webhook> {
    app.db
        .webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook with id `{id}`")))
}

async fn show(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(find(&app, &id).await?))
}

async fn update(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
    body: Result<Json<UpdateWebhook>, JsonRejection>,
) -> ApiResult<Json<Webhook>> {
    let Json(body) = body?;
    let mut webhook = find(&app, &id).await?;
    if let Some(name) = body.name {
        validate_name(&name)?;
        webhook.name = name;
    }
    if let Some(url) = body.url {
        validate_url(&url)?;
        webhook.url = url;
    }
    if let Some(secret) = body.secret {
        validate_secret(&secret)?;
        webhook.sealed_secret = Webhook::seal_secret(&app.secret_key, &webhook.id, &secret);
    }
    if let Some(list) = body.events {
        webhook.events = events(Some(list))?;
    }
    if let Some(scope) = body.scope {
        webhook.scope = scope;
    }
    if let Some(list) = body.clusters {
        webhook.clusters = clusters(list)?;
    }
    if let Some(enabled) = body.enabled {
        webhook.enabled = enabled;
    }
    webhook.updated_at = now_millis();
    if !app.db.update_webhook(&webhook).await? {
        return Err(ApiError::not_found(format!("no webhook with id `{id}`")));
    }
    tracing::info!(webhook = %webhook.name, "webhook updated");
    Ok(Json(webhook))
}

async fn delete(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !app.db.delete_webhook(&id).await? {
        return Err(ApiError::not_found(format!("no webhook with id `{id}`")));
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
}

/// `GET /webhooks/{id}/deliveries?limit=`: newest first.
async fn deliveries(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    find(&app, &id).await?;
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERIES);
    if !(1..=MAX_DELIVERIES).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be 1-{MAX_DELIVERIES}"
        )));
    }
    let items = app.db.deliveries(&id, limit).await?;
    Ok(Json(json!({ "items": items })))
}

fn validate_secret(secret: &str) -> ApiResult<()> {
    if secret.is_empty() || secret.len() > MAX_SECRET {
        return Err(ApiError::bad_request(format!(
            "`secret` must be 1-{MAX_SECRET} bytes"
        )));
    }
    Ok(())
}

/// The subscribed events, sorted and without repeats; absent means all.
fn events(list: Option<Vec<EventKind>>) -> ApiResult<Vec<EventKind>> {
    let Some(mut list) = list else {
        return Ok(EventKind::ALL.to_vec());
    };
    list.sort();
    list.dedup();
    if list.contains(&EventKind::RunFinished) {
        return Err(ApiError::bad_request(
            "`events`: `run.finished` is not a subscription; name the webhook in a job's \
             `webhooks` instead",
        ));
    }
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "`events` must name at least one of `connected`, `disconnected`",
        ));
    }
    Ok(list)
}

/// The cluster filter: `None` (every cluster) for absent or empty, else valid ids.
fn clusters(list: Option<Vec<String>>) -> ApiResult<Option<Vec<String>>> {
    let Some(mut list) = list.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    for id in &list {
        validate_id(id).map_err(|e| ApiError::bad_request(format!("`clusters`: {e}")))?;
    }
    list.sort();
    list.dedup();
    Ok(Some(list))
}
