//! Who is calling, and what they may do.
//!
//! Callers present `Authorization: Bearer <token>`. A token has a role (`admin` may do
//! everything; `user` only what its grants allow) and per-cluster grants (`read`: GET/HEAD,
//! watches and logs; `write`: everything, upgrades included). Tokens are looked up by hash; a
//! short-lived cache keeps the database off the proxy's hot path.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::crypto::{generate_token, token_hash};
use crate::storage::{self, Db};

/// Id of the token that `--admin-token` (or the first start) provides.
pub const BOOTSTRAP_TOKEN_ID: &str = "bootstrap-admin";

/// How long a validated token is trusted before it is looked up again. A token deleted on
/// another replica stops working here within this time; on this replica, at once.
const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX_ENTRIES: usize = 10_000;

pub use crate::records::auth::{Access, Grant, Role, Token};

impl Token {
    fn expired_at(&self, now_millis: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_millis)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: Arc<Token>,
}

impl Principal {
    /// A stable id of the caller: the token's id (audit entries, stream limits, sessions).
    pub fn id(&self) -> &str {
        &self.token.id
    }

    /// The caller's display name: the token's name.
    pub fn name(&self) -> &str {
        &self.token.name
    }

    pub fn is_admin(&self) -> bool {
        self.token.role == Role::Admin
    }

    /// The strongest grant that covers `cluster_id`, if any.
    pub fn grant_for(&self, cluster_id: &str) -> Option<Grant> {
        if self.is_admin() {
            return Some(Grant {
                cluster: cluster_id.to_owned(),
                access: Access::Write,
                impersonate: false,
            });
        }
        self.token
            .grants
            .iter()
            .filter(|g| g.cluster == "*" || g.cluster == cluster_id)
            .max_by_key(|g| (g.access, g.cluster != "*"))
            .cloned()
    }
}

/// Why a request is not authenticated (always a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing `Authorization: Bearer <token>` header")]
    Missing,
    /// Not a bearer token, or a token this gateway does not know.
    #[error("invalid token")]
    Invalid,
    /// A known token past its expiry.
    #[error("token expired")]
    Expired,
    /// The token store could not be read.
    #[error("token store unavailable")]
    Unavailable,
}

/// A name sent as `Impersonate-User` or `Impersonate-Group`: 1-1024 printable ASCII
/// characters, no leading or trailing space (HTTP would trim it into another name).
pub fn impersonation_header(name: &str) -> Result<http::HeaderValue, BadImpersonationName> {
    if name.is_empty() || name.len() > 1024 {
        return Err(BadImpersonationName::Length);
    }
    let printable = name.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable || name.trim() != name {
        return Err(BadImpersonationName::Characters);
    }
    http::HeaderValue::from_str(name).map_err(BadImpersonationName::Header)
}

