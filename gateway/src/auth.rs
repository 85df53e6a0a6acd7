//! Who is calling, and what they may do.
//!
//! Callers present `Authorization: Bearer <token>`: a Portico token (`pt_…`) or, with OIDC
//! configured, an ID token from the identity provider ([`oidc`]). A Portico token has a role
//! (`admin` may do everything; `user` only what its grants allow) and per-cluster grants
//! (`read`: GET/HEAD, watches and logs; `write`: everything, upgrades included). A person
//! signed in through OIDC has the grants whose subject is their user name or one of their
//! groups ([`SubjectGrant`]); `admin` on `*` makes them a Portico admin. Tokens are looked up
//! by hash; short-lived caches keep the database and the signature check off the proxy's hot
//! path.

use std::collections::{BTreeMap, HashMap};
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

pub use crate::records::auth::{
    Access, Grant, PersonAccess, Role, Subject, SubjectGrant, SubjectKind, Token,
};
pub use oidc::{Identity, Oidc, OidcError, OidcSetupError};
pub use selector::Selector;

impl Token {
    fn expired_at(&self, now_millis: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_millis)
    }
}

/// An authenticated caller: a Portico token, or a person signed in through OIDC. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub enum Principal {
    Token(Arc<Token>),
    Person(Arc<Person>),
}

impl Principal {
    /// A stable id of the caller (audit entries, stream limits, sessions): the token's id, or
    /// `oidc:<username>` for a person.
    pub fn id(&self) -> &str {
        match self {
            Self::Token(token) => &token.id,
            Self::Person(person) => &person.id,
        }
    }

    /// The caller's display name: the token's name, or the person's user name.
    pub fn name(&self) -> &str {
        match self {
            Self::Token(token) => &token.name,
            Self::Person(person) => &person.username,
        }
    }

    /// Unix milliseconds after which the credential is no longer accepted: the token's expiry,
    /// or the ID token's `exp`.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Self::Token(token) => token.expires_at,
            Self::Person(person) => Some(person.expires_at),
        }
    }

    pub fn is_admin(&self) -> bool {
        match self {
            Self::Token(token) => token.role == Role::Admin,
            Self::Person(person) => person.is_admin(),
        }
    }

    /// The strongest grant that covers `cluster_id`, if any. Label selectors of people's grants
    /// are matched against the labels of this replica's connection to the cluster.
    pub fn grant_for(&self, cluster_id: &str) -> Option<Grant> {
        match self {
            Self::Person(person) if !person.is_admin() => {
                let labels = person.labels.labels(cluster_id);
                person.grant_matching(cluster_id, labels.as_deref())
            }
            _ => self.grant_for_labels(cluster_id, &BTreeMap::new()),
        }
    }

    /// [`Principal::grant_for`] for a cluster whose labels the caller has at hand (a stored
    /// record: lists show clusters this replica is not connected to).
    pub fn grant_for_labels(
        &self,
        cluster_id: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Grant> {
        if self.is_admin() {
            return Some(Grant {
                cluster: cluster_id.to_owned(),
                access: Access::Write,
                impersonate: false,
            });
        }
        match self {
            Self::Token(token) => token
                .grants
                .iter()
                .filter(|g| g.cluster == "*" || g.cluster == cluster_id)
                .max_by_key(|g| (g.access, g.cluster != "*"))
                .cloned(),
            Self::Person(person) => person.grant_matching(cluster_id, Some(labels)),
        }
    }

    /// The Kubernetes user and groups a grant with `impersonate` sends: the token's
    /// impersonated user (default: its name) and groups, or the person's name and groups.
    pub fn impersonation(&self) -> (&str, &[String]) {
        match self {
            Self::Token(token) => (
                token.impersonate_user.as_deref().unwrap_or(&token.name),
                &token.impersonate_groups,
            ),
            Self::Person(person) => (&person.username, &person.groups),
        }
    }

    /// What kind of caller this is, for messages: `token` or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Person(_) => "user",
        }
    }
}

/// Labels of the clusters this replica is connected to, for the label selectors of people's
/// grants. The wiring implements it over the cluster registry (kept in memory, so checking a
/// grant costs no I/O).
pub trait ClusterLabels: Send + Sync + std::fmt::Debug {
    fn labels(&self, cluster_id: &str) -> Option<Arc<BTreeMap<String, String>>>;
}

/// No labels known: selector grants match nothing.
#[derive(Debug)]
struct NoLabels;

impl ClusterLabels for NoLabels {
    fn labels(&self, _: &str) -> Option<Arc<BTreeMap<String, String>>> {
        None
    }
}

