//! `/ui/`: clusters by state, replicas and the leader, failing findings of the latest runs,
//! recent audit entries.

use std::collections::HashSet;

use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::{Nav, Ui, UiError, empty, enc, items, live, page, state_badge, text, time_of};

/// Jobs whose latest run the overview shows, and failing findings per run.
const LATEST_JOBS: usize = 5;
const FINDINGS_PER_RUN: usize = 8;

pub(crate) async fn page_handler(ui: Ui) -> Result<Response, UiError> {
    let counts = ui.get("/cluster-counts").await?;
    let instances = ui.get("/instances").await?;
    let leader = ui.get("/leader").await?;
    let (runs, audit) = if ui.is_admin() {
        let runs = latest_runs(&ui).await?;
        let audit = ui.get("/audit?limit=10").await?;
        (Some(runs), Some(audit))
    } else {
        (None, None)
    };
    let body = html! {
        h1 { "Overview" }
        (live("overview-live", 5, html! {
            h2 { "Clusters" }
            (cluster_cards(&counts))
            h2 { "Replicas" }
            (replicas(&instances, &leader))
        }))
        @if let Some(runs) = &runs {
            h2 { "Failing findings of the latest runs" }
            (latest_findings(runs))
        }
        @if let Some(audit) = &audit {
            h2 { "Recent changes" }
            (recent_audit(audit))
        }
    };
    Ok(page(&ui, "Overview", Nav::Overview, body))
}

/// The cards of `/api/v1/cluster-counts`: registered, and by this replica's state.
fn cluster_cards(counts: &Value) -> Markup {
    let count = |n: Option<&Value>| n.and_then(Value::as_u64).unwrap_or(0);
    let total = count(counts.get("registered"));
    let by_state = |state: &str| count(counts.get("states").and_then(|s| s.get(state)));
    html! {
        div.cards {
            a.card href="/ui/clusters" {
                div.num { (total) }
                div.label { "registered" }
            }
            @for (state, class) in [("connected", "good"), ("connecting", "busy"), ("failed", "bad"), ("disconnected", "")] {
                a class={ "card " (class) } href={ "/ui/clusters?state=" (state) } {
                    div.num { (by_state(state)) }
                    div.label { (state) }
                }
            }
        }
    }
}

fn replicas(instances: &Value, leader: &Value) -> Markup {
    let mode = text(leader, "mode");
    html! {
        p.muted {
            "Mode " strong { (mode) } ". "
            @match leader.get("holder").and_then(Value::as_str) {
                Some(holder) => { "Leader: " code { (holder) } }
                None => { "No leader right now." }
            }
            @if let Some(term) = leader.get("transitions").and_then(Value::as_i64) {
                " Term " (term) "."
            }
        }
        @if items(instances).is_empty() {
            (empty("No replica has announced itself (standalone: this replica alone)."))
        } @else {
            table {
                thead { tr { th { "Replica" } th { "Address" } th { "Version" } th { "Clusters held" } th { "State" } } }
                tbody {
                    @for instance in items(instances) {
                        tr {
                            td {
                                code { (text(instance, "id")) }
                                @if instance.get("leader").and_then(Value::as_bool) == Some(true) {
                                    " " span.badge { "leader" }
                                }
                            }
                            td { (text(instance, "address")) }
                            td { (text(instance, "version")) }
                            td { (instance.get("clustersHeld").and_then(Value::as_u64).unwrap_or(0)) }
                            td {
                                @if instance.get("alive").and_then(Value::as_bool) == Some(true) {
                                    (state_badge("alive"))
                                } @else {
                                    (state_badge("failed"))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The latest finished run of each job (up to [`LATEST_JOBS`]) with its failing findings.
async fn latest_runs(ui: &Ui) -> Result<Vec<(Value, Value)>, UiError> {
    let runs = ui.get("/runs?limit=100").await?;
    let mut seen = HashSet::new();
    let mut latest = Vec::new();
    for run in items(&runs) {
        if text(run, "status") == "running" || !seen.insert(text(run, "jobId").to_owned()) {
            continue;
        }
        let findings = ui
            .get(&format!(
                "/findings?run={}&passed=false&limit={FINDINGS_PER_RUN}",
                enc(text(run, "id"))
            ))
            .await?;
        latest.push((run.clone(), findings));
        if latest.len() == LATEST_JOBS {
            break;
        }
    }
    Ok(latest)
}

fn latest_findings(runs: &[(Value, Value)]) -> Markup {
    html! {
        @if runs.is_empty() {
            (empty("No inspection has run yet."))
        }
        @for (run, findings) in runs {
            div.panel {
                p {
                    a href={ "/ui/inspections/runs/" (enc(text(run, "id"))) } { "Run " code { (text(run, "id")) } }
                    " of job " code { (text(run, "jobId")) } " · " (state_badge(text(run, "status")))
                    " · " (run.get("findingsFailed").and_then(Value::as_i64).unwrap_or(0)) " failed of "
                    (run.get("findingsTotal").and_then(Value::as_i64).unwrap_or(0))
                    " · " (time_of(&run["startedAt"]))
                }
                @if items(findings).is_empty() {
                    (empty("No failing findings."))
                } @else {
                    table {
                        thead { tr { th { "Cluster" } th { "Check" } th { "Severity" } th { "Message" } } }
                        tbody {
                            @for finding in items(findings) {
                                tr {
                                    td { a href={ "/ui/clusters/" (enc(text(finding, "clusterId"))) } { (text(finding, "clusterId")) } }
                                    td { code { (text(finding, "checkId")) } }
                                    td { (text(finding, "severity")) }
                                    td { (text(finding, "message")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn recent_audit(audit: &Value) -> Markup {
    html! {
        @if items(audit).is_empty() {
            (empty("No changes recorded yet."))
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Status" } } }
                tbody {
                    @for entry in items(audit) {
                        tr {
                            td { (time_of(&entry["at"])) }
                            td { (text(entry, "tokenName")) }
                            td { code { (text(entry, "verb")) " " (text(entry, "path")) } }
                            td { (entry.get("status").and_then(Value::as_u64).unwrap_or(0)) }
                        }
                    }
                }
            }
            p { a href="/ui/audit" { "The whole audit log" } }
        }
    }
}
