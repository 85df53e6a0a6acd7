//! Console sign-in, sessions and sign-out.
//!
//! A session is a database row ([`crate::storage::sessions`]) found by the SHA-256 hash of a
//! random 256-bit id that only the browser holds, in the `__Host-portico_session` cookie
//! (HttpOnly, Secure, SameSite=Lax, Path=/). Any replica can serve any session. A session ends
//! at sign-out, at its absolute end (`--console-session-ttl-minutes`, never past its token's
//! expiry), after `--console-idle-timeout-minutes` without a request, and when its token is
//! revoked or expires. Who a session is ([`SessionSubject`]) is resolved to a [`Principal`] on
//! every request, so grants changed on the API apply at once.
//!
//! A new way to sign in (single sign-on) only needs to create a session row for its subject:
//! [`start`] does the rest.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{DOCTYPE, html};
use rand::RngCore;
use secrecy::SecretString;
use serde::Deserialize;

use super::form::{csrf_matches, csrf_refused};
use super::{assets, error_page};
use crate::app::App;
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::{AuthError, Identity, Principal};
use crate::crypto::token_hash;
use crate::peer::ClientAddr;
use crate::records::console::{ConsoleSession, SessionSubject};

/// The session cookie. `__Host-`: Secure, no Domain, Path=/, so no other host or path can set
/// or shadow it.
pub(crate) const SESSION_COOKIE: &str = "__Host-portico_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
const LOGIN_COOKIE: &str = "__Host-portico_login";
/// `last_seen_at` is written at most this often per session (idle expiry is in minutes).
const TOUCH_EVERY_MS: i64 = 60_000;

/// A request's session, resolved by [`require`].
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub principal: Principal,
    pub id_hash: String,
    pub csrf: String,
    pub secret: Option<SecretString>,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn set_cookie(response: &mut Response, name: &str, value: &str, max_age_seconds: i64) {
    let cookie = format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The sealing context of a session's secret: bound to that session alone.
pub(crate) fn seal_context(id_hash: &str) -> Vec<u8> {
    format!("portico console session {id_hash}").into_bytes()
}

/// Why a session does not sign a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// No cookie, or no such session.
    None,
    Expired,
    Revoked,
    Unavailable,
    /// A person's identity needs renewing and the identity provider cannot be reached.
    ProviderUnavailable,
}

/// Resolves the session cookie of `headers`.
async fn resolve(app: &App, headers: &HeaderMap) -> Result<SignedIn, Ended> {
    let id = cookie(headers, SESSION_COOKIE).ok_or(Ended::None)?;
    if id.is_empty() || id.len() > 128 {
        return Err(Ended::None);
    }
    let id_hash = token_hash(id);
    let session = app
        .db
        .session(&id_hash)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "console session lookup failed");
            Ended::Unavailable
        })?
        .ok_or(Ended::None)?;
    let now = crate::clock::now_millis();
    let idle_ms = i64::try_from(app.config.console.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    if session.expires_at <= now || session.last_seen_at.saturating_add(idle_ms) <= now {
        let _ = app.db.delete_session(&id_hash).await;
        return Err(Ended::Expired);
    }
    let principal = match &session.subject {
        SessionSubject::Token { token_id } => {
            let token = app
                .db
                .token(token_id)
                .await
                .map_err(|_| Ended::Unavailable)?;
            match token {
                None => {
                    let _ = app.db.delete_session(&id_hash).await;
                    return Err(Ended::Revoked);
                }
                Some(token) if token.expires_at.is_some_and(|at| at <= now) => {
                    let _ = app.db.delete_session(&id_hash).await;
                    return Err(Ended::Expired);
                }
                Some(token) => Principal::Token(std::sync::Arc::new(token)),
            }
        }
        SessionSubject::Person { .. } => {
            let session = person_session(app, session, now).await?;
            let SessionSubject::Person {
                username,
                groups,
                identity_expires_at,
            } = &session.subject
            else {
                return Err(Ended::Revoked);
            };
            let identity = Identity {
                username: username.clone(),
                groups: groups.clone(),
                expires_at: *identity_expires_at,
            };
            let principal = app.auth.person(identity).await.map_err(|e| match e {
                AuthError::Unavailable => Ended::Unavailable,
                _ => Ended::Expired,
            })?;
            return Ok(signed_in(app, session, principal, now).await);
        }
    };
    Ok(signed_in(app, session, principal, now).await)
}

/// A person's session with an identity that has not expired: renewed at the provider when it
/// has (a refusal ends the session).
async fn person_session(
    app: &App,
    session: ConsoleSession,
    now: i64,
) -> Result<ConsoleSession, Ended> {
    match &session.subject {
        SessionSubject::Person {
            identity_expires_at,
            ..
        } if *identity_expires_at <= now => match super::sso::renew(app, &session).await {
            Ok(renewed) => Ok(renewed),
            Err(super::sso::NotRenewed::Unavailable) => Err(Ended::ProviderUnavailable),
            Err(super::sso::NotRenewed::Ended) => {
                let _ = app.db.delete_session(&session.id_hash).await;
                Err(Ended::Expired)
            }
        },
        _ => Ok(session),
    }
}

