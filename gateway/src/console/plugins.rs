//! `/ui/plugins`: installed wasm plugins (world, capabilities, limits, state), a configuration
//! editor, enable/disable, delete, and upload. Admin only, as the API.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::form::csrf_refused;
use super::session::{SignedIn, csrf_ok};
use super::{
    CsrfForm, FlashKind, Nav, Ui, UiError, action_button, csrf_field, empty, enc, error_page,
    items, page, redirect_with, text, time_of,
};
use crate::app::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/plugins", get(list).post(upload))
        .route("/plugins/{name}", get(show))
        .route("/plugins/{name}/config", post(set_config))
        .route("/plugins/{name}/config/reset", post(reset_config))
        .route("/plugins/{name}/enable", post(enable))
        .route("/plugins/{name}/disable", post(disable))
        .route("/plugins/{name}/delete", post(delete))
}

fn flag(value: &Value, field: &str) -> bool {
    value.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// The capabilities a manifest declares, as chips.
fn capabilities(plugin: &Value) -> Markup {
    let caps = &plugin["capabilities"];
    let hosts: Vec<&str> = caps
        .get("http")
        .and_then(Value::as_array)
        .map(|h| h.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        @for name in ["kube", "log", "config"] {
            @if flag(caps, name) { span.label-chip { (name) } }
        }
        @if caps.get("http").is_some_and(|h| !h.is_null()) {
            span.label-chip title="outbound HTTP" {
                "http" @if !hosts.is_empty() { ": " (hosts.join(", ")) }
            }
        }
    }
}

/// The main limits in one line.
fn limits_short(plugin: &Value) -> String {
    let limits = &plugin["limits"];
    let number = |field: &str| limits.get(field).and_then(Value::as_u64).unwrap_or(0);
    format!("{} ms · {} MiB", number("timeoutMs"), number("memoryMib"))
}

fn compiled(plugin: &Value) -> Markup {
    match plugin.get("compiledInMs").and_then(Value::as_u64) {
        Some(ms) => html! { (ms) " ms" },
        None => html! { span.muted title="not compiled on this replica yet" { "—" } },
    }
}

fn enabled_badge(plugin: &Value) -> Markup {
    if flag(plugin, "enabled") {
        html! { span.state.good { "enabled" } }
    } else {
        html! { span.muted { "disabled" } }
    }
}

async fn list(ui: Ui) -> Result<Response, UiError> {
    let plugins = ui.get("/plugins").await?;
    let body = html! {
        h1 { "Plugins" }
        @if items(&plugins).is_empty() {
            (empty("No plugin is installed."))
        } @else {
            table #plugins-table {
                thead { tr {
                    th { "Plugin" } th { "World" } th { "Capabilities" } th { "Limits" }
                    th { "Enabled" } th { "Source" } th { "Compiled in" }
                } }
                tbody {
                    @for plugin in items(&plugins) {
                        tr {
                            td {
                                a href={ "/ui/plugins/" (enc(text(plugin, "name"))) } { strong { (text(plugin, "name")) } }
                                " " span.muted.small { (text(plugin, "version")) }
                                @if !text(plugin, "description").is_empty() {
                                    br; span.muted.small { (text(plugin, "description")) }
                                }
                            }
                            td { (text(plugin, "world")) }
                            td { (capabilities(plugin)) }
                            td.small { (limits_short(plugin)) }
                            td { (enabled_badge(plugin)) }
                            td {
                                (text(plugin, "source"))
                                @if flag(plugin, "builtIn") { " " span.badge { "built-in" } }
                            }
                            td { (compiled(plugin)) }
                        }
                    }
                }
            }
        }
        @if ui.is_admin() {
            details.add.panel {
                summary { "Upload a plugin" }
                (upload_form(&ui))
            }
        }
    };
    Ok(page(&ui, "Plugins", Nav::Plugins, body))
}