/// A person signed in through OIDC, with the grants that apply to them.
#[derive(Debug)]
pub struct Person {
    id: String,
    /// The user name, after `--oidc-username-prefix`.
    pub username: String,
    /// The groups, each after `--oidc-groups-prefix`.
    pub groups: Vec<String>,
    /// Unix milliseconds: the ID token's `exp` (or the session's end).
    pub expires_at: i64,
    grants: Vec<Arc<PersonGrant>>,
    labels: Arc<dyn ClusterLabels>,
}

impl Person {
    fn is_admin(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.record.access == PersonAccess::Admin && matches!(g.scope, Scope::All))
    }

    /// The strongest of the person's grants for the cluster: highest access, and among equals
    /// one that impersonates (the cluster's own RBAC then decides) over one that does not.
    fn grant_matching(
        &self,
        cluster_id: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Option<Grant> {
        self.grants
            .iter()
            .filter(|g| match &g.scope {
                Scope::All => true,
                Scope::Cluster(id) => id == cluster_id,
                Scope::Selector(selector) => labels.is_some_and(|l| selector.matches(l)),
            })
            .map(|g| (g.record.access.cluster_access(), g.record.impersonate))
            .max()
            .map(|(access, impersonate)| Grant {
                cluster: cluster_id.to_owned(),
                access,
                impersonate,
            })
    }
}

/// Every stored grant for people, shared by the principals built from one load.
type PersonGrants = Arc<Vec<Arc<PersonGrant>>>;

/// A stored grant for people with its cluster scope parsed.
#[derive(Debug)]
struct PersonGrant {
    record: SubjectGrant,
    scope: Scope,
}

#[derive(Debug)]
enum Scope {
    All,
    Cluster(String),
    Selector(Selector),
}

impl PersonGrant {
    /// `None` for a stored grant whose selector no longer parses (it then grants nothing).
    fn new(record: SubjectGrant) -> Option<Self> {
        let scope = match (&record.cluster, &record.selector) {
            (Some(c), _) if c == "*" => Scope::All,
            (Some(c), _) => Scope::Cluster(c.clone()),
            (None, Some(s)) => match Selector::parse(s) {
                Ok(selector) => Scope::Selector(selector),
                Err(e) => {
                    tracing::warn!(grant = %record.id, error = %e, "ignoring a stored grant");
                    return None;
                }
            },
            (None, None) => return None,
        };
        Some(Self { record, scope })
    }

    fn applies_to(&self, username: &str, groups: &[String]) -> bool {
        let subject = &self.record.subject;
        match subject.kind {
            SubjectKind::User => subject.name == username,
            SubjectKind::Group => groups.contains(&subject.name),
        }
    }
}

