//! `/ui/webhooks`: webhooks fired on cluster connect and disconnect, their settings (the
//! secret is write-only) and their delivery log. Admin only, as the API.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CsrfForm, FlashKind, Nav, Ui, UiError, action_button, csrf_field, empty, enc, items, live,
    page, redirect_with, state_badge, text, time_of,
};
use crate::app::App;

/// Deliveries shown on a webhook's page (the API keeps the newest 200).
const DELIVERIES: usize = 100;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show))
        .route("/webhooks/{id}/edit", post(edit))
        .route("/webhooks/{id}/delete", post(delete))
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn clusters_of(webhook: &Value) -> Markup {
    let clusters = strings(webhook, "clusters");
    html! {
        @if clusters.is_empty() { span.muted { "every cluster" } }
        @for cluster in &clusters { span.label-chip { (cluster) } }
    }
}

fn enabled_badge(webhook: &Value) -> Markup {
    if webhook.get("enabled").and_then(Value::as_bool) == Some(true) {
        html! { span.state.good { "enabled" } }
    } else {
        html! { span.state.idle { "disabled" } }
    }
}

async fn list(ui: Ui) -> Result<Response, UiError> {
    let webhooks = ui.get("/webhooks").await?;
    let body = html! {
        h1 { "Webhooks" }
        p.muted { "Signed POSTs (X-Portico-Signature, HMAC-SHA256 of the body) on cluster connect and disconnect." }
        @if items(&webhooks).is_empty() {
            (empty("No webhook yet."))
        } @else {
            table #webhooks-table {
                thead { tr {
                    th { "Name" } th { "URL" } th { "Events" } th { "Scope" } th { "Clusters" }
                    th { "State" } th { "Changed" }
                } }
                tbody {
                    @for webhook in items(&webhooks) {
                        tr {
                            td { a href={ "/ui/webhooks/" (enc(text(webhook, "id"))) } { strong { (text(webhook, "name")) } } }
                            td { code.small { (text(webhook, "url")) } }
                            td { (strings(webhook, "events").join(", ")) }
                            td { (text(webhook, "scope")) }
                            td { (clusters_of(webhook)) }
                            td { (enabled_badge(webhook)) }
                            td { (time_of(&webhook["updatedAt"])) }
                        }
                    }
                }
            }
        }
        details.add.panel {
            summary { "Add a webhook" }
            (webhook_form(&ui, "/ui/webhooks", None))
        }
    };
    Ok(page(&ui, "Webhooks", Nav::Webhooks, body))
}

