//! Phase 1 of a proxied request: who is calling, may they do this on this cluster, with which
//! identity upstream, and may they open one more long-lived stream. Refusals are audited here.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use super::headers::verb;
use super::status::StatusError;
use super::{Call, Proxy};
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::{Access, AuthError, Grant, Principal, StreamGuard};

/// A caller allowed to make the call.
pub(super) struct Admitted {
    pub(super) principal: Principal,
    /// `Impersonate-User`/`Impersonate-Group` when the grant impersonates.
    pub(super) impersonation: Vec<(HeaderName, HeaderValue)>,
}

impl Proxy {
    /// Authenticates the caller and checks its grant for the call; builds the impersonation
    /// headers before anything is sent (a request whose identity cannot be expressed is
    /// refused).
    pub(super) async fn admit(
        &self,
        call: &Call<'_>,
        headers: &HeaderMap,
    ) -> Result<Admitted, StatusError> {
        let principal = match self
            .auth
            .authenticate_headers(headers)
            .await
            .map_err(auth_status)
        {
            Ok(principal) => principal,
            Err(e) => {
                self.record_refusal(None, call, e.code);
                return Err(e);
            }
        };
        let refused = |e: StatusError| {
            self.record_refusal(Some(&principal), call, e.code);
            e
        };
        let grant = authorize(&principal, call).map_err(refused)?;
        let impersonation = if grant.impersonate {
            impersonation_headers(&principal).map_err(refused)?
        } else {
            Vec::new()
        };
        Ok(Admitted {
            principal,
            impersonation,
        })
    }

    /// A long-lived request (watch, followed log, upgrade) holds one of the token's stream
    /// slots and ends when the token is revoked or expires.
    pub(super) fn stream_slot(
        &self,
        call: &Call<'_>,
        principal: &Principal,
    ) -> Result<Option<StreamGuard>, StatusError> {
        if !is_long_lived(call.target.path, call.query.as_deref(), call.upgrade) {
            return Ok(None);
        }
        self.auth.open_stream(principal).map(Some).map_err(|limit| {
            let e = StatusError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "{} `{}` already has {limit} long-lived requests (watches, streams, \
                     exec) open; close some first",
                    principal.kind(),
                    principal.name()
                ),
            );
            self.record_refusal(Some(principal), call, e.code);
            e
        })
    }

    /// Audits a request Portico refused itself (401, 403, 429), whatever its method.
    fn record_refusal(&self, principal: Option<&Principal>, call: &Call<'_>, status: StatusCode) {
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        ) {
            let verb = verb(&call.method, call.target.path, call.upgrade)
                .unwrap_or_else(|| call.method.as_str().to_ascii_lowercase());
            self.record(principal, call, verb, status);
        }
    }

    pub(super) fn record(
        &self,
        principal: Option<&Principal>,
        call: &Call<'_>,
        verb: String,
        status: StatusCode,
    ) {
        self.audit.record(AuditEntry {
            at: crate::clock::now_millis(),
            kind: AuditKind::Proxy,
            token_id: principal.map(|p| p.id().to_owned()).unwrap_or_default(),
            token_name: principal.map(|p| p.name().to_owned()).unwrap_or_default(),
            cluster: call.target.cluster.to_owned(),
            verb,
            path: call.path_and_query.chars().take(2048).collect(),
            status: status.as_u16(),
            source: call
                .client
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default(),
        });
    }
}

/// The strongest grant of `principal` for the call's cluster, if it allows the call.
fn authorize(principal: &Principal, call: &Call<'_>) -> Result<Grant, StatusError> {
    let target = call.target;
    let grant = principal.grant_for(target.cluster).ok_or_else(|| {
        StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} `{}` has no grant for cluster `{}`",
                principal.kind(),
                principal.name(),
                target.cluster
            ),
        )
    })?;
    let read_only = matches!(call.method, Method::GET | Method::HEAD) && !call.upgrade;
    if grant.access == Access::Read && !read_only {
        return Err(StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} `{}` has read access to cluster `{}`: {} {} needs write access",
                principal.kind(),
                principal.name(),
                target.cluster,
                if call.upgrade {
                    "upgrade"
                } else {
                    call.method.as_str()
                },
                target.path
            ),
        ));
    }
    Ok(grant)
}

/// `Impersonate-User` and `Impersonate-Group` for a grant that impersonates: a token's
/// impersonated user and groups, or a person's name and groups. Token names are checked when
/// a token is created; a name that still cannot be sent (a token stored before that check, a
/// group from the identity provider with odd characters) refuses the request: sending it
/// without the headers would act with the gateway's own credential.
fn impersonation_headers(
    principal: &Principal,
) -> Result<Vec<(HeaderName, HeaderValue)>, StatusError> {
    let refuse = |what: &str| {
        let fix = match principal {
            Principal::Token(_) => "recreate the token with a valid name",
            Principal::Person(_) => "ask the identity provider's admin to rename it",
        };
        StatusError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} `{}`: its impersonated {what} cannot be sent as a header; the request \
                 was refused ({fix})",
                principal.kind(),
                principal.name()
            ),
        )
    };
    let (user, groups) = principal.impersonation();
    let mut headers = Vec::with_capacity(1 + groups.len());
    let value = crate::auth::impersonation_header(user).map_err(|_| refuse("user"))?;
    headers.push((HeaderName::from_static("impersonate-user"), value));
    for group in groups {
        let value = crate::auth::impersonation_header(group).map_err(|_| refuse("group"))?;
        headers.push((HeaderName::from_static("impersonate-group"), value));
    }
    Ok(headers)
}

/// Watches (`?watch=true`, `/watch/` paths), followed logs and upgrades: requests that stay
/// open as long as the client wants.
pub(super) fn is_long_lived(path: &str, query: Option<&str>, upgrade: bool) -> bool {
    upgrade || is_watch(path, query) || query_flag(query, "follow")
}

/// A watch (`?watch=true` or a deprecated `/watch/` path).
pub(super) fn is_watch(path: &str, query: Option<&str>) -> bool {
    path.contains("/watch/") || query_flag(query, "watch")
}

fn query_flag(query: Option<&str>, name: &str) -> bool {
    // Go's strconv.ParseBool, as the apiserver reads these parameters.
    let truthy = |v: &str| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True");
    query.is_some_and(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(k, v)| k == name && truthy(v))
    })
}

fn auth_status(e: AuthError) -> StatusError {
    match e {
        AuthError::Unavailable => StatusError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        ),
        _ => StatusError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("portico: {e}"),
        ),
    }
}
