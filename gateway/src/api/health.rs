//! Liveness, readiness and the build's version (no authentication: keep them on the pod
//! network; the deploy manifests restrict who reaches them) and the Prometheus endpoint: an
//! admin token on the main listener (its series name every cluster), none on the
//! `--metrics-listen` listener.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use std::sync::Arc;

use super::Admin;
use crate::app::App;
use crate::telemetry::Metrics;

/// The process is up and serving HTTP.
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers and start-up work is done; 503 otherwise.
pub async fn ready(State(app): State<App>) -> impl IntoResponse {
    let database = match tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let started = *app.ready.borrow();
    let status = if database.is_ok() && started {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "database": database.err().unwrap_or_else(|| "ok".to_owned()),
        "started": started,
    });
    (status, Json(body))
}

/// `GET /version`: `{"version", "commit", "wasmtime", "wit"}`, without a token, as an apiserver
/// answers its own `/version` (clients check what they talk to before they log in).
pub async fn version() -> impl IntoResponse {
    Json(crate::cli::version::BUILD)
}

/// `GET /metrics` on the main listener: admin only.
pub async fn metrics(State(app): State<App>, Admin(_): Admin) -> impl IntoResponse {
    exposition(&app.metrics)
}

/// `GET /metrics` on the `--metrics-listen` listener.
pub async fn open_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    exposition(&metrics)
}

fn exposition(metrics: &Metrics) -> impl IntoResponse + use<> {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}