/// The upload form. A browser posts a file upload as `multipart/form-data`, which
/// [`CsrfForm`] does not read, so the session's CSRF token rides in the form action's query
/// (`?_csrf=`) rather than as a multipart field: the token is checked before a byte of the body
/// is read, and the body then goes to the admin API untouched (the API's own part names, size
/// limits and checks apply, with no second copy of a large component and no re-encoding). The
/// query reaches only this origin (`Referrer-Policy: same-origin`, the post answers with a
/// redirect, request URIs are not logged), and it is the same token every form posts.
fn upload_form(ui: &Ui) -> Markup {
    let action = format!("/ui/plugins?_csrf={}", enc(&ui.csrf));
    let replace = format!("{action}&replace=true");
    html! {
        form.stack method="post" action=(action) enctype="multipart/form-data" {
            div { label for="manifest" { "Manifest (manifest.toml)" }
                input #manifest type="file" name="manifest" accept=".toml,text/plain" required; }
            div { label for="component" { "Component (.wasm, built for wasm32-wasip2)" }
                input #component type="file" name="component" accept=".wasm,application/wasm" required; }
            div.actions {
                button.primary type="submit" { "Upload" }
                button type="submit" formaction=(replace) { "Upload, replacing the upload of the same name" }
            }
        }
    }
}

/// `POST /ui/plugins?_csrf=…[&replace=true]` with the browser's multipart body.
async fn upload(
    ui: Ui,
    Extension(signed_in): Extension<SignedIn>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !csrf_ok(&signed_in, field("_csrf").unwrap_or_default()) {
        return csrf_refused();
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    let Some(content_type) = content_type.filter(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
    }) else {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not an upload",
            "Upload a plugin with the form: a manifest file and a component file.",
        );
    };
    let path = match field("replace") {
        Some("true") => "/plugins?replace=true",
        None | Some("false") => "/plugins",
        Some(_) => {
            return redirect_with(
                "/ui/plugins",
                FlashKind::Error,
                "`replace` must be true or false",
            );
        }
    };
    match ui
        .send_raw(Method::POST, path, content_type, request.into_body())
        .await
    {
        Ok(record) => {
            let name = text(&record, "name");
            redirect_with(
                &format!("/ui/plugins/{}", enc(name)),
                FlashKind::Ok,
                &format!("Plugin {name} {} installed.", text(&record, "version")),
            )
        }
        Err(e) => redirect_with("/ui/plugins", FlashKind::Error, &e.message),
    }
}

/// The configuration as the editor shows it.
fn pretty(config: &Value) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string())
}

async fn show(ui: Ui, Path(name): Path<String>) -> Result<Response, UiError> {
    let plugin = ui.get(&format!("/plugins/{}", enc(&name))).await?;
    Ok(detail(&ui, &plugin, None, StatusCode::OK))
}

