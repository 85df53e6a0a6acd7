//! `/ui/inspections`: scheduled jobs (create, edit, enable, run now, delete), their runs with
//! live progress, one run's per-cluster results and findings, and the findings of every run,
//! filterable, with a chart of failed findings over time per cluster. Admin only, as the API.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::clusters::object_ref;
use super::{
    CsrfForm, FlashKind, Nav, Ui, UiError, action_button, csrf_field, empty, enc, items, live,
    page, redirect_with, state_badge, text, time_of,
};
use crate::app::App;

mod chart;

/// Runs the jobs page reads to find each job's last run and to list the recent ones.
const RUNS_READ: usize = 200;
/// Recent runs the jobs page lists.
const RUNS_SHOWN: usize = 20;
/// Findings a page lists at most (the filters narrow them).
const FINDINGS_SHOWN: usize = 500;
/// Seconds between refreshes of live regions while a run is in progress.
const REFRESH_SECONDS: u32 = 3;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/inspections", get(list).post(create))
        .route("/inspections/jobs/{id}", get(show_job))
        .route("/inspections/jobs/{id}/edit", post(edit))
        .route("/inspections/jobs/{id}/enable", post(enable))
        .route("/inspections/jobs/{id}/disable", post(disable))
        .route("/inspections/jobs/{id}/delete", post(delete))
        .route("/inspections/jobs/{id}/run", post(run_now))
        .route("/inspections/runs/{id}", get(show_run))
        .route("/inspections/findings", get(findings))
}

fn bool_of(value: &Value, field: &str) -> bool {
    value.get(field).and_then(Value::as_bool).unwrap_or(false)
}

