//! `/ui/audit`: the audit log, newest first, filterable by kind, cluster and token name, paged
//! towards older entries. Admin only, as the API.

use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{Nav, Ui, UiError, empty, enc, items, page, text, time_of};
use crate::app::App;

/// Entries per page.
const PAGE: usize = 100;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditParams {
    kind: Option<String>,
    cluster: Option<String>,
    token: Option<String>,
    /// Unix milliseconds: entries older than this (the API's `before`).
    before: Option<i64>,
    /// Entries at `before - 1` the previous page already showed (several entries can share a
    /// millisecond; the API orders them the same way every time).
    skip: Option<usize>,
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `?kind=…&cluster=…&token=…` of the filters in force (each value encoded).
fn filter_query(params: &AuditParams) -> String {
    let mut query = String::new();
    for (name, value) in [
        ("kind", non_empty(params.kind.as_ref())),
        ("cluster", non_empty(params.cluster.as_ref())),
        ("token", non_empty(params.token.as_ref())),
    ] {
        if let Some(value) = value {
            query.push_str(&format!("&{name}={}", enc(value)));
        }
    }
    query
}

async fn list(ui: Ui, Query(params): Query<AuditParams>) -> Result<Response, UiError> {
    let skip = params.skip.unwrap_or(0).min(PAGE);
    let filters = filter_query(&params);
    let mut path = format!("/audit?limit={}{filters}", PAGE + skip);
    if let Some(before) = params.before {
        path.push_str(&format!("&before={before}"));
    }
    let log = ui.get(&path).await?;
    let entries: Vec<&Value> = items(&log).iter().skip(skip).collect();
    // The next page: older than the last entry shown, past the entries of its millisecond
    // that this page showed.
    let older = (entries.len() == PAGE)
        .then(|| entries.last().and_then(|e| e["at"].as_i64()))
        .flatten()
        .map(|last| {
            let same = entries
                .iter()
                .rev()
                .take_while(|e| e["at"].as_i64() == Some(last))
                .count();
            format!("/ui/audit?before={}&skip={same}{filters}", last + 1)
        });
    let kind = non_empty(params.kind.as_ref()).unwrap_or_default();
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/ui/audit" {
            div {
                label for="kind" { "Kind" }
                select #kind name="kind" {
                    option value="" { "any" }
                    @for (value, label) in [("console", "console"), ("api", "API"), ("proxy", "proxy")] {
                        option value=(value) selected[kind == value] { (label) }
                    }
                }
            }
            div {
                label for="cluster" { "Cluster" }
                input #cluster type="text" name="cluster" value=[non_empty(params.cluster.as_ref())];
            }
            div {
                label for="token" { "Token name" }
                input #token type="text" name="token" value=[non_empty(params.token.as_ref())];
            }
            button type="submit" { "Filter" }
            @if !filters.is_empty() || params.before.is_some() {
                a href="/ui/audit" { "Newest, unfiltered" }
            }
        }
        @if entries.is_empty() {
            (empty("No entries."))
        } @else {
            table #audit-table {
                thead { tr {
                    th { "When" } th { "Kind" } th { "Token" } th { "Cluster" } th { "Request" }
                    th { "Status" } th { "Source" }
                } }
                tbody {
                    @for entry in &entries {
                        tr {
                            td { (time_of(&entry["at"])) }
                            td { (text(entry, "kind")) }
                            td { (text(entry, "tokenName")) }
                            td { (text(entry, "cluster")) }
                            td { code.small { (text(entry, "verb")) " " (text(entry, "path")) } }
                            td {
                                @let status = entry["status"].as_u64().unwrap_or(0);
                                @if status >= 400 { span.state.bad { (status) } } @else { (status) }
                            }
                            td.small.muted { (text(entry, "source")) }
                        }
                    }
                }
            }
        }
        div.actions {
            @if params.before.is_some() {
                a href={ "/ui/audit?" (filters.trim_start_matches('&')) } { "Newest" }
            }
            @if let Some(older) = &older {
                a href=(older) { "Older" }
            }
        }
    };
    Ok(page(&ui, "Audit log", Nav::Audit, body))
}
