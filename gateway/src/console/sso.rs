//! Console sign-in through the identity provider (single sign-on).
//!
//! A server-side authorization-code flow with PKCE and a nonce:
//!
//! ```text
//! GET /ui/login/sso?next=…   state, nonce, PKCE verifier, next → sealed, 10-minute
//!                            `__Host-portico_sso` cookie; 303 to the provider
//! provider: sign-in, consent ─▶ GET /ui/login/sso/callback?code=…&state=…
//!                            cookie opened (this browser started this sign-in), state
//!                            compared; code + verifier exchanged at the token endpoint (the
//!                            console's client id and secret); the ID token checked like a
//!                            bearer ID token, for the console's client id and this nonce
//!                            ─▶ a session of the person (user name, groups, the ID token's
//!                            expiry; the refresh token sealed in the row) ─▶ 303 to `next`
//! ```
//!
//! A person's session holds the identity the provider asserted until the ID token's `exp`;
//! then the first request renews it with the refresh token (new groups apply), and a provider
//! that refuses ends the session. A provider that cannot be reached signs nobody in until it
//! answers again (the session is kept). Grants are read on every request, as for tokens.

use std::sync::LazyLock;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse as _,
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use super::error_page;
use super::session::{self, LoginQuery};
use crate::app::App;
use crate::auth::oauth::{self, OAuthClient, TokenAnswer};
use crate::auth::{AuthError, Identity, Oidc};
use crate::config::ConsoleSso;
use crate::peer::ClientAddr;
use crate::records::console::{ConsoleSession, SessionSubject};

/// The cookie that carries a sign-in from its start to the provider's callback.
const FLOW_COOKIE: &str = "__Host-portico_sso";
/// A sign-in must come back from the provider within this long.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// The callback's path under the gateway's public URL (registered at the provider).
pub(crate) const CALLBACK_PATH: &str = "/ui/login/sso/callback";
const FLOW_CONTEXT: &[u8] = b"portico console sign-in flow";

/// What the flow cookie holds (sealed: the browser can neither read nor change it).
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    redirect_uri: String,
    started_at: i64,
}

/// The configured sign-in: the console's client and the provider's verifier.
fn configured(app: &App) -> Option<(&ConsoleSso, &Oidc)> {
    Some((app.config.console.sso.as_ref()?, app.auth.oidc()?.as_ref()))
}

/// Whether the sign-in page offers single sign-on.
pub(crate) fn enabled(app: &App) -> bool {
    configured(app).is_some()
}

async fn client(
    sso: &ConsoleSso,
    oidc: &Oidc,
) -> Result<(OAuthClient, Option<Vec<String>>), Response> {
    let endpoints = oidc.sign_in_endpoints().await.map_err(|e| {
        tracing::warn!(issuer = oidc.issuer(), error = %e, "cannot read the identity provider's discovery document");
        provider_unreachable()
    })?;
    let client = oauth::client(
        &sso.client_id,
        sso.client_secret.as_ref().map(|s| s.expose_secret()),
        &endpoints.authorization_endpoint,
        &endpoints.token_endpoint,
    )
    .map_err(|e| {
        error_page(
            StatusCode::BAD_GATEWAY,
            "Identity provider misconfigured",
            &e,
        )
    })?;
    Ok((client, endpoints.scopes_supported))
}

fn provider_unreachable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Identity provider unreachable",
        "The gateway cannot reach the identity provider right now. Retry in a moment, or sign \
         in with a Portico token.",
    )
}