/// Why a request is not authenticated (a 401, or 503 for `Unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// An ID token that failed one of the checks (which one is said).
    #[error("ID token rejected: {0}")]
    IdToken(#[from] OidcError),
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

/// Checks bearer tokens: Portico tokens against the database, with a short positive cache; ID
/// tokens with the OIDC verifier, when one is configured. Tracks the long-lived requests each
/// caller holds open.
#[derive(Debug)]
pub struct Authenticator {
    db: Db,
    cache: Mutex<HashMap<String, (Arc<Token>, Instant)>>,
    streams: Arc<Streams>,
    oidc: Option<Arc<Oidc>>,
    labels: Arc<dyn ClusterLabels>,
    /// Every grant for people, loaded at most every [`CACHE_TTL`].
    person_grants: Mutex<Option<(PersonGrants, Instant)>>,
}

/// Long-lived requests (watches, followed logs, upgrades) open per caller id.
#[derive(Debug)]
struct Streams {
    max_per_token: usize,
    open: Mutex<HashMap<String, CallerStreams>>,
}

#[derive(Debug)]
struct CallerStreams {
    principal: Principal,
    count: usize,
    /// Cancelled when the token is revoked or expires: every stream of the token ends.
    revoked: CancellationToken,
}

/// One open long-lived request. Dropping it frees the caller's slot.
#[derive(Debug)]
pub struct StreamGuard {
    streams: Arc<Streams>,
    caller_id: String,
    /// This stream's own token: a child of the caller's, and cancelled at the credential's
    /// expiry for a person (each of a person's ID tokens has its own `exp`).
    revoked: CancellationToken,
}

impl StreamGuard {
    /// Completes when the token is revoked or the credential expires.
    pub fn revoked(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.revoked.clone().cancelled_owned()
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // Ends this stream's expiry timer; the caller's other streams keep theirs.
        self.revoked.cancel();
        let mut open = self.streams.open.lock();
        if let Some(entry) = open.get_mut(&self.caller_id) {
            entry.count -= 1;
            if entry.count == 0 {
                open.remove(&self.caller_id);
            }
        }
    }
}

impl Authenticator {
    /// `max_streams_per_token`: long-lived requests one caller may hold open at once.
    pub fn new(db: Db, max_streams_per_token: usize) -> Self {
        Self {
            db,
            cache: Mutex::new(HashMap::new()),
            streams: Arc::new(Streams {
                max_per_token: max_streams_per_token,
                open: Mutex::new(HashMap::new()),
            }),
            oidc: None,
            labels: Arc::new(NoLabels),
            person_grants: Mutex::new(None),
        }
    }

    /// Accepts ID tokens that `oidc` verifies.
    pub fn with_oidc(mut self, oidc: Arc<Oidc>) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// Where the label selectors of people's grants find a cluster's labels.
    pub fn with_cluster_labels(mut self, labels: Arc<dyn ClusterLabels>) -> Self {
        self.labels = labels;
        self
    }

    /// The OIDC verifier, when OIDC is configured.
    pub fn oidc(&self) -> Option<&Arc<Oidc>> {
        self.oidc.as_ref()
    }

    /// Takes one of the caller's long-lived request slots; `Err(limit)` when all are taken. A
    /// person's stream also ends when their ID token expires.
    pub fn open_stream(&self, principal: &Principal) -> Result<StreamGuard, usize> {
        let mut open = self.streams.open.lock();
        let entry = open
            .entry(principal.id().to_owned())
            .or_insert_with(|| CallerStreams {
                principal: principal.clone(),
                count: 0,
                revoked: CancellationToken::new(),
            });
        if entry.count >= self.streams.max_per_token {
            return Err(self.streams.max_per_token);
        }
        entry.count += 1;
        let revoked = entry.revoked.child_token();
        if let Principal::Person(person) = principal {
            let left = person.expires_at.saturating_sub(clock::now_millis());
            let timer = revoked.clone();
            tokio::spawn(async move {
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
                tokio::select! {
                    () = tokio::time::sleep(left) => timer.cancel(),
                    () = timer.cancelled() => {}
                }
            });
        }
        Ok(StreamGuard {
            streams: self.streams.clone(),
            caller_id: principal.id().to_owned(),
            revoked,
        })
    }

    /// Ends the streams of tokens that were deleted (on any replica) or expired. Runs until
    /// `stop`, every [`CACHE_TTL`]: the same bound as the cache gives every other request. A
    /// token store that cannot be read ends nothing (the token was valid when last seen);
    /// expiry is decided locally and always applies. People have no token row: their streams
    /// end at their ID token's expiry ([`Authenticator::open_stream`]).
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
                .filter_map(|entry| match &entry.principal {
                    Principal::Token(token) => Some(token.clone()),
                    Principal::Person(_) => None,
                })
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

    fn end_streams(&self, caller_id: &str) {
        if let Some(entry) = self.streams.open.lock().get(caller_id) {
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
        if let Some(verifier) = &self.oidc
            && oidc::looks_like_jwt(token)
        {
            let identity = verifier.verify(token).await?;
            return self.person(identity).await;
        }
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
        Ok(Principal::Token(token))
    }

    /// The principal of a person with a verified identity (an ID token, or a console session
    /// that keeps the user name, groups and expiry it was opened with): the grants for their
    /// user name and groups. Past `identity.expires_at` it is refused.
    pub async fn person(&self, identity: Identity) -> Result<Principal, AuthError> {
        if identity.expires_at <= clock::now_millis() {
            return Err(AuthError::Expired);
        }
        let all = self.person_grants().await?;
        let grants = all
            .iter()
            .filter(|g| g.applies_to(&identity.username, &identity.groups))
            .cloned()
            .collect();
        Ok(Principal::Person(Arc::new(Person {
            id: format!("oidc:{}", identity.username),
            username: identity.username,
            groups: identity.groups,
            expires_at: identity.expires_at,
            grants,
            labels: self.labels.clone(),
        })))
    }

    /// Every grant for people; read from the database at most every [`CACHE_TTL`] (a grant
    /// deleted on another replica stops applying here within that time; here, at once). A
    /// database that cannot be read refuses (nothing is granted from a stale guess).
    async fn person_grants(&self) -> Result<PersonGrants, AuthError> {
        let now = Instant::now();
        if let Some((grants, at)) = &*self.person_grants.lock()
            && now.duration_since(*at) < CACHE_TTL
        {
            return Ok(grants.clone());
        }
        let records = self.db.subject_grants().await.map_err(|e| {
            tracing::warn!(error = %e, "grant lookup failed");
            AuthError::Unavailable
        })?;
        let grants: PersonGrants = Arc::new(
            records
                .into_iter()
                .filter_map(PersonGrant::new)
                .map(Arc::new)
                .collect(),
        );
        *self.person_grants.lock() = Some((grants.clone(), now));
        Ok(grants)
    }

    /// Drops the cached grants for people (after one was created or deleted here).
    pub fn forget_person_grants(&self) {
        *self.person_grants.lock() = None;
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

pub mod oauth;
mod oidc;
mod selector;

#[cfg(test)]
mod tests;
