//! `/ui/helm`: Helm repositories (add, edit, delete, sync now), the schedule of the repo-sync
//! jobs that sync them, the versions new since the last sync, and a searchable chart browser
//! (`/ui/helm/charts`). Admin only, as the API.
//!
//! The API syncs repositories only through repo-sync jobs (`portico helm repo sync` does the
//! same): "sync now" runs every repo-sync job once.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query};
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

/// New versions listed on the repositories page (the chart browser shows them all).
const NEW_SHOWN: usize = 20;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/helm", get(repositories).post(create))
        .route("/helm/charts", get(charts))
        .route("/helm/sync", post(sync))
        .route("/helm/jobs/{id}/schedule", post(schedule))
        .route("/helm/repositories/{id}/edit", post(edit))
        .route("/helm/repositories/{id}/delete", post(delete))
}

fn sync_status(repository: &Value) -> Markup {
    match text(repository, "lastSyncStatus") {
        "" => html! { span.muted { "never synced" } },
        "unchanged" => {
            html! { span.state.good title="the index did not change (ETag)" { "unchanged" } }
        }
        status => state_badge(status),
    }
}

/// The repo-sync jobs among all jobs.
fn sync_jobs(jobs: &Value) -> Vec<&Value> {
    items(jobs)
        .iter()
        .filter(|j| text(j, "kind") == "repo-sync")
        .collect()
}

fn chart_rows(versions: &[&Value]) -> Markup {
    html! {
        table #charts-table {
            thead { tr {
                th { "Chart" } th { "Version" } th { "App version" } th { "Repository" }
                th { "Description" } th { "First seen" }
            } }
            tbody {
                @for chart in versions {
                    tr {
                        td {
                            strong { (text(chart, "name")) }
                            @if chart["deprecated"].as_bool() == Some(true) { " " span.badge { "deprecated" } }
                            @for keyword in chart["keywords"].as_array().map_or(&[][..], Vec::as_slice) {
                                " " span.label-chip { (keyword.as_str().unwrap_or_default()) }
                            }
                        }
                        td {
                            code { (text(chart, "version")) }
                            @if chart["new"].as_bool() == Some(true) { " " span.state.busy title="first found by the repository's latest sync" { "new" } }
                        }
                        td { (text(chart, "appVersion")) }
                        td { (text(chart, "repository")) }
                        td.small { (text(chart, "description")) }
                        td { (time_of(&chart["firstSeenAt"])) }
                    }
                }
            }
        }
    }
}

async fn repositories(ui: Ui) -> Result<Response, UiError> {
    let repositories = ui.get("/helm/repositories").await?;
    let jobs = ui.get("/jobs").await?;
    let new = ui.get("/helm/charts?new=true&versions=all").await?;
    let jobs = sync_jobs(&jobs);
    let new_versions: Vec<&Value> = items(&new).iter().take(NEW_SHOWN).collect();
    let body = html! {
        h1 { "Helm" }
        p { a href="/ui/helm/charts" { "Browse charts" } " · " a href="/ui/helm/charts?new=true&versions=all" { "New since the last sync" } }
        (live("helm-live", 5, html! {
            h2 { "Repositories" }
            @if items(&repositories).is_empty() {
                (empty("No repository yet."))
            } @else {
                table #repositories-table {
                    thead { tr {
                        th { "Name" } th { "URL" } th { "Credentials" } th { "Last sync" } th { "Status" } th { "Error" }
                    } }
                    tbody {
                        @for repository in items(&repositories) {
                            tr {
                                td { a href={ "/ui/helm/charts?repository=" (enc(text(repository, "name"))) } { strong { (text(repository, "name")) } } }
                                td { code.small { (text(repository, "url")) } }
                                td {
                                    @match text(repository, "authType") { "" => { span.muted { "none" } } kind => { (kind) } }
                                    @if repository["caPem"].is_string() { " " span.badge { "own CA" } }
                                }
                                td { (time_of(&repository["lastSyncAt"])) }
                                td { (sync_status(repository)) }
                                td.error-text.small { (text(repository, "lastError")) }
                            }
                        }
                    }
                }
            }
            h2 { "New since the last sync" }
            @if new_versions.is_empty() {
                (empty("No new version in the latest syncs."))
            } @else {
                (chart_rows(&new_versions))
                @if items(&new).len() > NEW_SHOWN {
                    p { a href="/ui/helm/charts?new=true&versions=all" { "All " (items(&new).len()) " new versions" } }
                }
            }
        }))
        h2 { "Syncing" }
        @if jobs.is_empty() {
            (empty("No repo-sync job: the built-in `helm-repo-sync` job is created when the gateway starts with the helm-index plugin."))
        } @else {
            div.actions {
                (action_button(&ui, "/ui/helm/sync", "Sync now", "primary", None))
            }
            table {
                thead { tr { th { "Job" } th { "Schedule (cron)" } th { "State" } } }
                tbody {
                    @for job in &jobs {
                        tr {
                            td { code { (text(job, "name")) } }
                            td {
                                form.inline method="post" action={ "/ui/helm/jobs/" (enc(text(job, "id"))) "/schedule" } {
                                    (csrf_field(&ui))
                                    input type="text" name="cron" value=(text(job, "cron")) aria-label="cron schedule";
                                    " " button type="submit" { "Save schedule" }
                                }
                            }
                            td {
                                @if job["enabled"].as_bool() == Some(true) { span.state.good { "enabled" } }
                                @else { span.state.idle { "disabled" } }
                            }
                        }
                    }
                }
            }
        }
        details.add.panel {
            summary { "Add a repository" }
            form.stack method="post" action="/ui/helm" {
                (csrf_field(&ui))
                (repository_fields(None))
                div { button.primary type="submit" { "Add" } }
            }
        }
        @for repository in items(&repositories) {
            details.add.panel {
                summary { "Edit " (text(repository, "name")) }
                form.stack method="post" action={ "/ui/helm/repositories/" (enc(text(repository, "id"))) "/edit" } {
                    (csrf_field(&ui))
                    (repository_fields(Some(repository)))
                    div { button.primary type="submit" { "Save" } }
                }
                div.actions {
                    (action_button(&ui, &format!("/ui/helm/repositories/{}/delete", enc(text(repository, "id"))), "Delete", "danger",
                        Some("Delete this repository and its charts?")))
                }
            }
        }
    };
    Ok(page(&ui, "Helm", Nav::Helm, body))
}