/// `GET /ui/login/sso`: starts a sign-in at the provider.
pub(crate) async fn start(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some((sso, oidc)) = configured(&app) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Single sign-on is not configured",
            "This gateway has no identity provider (--oidc-issuer-url). Sign in with a Portico \
             token.",
        );
    };
    let redirect_uri = match crate::api::kubeconfig::export_base(&app, &uri, &headers) {
        Ok(base) => format!("{}{CALLBACK_PATH}", base.trim_end_matches('/')),
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Cannot sign in", &e.message),
    };
    let (client, supported) = match client(sso, oidc).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let client = match RedirectUrl::new(redirect_uri.clone()) {
        Ok(url) => client.set_redirect_uri(url),
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Cannot sign in",
                &format!("the callback URL `{redirect_uri}` is not a URL: {e}"),
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = session::random_secret();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_extra_param("nonce", &nonce);
    for scope in oauth::default_scopes(supported.as_deref()) {
        request = request.add_scope(Scope::new(scope));
    }
    let (url, state) = request.url();
    let flow = Flow {
        state: state.secret().clone(),
        nonce,
        verifier: verifier.secret().clone(),
        next: session::safe_next(query.next.as_deref()),
        redirect_uri,
        started_at: crate::clock::now_millis(),
    };
    let sealed = app.secret_key.seal(
        FLOW_CONTEXT,
        &serde_json::to_vec(&flow).expect("the flow serializes"),
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    session::set_cookie(
        &mut response,
        FLOW_COOKIE,
        &base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sealed),
        FLOW_TTL_MS / 1000,
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The flow this browser started, if its cookie opens and is recent.
fn flow_of(app: &App, headers: &HeaderMap) -> Option<Flow> {
    let value = session::cookie(headers, FLOW_COOKIE)?;
    let sealed =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, value).ok()?;
    let opened = app.secret_key.open(FLOW_CONTEXT, &sealed).ok()?;
    let flow: Flow = serde_json::from_slice(&opened).ok()?;
    let age = crate::clock::now_millis().saturating_sub(flow.started_at);
    (0..FLOW_TTL_MS).contains(&age).then_some(flow)
}

/// `GET /ui/login/sso/callback`: the provider sends the browser back with a code.
pub(crate) async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    client_addr: Option<axum::Extension<ClientAddr>>,
    Query(callback): Query<Callback>,
) -> Response {
    let source = client_addr
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_default();
    let mut response = match finish(&app, &headers, callback).await {
        Ok((next, principal, cookie_value)) => {
            session::signed_in_redirect(&app, &principal, &next, &cookie_value, &source)
        }
        Err(refused) => {
            session::audit(&app, None, "login", refused.status, &source);
            session::login_response(&app, "/ui", refused.status, Some(&refused.message))
        }
    };
    // The flow is used up, whatever happened.
    session::set_cookie(&mut response, FLOW_COOKIE, "", 0);
    response
}

/// Why a callback signs nobody in (shown on the sign-in page).
struct Refused {
    status: StatusCode,
    message: String,
}

fn refused(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused {
        status,
        message: message.into(),
    }
}

async fn finish(
    app: &App,
    headers: &HeaderMap,
    callback: Callback,
) -> Result<(String, crate::auth::Principal, String), Refused> {
    let (sso, oidc) = configured(app).ok_or_else(|| {
        refused(
            StatusCode::NOT_FOUND,
            "Single sign-on is not configured on this gateway.",
        )
    })?;
    let flow = flow_of(app, headers).ok_or_else(|| {
        refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser, or took longer than 10 minutes. \
             Start it again.",
        )
    })?;
    let state_matches = callback.state.as_deref().is_some_and(|state| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            state.as_bytes(),
            flow.state.as_bytes(),
        ))
    });
    if !state_matches {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "This answer from the identity provider is not for the sign-in this browser \
             started. Start it again.",
        ));
    }
    if let Some(error) = callback.error {
        let description = callback.error_description.unwrap_or_default();
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            format!("The identity provider did not sign you in: {error} {description}")
                .trim_end()
                .to_owned(),
        ));
    }
    let code = callback
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| refused(StatusCode::BAD_REQUEST, "The provider sent no code."))?;
    let (client, _) = client(sso, oidc).await.map_err(|_| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway cannot reach the identity provider right now. Retry in a moment.",
        )
    })?;
    let redirect = RedirectUrl::new(flow.redirect_uri.clone())
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e.to_string()))?;
    let answer = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request_async(oidc.token_client())
        .await
        .map_err(|e| token_error("The identity provider did not accept the sign-in", &e))?;
    let (identity, refresh_token) = identity_of(oidc, sso, &answer, Some(&flow.nonce)).await?;
    let principal = app
        .auth
        .person(identity.clone())
        .await
        .map_err(|e| match e {
            AuthError::Unavailable => refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway cannot read its database right now. Retry in a moment.",
            ),
            other => refused(StatusCode::UNAUTHORIZED, other.to_string()),
        })?;
    let subject = SessionSubject::Person {
        username: identity.username,
        groups: identity.groups,
        identity_expires_at: identity.expires_at,
    };
    // Without a refresh token the session cannot outlive the ID token.
    let not_after = refresh_token.is_none().then_some(identity.expires_at);
    let cookie_value = session::start(app, subject, refresh_token.as_deref(), not_after)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot store a console session");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway cannot store your session right now. Retry in a moment.",
            )
        })?;
    Ok((flow.next, principal, cookie_value))
}