/// A plugin's page; `refused` keeps the text the user posted and says why it was refused.
fn detail(ui: &Ui, plugin: &Value, refused: Option<(&str, &str)>, status: StatusCode) -> Response {
    let name = text(plugin, "name");
    let base = format!("/ui/plugins/{}", enc(name));
    let config = refused.map_or_else(|| pretty(&plugin["config"]), |(text, _)| text.to_owned());
    let limits = plugin
        .get("limits")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let deletable = !flag(plugin, "builtIn") && text(plugin, "source") != "directory";
    let body = html! {
        p.muted { a href="/ui/plugins" { "Plugins" } " / " }
        h1 { (name) " " span.muted.small { (text(plugin, "version")) } }
        @if !text(plugin, "description").is_empty() { p { (text(plugin, "description")) } }
        div.grid2 {
            div.panel {
                dl.facts {
                    dt { "World" } dd { (text(plugin, "world")) }
                    dt { "Enabled" } dd { (enabled_badge(plugin)) }
                    dt { "Source" } dd {
                        (text(plugin, "source"))
                        @if flag(plugin, "builtIn") { " " span.badge { "built-in" } }
                    }
                    dt { "Capabilities" } dd { (capabilities(plugin)) }
                    @if let Some(scope) = plugin.get("hookScope").and_then(Value::as_str) {
                        dt { "Hook scope" } dd { (scope) }
                    }
                    dt { "Digest" } dd { code.small { (text(plugin, "digest")) } }
                    dt { "Size" } dd { (plugin.get("componentBytes").and_then(Value::as_i64).unwrap_or(0)) " bytes" }
                    dt { "Compiled in" } dd { (compiled(plugin)) }
                    dt { "Installed" } dd { (time_of(&plugin["createdAt"])) }
                    dt { "Changed" } dd { (time_of(&plugin["updatedAt"])) }
                }
            }
            div.panel {
                h2 { "Limits of one call" }
                dl.facts {
                    @for (field, value) in &limits {
                        dt { (field) } dd { (value) }
                    }
                }
            }
        }
        @if ui.is_admin() {
            div.actions {
                @if flag(plugin, "enabled") {
                    (action_button(ui, &format!("{base}/disable"), "Disable", "", Some("Disable this plugin? Jobs and hooks naming it stop calling it.")))
                } @else {
                    (action_button(ui, &format!("{base}/enable"), "Enable", "", None))
                }
                @if deletable {
                    (action_button(ui, &format!("{base}/delete"), "Delete", "danger", Some("Delete this plugin?")))
                }
            }
        }
        h2 { "Configuration" }
        @if let Some((_, error)) = refused {
            div.flash.error role="alert" { (error) }
        }
        @if ui.is_admin() {
            form.stack method="post" action={ (base) "/config" } {
                (csrf_field(ui))
                div {
                    label for="config" { "Configuration (JSON) the plugin's calls get" }
                    textarea #config name="config" spellcheck="false" { (config) }
                }
                div.actions {
                    button.primary type="submit" { "Save configuration" }
                }
            }
            (action_button(ui, &format!("{base}/config/reset"), "Reset to the manifest's default", "", Some("Replace the configuration with the manifest's default?")))
        } @else {
            pre { (config) }
        }
        details.add {
            summary { "The manifest's default configuration" }
            pre { (pretty(&plugin["defaultConfig"])) }
        }
    };
    let mut response = page(ui, name, Nav::Plugins, body);
    *response.status_mut() = status;
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfigForm {
    #[serde(default)]
    config: String,
}

async fn set_config(
    ui: Ui,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<ConfigForm>,
) -> Result<Response, UiError> {
    let path = format!("/plugins/{}", enc(&name));
    let outcome = match serde_json::from_str::<Value>(&form.config) {
        Err(e) => Err(UiError::new(
            StatusCode::BAD_REQUEST,
            format!("The configuration is not JSON: {e}"),
        )),
        Ok(config) => {
            ui.send(Method::PUT, &format!("{path}/config"), Some(config))
                .await
        }
    };
    match outcome {
        Ok(_) => Ok(redirect_with(
            &format!("/ui/plugins/{}", enc(&name)),
            FlashKind::Ok,
            "Configuration saved.",
        )),
        // Refused: the page again with the posted text kept and the causes shown (a redirect
        // would lose the text and cut long causes).
        Err(refused) => {
            let plugin = ui.get(&path).await?;
            Ok(detail(
                &ui,
                &plugin,
                Some((&form.config, &refused.message)),
                refused.status,
            ))
        }
    }
}

type EmptyForm = CsrfForm<BTreeMap<String, String>>;

async fn action(ui: &Ui, name: &str, method: Method, api: &str, done: &str) -> Response {
    let to = format!("/ui/plugins/{}", enc(name));
    match ui
        .send(method, &format!("/plugins/{}{api}", enc(name)), None)
        .await
    {
        Ok(_) => redirect_with(&to, FlashKind::Ok, done),
        Err(e) => redirect_with(&to, FlashKind::Error, &e.message),
    }
}

async fn reset_config(ui: Ui, Path(name): Path<String>, _: EmptyForm) -> Response {
    action(
        &ui,
        &name,
        Method::DELETE,
        "/config",
        "Configuration reset to the manifest's default.",
    )
    .await
}

async fn enable(ui: Ui, Path(name): Path<String>, _: EmptyForm) -> Response {
    action(&ui, &name, Method::POST, "/enable", "Enabled.").await
}

async fn disable(ui: Ui, Path(name): Path<String>, _: EmptyForm) -> Response {
    action(&ui, &name, Method::POST, "/disable", "Disabled.").await
}

async fn delete(ui: Ui, Path(name): Path<String>, _: EmptyForm) -> Response {
    match ui
        .send(Method::DELETE, &format!("/plugins/{}", enc(&name)), None)
        .await
    {
        Ok(_) => redirect_with(
            "/ui/plugins",
            FlashKind::Ok,
            &format!("Plugin {name} deleted."),
        ),
        Err(e) => redirect_with(
            &format!("/ui/plugins/{}", enc(&name)),
            FlashKind::Error,
            &e.message,
        ),
    }
}