/// The signed-in request of a live session: records activity, opens a token session's secret.
async fn signed_in(app: &App, session: ConsoleSession, principal: Principal, now: i64) -> SignedIn {
    let id_hash = session.id_hash;
    if now - session.last_seen_at >= TOUCH_EVERY_MS
        && let Err(e) = app.db.touch_session(&id_hash, now).await
    {
        tracing::warn!(error = %e, "cannot record console session activity");
    }
    // A token session's secret is its Portico token (kubeconfig downloads embed it); a
    // person's is a refresh token, which never leaves the session layer.
    let secret = match session.subject {
        SessionSubject::Token { .. } => session.sealed_secret.as_ref().and_then(|sealed| {
            let opened = app.secret_key.open(&seal_context(&id_hash), sealed).ok()?;
            String::from_utf8(opened).ok().map(SecretString::from)
        }),
        SessionSubject::Person { .. } => None,
    };
    SignedIn {
        principal,
        id_hash,
        csrf: session.csrf,
        secret,
    }
}

/// Middleware of the signed-in pages: resolves the session or sends the browser to sign in
/// (a page) or refuses (a post: 401, nothing is done).
pub(crate) async fn require(State(app): State<App>, mut request: Request, next: Next) -> Response {
    match resolve(&app, request.headers()).await {
        Ok(signed_in) => {
            request.extensions_mut().insert(signed_in);
            next.run(request).await
        }
        Err(Ended::Unavailable) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "The gateway cannot read its database right now. Retry in a moment.",
        ),
        Err(Ended::ProviderUnavailable) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Identity provider unreachable",
            "Your sign-in needs renewing and the gateway cannot reach the identity provider \
             right now. Retry in a moment; nothing was changed.",
        ),
        Err(ended) => {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return error_page(
                    StatusCode::UNAUTHORIZED,
                    "Signed out",
                    "Your session has ended; nothing was changed. Sign in again.",
                );
            }
            // The full path: inside the nested router the URI has lost its `/ui` prefix.
            let next_path = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri().clone(), |uri| uri.0.clone())
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let why = match ended {
                Ended::Expired => "&why=expired",
                Ended::Revoked => "&why=revoked",
                _ => "",
            };
            let mut response =
                Redirect::to(&format!("/ui/login?next={}{why}", super::enc(&next_path)))
                    .into_response();
            if ended != Ended::None {
                set_cookie(&mut response, SESSION_COOKIE, "", 0);
            }
            response
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    pub next: Option<String>,
    why: Option<String>,
}

/// Only a console path may be the page after sign-in (no open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
                && !path.contains("//")
                && !path.contains('\\')
                && !path.bytes().any(|b| b.is_ascii_control()) =>
        {
            path.to_owned()
        }
        _ => "/ui".to_owned(),
    }
}

fn login_form(next: &str, csrf: &str, message: Option<&str>, sso: bool) -> maud::Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · Portico" }
                link rel="stylesheet" href=(assets::STYLE_URL);
            }
            body.bare {
                main.narrow.login {
                    h1 { "Portico" }
                    p.muted { "Sign in to the console of this gateway." }
                    @if let Some(message) = message {
                        div.flash.error role="alert" { (message) }
                    }
                    @if sso {
                        p {
                            a.button.primary #sso href={ "/ui/login/sso?next=" (super::enc(next)) } {
                                "Sign in with single sign-on"
                            }
                        }
                        p.muted.small { "Or with a Portico token:" }
                    }
                    form method="post" action="/ui/login" {
                        input type="hidden" name="_csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        label for="token" { "Portico token" }
                        input #token type="password" name="token" autocomplete="off"
                            required placeholder="pt_…" autofocus;
                        button.primary type="submit" { "Sign in" }
                    }
                    p.muted.small {
                        "The token is one an admin made with "
                        code { "portico token create" }
                        " (or the admin token of the first start). What you see and may change \
                         follows its grants."
                    }
                }
            }
        }
    }
}

/// `GET /ui/login`.
pub(crate) async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if resolve(&app, &headers).await.is_ok() {
        return Redirect::to(&next).into_response();
    }
    let message = match query.why.as_deref() {
        Some("expired") => Some("Your session expired. Sign in again."),
        Some("revoked") => Some("Your session ended: its token was revoked."),
        _ => None,
    };
    login_response(&app, &next, StatusCode::OK, message)
}

/// The sign-in page (with `message`, answered with `status`) and a fresh CSRF cookie for it.
pub(crate) fn login_response(
    app: &App,
    next: &str,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let csrf = random_secret();
    let sso = super::sso::enabled(app);
    let mut response = (status, login_form(next, &csrf, message, sso)).into_response();
    set_cookie(&mut response, LOGIN_COOKIE, &csrf, 600);
    response
}