fn token_error<E: std::error::Error>(
    what: &str,
    e: &RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> Refused {
    match e {
        RequestTokenError::ServerResponse(answer) => refused(
            StatusCode::UNAUTHORIZED,
            format!(
                "{what}: {}{}",
                answer.error(),
                answer
                    .error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        ),
        other => refused(StatusCode::BAD_GATEWAY, format!("{what}: {other}")),
    }
}

/// The checked identity of a token endpoint's answer, and its refresh token.
async fn identity_of(
    oidc: &Oidc,
    sso: &ConsoleSso,
    answer: &TokenAnswer,
    nonce: Option<&str>,
) -> Result<(Identity, Option<String>), Refused> {
    let id_token = answer.extra_fields().id_token.as_deref().ok_or_else(|| {
        refused(
            StatusCode::BAD_GATEWAY,
            "The identity provider answered without an ID token.",
        )
    })?;
    let identity = oidc
        .verify_sign_in(id_token, &sso.client_id, nonce)
        .await
        .map_err(|e| {
            refused(
                StatusCode::UNAUTHORIZED,
                format!("The identity provider's ID token is refused: {e}."),
            )
        })?;
    let refresh_token = answer.refresh_token().map(|t| t.secret().clone());
    Ok((identity, refresh_token))
}

/// Why a person's identity was not renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotRenewed {
    /// The provider refused (or no refresh token, or another person): the session ends.
    Ended,
    /// The provider or the database cannot be reached: nobody is signed in, the session stays.
    Unavailable,
}

/// One renewal at a time in this process: a provider that rotates refresh tokens accepts each
/// only once, so concurrent requests of one session must not each spend it.
static RENEWING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// Renews the identity of a person's session whose ID token has expired, with its refresh
/// token; returns the renewed session.
pub(crate) async fn renew(
    app: &App,
    session: &ConsoleSession,
) -> Result<ConsoleSession, NotRenewed> {
    let SessionSubject::Person {
        username,
        identity_expires_at: expired_at,
        ..
    } = &session.subject
    else {
        return Err(NotRenewed::Ended);
    };
    let _one_at_a_time = RENEWING.lock().await;
    // Another request may have renewed it while this one waited.
    let current = app
        .db
        .session(&session.id_hash)
        .await
        .map_err(|_| NotRenewed::Unavailable)?
        .ok_or(NotRenewed::Ended)?;
    if let SessionSubject::Person {
        identity_expires_at,
        ..
    } = &current.subject
        && *identity_expires_at != *expired_at
    {
        return Ok(current);
    }
    let (sso, oidc) = configured(app).ok_or(NotRenewed::Ended)?;
    let context = session::seal_context(&session.id_hash);
    let refresh_token = session
        .sealed_secret
        .as_ref()
        .and_then(|sealed| app.secret_key.open(&context, sealed).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(NotRenewed::Ended)?;
    let (client, _) = client(sso, oidc)
        .await
        .map_err(|_| NotRenewed::Unavailable)?;
    let answer = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.clone()))
        .request_async(oidc.token_client())
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(answer) => {
                tracing::info!(error = %answer.error(), "the identity provider refused to renew a console session");
                NotRenewed::Ended
            }
            other => {
                tracing::warn!(error = %other, "cannot renew a console session at the identity provider");
                NotRenewed::Unavailable
            }
        })?;
    let (identity, rotated) = identity_of(oidc, sso, &answer, None)
        .await
        .map_err(|refused| {
            tracing::info!(reason = %refused.message, "a renewed console identity is refused");
            NotRenewed::Ended
        })?;
    if identity.username != *username {
        tracing::warn!("a renewed console identity names another person; the session ends");
        return Err(NotRenewed::Ended);
    }
    let refresh_token = rotated.unwrap_or(refresh_token);
    let sealed = app.secret_key.seal(&context, refresh_token.as_bytes());
    let stored = app
        .db
        .renew_person_session(
            &session.id_hash,
            *expired_at,
            &identity.groups,
            identity.expires_at,
            Some(&sealed),
        )
        .await
        .map_err(|_| NotRenewed::Unavailable)?;
    if !stored {
        // Renewed or ended elsewhere meanwhile: what the database holds now decides.
        return app
            .db
            .session(&session.id_hash)
            .await
            .map_err(|_| NotRenewed::Unavailable)?
            .ok_or(NotRenewed::Ended);
    }
    Ok(ConsoleSession {
        subject: SessionSubject::Person {
            username: identity.username,
            groups: identity.groups,
            identity_expires_at: identity.expires_at,
        },
        sealed_secret: Some(sealed),
        ..current
    })
}