fn int_of(value: &Value, field: &str) -> i64 {
    value.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// A job's targets in words.
fn targets_text(targets: &Value) -> String {
    match targets {
        Value::String(all) if all == "all" => "all clusters".to_owned(),
        Value::Object(map) => {
            if let Some(ids) = map.get("clusters").and_then(Value::as_array) {
                ids.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            } else if let Some(selector) = map.get("selector").and_then(Value::as_str) {
                format!("labels {selector}")
            } else {
                targets.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// `(kind, value)` of a job's targets for the edit form.
fn targets_fields(targets: &Value) -> (&'static str, String) {
    match targets {
        Value::Object(map) => {
            if let Some(ids) = map.get("clusters").and_then(Value::as_array) {
                let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
                ("clusters", ids.join(", "))
            } else if let Some(selector) = map.get("selector").and_then(Value::as_str) {
                ("selector", selector.to_owned())
            } else {
                ("all", String::new())
            }
        }
        _ => ("all", String::new()),
    }
}

fn list_text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The newest run of each job among `runs` (newest first, as the API lists them).
fn last_runs(runs: &Value) -> HashMap<&str, &Value> {
    let mut last = HashMap::new();
    for run in items(runs) {
        last.entry(text(run, "jobId")).or_insert(run);
    }
    last
}

/// Whether any of `runs` is still running (its region then refreshes itself).
fn any_running<'a>(mut runs: impl Iterator<Item = &'a Value>) -> bool {
    runs.any(|r| text(r, "status") == "running")
}

/// A region with `id` that refreshes itself while `refresh`, and stops once it does not.
fn region(id: &str, refresh: bool, body: Markup) -> Markup {
    if refresh {
        live(id, REFRESH_SECONDS, body)
    } else {
        html! { div id=(id) { (body) } }
    }
}

async fn list(ui: Ui) -> Result<Response, UiError> {
    let jobs = ui.get("/jobs").await?;
    let runs = ui.get(&format!("/runs?limit={RUNS_READ}")).await?;
    let plugins = ui.get("/plugins").await?;
    let webhooks = ui.get("/webhooks").await?;
    let last = last_runs(&runs);
    let names: HashMap<&str, &str> = items(&jobs)
        .iter()
        .map(|j| (text(j, "id"), text(j, "name")))
        .collect();
    let recent: Vec<&Value> = items(&runs).iter().take(RUNS_SHOWN).collect();
    let body = html! {
        h1 { "Inspections" }
        p { a href="/ui/inspections/findings" { "Findings and the chart of failed findings per cluster" } }
        h2 { "Jobs" }
        (region("jobs-live", any_running(last.values().copied()), html! {
            @if items(&jobs).is_empty() {
                (empty("No job yet. Create one below: an inspection names inspector plugins, a schedule and its clusters."))
            } @else {
                table #jobs-table {
                    thead { tr {
                        th { "Job" } th { "Kind" } th { "Plugins" } th { "Schedule" } th { "Targets" }
                        th { "Enabled" } th { "Last run" } th { "Actions" }
                    } }
                    tbody {
                        @for job in items(&jobs) {
                            @let base = format!("/ui/inspections/jobs/{}", enc(text(job, "id")));
                            tr {
                                td { a href=(base) { strong { (text(job, "name")) } } }
                                td { (text(job, "kind")) }
                                td { code.small { (list_text(job, "plugins")) } }
                                td { code { (text(job, "cron")) } }
                                td { (targets_text(&job["targets"])) }
                                td {
                                    @if bool_of(job, "enabled") { span.state.good { "enabled" } }
                                    @else { span.muted { "disabled" } }
                                }
                                td {
                                    @match last.get(text(job, "id")) {
                                        Some(run) => {
                                            a href={ "/ui/inspections/runs/" (enc(text(run, "id"))) } {
                                                (state_badge(text(run, "status")))
                                            }
                                            " " (time_of(&run["startedAt"]))
                                        }
                                        None => { span.muted { "never" } }
                                    }
                                }
                                td {
                                    @if ui.is_admin() {
                                        (action_button(&ui, &format!("{base}/run"), "Run now", "", None))
                                        " "
                                        @if bool_of(job, "enabled") {
                                            (action_button(&ui, &format!("{base}/disable"), "Disable", "", None))
                                        } @else {
                                            (action_button(&ui, &format!("{base}/enable"), "Enable", "", None))
                                        }
                                        " "
                                        (action_button(&ui, &format!("{base}/delete"), "Delete", "danger", Some("Delete this job? Its runs and findings stay.")))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
        h2 { "Recent runs" }
        (region("runs-live", any_running(recent.iter().copied()), runs_table(&recent, &names)))
        @if ui.is_admin() {
            details.add.panel {
                summary { "Create a job" }
                (job_form(&ui, "/ui/inspections", None, &plugins, &webhooks))
            }
        }
    };
    Ok(page(&ui, "Inspections", Nav::Inspections, body))
}

fn runs_table(runs: &[&Value], names: &HashMap<&str, &str>) -> Markup {
    html! {
        @if runs.is_empty() {
            (empty("No run yet."))
        } @else {
            table {
                thead { tr {
                    th { "Run" } th { "Job" } th { "Status" } th { "Trigger" } th { "Clusters" }
                    th { "Failed findings" } th { "Started" } th { "Finished" }
                } }
                tbody {
                    @for run in runs {
                        tr {
                            td { a href={ "/ui/inspections/runs/" (enc(text(run, "id"))) } { code.small { (text(run, "id")) } } }
                            td {
                                @match names.get(text(run, "jobId")) {
                                    Some(name) => { a href={ "/ui/inspections/jobs/" (enc(text(run, "jobId"))) } { (name) } }
                                    None => { code.small { (text(run, "jobId")) } }
                                }
                            }
                            td { (state_badge(text(run, "status"))) }
                            td { (text(run, "trigger")) }
                            td {
                                (int_of(run, "clustersTotal")) " "
                                @if int_of(run, "clustersFailed") > 0 {
                                    span.error-text { "(" (int_of(run, "clustersFailed")) " failed)" }
                                }
                                @if int_of(run, "clustersSkipped") > 0 {
                                    span.muted { " (" (int_of(run, "clustersSkipped")) " skipped)" }
                                }
                            }
                            td { (int_of(run, "findingsFailed")) " of " (int_of(run, "findingsTotal")) }
                            td { (time_of(&run["startedAt"])) }
                            td { (time_of(&run["finishedAt"])) }
                        }
                    }
                }
            }
        }
    }
}

/// The names of the plugins of `world` (to hint what a job may name).
fn plugin_names<'a>(plugins: &'a Value, world: &str) -> Vec<&'a str> {
    items(plugins)
        .iter()
        .filter(|p| text(p, "world") == world)
        .map(|p| text(p, "name"))
        .collect()
}

/// The create form (`job` is `None`) or the edit form of `job`.
fn job_form(
    ui: &Ui,
    action: &str,
    job: Option<&Value>,
    plugins: &Value,
    webhooks: &Value,
) -> Markup {
    let (target_kind, target_value) =
        job.map_or(("all", String::new()), |j| targets_fields(&j["targets"]));
    let enabled = job.is_none_or(|j| bool_of(j, "enabled"));
    html! {
        form.stack method="post" action=(action) {
            (csrf_field(ui))
            div { label for="name" { "Name (letters, digits, '-', '_', '.')" }
                input #name type="text" name="name" required value=[job.map(|j| text(j, "name"))]; }
            @if job.is_none() {
                div { label for="kind" { "Kind" }
                    select #kind name="kind" {
                        option value="inspection" selected { "inspection (inspector plugins against clusters)" }
                        option value="repo-sync" { "repo-sync (Helm repository sync plugins)" }
                    }
                }
            }
            div {
                label for="plugins" { "Plugins (comma separated, called in this order)" }
                input #plugins type="text" name="plugins" required value=[job.map(|j| list_text(j, "plugins"))] placeholder="builtin-checks";
                p.muted.small {
                    "Inspector plugins: " (plugin_names(plugins, "inspector").join(", "))
                    ". Repo-sync plugins: " (plugin_names(plugins, "repo-sync").join(", ")) "."
                }
            }
            div { label for="cron" { "Schedule (cron, 5 fields or 6 with seconds)" }
                input #cron type="text" name="cron" required value=[job.map(|j| text(j, "cron"))] placeholder="0 3 * * *"; }
            div {
                label for="targets" { "Targets" }
                select #targets name="targets" {
                    @for (value, label) in [("all", "all clusters"), ("clusters", "these cluster ids"), ("selector", "clusters whose labels match")] {
                        option value=(value) selected[target_kind == value] { (label) }
                    }
                }
            }
            div { label for="target_value" { "Cluster ids (comma separated) or label selector (k=v, k!=v, k)" }
                input #target_value type="text" name="target_value" value=(target_value); }
            div { label for="timeout" { "Timeout of one plugin call on one cluster, seconds (empty: 300)" }
                input #timeout type="number" min="1" name="timeout" value=[job.map(|j| int_of(j, "timeoutSeconds"))]; }
            div {
                label for="webhooks" { "Webhook ids notified after each run (comma separated)" }
                input #webhooks type="text" name="webhooks" value=[job.map(|j| list_text(j, "webhooks"))];
                @if !items(webhooks).is_empty() {
                    p.muted.small {
                        "Webhooks: "
                        @for (i, hook) in items(webhooks).iter().enumerate() {
                            @if i > 0 { ", " }
                            (text(hook, "name")) " " code { (text(hook, "id")) }
                        }
                    }
                }
            }
            div { label { input type="checkbox" name="notify_only_on_failure" value="on" checked[job.is_some_and(|j| bool_of(j, "notifyOnlyOnFailure"))]; " Notify only when a run fails or finds failed checks" } }
            div { label { input type="checkbox" name="enabled" value="on" checked[enabled]; " Enabled (runs on its schedule)" } }
            div { button.primary type="submit" { @if job.is_some() { "Save" } @else { "Create" } } }
        }
    }
}

/// The fields of the create and edit forms.
#[derive(Debug, Deserialize)]
pub(crate) struct JobForm {
    #[serde(default)]
    name: String,
    kind: Option<String>,
    #[serde(default)]
    plugins: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    targets: String,
    #[serde(default)]
    target_value: String,
    #[serde(default)]
    timeout: String,
    #[serde(default)]
    webhooks: String,
    notify_only_on_failure: Option<String>,
    enabled: Option<String>,
}

/// Comma- or space-separated names.
fn names(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The API body of a create (`create`) or an edit; what the API checks is left to it.
fn job_body(form: JobForm, create: bool) -> Result<Value, String> {
    let targets = match form.targets.as_str() {
        "" | "all" => json!("all"),
        "clusters" => json!({ "clusters": names(&form.target_value) }),
        "selector" => json!({ "selector": form.target_value.trim() }),
        other => {
            return Err(format!(
                "unknown targets `{other}`: all, clusters or selector"
            ));
        }
    };
    let mut body = json!({
        "name": form.name.trim(),
        "plugins": names(&form.plugins),
        "cron": form.cron.trim(),
        "targets": targets,
        "webhooks": names(&form.webhooks),
        "notifyOnlyOnFailure": form.notify_only_on_failure.is_some(),
        "enabled": form.enabled.is_some(),
    });
    let timeout = form.timeout.trim();
    if !timeout.is_empty() {
        let seconds: u64 = timeout
            .parse()
            .map_err(|_| format!("the timeout `{timeout}` is not a whole number of seconds"))?;
        body["timeoutSeconds"] = json!(seconds);
    }
    if create {
        let kind = form.kind.unwrap_or_default();
        if !matches!(kind.as_str(), "inspection" | "repo-sync") {
            return Err(format!("unknown kind `{kind}`: inspection or repo-sync"));
        }
        body["kind"] = json!(kind);
    }
    Ok(body)
}

async fn create(ui: Ui, CsrfForm(form): CsrfForm<JobForm>) -> Response {
    let body = match job_body(form, true) {
        Ok(body) => body,
        Err(e) => return redirect_with("/ui/inspections", FlashKind::Error, &e),
    };
    match ui.send(Method::POST, "/jobs", Some(body)).await {
        Ok(job) => redirect_with(
            &format!("/ui/inspections/jobs/{}", enc(text(&job, "id"))),
            FlashKind::Ok,
            &format!("Job {} created.", text(&job, "name")),
        ),
        Err(e) => redirect_with("/ui/inspections", FlashKind::Error, &e.message),
    }
}

async fn show_job(ui: Ui, Path(id): Path<String>) -> Result<Response, UiError> {
    let job = ui.get(&format!("/jobs/{}", enc(&id))).await?;
    let runs = ui
        .get(&format!("/runs?job={}&limit={RUNS_SHOWN}", enc(&id)))
        .await?;
    let plugins = ui.get("/plugins").await?;
    let webhooks = ui.get("/webhooks").await?;
    let base = format!("/ui/inspections/jobs/{}", enc(&id));
    let names = HashMap::from([(id.as_str(), text(&job, "name"))]);
    let recent: Vec<&Value> = items(&runs).iter().collect();
    let body = html! {
        p.muted { a href="/ui/inspections" { "Inspections" } " / " }
        h1 { (text(&job, "name")) " " span.muted.small { code { (id) } } }
        div.panel {
            dl.facts {
                dt { "Kind" } dd { (text(&job, "kind")) }
                dt { "Plugins" } dd { code { (list_text(&job, "plugins")) } }
                dt { "Schedule" } dd { code { (text(&job, "cron")) } }
                dt { "Targets" } dd { (targets_text(&job["targets"])) }
                dt { "Enabled" } dd { @if bool_of(&job, "enabled") { "yes" } @else { "no" } }
                dt { "Timeout" } dd { (int_of(&job, "timeoutSeconds")) " s per plugin call and cluster" }
                dt { "Webhooks" } dd { code { (list_text(&job, "webhooks")) }
                    @if bool_of(&job, "notifyOnlyOnFailure") { " (only on failure)" } }
                dt { "Revision" } dd { (int_of(&job, "revision")) }
                dt { "Created" } dd { (time_of(&job["createdAt"])) }
                dt { "Changed" } dd { (time_of(&job["updatedAt"])) }
            }
        }
        @if ui.is_admin() {
            div.actions {
                (action_button(&ui, &format!("{base}/run"), "Run now", "primary", None))
                @if bool_of(&job, "enabled") {
                    (action_button(&ui, &format!("{base}/disable"), "Disable", "", None))
                } @else {
                    (action_button(&ui, &format!("{base}/enable"), "Enable", "", None))
                }
                (action_button(&ui, &format!("{base}/delete"), "Delete", "danger", Some("Delete this job? Its runs and findings stay.")))
            }
            details.add.panel {
                summary { "Edit" }
                (job_form(&ui, &format!("{base}/edit"), Some(&job), &plugins, &webhooks))
            }
        }
        h2 { "Runs" }
        (region("runs-live", any_running(recent.iter().copied()), runs_table(&recent, &names)))
    };
    Ok(page(&ui, text(&job, "name"), Nav::Inspections, body))
}

async fn edit(ui: Ui, Path(id): Path<String>, CsrfForm(form): CsrfForm<JobForm>) -> Response {
    let to = format!("/ui/inspections/jobs/{}", enc(&id));
    let body = match job_body(form, false) {
        Ok(body) => body,
        Err(e) => return redirect_with(&to, FlashKind::Error, &e),
    };
    match ui
        .send(Method::PUT, &format!("/jobs/{}", enc(&id)), Some(body))
        .await
    {
        Ok(_) => redirect_with(&to, FlashKind::Ok, "Saved."),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

type EmptyForm = CsrfForm<BTreeMap<String, String>>;

async fn set_enabled(ui: &Ui, id: &str, enabled: bool) -> Response {
    let to = format!("/ui/inspections/jobs/{}", enc(id));
    match ui
        .send(
            Method::PUT,
            &format!("/jobs/{}", enc(id)),
            Some(json!({ "enabled": enabled })),
        )
        .await
    {
        Ok(_) if enabled => redirect_with(&to, FlashKind::Ok, "Enabled: it runs on its schedule."),
        Ok(_) => redirect_with(&to, FlashKind::Ok, "Disabled: it runs only when started."),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

async fn enable(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    set_enabled(&ui, &id, true).await
}

async fn disable(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    set_enabled(&ui, &id, false).await
}

async fn delete(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    match ui
        .send(Method::DELETE, &format!("/jobs/{}", enc(&id)), None)
        .await
    {
        Ok(_) => redirect_with("/ui/inspections", FlashKind::Ok, "Job deleted."),
        Err(e) => redirect_with(
            &format!("/ui/inspections/jobs/{}", enc(&id)),
            FlashKind::Error,
            &e.message,
        ),
    }
}

async fn run_now(ui: Ui, Path(id): Path<String>, _: EmptyForm) -> Response {
    match ui
        .send(Method::POST, &format!("/jobs/{}/run", enc(&id)), None)
        .await
    {
        Ok(run) => redirect_with(
            &format!("/ui/inspections/runs/{}", enc(text(&run, "id"))),
            FlashKind::Ok,
            "Run started.",
        ),
        Err(e) => redirect_with(
            &format!("/ui/inspections/jobs/{}", enc(&id)),
            FlashKind::Error,
            &e.message,
        ),
    }
}

/// Which findings a page lists: `failed` (the default of a run's page), `passed` or `all`.
fn passed_param(status: Option<&str>) -> Result<Option<bool>, UiError> {
    match status.unwrap_or_default() {
        "" | "all" => Ok(None),
        "failed" => Ok(Some(false)),
        "passed" => Ok(Some(true)),
        other => Err(UiError::new(
            StatusCode::BAD_REQUEST,
            format!("`status` must be passed, failed or all, not `{other}`"),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    status: Option<String>,
}

async fn show_run(
    ui: Ui,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, UiError> {
    let status = query.status.as_deref().unwrap_or("failed");
    let passed = passed_param(Some(status))?;
    let run = ui.get(&format!("/runs/{}", enc(&id))).await?;
    let job_id = text(&run, "jobId");
    // The job may be gone (runs outlive it).
    let job = ui.get(&format!("/jobs/{}", enc(job_id))).await.ok();
    let mut path = format!("/findings?run={}&limit={FINDINGS_SHOWN}", enc(&id));
    if let Some(passed) = passed {
        path.push_str(&format!("&passed={passed}"));
    }
    let findings = ui.get(&path).await?;
    let running = text(&run, "status") == "running";
    let targets = run
        .get("targets")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let base = format!("/ui/inspections/runs/{}", enc(&id));
    let body = html! {
        p.muted { a href="/ui/inspections" { "Inspections" } " / " }
        h1 { "Run " code { (id) } }
        (region("run-live", running, html! {
            div.grid2 {
                div.panel {
                    dl.facts {
                        dt { "Job" } dd {
                            a href={ "/ui/inspections/jobs/" (enc(job_id)) } {
                                @match &job { Some(job) => { (text(job, "name")) } None => { code { (job_id) } } }
                            }
                        }
                        dt { "Status" } dd { (state_badge(text(&run, "status"))) }
                        dt { "Trigger" } dd { (text(&run, "trigger")) }
                        dt { "Replica" } dd { code { (text(&run, "instanceId")) } }
                        @if let Some(token) = run.get("fencingToken").and_then(Value::as_i64) {
                            dt { "Leader term" } dd { (token) }
                        }
                        dt { "Started" } dd { (time_of(&run["startedAt"])) }
                        dt { "Finished" } dd { (time_of(&run["finishedAt"])) }
                        dt { "Clusters" } dd {
                            (int_of(&run, "clustersTotal")) " total, "
                            (int_of(&run, "clustersFailed")) " failed, "
                            (int_of(&run, "clustersSkipped")) " skipped"
                        }
                        dt { "Findings" } dd { (int_of(&run, "findingsFailed")) " failed of " (int_of(&run, "findingsTotal")) }
                        dt { "Error" } dd.error-text { (text(&run, "error")) }
                    }
                }
                div.panel {
                    h2 { "Clusters" }
                    @if targets.is_empty() {
                        (empty(if running { "No cluster has finished yet." } else { "No cluster was inspected." }))
                    } @else {
                        table {
                            thead { tr { th { "Cluster" } th { "Result" } th { "Failed findings" } th { "Error" } th { "Finished" } } }
                            tbody {
                                @for target in targets {
                                    tr {
                                        td { a href={ "/ui/clusters/" (enc(text(target, "clusterId"))) } { (text(target, "clusterId")) } }
                                        td { (state_badge(text(target, "status"))) }
                                        td {
                                            a href={ "/ui/inspections/findings?cluster=" (enc(text(target, "clusterId"))) "&status=failed" } {
                                                (int_of(target, "findingsFailed"))
                                            }
                                            " of " (int_of(target, "findingsTotal"))
                                        }
                                        td.error-text.small { (text(target, "error")) }
                                        td { (time_of(&target["finishedAt"])) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Findings" }
            p.actions {
                @for (value, label) in [("failed", "Failed"), ("passed", "Passed"), ("all", "All")] {
                    @if value == status { strong { (label) } } @else { a href={ (base) "?status=" (value) } { (label) } }
                }
            }
            (findings_table(&findings, false))
        }))
    };
    Ok(page(&ui, &format!("Run {id}"), Nav::Inspections, body))
}

fn findings_table(findings: &Value, with_run: bool) -> Markup {
    let shown = items(findings);
    html! {
        @if shown.is_empty() {
            (empty("No finding matches."))
        } @else {
            table #findings-table {
                thead { tr {
                    th { "When" } th { "Cluster" } th { "Check" } th { "Severity" } th { "Result" }
                    th { "Object" } th { "Message" }
                    @if with_run { th { "Run" } }
                } }
                tbody {
                    @for finding in shown {
                        tr {
                            td { (time_of(&finding["createdAt"])) }
                            td { a href={ "/ui/clusters/" (enc(text(finding, "clusterId"))) } { (text(finding, "clusterId")) } }
                            td { code { (text(finding, "checkId")) } br; span.muted.small { (text(finding, "plugin")) } }
                            td { (text(finding, "severity")) }
                            td {
                                @if bool_of(finding, "passed") { (state_badge("passed")) } @else { (state_badge("failed")) }
                            }
                            td { (object_ref(&finding["target"])) }
                            td { (text(finding, "message")) }
                            @if with_run {
                                td { a href={ "/ui/inspections/runs/" (enc(text(finding, "runId"))) } { code.small { (text(finding, "runId")) } } }
                            }
                        }
                    }
                }
            }
            @if shown.len() >= FINDINGS_SHOWN {
                p.muted.small { "The first " (FINDINGS_SHOWN) " findings; narrow the filters to see others." }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindingsQuery {
    cluster: Option<String>,
    check: Option<String>,
    severity: Option<String>,
    status: Option<String>,
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

async fn findings(ui: Ui, Query(query): Query<FindingsQuery>) -> Result<Response, UiError> {
    let cluster = non_empty(query.cluster.as_deref());
    let check = non_empty(query.check.as_deref());
    let severity = non_empty(query.severity.as_deref());
    let status = non_empty(query.status.as_deref());
    let passed = passed_param(status)?;
    let mut path = format!("/findings?limit={FINDINGS_SHOWN}");
    for (field, value) in [
        ("cluster", cluster),
        ("check", check),
        ("severity", severity),
    ] {
        if let Some(value) = value {
            path.push_str(&format!("&{field}={}", enc(value)));
        }
    }
    if let Some(passed) = passed {
        path.push_str(&format!("&passed={passed}"));
    }
    let found = ui.get(&path).await?;
    let series = chart::series(&ui, cluster).await?;
    let body = html! {
        p.muted { a href="/ui/inspections" { "Inspections" } " / " }
        h1 { "Findings" }
        h2 { "Failed findings per cluster over the last runs" }
        (chart::render(&series))
        form.filters method="get" action="/ui/inspections/findings" {
            div { label for="cluster" { "Cluster" } input #cluster type="text" name="cluster" value=[cluster]; }
            div { label for="check" { "Check" } input #check type="text" name="check" value=[check]; }
            div {
                label for="severity" { "Severity" }
                select #severity name="severity" {
                    option value="" { "any" }
                    @for value in ["info", "low", "medium", "high", "critical"] {
                        option value=(value) selected[severity == Some(value)] { (value) }
                    }
                }
            }
            div {
                label for="status" { "Result" }
                select #status name="status" {
                    option value="" { "any" }
                    @for value in ["failed", "passed"] {
                        option value=(value) selected[status == Some(value)] { (value) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        (findings_table(&found, true))
    };
    Ok(page(&ui, "Findings", Nav::Inspections, body))
}

#[cfg(test)]
mod tests;
