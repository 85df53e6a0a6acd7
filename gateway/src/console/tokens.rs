//! `/ui/tokens`: tokens with their role, grants and expiry; create (the secret is shown once,
//! in the answer to the form's post, never in a cookie or a URL) and revoke. Admin only, as
//! the API.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CsrfForm, FlashKind, Nav, Ui, UiError, action_button, csrf_field, empty, enc, items, layout,
    page, redirect_with, text, time_of,
};
use crate::app::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}/revoke", post(revoke))
}

/// Lifetimes offered by the form: `(seconds, label)`; empty is "never".
const LIFETIMES: [(&str, &str); 7] = [
    ("", "never expires"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("31536000", "1 year"),
];

fn grants(token: &Value) -> Markup {
    let list = token
        .get("grants")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    html! {
        @if list.is_empty() {
            span.muted { "none" }
        }
        @for grant in list {
            span.label-chip {
                (text(grant, "cluster")) "=" (text(grant, "access"))
                @if grant.get("impersonate").and_then(Value::as_bool) == Some(true) { " (impersonate)" }
            }
        }
    }
}

fn expiry(token: &Value) -> Markup {
    match token.get("expiresAt").and_then(Value::as_i64) {
        None => html! { span.muted { "never" } },
        Some(at) if at <= crate::clock::now_millis() => html! {
            span.state.bad { "expired" } " " (time_of(&token["expiresAt"]))
        },
        Some(_) => html! { (time_of(&token["expiresAt"])) },
    }
}

async fn list(ui: Ui) -> Result<Response, UiError> {
    let tokens = ui.get("/tokens").await?;
    let own = ui.principal.id().to_owned();
    let body = html! {
        h1 { "Tokens" }
        p.muted { "A token signs in to the console and calls the API and the proxy. Revoking one ends its console sessions at once." }
        @if items(&tokens).is_empty() {
            (empty("No token yet."))
        } @else {
            table #tokens-table {
                thead { tr {
                    th { "Name" } th { "Role" } th { "Grants" } th { "Impersonation" }
                    th { "Created" } th { "Expires" } th {}
                } }
                tbody {
                    @for token in items(&tokens) {
                        tr {
                            td {
                                strong { (text(token, "name")) }
                                br; code.small.muted { (text(token, "id")) }
                            }
                            td {
                                @if text(token, "role") == "admin" { span.badge.admin { "admin" } }
                                @else { (text(token, "role")) }
                            }
                            td { (grants(token)) }
                            td.small {
                                (text(token, "impersonateUser"))
                                @if let Some(groups) = token.get("impersonateGroups").and_then(Value::as_array) {
                                    @for group in groups {
                                        " " span.label-chip { (group.as_str().unwrap_or_default()) }
                                    }
                                }
                            }
                            td { (time_of(&token["createdAt"])) }
                            td { (expiry(token)) }
                            td {
                                @if text(token, "id") == own {
                                    span.badge title="the token of this session cannot revoke itself" { "you" }
                                } @else {
                                    (action_button(&ui, &format!("/ui/tokens/{}/revoke", enc(text(token, "id"))), "Revoke", "danger",
                                        Some("Revoke this token? Its API calls and console sessions stop at once.")))
                                }
                            }
                        }
                    }
                }
            }
        }
        details.add.panel open[items(&tokens).len() <= 1] {
            summary { "Create a token" }
            form.stack method="post" action="/ui/tokens" {
                (csrf_field(&ui))
                div { label for="name" { "Name" } input #name type="text" name="name" required; }
                div { label for="role" { "Role" }
                    select #role name="role" {
                        option value="user" selected { "user: only what its grants allow" }
                        option value="admin" { "admin: everything" }
                    }
                }
                div { label for="grants" { "Grants, one per line: cluster=read or cluster=write, `*` for every cluster; add `,impersonate` to let the cluster's RBAC decide" }
                    textarea #grants.short name="grants" placeholder="dev=write\nprod=read,impersonate" {} }
                div { label for="impersonate_user" { "Impersonated Kubernetes user (default: the token's name)" } input #impersonate_user type="text" name="impersonate_user"; }
                div { label for="impersonate_groups" { "Impersonated groups (comma separated)" } input #impersonate_groups type="text" name="impersonate_groups"; }
                div { label for="ttl" { "Lifetime" }
                    select #ttl name="ttl" {
                        @for (seconds, label) in LIFETIMES {
                            option value=(seconds) { (label) }
                        }
                    }
                }
                div { label for="expires_at" { "…or expires at (RFC 3339, e.g. 2030-01-31T00:00:00Z; leave the lifetime at “never”)" } input #expires_at type="text" name="expires_at"; }
                div { button.primary type="submit" { "Create" } }
            }
        }
    };
    Ok(page(&ui, "Tokens", Nav::Tokens, body))
}

/// `cluster=access[,impersonate]` lines into grants.
fn parse_grants(text: &str) -> Result<Vec<Value>, String> {
    let mut grants = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (cluster, rest) = line
            .split_once('=')
            .ok_or_else(|| format!("grant `{line}` is not cluster=access"))?;
        let mut parts = rest.split(',').map(str::trim);
        let access = parts.next().unwrap_or_default();
        if !matches!(access, "read" | "write") {
            return Err(format!(
                "grant `{line}`: the access must be `read` or `write`"
            ));
        }
        let mut grant = json!({ "cluster": cluster.trim(), "access": access });
        for flag in parts {
            match flag {
                "impersonate" => grant["impersonate"] = json!(true),
                other => return Err(format!("grant `{line}`: unknown option `{other}`")),
            }
        }
        grants.push(grant);
    }
    Ok(grants)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    name: String,
    role: String,
    #[serde(default)]
    grants: String,
    #[serde(default)]
    impersonate_user: String,
    #[serde(default)]
    impersonate_groups: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    expires_at: String,
}

fn create_body(form: &CreateForm) -> Result<Value, String> {
    let mut body = json!({
        "name": form.name.trim(),
        "role": form.role,
        "grants": parse_grants(&form.grants)?,
    });
    let user = form.impersonate_user.trim();
    if !user.is_empty() {
        body["impersonateUser"] = json!(user);
    }
    let groups: Vec<&str> = form
        .impersonate_groups
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    if !groups.is_empty() {
        body["impersonateGroups"] = json!(groups);
    }
    let ttl = form.ttl.trim();
    if !ttl.is_empty() {
        let seconds: u64 = ttl
            .parse()
            .map_err(|_| format!("lifetime `{ttl}` is not a number of seconds"))?;
        body["ttlSeconds"] = json!(seconds);
    }
    let at = form.expires_at.trim();
    if !at.is_empty() {
        // With a lifetime as well, the API refuses the pair and says so.
        body["expiresAt"] = json!(at);
    }
    Ok(body)
}

/// Creates the token and answers with the page that shows its secret, once: the response to
/// this post (201, not stored by the browser), never a redirect, a cookie or a URL.
async fn create(ui: Ui, CsrfForm(form): CsrfForm<CreateForm>) -> Response {
    let body = match create_body(&form) {
        Ok(body) => body,
        Err(e) => return redirect_with("/ui/tokens", FlashKind::Error, &e),
    };
    let created = match ui.send(Method::POST, "/tokens", Some(body)).await {
        Ok(created) => created,
        Err(e) => return redirect_with("/ui/tokens", FlashKind::Error, &e.message),
    };
    let markup = html! {
        p.muted { a href="/ui/tokens" { "Tokens" } " / " }
        h1 { "Token " (text(&created, "name")) " created" }
        div.panel {
            p { strong { "Copy the token now: it is shown only on this page and cannot be read again." } }
            pre.secret #new-token { (text(&created, "token")) }
            dl.facts {
                dt { "Id" } dd { code { (text(&created, "id")) } }
                dt { "Role" } dd { (text(&created, "role")) }
                dt { "Grants" } dd { (grants(&created)) }
                dt { "Expires" } dd { (expiry(&created)) }
            }
            p.small.muted { "Sign in with it here, or use it with " code { "portico login" } " and kubeconfig exports." }
        }
        p { a href="/ui/tokens" { "Back to the tokens" } }
    };
    // The layout, not `page`: a flash (if any) stays for the next page, and the whole response
    // is the one place the secret ever appears.
    let mut response = (
        StatusCode::CREATED,
        layout(&ui, "Token created", Nav::Tokens, markup),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn revoke(ui: Ui, Path(id): Path<String>, _: CsrfForm<BTreeMap<String, String>>) -> Response {
    match ui
        .send(Method::DELETE, &format!("/tokens/{}", enc(&id)), None)
        .await
    {
        Ok(_) => redirect_with(
            "/ui/tokens",
            FlashKind::Ok,
            "Token revoked; its console sessions have ended.",
        ),
        Err(e) => redirect_with("/ui/tokens", FlashKind::Error, &e.message),
    }
}