/// The token of an `Authorization: Bearer <token>` value (scheme case as clients send it),
/// trimmed; `None` for another scheme or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Why a name cannot be impersonated.
#[derive(Debug, thiserror::Error)]
pub enum BadImpersonationName {
    #[error("must be 1-1024 characters")]
    Length,
    #[error("must be printable ASCII without control characters or leading/trailing spaces")]
    Characters,
    #[error(transparent)]
    Header(#[from] http::header::InvalidHeaderValue),
}

/// Checks bearer tokens against the database, with a short positive cache, and tracks the
/// long-lived requests each token holds open.
#[derive(Debug)]
pub struct Authenticator {
    db: Db,
    cache: Mutex<HashMap<String, (Arc<Token>, Instant)>>,
    streams: Arc<Streams>,
}

/// Long-lived requests (watches, followed logs, upgrades) open per token id.
#[derive(Debug)]
struct Streams {
    max_per_token: usize,
    open: Mutex<HashMap<String, TokenStreams>>,
}

#[derive(Debug)]
struct TokenStreams {
    token: Arc<Token>,
    count: usize,
    /// Cancelled when the token is revoked or expires: every stream of the token ends.
    revoked: CancellationToken,
}

/// One open long-lived request. Dropping it frees the token's slot.
#[derive(Debug)]
pub struct StreamGuard {
    streams: Arc<Streams>,
    token_id: String,
    revoked: CancellationToken,
}

impl StreamGuard {
    /// Completes when the token is revoked or expires.
    pub fn revoked(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.revoked.clone().cancelled_owned()
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock();
        if let Some(entry) = open.get_mut(&self.token_id) {
            entry.count -= 1;
            if entry.count == 0 {
                open.remove(&self.token_id);
            }
        }
    }
}

impl Authenticator {
    /// `max_streams_per_token`: long-lived requests one token may hold open at once.
    pub fn new(db: Db, max_streams_per_token: usize) -> Self {
        Self {
            db,
            cache: Mutex::new(HashMap::new()),
            streams: Arc::new(Streams {
                max_per_token: max_streams_per_token,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes one of the token's long-lived request slots; `Err(limit)` when all are taken.
    pub fn open_stream(&self, token: &Arc<Token>) -> Result<StreamGuard, usize> {
        let mut open = self.streams.open.lock();
        let entry = open
            .entry(token.id.clone())
            .or_insert_with(|| TokenStreams {
                token: token.clone(),
                count: 0,
                revoked: CancellationToken::new(),
            });
        if entry.count >= self.streams.max_per_token {
            return Err(self.streams.max_per_token);
        }
        entry.count += 1;
        Ok(StreamGuard {
            streams: self.streams.clone(),
            token_id: token.id.clone(),
            revoked: entry.revoked.clone(),
        })
    }

    /// Ends the streams of tokens that were deleted (on any replica) or expired. Runs until
    /// `stop`, every [`CACHE_TTL`]: the same bound as the cache gives every other request. A
    /// token store that cannot be read ends nothing (the token was valid when last seen);
    /// expiry is decided locally and always applies.
    pub async fn watch_streams(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(CACHE_TTL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let held: Vec<Arc<Token>> = self
                .streams
                .open
                .lock()
                .values()
                .map(|entry| entry.token.clone())
                .collect();
            for token in held {
                let gone = if token.expired_at(clock::now_millis()) {
                    Some("expired")
                } else {
                    match self.db.token(&token.id).await {
                        Ok(None) => Some("revoked"),
                        Ok(Some(current)) if current.expired_at(clock::now_millis()) => {
                            Some("expired")
                        }
                        Ok(Some(_)) => None,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot re-check the tokens of open streams");
                            None
                        }
                    }
                };
                if let Some(why) = gone {
                    tracing::info!(token = %token.name, why, "closing the token's open streams");
                    self.end_streams(&token.id);
                }
            }
        }
    }

    fn end_streams(&self, token_id: &str) {
        if let Some(entry) = self.streams.open.lock().get(token_id) {
            entry.revoked.cancel();
        }
    }

    /// Authenticates a request by its `Authorization` header (the proxy and the API both).
    pub async fn authenticate_headers(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Principal, AuthError> {
        let header = match headers.get(http::header::AUTHORIZATION) {
            Some(value) => Some(value.to_str().map_err(|_| AuthError::Invalid)?),
            None => None,
        };
        self.authenticate(header).await
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = bearer_token(header).ok_or(AuthError::Invalid)?;
        let hash = token_hash(token);
        let now = Instant::now();
        let cached = self
            .cache
            .lock()
            .get(&hash)
            .filter(|(_, at)| now.duration_since(*at) < CACHE_TTL)
            .map(|(t, _)| t.clone());
        let token = match cached {
            Some(token) => token,
            None => {
                let token = self
                    .db
                    .token_by_hash(&hash)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "token lookup failed");
                        AuthError::Unavailable
                    })?
                    .map(Arc::new)
                    .ok_or(AuthError::Invalid)?;
                let mut cache = self.cache.lock();
                if cache.len() >= CACHE_MAX_ENTRIES {
                    cache.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
                    if cache.len() >= CACHE_MAX_ENTRIES {
                        cache.clear();
                    }
                }
                cache.insert(hash, (token.clone(), now));
                token
            }
        };
        if token.expired_at(clock::now_millis()) {
            return Err(AuthError::Expired);
        }
        Ok(Principal { token })
    }

    /// Drops a token from the cache and ends its open streams (after it was deleted here).
    pub fn forget(&self, token_id: &str) {
        self.cache.lock().retain(|_, (t, _)| t.id != token_id);
        self.end_streams(token_id);
    }
}

/// Makes sure an admin token exists. With `given`, the bootstrap admin token's hash becomes
/// that token's. Without it, a first start generates a token and returns it so the caller can
/// print it once; later starts return `None`. Replicas racing on a shared database generate at
/// most one.
pub async fn bootstrap_admin(db: &Db, given: Option<&str>) -> storage::Result<Option<String>> {
    let record = |now| Token {
        id: BOOTSTRAP_TOKEN_ID.to_owned(),
        name: "admin".to_owned(),
        role: Role::Admin,
        grants: Vec::new(),
        impersonate_user: None,
        impersonate_groups: Vec::new(),
        created_at: now,
        expires_at: None,
    };
    let now = clock::now_millis();
    match given {
        Some(token) => {
            db.upsert_token_hash(&record(now), &token_hash(token))
                .await?;
            Ok(None)
        }
        None => {
            let token = generate_token();
            let inserted = db
                .insert_token_if_absent(&record(now), &token_hash(&token))
                .await?;
            Ok(inserted.then_some(token))
        }
    }
}

#[cfg(test)]
mod tests;