/// The create form (`webhook` `None`) or the edit form of `webhook`.
fn webhook_form(ui: &Ui, action: &str, webhook: Option<&Value>) -> Markup {
    let events = webhook.map_or_else(
        || vec!["connected".to_owned(), "disconnected".to_owned()],
        |w| strings(w, "events"),
    );
    let scope = webhook.map_or("cluster", |w| text(w, "scope"));
    let enabled = webhook.is_none_or(|w| w.get("enabled").and_then(Value::as_bool) == Some(true));
    html! {
        form.stack method="post" action=(action) {
            (csrf_field(ui))
            div { label for="name" { "Name" } input #name type="text" name="name" required value=[webhook.map(|w| text(w, "name"))]; }
            div { label for="url" { "URL (http or https)" } input #url type="url" name="url" required value=[webhook.map(|w| text(w, "url"))]; }
            div {
                @if webhook.is_some() {
                    label for="secret" { "New signing secret (empty: keep the stored one; it is never shown)" }
                    input #secret type="password" name="secret" autocomplete="new-password";
                } @else {
                    label for="secret" { "Signing secret (stored sealed, never shown again)" }
                    input #secret type="password" name="secret" required autocomplete="new-password";
                }
            }
            div {
                label { "Events" }
                @for event in ["connected", "disconnected"] {
                    label {
                        input type="checkbox" name={ "event_" (event) } value="on" checked[events.iter().any(|e| e == event)];
                        " " (event)
                    }
                }
            }
            div { label for="scope" { "Scope" }
                select #scope name="scope" {
                    option value="cluster" selected[scope == "cluster"] { "cluster: once per change, from the replica that made it" }
                    option value="replica" selected[scope == "replica"] { "replica: every replica's own connect and disconnect" }
                }
            }
            div { label for="clusters" { "Only these clusters (comma separated; empty: every cluster)" }
                input #clusters type="text" name="clusters" value=(webhook.map(|w| strings(w, "clusters").join(",")).unwrap_or_default()); }
            div { label { input type="checkbox" name="enabled" value="on" checked[enabled]; " Enabled" } }
            div { button.primary type="submit" { @if webhook.is_some() { "Save" } @else { "Add" } } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WebhookForm {
    name: String,
    url: String,
    #[serde(default)]
    secret: String,
    event_connected: Option<String>,
    event_disconnected: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    clusters: String,
    enabled: Option<String>,
}

impl WebhookForm {
    /// The API body; the secret only when one was typed (an edit keeps the stored one).
    fn body(&self) -> Value {
        let mut events = Vec::new();
        if self.event_connected.is_some() {
            events.push("connected");
        }
        if self.event_disconnected.is_some() {
            events.push("disconnected");
        }
        let clusters: Vec<&str> = self
            .clusters
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let mut body = json!({
            "name": self.name.trim(),
            "url": self.url.trim(),
            // None ticked: the API refuses an empty list and says why.
            "events": events,
            "clusters": clusters,
            "enabled": self.enabled.is_some(),
        });
        if !self.scope.is_empty() {
            body["scope"] = json!(self.scope);
        }
        if !self.secret.is_empty() {
            body["secret"] = json!(self.secret);
        }
        body
    }
}

async fn create(ui: Ui, CsrfForm(form): CsrfForm<WebhookForm>) -> Response {
    let mut body = form.body();
    if body.get("secret").is_none() {
        // The API says what is missing.
        body["secret"] = json!("");
    }
    match ui.send(Method::POST, "/webhooks", Some(body)).await {
        Ok(created) => redirect_with(
            &format!("/ui/webhooks/{}", enc(text(&created, "id"))),
            FlashKind::Ok,
            &format!("Webhook {} added.", text(&created, "name")),
        ),
        Err(e) => redirect_with("/ui/webhooks", FlashKind::Error, &e.message),
    }
}

async fn show(ui: Ui, Path(id): Path<String>) -> Result<Response, UiError> {
    let webhook = ui.get(&format!("/webhooks/{}", enc(&id))).await?;
    let deliveries = ui
        .get(&format!(
            "/webhooks/{}/deliveries?limit={DELIVERIES}",
            enc(&id)
        ))
        .await?;
    let base = format!("/ui/webhooks/{}", enc(&id));
    let body = html! {
        p.muted { a href="/ui/webhooks" { "Webhooks" } " / " }
        h1 { (text(&webhook, "name")) " " (enabled_badge(&webhook)) }
        div.panel {
            dl.facts {
                dt { "URL" } dd { code { (text(&webhook, "url")) } }
                dt { "Events" } dd { (strings(&webhook, "events").join(", ")) }
                dt { "Scope" } dd { (text(&webhook, "scope")) }
                dt { "Clusters" } dd { (clusters_of(&webhook)) }
                dt { "Created" } dd { (time_of(&webhook["createdAt"])) }
                dt { "Changed" } dd { (time_of(&webhook["updatedAt"])) }
            }
        }
        div.actions {
            (action_button(&ui, &format!("{base}/delete"), "Delete", "danger", Some("Delete this webhook and its delivery log?")))
        }
        details.add.panel {
            summary { "Edit" }
            (webhook_form(&ui, &format!("{base}/edit"), Some(&webhook)))
        }
        h2 { "Deliveries" }
        (live("deliveries-live", 5, html! {
            @if items(&deliveries).is_empty() {
                (empty("Nothing delivered yet."))
            } @else {
                table #deliveries-table {
                    thead { tr {
                        th { "When" } th { "Event" } th { "Cluster" } th { "Replica" } th { "State" }
                        th { "Attempts" } th { "Last answer" } th { "Finished" }
                    } }
                    tbody {
                        @for delivery in items(&deliveries) {
                            tr {
                                td { (time_of(&delivery["createdAt"])) }
                                td { (text(delivery, "event")) }
                                td { a href={ "/ui/clusters/" (enc(text(delivery, "clusterId"))) } { (text(delivery, "clusterId")) } }
                                td { code.small { (text(delivery, "instanceId")) } }
                                td { (state_badge(text(delivery, "state"))) }
                                td { (delivery["attempts"].as_u64().unwrap_or(0)) }
                                td.small {
                                    @if let Some(status) = delivery["lastStatus"].as_u64() { (status) " " }
                                    span.error-text { (text(delivery, "lastError")) }
                                }
                                td { (time_of(&delivery["finishedAt"])) }
                            }
                        }
                    }
                }
            }
        }))
    };
    Ok(page(&ui, text(&webhook, "name"), Nav::Webhooks, body))
}

async fn edit(ui: Ui, Path(id): Path<String>, CsrfForm(form): CsrfForm<WebhookForm>) -> Response {
    let to = format!("/ui/webhooks/{}", enc(&id));
    match ui
        .send(
            Method::PUT,
            &format!("/webhooks/{}", enc(&id)),
            Some(form.body()),
        )
        .await
    {
        Ok(_) => redirect_with(&to, FlashKind::Ok, "Saved."),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

async fn delete(ui: Ui, Path(id): Path<String>, _: CsrfForm<BTreeMap<String, String>>) -> Response {
    match ui
        .send(Method::DELETE, &format!("/webhooks/{}", enc(&id)), None)
        .await
    {
        Ok(_) => redirect_with("/ui/webhooks", FlashKind::Ok, "Webhook deleted."),
        Err(e) => redirect_with(
            &format!("/ui/webhooks/{}", enc(&id)),
            FlashKind::Error,
            &e.message,
        ),
    }
}
