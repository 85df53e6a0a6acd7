//! `/ui/clusters`: the registry, each cluster's state on every replica, and its actions.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CsrfForm, FlashKind, Nav, Ui, UiError, action_button, csrf_field, empty, enc, items, live,
    page, redirect_with, state_badge, text, time_of,
};
use crate::app::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/clusters", get(list).post(create))
        .route("/clusters/{id}", get(show))
        .route("/clusters/{id}/edit", post(edit))
        .route("/clusters/{id}/connect", post(connect))
        .route("/clusters/{id}/disconnect", post(disconnect))
        .route("/clusters/{id}/delete", post(delete))
        .route("/clusters/{id}/kubeconfig", get(kubeconfig))
}

/// Clusters per page of `/ui/clusters`.
const PAGE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    q: Option<String>,
    /// The page after this cluster id (the API's `continue`).
    #[serde(rename = "continue")]
    after: Option<String>,
}

impl ListQuery {
    /// `&state=…&q=…` of the filters that are set, for the API call and the page links.
    fn filters(&self) -> String {
        let mut out = String::new();
        for (name, value) in [("state", &self.state), ("q", &self.q)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                out.push_str(&format!("&{name}={}", enc(value)));
            }
        }
        out
    }
}

fn labels(cluster: &Value) -> Markup {
    html! {
        @if let Some(labels) = cluster.get("labels").and_then(Value::as_object) {
            @for (key, value) in labels {
                span.label-chip { (key) "=" (value.as_str().unwrap_or_default()) }
            }
        }
    }
}

/// The per-replica states of a cluster, when the API reports them: `2/3 connected`.
fn replica_summary(cluster: &Value) -> Markup {
    let Some(replicas) = cluster.get("replicas").and_then(Value::as_array) else {
        return html! { span.muted { "—" } };
    };
    let live: Vec<&Value> = replicas
        .iter()
        .filter(|r| r.get("stale").and_then(Value::as_bool) != Some(true))
        .collect();
    let connected = live
        .iter()
        .filter(|r| text(r, "state") == "connected")
        .count();
    let class = if live.is_empty() || connected == live.len() {
        "good"
    } else if connected == 0 {
        "bad"
    } else {
        "busy"
    };
    html! {
        span class={ "state " (class) } title="replicas connected to this cluster" {
            (connected) "/" (live.len()) " connected"
        }
    }
}

