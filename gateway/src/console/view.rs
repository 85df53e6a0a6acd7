//! The signed-in layout and the small pieces every page uses: navigation, flash messages,
//! state badges, times, and forms that carry the CSRF token.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::{Ui, assets};
use crate::auth::Principal;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Clusters,
    Replicas,
    Inspections,
    Plugins,
    Helm,
    Audit,
    Tokens,
    Webhooks,
}

impl Nav {
    /// Every section: `(nav, label, link, admin only)`. Non-admins see only what the API lets
    /// them read (their clusters and the replicas).
    const ALL: [(Nav, &'static str, &'static str, bool); 9] = [
        (Nav::Overview, "Overview", "/ui", false),
        (Nav::Clusters, "Clusters", "/ui/clusters", false),
        (Nav::Replicas, "Replicas", "/ui/replicas", false),
        (Nav::Inspections, "Inspections", "/ui/inspections", true),
        (Nav::Plugins, "Plugins", "/ui/plugins", true),
        (Nav::Helm, "Helm", "/ui/helm", true),
        (Nav::Audit, "Audit", "/ui/audit", true),
        (Nav::Tokens, "Tokens", "/ui/tokens", true),
        (Nav::Webhooks, "Webhooks", "/ui/webhooks", true),
    ];
}

pub(crate) fn layout(ui: &Ui, title: &str, active: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Portico" }
                link rel="stylesheet" href=(assets::STYLE_URL);
                script src=(assets::SCRIPT_URL) defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "Portico" }
                    nav {
                        @for (nav, label, href, admin_only) in Nav::ALL {
                            @if !admin_only || ui.is_admin() {
                                a href=(href) class=[(nav == active).then_some("active")] { (label) }
                            }
                        }
                    }
                    div.who {
                        @match &ui.principal {
                            Principal::Person(person) => {
                                span.user #who title={ "Signed in through single sign-on; groups: "
                                    (if person.groups.is_empty() { "none".to_owned() } else { person.groups.join(", ") }) } {
                                    (person.username)
                                }
                                span.badge { "SSO" }
                            }
                            Principal::Token(token) => {
                                span.user #who title="Signed in with a Portico token" { (token.name) }
                            }
                        }
                        @if ui.is_admin() { span.badge.admin { "admin" } }
                        form method="post" action="/ui/logout" {
                            (csrf_field(ui))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(flash) = &ui.flash {
                        div class={ "flash " (flash.kind.class()) } role="status" { (flash.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of every form.
pub(crate) fn csrf_field(ui: &Ui) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ui.csrf); }
}

/// A one-button form that posts to `action` (with a confirmation question when `confirm`).
pub(crate) fn action_button(
    ui: &Ui,
    action: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(ui))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// Wraps a region that refreshes itself every `seconds` (console.js re-reads the page and
/// swaps the element with the same id).
pub(crate) fn live(id: &str, seconds: u32, body: Markup) -> Markup {
    html! {
        div id=(id) data-refresh=(seconds) { (body) }
    }
}

/// The outcome of the last action, carried across its redirect in a short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub kind: FlashKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlashKind {
    Ok,
    Error,
}

impl FlashKind {
    fn class(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

const FLASH_COOKIE: &str = "__Host-portico_flash";

impl Flash {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = super::session::cookie(headers, FLASH_COOKIE)?;
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (kind, text) = text.split_once(':')?;
        let kind = match kind {
            "ok" => FlashKind::Ok,
            "error" => FlashKind::Error,
            _ => return None,
        };
        Some(Self {
            kind,
            text: text.chars().take(2000).collect(),
        })
    }
}

/// Redirects (303) to `to` with a message for the next page.
pub(crate) fn redirect_with(to: &str, kind: FlashKind, text: &str) -> Response {
    let text: String = text.chars().take(1500).collect();
    let value = URL_SAFE_NO_PAD.encode(format!("{}:{text}", kind.class()));
    let cookie =
        format!("{FLASH_COOKIE}={value}; Path=/; Max-Age=30; HttpOnly; Secure; SameSite=Lax");
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Clears the flash cookie once a page showed it.
pub(crate) fn consume_flash(ui: &Ui, mut response: Response) -> Response {
    if ui.flash.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "__Host-portico_flash=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
            ),
        );
    }
    response
}

/// A page response: the layout around `body`, the flash consumed.
pub(crate) fn page(ui: &Ui, title: &str, active: Nav, body: Markup) -> Response {
    consume_flash(ui, layout(ui, title, active, body).into_response())
}

/// The badge of a connection state (`connected`, `connecting`, `failed`, `disconnected`, …).
pub(crate) fn state_badge(state: &str) -> Markup {
    let class = match state {
        "connected" | "success" | "passed" | "delivered" => "good",
        "connecting" | "reconnecting" | "running" | "pending" => "busy",
        "failed" | "error" | "timeout" => "bad",
        _ => "idle",
    };
    html! { span class={ "state " (class) } { (state) } }
}

/// Unix milliseconds as an ISO-8601 UTC time with a relative hint (`3 min ago`).
pub(crate) fn time(millis: i64) -> Markup {
    let now = crate::clock::now_millis();
    let iso = jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    html! { time datetime=(millis) title=(iso) { (ago(now - millis)) } }
}

/// A time value from the API (Unix milliseconds), or a dash.
pub(crate) fn time_of(value: &Value) -> Markup {
    match value.as_i64() {
        Some(millis) => time(millis),
        None => html! { span.muted { "—" } },
    }
}

/// How long ago, in words.
pub(crate) fn ago(millis: i64) -> String {
    if millis < 0 {
        return "in the future".to_owned();
    }
    let seconds = millis / 1000;
    match seconds {
        0..=4 => "just now".to_owned(),
        5..=59 => format!("{seconds} s ago"),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

/// A string field of an API object, or "".
pub(crate) fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The `items` array of an API list.
pub(crate) fn items(value: &Value) -> &[Value] {
    value
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Percent-encodes a path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An empty-state line.
pub(crate) fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}
