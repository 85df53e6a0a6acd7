//! `/api/v1/plugins`: install (multipart upload), list, show, enable/disable, configure and
//! delete wasm plugins. Admin only.

use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult};
use crate::app::App;
use crate::plugin::{Error, PluginRecord};

/// The largest component an upload may carry.
const MAX_COMPONENT: usize = 64 << 20;
/// The largest manifest an upload may carry.
const MAX_MANIFEST: usize = 64 << 10;
/// The largest upload body: both parts, plus room for the multipart framing.
const MAX_UPLOAD: usize = MAX_COMPONENT + MAX_MANIFEST + (64 << 10);

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
            Error::InvalidConfig { issues, .. } => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_config", message)
                    .with_details(json!({ "causes": issues }))
            }
            Error::NotFound(_) => Self::not_found(message),
            Error::Disabled(_) => Self::new(StatusCode::CONFLICT, "disabled", message),
            Error::FromDirectory(_) | Error::Builtin(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
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
///
/// Each part is read chunk by chunk into one buffer, refused (413) as soon as it passes its
/// limit; the component's bytes are then compiled and stored from that one buffer.
async fn upload(
    State(app): State<App>,
    Admin(_): Admin,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<PluginRecord>)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_UPLOAD as u64) {
        return Err(too_large(format!(
            "the upload is larger than the limit of {} MiB",
            MAX_UPLOAD >> 20
        )));
    }
    let mut manifest: Option<String> = None;
    let mut component: Option<Vec<u8>> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error("multipart body", &e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let (slot_taken, limit, what) = match name.as_str() {
            "manifest" => (manifest.is_some(), MAX_MANIFEST, "the manifest"),
            "component" => (component.is_some(), MAX_COMPONENT, "the component"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part `{other}`: send `manifest` and `component`"
                )));
            }
        };
        if slot_taken {
            return Err(ApiError::bad_request(format!(
                "part `{name}` appears twice: send one `manifest` and one `component`"
            )));
        }
        let bytes = read_limited(&mut field, limit).await.map_err(|e| match e {
            ReadError::TooLarge => too_large(format!(
                "{what} is larger than the limit of {}",
                size(limit)
            )),
            ReadError::Body(e) => multipart_error(&format!("part `{name}`"), &e),
        })?;
        if name == "manifest" {
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("the manifest is not UTF-8 text"))?;
            // Refused before a component is read when it comes first and is not valid.
            app.plugins.check_manifest(&text)?;
            manifest = Some(text);
        } else {
            component = Some(bytes);
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

/// Why a part could not be read.
#[derive(Debug)]
enum ReadError<E> {
    /// It passed the limit (the rest is not read).
    TooLarge,
    /// The body failed.
    Body(E),
}

/// Collects `stream` into one buffer, stopping with [`ReadError::TooLarge`] at the first chunk
/// that would take it past `limit`.
async fn read_limited<S, E>(stream: &mut S, limit: usize) -> Result<Vec<u8>, ReadError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Body)?;
        if chunk.len() > limit - data.len() {
            return Err(ReadError::TooLarge);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

fn too_large(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
}

/// A multipart failure: 413 when the body passed the route's limit, else 400.
fn multipart_error(what: &str, e: &MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(format!(
            "the upload is larger than the limit of {} MiB",
            MAX_UPLOAD >> 20
        ))
    } else {
        ApiError::bad_request(format!("{what}: {}", e.body_text()))
    }
}

/// `64 MiB`, `64 KiB`.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
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

/// `PUT /plugins/{name}/config`: the JSON body replaces the configuration calls get, once the
/// plugin's `config-check` export (if it has one) accepts it; else `400 invalid_config` with
/// `details.causes` and nothing stored.
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream;

    use super::*;

    #[tokio::test]
    async fn a_part_is_read_up_to_its_limit_and_no_further() {
        let pulled = AtomicUsize::new(0);
        let chunks = stream::iter((0..100).map(|_| Ok::<_, ()>(Bytes::from_static(&[7; 10]))))
            .inspect(|_| {
                pulled.fetch_add(1, Ordering::Relaxed);
            });
        let mut chunks = Box::pin(chunks);
        let result = read_limited(&mut chunks, 25).await;
        assert!(matches!(result, Err(ReadError::TooLarge)), "{result:?}");
        // The third chunk passes the limit: the other 97 are never pulled.
        assert_eq!(pulled.load(Ordering::Relaxed), 3);

        let mut exact = stream::iter([
            Ok::<_, ()>(Bytes::from_static(b"12345")),
            Ok(Bytes::from_static(b"678")),
        ]);
        assert_eq!(read_limited(&mut exact, 8).await.unwrap(), b"12345678");
        let mut failing = stream::iter([Ok(Bytes::from_static(b"1")), Err("broken")]);
        assert!(matches!(
            read_limited(&mut failing, 8).await,
            Err(ReadError::Body("broken"))
        ));
    }
}