async fn list(ui: Ui, Query(query): Query<ListQuery>) -> Result<Response, UiError> {
    // One page, filtered by the API: at thousands of clusters the whole list is megabytes.
    let filters = query.filters();
    let after = query
        .after
        .as_deref()
        .map(|a| format!("&continue={}", enc(a)))
        .unwrap_or_default();
    let clusters = ui
        .get(&format!("/clusters?limit={PAGE}{filters}{after}"))
        .await?;
    let shown = items(&clusters);
    let total = clusters.get("total").and_then(Value::as_u64).unwrap_or(0);
    let next = clusters.get("continue").and_then(Value::as_str);
    let body = html! {
        h1 { "Clusters" }
        form.filters method="get" action="/ui/clusters" {
            div {
                label for="q" { "Search" }
                input #q type="search" name="q" value=[query.q.as_deref()] placeholder="id, name, label, server…" data-filter="#clusters-table";
            }
            div {
                label for="state" { "State" }
                select #state name="state" {
                    option value="" { "any" }
                    @for state in ["connected", "connecting", "failed", "disconnected"] {
                        option value=(state) selected[query.state.as_deref() == Some(state)] { (state) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        (live("clusters-live", 5, html! {
            @if shown.is_empty() {
                (empty(if total == 0 && filters.is_empty() { "No cluster is registered yet." } else { "No cluster matches." }))
            } @else {
                table #clusters-table {
                    thead { tr {
                        th { "Cluster" } th { "State here" } th { "Replicas" } th { "Version" }
                        th { "Last error" } th { "Labels" } th { "Lease holder" }
                    } }
                    tbody {
                        @for cluster in shown {
                            tr {
                                td {
                                    a href={ "/ui/clusters/" (enc(text(cluster, "id"))) } { strong { (text(cluster, "id")) } }
                                    @if text(cluster, "name") != text(cluster, "id") {
                                        br; span.muted.small { (text(cluster, "name")) }
                                    }
                                }
                                td { (state_badge(text(cluster, "state"))) }
                                td { (replica_summary(cluster)) }
                                td { (text(cluster, "serverVersion")) }
                                td.error-text.small { (text(cluster, "lastError")) }
                                td { (labels(cluster)) }
                                td { code.small { (text(cluster, "leaseHolder")) } }
                            }
                        }
                    }
                }
                p.muted.small {
                    (shown.len()) " of " (total) " clusters"
                    @if query.after.is_some() {
                        " · " a href={ "/ui/clusters?" (filters.trim_start_matches('&')) } { "first page" }
                    }
                    @if let Some(next) = next {
                        " · " a href={ "/ui/clusters?continue=" (enc(next)) (filters) } { "next page" }
                    }
                }
            }
        }))
        @if ui.is_admin() {
            details.add.panel {
                summary { "Register a cluster" }
                form.stack method="post" action="/ui/clusters" {
                    (csrf_field(&ui))
                    div { label for="id" { "Id (lower-case letters, digits, '-')" } input #id type="text" name="id" required; }
                    div { label for="name" { "Display name (optional)" } input #name type="text" name="name"; }
                    div { label for="kubeconfig" { "Kubeconfig (its credentials are encrypted at rest)" } textarea #kubeconfig name="kubeconfig" required {} }
                    div { label for="context" { "Context (default: the current one)" } input #context type="text" name="context"; }
                    div { label for="namespace" { "Namespace for exported kubeconfigs (optional)" } input #namespace type="text" name="namespace"; }
                    div { label for="labels" { "Labels (key=value, comma separated)" } input #labels type="text" name="labels" placeholder="env=prod,team=payments"; }
                    div { label { input type="checkbox" name="connect" value="on" checked; " Connect now" } }
                    div { button.primary type="submit" { "Register" } }
                }
            }
        }
    };
    Ok(page(&ui, "Clusters", Nav::Clusters, body))
}

/// `key=value,key=value` into labels; an entry without `=` is an error.
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("label `{pair}` is not key=value"))?;
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(labels)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    id: String,
    name: Option<String>,
    kubeconfig: String,
    context: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: String,
    connect: Option<String>,
}

async fn create(ui: Ui, CsrfForm(form): CsrfForm<CreateForm>) -> Response {
    let labels = match parse_labels(&form.labels) {
        Ok(labels) => labels,
        Err(e) => return redirect_with("/ui/clusters", FlashKind::Error, &e),
    };
    let mut body = json!({
        "id": form.id.trim(),
        "kubeconfig": form.kubeconfig,
        "labels": labels,
    });
    for (field, value) in [
        ("name", form.name),
        ("context", form.context),
        ("namespace", form.namespace),
    ] {
        if let Some(value) = non_empty(value) {
            body[field] = json!(value.trim());
        }
    }
    let id = form.id.trim().to_owned();
    let created = match ui.send(Method::POST, "/clusters", Some(body)).await {
        Ok(created) => created,
        Err(e) => return redirect_with("/ui/clusters", FlashKind::Error, &e.message),
    };
    let mut message = format!("Cluster {id} registered.");
    if let Some(warnings) = created.get("warnings").and_then(Value::as_array) {
        for warning in warnings.iter().filter_map(Value::as_str) {
            message.push_str("\nWarning: ");
            message.push_str(warning);
        }
    }
    let to = format!("/ui/clusters/{}", enc(&id));
    if form.connect.is_some() {
        let path = format!("/clusters/{}/connect", enc(&id));
        if let Err(e) = ui.send(Method::POST, &path, None).await {
            message.push_str(&format!("\nConnecting failed: {}", e.message));
            return redirect_with(&to, FlashKind::Error, &message);
        }
        message.push_str(" Connecting.");
    }
    redirect_with(&to, FlashKind::Ok, &message)
}

async fn show(ui: Ui, Path(id): Path<String>) -> Result<Response, UiError> {
    let cluster = ui.get(&format!("/clusters/{}", enc(&id))).await?;
    let findings = if ui.is_admin() {
        Some(
            ui.get(&format!(
                "/findings?cluster={}&passed=false&limit=20",
                enc(&id)
            ))
            .await?,
        )
    } else {
        None
    };
    let base = format!("/ui/clusters/{}", enc(&id));
    let body = html! {
        p.muted { a href="/ui/clusters" { "Clusters" } " / " }
        h1 { (text(&cluster, "name")) " " span.muted.small { code { (id) } } }
        (live("cluster-live", 5, html! {
            div.grid2 {
                div.panel {
                    dl.facts {
                        dt { "State on this replica" } dd { (state_badge(text(&cluster, "state"))) }
                        dt { "Desired" } dd { (text(&cluster, "desiredState")) }
                        dt { "Server" } dd { code { (text(&cluster, "server")) } }
                        dt { "Version" } dd { (text(&cluster, "serverVersion")) }
                        dt { "Last error" } dd.error-text { (text(&cluster, "lastError")) }
                        dt { "Lease holder" } dd { code { (text(&cluster, "leaseHolder")) } }
                        dt { "Context" } dd { (text(&cluster, "context")) }
                        dt { "Namespace" } dd { (text(&cluster, "namespace")) }
                        dt { "Labels" } dd { (labels(&cluster)) }
                        dt { "Registered" } dd { (time_of(&cluster["createdAt"])) }
                        dt { "Changed" } dd { (time_of(&cluster["updatedAt"])) }
                    }
                }
                div.panel {
                    h2 { "On every replica" }
                    (replica_table(&cluster))
                }
            }
        }))
        div.actions {
            @if ui.secret.is_some() {
                a href={ (base) "/kubeconfig" } { button type="button" { "Download kubeconfig" } }
            } @else {
                span.muted.small { "kubectl: run " code { "portico login --sso" } " for a kubeconfig that signs you in." }
            }
            @if ui.is_admin() {
                (action_button(&ui, &format!("{base}/connect"), "Connect", "", None))
                (action_button(&ui, &format!("{base}/disconnect"), "Disconnect", "", Some("Disconnect this cluster on every replica?")))
                (action_button(&ui, &format!("{base}/delete"), "Delete", "danger", Some("Delete this cluster and its stored credentials?")))
            }
        }
        @if ui.is_admin() {
            details.add.panel {
                summary { "Edit" }
                form.stack method="post" action={ (base) "/edit" } {
                    (csrf_field(&ui))
                    div { label for="name" { "Display name" } input #name type="text" name="name" value=(text(&cluster, "name")); }
                    div { label for="labels" { "Labels (key=value, comma separated)" }
                        input #labels type="text" name="labels" value=(label_text(&cluster)); }
                    div { label for="namespace" { "Namespace for exported kubeconfigs (empty: none)" } input #namespace type="text" name="namespace" value=(text(&cluster, "namespace")); }
                    div { label for="kubeconfig" { "New kubeconfig (empty: keep the stored one)" } textarea #kubeconfig name="kubeconfig" {} }
                    div { label for="context" { "Context of the new kubeconfig" } input #context type="text" name="context"; }
                    div { button.primary type="submit" { "Save" } }
                }
            }
        }
        @if let Some(findings) = &findings {
            h2 { "Failing findings" }
            @if items(findings).is_empty() {
                (empty("No failing findings for this cluster."))
            } @else {
                table {
                    thead { tr { th { "When" } th { "Check" } th { "Severity" } th { "Object" } th { "Message" } } }
                    tbody {
                        @for finding in items(findings) {
                            tr {
                                td { (time_of(&finding["createdAt"])) }
                                td { code { (text(finding, "checkId")) } }
                                td { (text(finding, "severity")) }
                                td { (object_ref(&finding["target"])) }
                                td { (text(finding, "message")) }
                            }
                        }
                    }
                }
                p { a href={ "/ui/inspections/findings?cluster=" (enc(&id)) } { "All findings of this cluster" } }
            }
        }
    };
    Ok(page(&ui, &id, Nav::Clusters, body))
}

fn label_text(cluster: &Value) -> String {
    cluster
        .get("labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `kind namespace/name` of a finding's object.
pub(crate) fn object_ref(target: &Value) -> Markup {
    if target.is_null() {
        return html! {};
    }
    let namespace = text(target, "namespace");
    html! {
        span.small {
            (text(target, "kind")) " "
            @if !namespace.is_empty() { (namespace) "/" }
            (text(target, "name"))
        }
    }
}

fn replica_table(cluster: &Value) -> Markup {
    let Some(replicas) = cluster.get("replicas").and_then(Value::as_array) else {
        return empty("This gateway does not report other replicas' states.");
    };
    html! {
        @if replicas.is_empty() {
            (empty("No replica is connected to this cluster."))
        } @else {
            table {
                thead { tr { th { "Replica" } th { "State" } th { "Error" } th { "Since" } } }
                tbody {
                    @for replica in replicas {
                        tr {
                            td { code { (text(replica, "instance")) } }
                            td {
                                (state_badge(text(replica, "state")))
                                @if replica.get("stale").and_then(Value::as_bool) == Some(true) {
                                    " " span.badge title="this replica stopped reporting" { "stale" }
                                }
                            }
                            td.error-text.small { (text(replica, "error")) }
                            td { (time_of(&replica["since"])) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditForm {
    name: Option<String>,
    #[serde(default)]
    labels: String,
    namespace: Option<String>,
    kubeconfig: Option<String>,
    context: Option<String>,
}

async fn edit(ui: Ui, Path(id): Path<String>, CsrfForm(form): CsrfForm<EditForm>) -> Response {
    let to = format!("/ui/clusters/{}", enc(&id));
    let labels = match parse_labels(&form.labels) {
        Ok(labels) => labels,
        Err(e) => return redirect_with(&to, FlashKind::Error, &e),
    };
    let mut body = json!({ "labels": labels });
    if let Some(name) = non_empty(form.name) {
        body["name"] = json!(name.trim());
    }
    // An empty namespace clears it (the API's `""`).
    body["namespace"] = json!(form.namespace.unwrap_or_default().trim());
    if let Some(kubeconfig) = non_empty(form.kubeconfig) {
        body["kubeconfig"] = json!(kubeconfig);
        if let Some(context) = non_empty(form.context) {
            body["context"] = json!(context.trim());
        }
    }
    match ui
        .send(Method::PUT, &format!("/clusters/{}", enc(&id)), Some(body))
        .await
    {
        Ok(_) => redirect_with(&to, FlashKind::Ok, "Saved."),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

type EmptyForm = CsrfForm<BTreeMap<String, String>>;

async fn action(ui: &Ui, id: &str, verb: &str, done: &str) -> Response {
    let to = format!("/ui/clusters/{}", enc(id));
    match ui
        .send(Method::POST, &format!("/clusters/{}/{verb}", enc(id)), None)
        .await
    {
        Ok(_) => redirect_with(&to, FlashKind::Ok, done),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

async fn connect(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    action(&ui, &id, "connect", "Connecting on every replica.").await
}

async fn disconnect(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    action(&ui, &id, "disconnect", "Disconnected on every replica.").await
}

async fn delete(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    match ui
        .send(Method::DELETE, &format!("/clusters/{}", enc(&id)), None)
        .await
    {
        Ok(_) => redirect_with(
            "/ui/clusters",
            FlashKind::Ok,
            &format!("Cluster {id} deleted."),
        ),
        Err(e) => redirect_with(
            &format!("/ui/clusters/{}", enc(&id)),
            FlashKind::Error,
            &e.message,
        ),
    }
}

/// A kubeconfig for the signed-in user: the API's export with the session's own token.
async fn kubeconfig(ui: Ui, Path(id): Path<String>) -> Result<Response, UiError> {
    if ui.secret.is_none() {
        // A person's session holds no credential that a kubeconfig could carry.
        return Err(UiError::new(
            StatusCode::BAD_REQUEST,
            "Signed in through single sign-on, you get your kubeconfig from `portico login \
             --sso`: its credential renews itself.",
        ));
    }
    let response = ui
        .get_raw_with_credential(&format!("/clusters/{}/kubeconfig", enc(&id)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let file = format!("attachment; filename=\"portico-{id}.kubeconfig\"");
    if let Ok(value) = HeaderValue::from_str(&file) {
        parts.headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(Response::from_parts(parts, body).into_response())
}