/// The answer to a sign-in that opened a session: audited, the session's cookie set (the
/// sign-in form's cleared), on to `next`.
pub(crate) fn signed_in_redirect(
    app: &App,
    principal: &Principal,
    next: &str,
    cookie_value: &str,
    source: &str,
) -> Response {
    audit(app, Some(principal), "login", StatusCode::SEE_OTHER, source);
    let mut response = Redirect::to(next).into_response();
    set_cookie(&mut response, LOGIN_COOKIE, "", 0);
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        cookie_value,
        i64::try_from(app.config.console.session_ttl.as_secs()).unwrap_or(i64::MAX),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /ui/login`: a Portico token signs in.
pub(crate) async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            form._csrf.as_bytes(),
        ))
    {
        return csrf_refused();
    }
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    let source = client.map(|c| c.0.0.ip().to_string()).unwrap_or_default();
    let principal = match app
        .auth
        .authenticate(Some(&format!("Bearer {token}")))
        .await
    {
        Ok(principal) => principal,
        Err(e) => {
            let (status, message) = match e {
                AuthError::Expired => (StatusCode::UNAUTHORIZED, "This token has expired."),
                AuthError::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The gateway cannot read its database right now. Retry in a moment.",
                ),
                _ => (StatusCode::UNAUTHORIZED, "This token is not valid here."),
            };
            audit(&app, None, "login", status, &source);
            return login_response(&app, &next, status, Some(message));
        }
    };
    let subject = SessionSubject::Token {
        token_id: principal.id().to_owned(),
    };
    match start(&app, subject, Some(token), principal.expires_at()).await {
        Ok(cookie_value) => signed_in_redirect(&app, &principal, &next, &cookie_value, &source),
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a console session");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "The gateway cannot store your session right now. Retry in a moment.",
            )
        }
    }
}

/// Stores a new session for `subject` and returns the cookie value that opens it. `secret` is
/// sealed into the row; `not_after` caps the session's end (a token's expiry).
pub(crate) async fn start(
    app: &App,
    subject: SessionSubject,
    secret: Option<&str>,
    not_after: Option<i64>,
) -> crate::storage::Result<String> {
    let now = crate::clock::now_millis();
    let idle_ms = i64::try_from(app.config.console.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    // Ended sessions of everyone go at each sign-in; a cheap indexed delete.
    app.db
        .delete_expired_sessions(now, now.saturating_sub(idle_ms))
        .await?;
    let id = random_secret();
    let id_hash = token_hash(&id);
    let ttl_ms = i64::try_from(app.config.console.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut expires_at = now.saturating_add(ttl_ms);
    if let Some(limit) = not_after {
        expires_at = expires_at.min(limit);
    }
    let sealed_secret = secret.map(|s| app.secret_key.seal(&seal_context(&id_hash), s.as_bytes()));
    app.db
        .insert_session(&ConsoleSession {
            id_hash,
            subject,
            sealed_secret,
            csrf: random_secret(),
            created_at: now,
            expires_at,
            last_seen_at: now,
        })
        .await?;
    Ok(id)
}

/// `POST /ui/logout`.
pub(crate) async fn logout(
    State(app): State<App>,
    ui: super::Ui,
    client: Option<axum::Extension<ClientAddr>>,
    super::CsrfForm(_): super::CsrfForm<serde_json::Map<String, serde_json::Value>>,
) -> Response {
    let source = client.map(|c| c.0.0.ip().to_string()).unwrap_or_default();
    if let Err(e) = app.db.delete_session(&ui.session).await {
        tracing::warn!(error = %e, "cannot delete a console session");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "The gateway could not end your session. Retry in a moment.",
        );
    }
    audit(
        &app,
        Some(&ui.principal),
        "logout",
        StatusCode::SEE_OTHER,
        &source,
    );
    let mut response = Redirect::to("/ui/login").into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", 0);
    response
}

pub(crate) fn audit(
    app: &App,
    who: Option<&Principal>,
    verb: &str,
    status: StatusCode,
    source: &str,
) {
    app.audit.record(AuditEntry {
        at: crate::clock::now_millis(),
        kind: AuditKind::Console,
        token_id: who.map(|p| p.id().to_owned()).unwrap_or_default(),
        token_name: who.map(|p| p.name().to_owned()).unwrap_or_default(),
        cluster: String::new(),
        verb: verb.to_owned(),
        path: format!("/ui/{verb}"),
        status: status.as_u16(),
        source: source.to_owned(),
    });
}

/// Whether the signed-in form post of `headers`/`token` matches (for handlers that read a
/// multipart body themselves).
pub(crate) fn csrf_ok(signed_in: &SignedIn, token: &str) -> bool {
    csrf_matches(signed_in, token)
}