/// The fields of the add form (`None`) or of an edit form.
fn repository_fields(repository: Option<&Value>) -> Markup {
    let editing = repository.is_some();
    html! {
        div { label { "Name (lower-case letters, digits, '-', '.')" } input type="text" name="name" required value=[repository.map(|r| text(r, "name"))]; }
        div { label { "URL (the folder of index.yaml)" } input type="url" name="url" required value=[repository.map(|r| text(r, "url"))]; }
        div { label { "Credentials (write-only, stored sealed)" }
            select name="auth" {
                @if editing { option value="keep" selected { "keep the stored ones" } }
                option value="none" { "none" }
                option value="basic" { "basic: username and password" }
                option value="bearer" { "bearer token" }
            }
        }
        div { label { "Username" } input type="text" name="username" autocomplete="off"; }
        div { label { "Password or bearer token" } input type="password" name="password" autocomplete="new-password"; }
        div { label { @if editing { "CA certificates (PEM; empty: keep)" } @else { "CA certificates (PEM, optional)" } } textarea.short name="ca_pem" {} }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RepositoryForm {
    name: String,
    url: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    ca_pem: String,
}

impl RepositoryForm {
    /// The API body; `auth` "keep" (edits) leaves the credentials out.
    fn body(&self) -> Result<Value, String> {
        let mut body = json!({ "name": self.name.trim(), "url": self.url.trim() });
        match self.auth.as_str() {
            "keep" => {}
            "" | "none" => body["auth"] = Value::Null,
            "basic" => {
                if self.username.is_empty() || self.password.is_empty() {
                    return Err("basic credentials need a username and a password".to_owned());
                }
                body["auth"] =
                    json!({"basic": {"username": self.username, "password": self.password}});
            }
            "bearer" => {
                if self.password.is_empty() {
                    return Err("a bearer token is needed".to_owned());
                }
                body["auth"] = json!({"bearer": {"token": self.password}});
            }
            other => return Err(format!("unknown credentials kind `{other}`")),
        }
        if !self.ca_pem.trim().is_empty() {
            body["caPem"] = json!(self.ca_pem);
        }
        Ok(body)
    }
}

async fn create(ui: Ui, CsrfForm(form): CsrfForm<RepositoryForm>) -> Response {
    let mut body = match form.body() {
        Ok(body) => body,
        Err(e) => return redirect_with("/ui/helm", FlashKind::Error, &e),
    };
    if body["auth"].is_null()
        && let Some(fields) = body.as_object_mut()
    {
        fields.remove("auth");
    }
    match ui
        .send(Method::POST, "/helm/repositories", Some(body))
        .await
    {
        Ok(created) => redirect_with(
            "/ui/helm",
            FlashKind::Ok,
            &format!(
                "Repository {} added; it is read at the next sync (or sync now).",
                text(&created, "name")
            ),
        ),
        Err(e) => redirect_with("/ui/helm", FlashKind::Error, &e.message),
    }
}

async fn edit(
    ui: Ui,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RepositoryForm>,
) -> Response {
    let body = match form.body() {
        Ok(body) => body,
        Err(e) => return redirect_with("/ui/helm", FlashKind::Error, &e),
    };
    match ui
        .send(
            Method::PUT,
            &format!("/helm/repositories/{}", enc(&id)),
            Some(body),
        )
        .await
    {
        Ok(saved) => redirect_with(
            "/ui/helm",
            FlashKind::Ok,
            &format!("Repository {} saved.", text(&saved, "name")),
        ),
        Err(e) => redirect_with("/ui/helm", FlashKind::Error, &e.message),
    }
}

type EmptyForm = CsrfForm<BTreeMap<String, String>>;

async fn delete(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    match ui
        .send(
            Method::DELETE,
            &format!("/helm/repositories/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(_) => redirect_with("/ui/helm", FlashKind::Ok, "Repository deleted."),
        Err(e) => redirect_with("/ui/helm", FlashKind::Error, &e.message),
    }
}

/// Runs every repo-sync job now (as `portico helm repo sync --no-wait`).
async fn sync(ui: Ui, _: EmptyForm) -> Response {
    let jobs = match ui.get("/jobs").await {
        Ok(jobs) => jobs,
        Err(e) => return redirect_with("/ui/helm", FlashKind::Error, &e.message),
    };
    let jobs = sync_jobs(&jobs);
    if jobs.is_empty() {
        return redirect_with(
            "/ui/helm",
            FlashKind::Error,
            "There is no repo-sync job to run.",
        );
    }
    let mut started = Vec::new();
    for job in jobs {
        let path = format!("/jobs/{}/run", enc(text(job, "id")));
        match ui.send(Method::POST, &path, None).await {
            Ok(run) => started.push(format!("run {} of {}", text(&run, "id"), text(job, "name"))),
            Err(e) => {
                return redirect_with(
                    "/ui/helm",
                    FlashKind::Error,
                    &format!("Job {}: {}", text(job, "name"), e.message),
                );
            }
        }
    }
    redirect_with(
        "/ui/helm",
        FlashKind::Ok,
        &format!(
            "Sync started ({}); this page shows the result.",
            started.join(", ")
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScheduleForm {
    cron: String,
}

async fn schedule(
    ui: Ui,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ScheduleForm>,
) -> Response {
    match ui
        .send(
            Method::PUT,
            &format!("/jobs/{}", enc(&id)),
            Some(json!({ "cron": form.cron.trim() })),
        )
        .await
    {
        Ok(_) => redirect_with("/ui/helm", FlashKind::Ok, "Schedule saved."),
        Err(e) => redirect_with("/ui/helm", FlashKind::Error, &e.message),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChartQuery {
    q: Option<String>,
    repository: Option<String>,
    versions: Option<String>,
    new: Option<String>,
}

async fn charts(ui: Ui, Query(query): Query<ChartQuery>) -> Result<Response, UiError> {
    let repository = query
        .repository
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let all = query.versions.as_deref() == Some("all");
    let new = query
        .new
        .as_deref()
        .is_some_and(|n| n == "true" || n == "on");
    let mut path = "/helm/charts?".to_owned();
    if let Some(repository) = repository {
        path.push_str(&format!("repository={}&", enc(repository)));
    }
    if all {
        path.push_str("versions=all&");
    }
    if new {
        path.push_str("new=true&");
    }
    let path = path.trim_end_matches(['&', '?']);
    let charts = ui.get(path).await?;
    let repositories = ui.get("/helm/repositories").await?;
    let needle = query.q.as_deref().unwrap_or_default().trim().to_lowercase();
    let matches = |chart: &Value| {
        let hit = |v: &Value| {
            v.as_str()
                .is_some_and(|s| s.to_lowercase().contains(&needle))
        };
        needle.is_empty()
            || hit(&chart["name"])
            || hit(&chart["description"])
            || chart["keywords"]
                .as_array()
                .is_some_and(|k| k.iter().any(hit))
    };
    let shown: Vec<&Value> = items(&charts).iter().filter(|c| matches(c)).collect();
    let body = html! {
        p.muted { a href="/ui/helm" { "Helm" } " / " }
        h1 { "Charts" }
        form.filters method="get" action="/ui/helm/charts" {
            div {
                label for="q" { "Search" }
                input #q type="search" name="q" value=[query.q.as_deref()] placeholder="name, description, keyword";
            }
            div {
                label for="repository" { "Repository" }
                select #repository name="repository" {
                    option value="" { "any" }
                    @for r in items(&repositories) {
                        option value=(text(r, "name")) selected[repository == Some(text(r, "name"))] { (text(r, "name")) }
                    }
                }
            }
            div { label { input type="checkbox" name="versions" value="all" checked[all]; " every version" } }
            div { label { input type="checkbox" name="new" value="true" checked[new]; " only new since the last sync" } }
            button type="submit" { "Search" }
        }
        @if shown.is_empty() {
            (empty(if items(&charts).is_empty() { "No chart: add a repository and sync it." } else { "No chart matches." }))
        } @else {
            (chart_rows(&shown))
            p.muted.small { (shown.len()) " of " (items(&charts).len()) @if all { " versions" } @else { " charts (newest version of each)" } }
        }
    };
    Ok(page(&ui, "Charts", Nav::Helm, body))
}
