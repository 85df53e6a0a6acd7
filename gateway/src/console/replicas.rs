//! `/ui/replicas`: the gateway's instances, which one leads, the leader term (the fencing
//! token), clusters held and how long ago each instance renewed its lease. Any signed-in user,
//! as `GET /api/v1/instances` and `/leader`.

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::{Nav, Ui, UiError, empty, items, live, page, text, time};
use crate::app::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/replicas", get(list))
}

/// An RFC 3339 time from the API as a relative time, or the text as given, or a dash.
pub(crate) fn rfc3339(value: &Value) -> Markup {
    match value.as_str() {
        None | Some("") => html! { span.muted { "—" } },
        Some(at) => match at.parse::<jiff::Timestamp>() {
            Ok(t) => time(t.as_millisecond()),
            Err(_) => html! { (at) },
        },
    }
}

async fn list(ui: Ui) -> Result<Response, UiError> {
    let instances = ui.get("/instances").await?;
    let leader = ui.get("/leader").await?;
    let this = text(&leader, "instanceId");
    let body = html! {
        h1 { "Replicas" }
        (live("replicas-live", 5, html! {
            div.panel {
                dl.facts {
                    dt { "Mode" } dd { (text(&leader, "mode")) }
                    dt { "Leader" } dd {
                        @match leader.get("holder").and_then(Value::as_str) {
                            Some(holder) => { code { (holder) } }
                            None => { span.muted { "none right now" } }
                        }
                    }
                    dt { "Term (fencing token)" } dd {
                        @match leader.get("transitions").and_then(Value::as_i64) {
                            Some(term) => { (term) }
                            None => { span.muted { "—" } }
                        }
                    }
                    @if !text(&leader, "lease").is_empty() {
                        dt { "Leader lease" } dd { code { (text(&leader, "lease")) } }
                    }
                    dt { "Term started" } dd { (rfc3339(&leader["acquireTime"])) }
                    dt { "Leader renewed" } dd { (rfc3339(&leader["renewTime"])) }
                    dt { "This replica" } dd {
                        code { (this) }
                        @if leader.get("isLeader").and_then(Value::as_bool) == Some(true) {
                            " " span.badge { "leads" }
                        }
                    }
                    @if !text(&leader, "leaseError").is_empty() {
                        dt { "Lease error" } dd.error-text { (text(&leader, "leaseError")) }
                    }
                }
            }
            @if items(&instances).is_empty() {
                (empty("No replica has announced itself."))
            } @else {
                table #replicas-table {
                    thead { tr {
                        th { "Replica" } th { "State" } th { "Address" } th { "Version" }
                        th { "Started" } th { "Clusters held" } th { "Last renewal" }
                    } }
                    tbody {
                        @for instance in items(&instances) {
                            tr {
                                td {
                                    code { (text(instance, "id")) }
                                    @if instance.get("leader").and_then(Value::as_bool) == Some(true) {
                                        " " span.badge { "leader" }
                                    }
                                    @if text(instance, "id") == this {
                                        " " span.badge title="the replica that answered this page" { "this one" }
                                    }
                                }
                                td {
                                    @if instance.get("alive").and_then(Value::as_bool) == Some(true) {
                                        span.state.good { "alive" }
                                    } @else {
                                        span.state.bad title="its lease was not renewed in time" { "expired" }
                                    }
                                }
                                td { (text(instance, "address")) }
                                td { (text(instance, "version")) }
                                td { (rfc3339(&instance["started"])) }
                                td { (instance.get("clustersHeld").and_then(Value::as_u64).unwrap_or(0)) }
                                td {
                                    @if instance.get("renewTime").is_some_and(Value::is_string) {
                                        (rfc3339(&instance["renewTime"]))
                                    } @else {
                                        span.muted title="standalone: no instance lease" { "—" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
    };
    Ok(page(&ui, "Replicas", Nav::Replicas, body))
}
