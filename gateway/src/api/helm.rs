//! `/api/v1/helm/repositories` and `/api/v1/helm/charts`. Admin only. Credentials are
//! write-only (sealed with the secret key); charts come from the repo-sync job's last syncs.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult, validate_url};
use crate::app::App;
use crate::clock::now_millis;
use crate::ids::random_id;
use crate::jobs::helm::{Repository, auth_type, newest, sort_newest_first};
use crate::plugin::RepositoryAuth;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/helm/repositories", get(list).post(create))
        .route(
            "/helm/repositories/{id}",
            get(show).put(update).delete(delete),
        )
        .route("/helm/charts", get(charts))
}

/// Body of `POST /api/v1/helm/repositories`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateRepository {
    name: String,
    url: String,
    /// `{"basic": {"username", "password"}}` or `{"bearer": {"token"}}`.
    auth: Option<RepositoryAuth>,
    ca_pem: Option<String>,
}

/// Body of `PUT /api/v1/helm/repositories/{id}`: absent fields keep their value; `null`
/// removes the credentials or the CA.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateRepository {
    name: Option<String>,
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    auth: Option<Option<RepositoryAuth>>,
    #[serde(default, deserialize_with = "present")]
    ca_pem: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn validate(repository: &Repository) -> ApiResult<()> {
    let name = &repository.name;
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    {
        return Err(ApiError::bad_request(
            "`name` must be 1-63 characters of lower-case letters, digits, '-' or '.'",
        ));
    }
    validate_url(&repository.url)?;
    if let Some(pem) = &repository.ca_pem {
        crate::plugin::parse_ca_pem(pem)
            .map_err(|e| ApiError::bad_request(format!("`caPem`: {e}")))?;
    }
    Ok(())
}

fn set_auth(app: &App, repository: &mut Repository, auth: Option<&RepositoryAuth>) {
    repository.sealed_auth =
        auth.map(|a| Repository::seal_auth(&app.secret_key, &repository.id, a));
    repository.auth_type = auth.map(|a| auth_type(a).to_owned());
}

async fn create(
    State(app): State<App>,
    Admin(_): Admin,
    body: Result<Json<CreateRepository>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Repository>)> {
    let Json(body) = body?;
    let now = now_millis();
    let mut repository = Repository {
        id: random_id(),
        name: body.name,
        url: body.url.trim_end_matches('/').to_owned(),
        sealed_auth: None,
        auth_type: None,
        ca_pem: body.ca_pem,
        etag: None,
        last_sync_run: None,
        last_change_run: None,
        last_sync_at: None,
        last_sync_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    validate(&repository)?;
    set_auth(&app, &mut repository, body.auth.as_ref());
    app.db.insert_helm_repository(&repository).await?;
    tracing::info!(repository = %repository.name, url = %repository.url, "Helm repository added");
    Ok((StatusCode::CREATED, Json(repository)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "items": app.db.helm_repositories().await? })))
}

async fn find(app: &App, id: &str) -> ApiResult<Repository> {
    app.db
        .helm_repository(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no Helm repository `{id}`")))
}

async fn show(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(find(&app, &id).await?))
}

async fn update(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
    body: Result<Json<UpdateRepository>, JsonRejection>,
) -> ApiResult<Json<Repository>> {
    let Json(body) = body?;
    let mut repository = find(&app, &id).await?;
    if let Some(name) = body.name {
        repository.name = name;
    }
    if let Some(url) = body.url {
        repository.url = url.trim_end_matches('/').to_owned();
    }
    if let Some(ca) = body.ca_pem {
        repository.ca_pem = ca;
    }
    validate(&repository)?;
    if let Some(auth) = body.auth {
        set_auth(&app, &mut repository, auth.as_ref());
    }
    if !app.db.update_helm_repository(&repository).await? {
        return Err(ApiError::not_found(format!("no Helm repository `{id}`")));
    }
    Ok(Json(find(&app, &repository.id).await?))
}

async fn delete(
    State(app): State<App>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let repository = find(&app, &id).await?;
    app.db.delete_helm_repository(&repository.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChartQuery {
    /// Repository id or name.
    repository: Option<String>,
    name: Option<String>,
    /// `all`: every version, not only the newest per chart.
    versions: Option<String>,
    /// Only versions new in their repository's latest sync.
    new: Option<bool>,
}

async fn charts(
    State(app): State<App>,
    Admin(_): Admin,
    query: Result<Query<ChartQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let all = match query.versions.as_deref() {
        None | Some("newest") => false,
        Some("all") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`versions` must be `newest` or `all`",
            ));
        }
    };
    let mut versions = app
        .db
        .chart_versions(query.repository.as_deref(), query.name.as_deref())
        .await?;
    if query.new == Some(true) {
        versions.retain(|v| v.new);
    }
    let items = if all {
        sort_newest_first(&mut versions);
        versions
    } else {
        newest(versions)
    };
    Ok(Json(json!({ "items": items })))
}
