//! `/api/v1/plugins`: install (multipart upload), list, show, enable/disable, configure and
//! delete wasm plugins. Admin only.

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::plugin::{Error, PluginRecord};

/// The largest upload (manifest + component).
const MAX_UPLOAD: usize = 64 << 20;

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/plugins",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/plugins/{name}", get(show).delete(delete))
        .route("/plugins/{name}/enable", post(enable))
        .route("/plugins/{name}/disable", post(disable))
        .route(
            "/plugins/{name}/config",
            put(set_config).delete(reset_config),
        )
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Manifest(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_manifest", message),
            Error::NotAComponent(_) => {
                Self::new(StatusCode::BAD_REQUEST, "not_a_component", message)
            }
            Error::WrongWorld { .. } => Self::new(StatusCode::BAD_REQUEST, "wrong_world", message),
            Error::UnsupportedImport(_) => {
                Self::new(StatusCode::BAD_REQUEST, "unsupported_import", message)
            }
            Error::WrongKind { .. } | Error::InvalidCa { .. } => Self::bad_request(message),
            Error::NotFound(_) => Self::not_found(message),
            Error::Disabled(_) => Self::new(StatusCode::CONFLICT, "disabled", message),
            Error::FromDirectory(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            Error::Storage(e) => e.into(),
            Error::Trap { .. }
            | Error::Guest { .. }
            | Error::OutputTooLarge { .. }
            | Error::InvalidOutput { .. }
            | Error::MissingComponent { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "plugin_failed", message)
            }
            Error::Host(_) => {
                tracing::error!(error = %message, "plugin host error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    /// Replace an uploaded plugin of the same name (keeping its state and configuration).
    #[serde(default)]
    replace: bool,
}

/// `POST /plugins`, `multipart/form-data` with a `manifest` part (the TOML text) and a
/// `component` part (the `.wasm` file): `curl -F manifest=@x.toml -F component=@x.wasm`.
async fn upload(
    State(app): State<App>,
    Admin(_): Admin,
    Query(query): Query<UploadQuery>,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<PluginRecord>)> {
    let mut manifest = None;
    let mut component = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("multipart body: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("part `{name}`: {}", e.body_text())))?;
        match name.as_str() {
            "manifest" => {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::bad_request("the manifest is not UTF-8 text"))?;
                manifest = Some(text);
            }
            "component" => component = Some(bytes.to_vec()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part `{other}`: send `manifest` and `component`"
                )));
            }
        }
    }
    let (Some(manifest), Some(component)) = (manifest, component) else {
        return Err(ApiError::bad_request(
            "send a multipart body with a `manifest` part (TOML) and a `component` part (.wasm)",
        ));
    };
    let (record, replaced) = app
        .plugins
        .install(&manifest, component, query.replace)
        .await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(record)))
}

async fn list(State(app): State<App>, Admin(_): Admin) -> ApiResult<Json<Value>> {
    let plugins = app.plugins.list().await?;
    Ok(Json(json!({ "items": plugins })))
}

async fn show(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRecord>> {
    Ok(Json(app.plugins.get(&name).await?))
}

async fn enable(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRecord>> {
    Ok(Json(app.plugins.set_enabled(&name, true).await?))
}

async fn disable(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRecord>> {
    Ok(Json(app.plugins.set_enabled(&name, false).await?))
}

/// `PUT /plugins/{name}/config`: the JSON body replaces the configuration calls get.
async fn set_config(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<PluginRecord>> {
    let Json(config) = body?;
    Ok(Json(app.plugins.set_config(&name, Some(&config)).await?))
}

/// `DELETE /plugins/{name}/config`: back to the manifest's default.
async fn reset_config(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRecord>> {
    Ok(Json(app.plugins.set_config(&name, None).await?))
}

async fn delete(
    State(app): State<App>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app.plugins.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
