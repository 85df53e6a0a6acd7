//! OpenID Connect ID tokens as bearer tokens, checked the way kube-apiserver checks them.
//!
//! ```text
//! token ─▶ cache (by hash, ≤ VERIFIED_TTL, never past exp) ─ hit ─▶ identity
//!            │ miss
//!            ▼
//!   header: alg in --oidc-signing-algs? ── no ─▶ 401 (never `none`, never HMAC)
//!            ▼
//!   key by `kid` in the cached JWKS ── unknown ─▶ refetch discovery + JWKS (at most once per
//!            │                                    REFRESH_INTERVAL) ── still unknown ─▶ 401
//!            ▼
//!   signature, iss, aud, exp, nbf/iat (small skew) ─▶ username, groups, required claims
//! ```
//!
//! A provider that cannot be reached keeps the keys already fetched working; a key it has not
//! published before fails closed.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::clock;
use crate::config::OidcConfig;
use crate::crypto::token_hash;

/// Clock skew allowed on `nbf` and `iat` (and, by the token library, on `exp`; the principal's
/// own expiry is the exact `exp`).
const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// An unknown key refetches the JWKS at most this often (a flood of forged `kid`s costs the
/// provider one request per interval).
const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a verified token is trusted without checking it again (never past its `exp`).
const VERIFIED_TTL: Duration = Duration::from_secs(10);
const VERIFIED_MAX_ENTRIES: usize = 10_000;
/// Bound on one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a discovery document or key set.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// A person as an ID token names them: the user name and groups with the configured prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub groups: Vec<String>,
    /// Unix milliseconds: the ID token's `exp`.
    pub expires_at: i64,
}

/// Why an ID token is refused. Messages say which check failed and never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Not three base64url parts with a JSON header and claims.
    #[error("not a well-formed JWT")]
    Malformed,
    /// `alg` is not one of `--oidc-signing-algs` (`none` and HMAC never are).
    #[error("signing algorithm `{alg}` is not accepted (accepted: {accepted})")]
    Algorithm { alg: String, accepted: String },
    /// No published key verifies the signature.
    #[error("the signature does not verify")]
    BadSignature,
    /// The token's `kid` is not in the issuer's key set, even after refetching it.
    #[error("signed with a key the issuer does not publish (kid `{0}`)")]
    UnknownKey(String),
    /// The issuer's keys were never fetched and cannot be now.
    #[error("the issuer's signing keys cannot be fetched; try again later")]
    KeysUnavailable,
    #[error("wrong issuer: `iss` must be `{0}`")]
    WrongIssuer(String),
    #[error("wrong audience: `aud` must contain the client id `{0}`")]
    WrongAudience(String),
    #[error("expired (`exp` has passed)")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("not valid yet (`{0}` is in the future)")]
    NotYetValid(&'static str),
    #[error("claim `{0}` is missing")]
    MissingClaim(String),
    #[error("claim `{0}` must be {1}")]
    BadClaim(String, &'static str),
    /// The user name is the `email` claim and `email_verified` is not true.
    #[error("the email address is not verified (`email_verified` is not true)")]
    EmailNotVerified,
    /// An `--oidc-required-claim` does not hold.
    #[error("required claim `{0}` does not have the required value")]
    RequiredClaim(String),
    /// A sign-in's ID token does not carry the `nonce` that sign-in sent.
    #[error("the ID token's `nonce` is not the one this sign-in sent")]
    Nonce,
}

/// The provider's endpoints for a sign-in, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct SignInEndpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The scopes it lists, when it lists them.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// The verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    #[error("--oidc-ca-file holds no usable PEM certificate: {0}")]
    CaFile(String),
    #[error("--oidc-signing-algs: `{0}` is not an asymmetric signing algorithm")]
    Algorithm(String),
    #[error("cannot build the HTTP client for the issuer: {0}")]
    Client(String),
}

/// Whether a bearer token is shaped like a JWT (and is not a Portico token): the cheap test
/// that sends it to the verifier rather than the token store.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    !token.starts_with("pt_") && token.starts_with("eyJ") && token.split('.').count() == 3
}

/// One published verification key.
#[derive(Debug)]
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when the JWKS names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Debug, Default)]
struct KeyState {
    keys: Vec<std::sync::Arc<Key>>,
    jwks_uri: Option<String>,
}

/// Verifies ID tokens of one issuer. Shared by every request (`Arc`).
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    algorithms: Vec<Algorithm>,
    http: reqwest::Client,
    keys: Mutex<KeyState>,
    /// When the key set was last fetched (or tried); held across the fetch so concurrent
    /// misses wait for one fetch instead of each sending their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    verified: Mutex<HashMap<String, (Identity, Instant)>>,
    refresh_interval: Duration,
    /// The console's sign-in endpoints, once discovered.
    sign_in: tokio::sync::Mutex<Option<SignInEndpoints>>,
    /// For the token endpoint: like `http`, but never follows a redirect (a code or a
    /// refresh token goes to the discovered endpoint or nowhere).
    token_http: reqwest::Client,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Self, OidcSetupError> {
        let algorithms = config
            .signing_algs
            .iter()
            .map(|name| {
                Algorithm::from_str(name)
                    .ok()
                    .filter(|a| a.family() != jsonwebtoken::AlgorithmFamily::Hmac)
                    .ok_or_else(|| OidcSetupError::Algorithm(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = |redirects: reqwest::redirect::Policy| {
            let mut http = reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .redirect(redirects);
            if let Some(pem) = &config.ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| OidcSetupError::CaFile(e.to_string()))?;
                if certs.is_empty() {
                    return Err(OidcSetupError::CaFile("no certificate found".to_owned()));
                }
                http = http.tls_built_in_root_certs(false);
                for cert in certs {
                    http = http.add_root_certificate(cert);
                }
            }
            http.build()
                .map_err(|e| OidcSetupError::Client(e.to_string()))
        };
        let http = client(reqwest::redirect::Policy::limited(3))?;
        let token_http = client(reqwest::redirect::Policy::none())?;
        Ok(Self {
            config,
            algorithms,
            http,
            keys: Mutex::new(KeyState::default()),
            last_fetch: tokio::sync::Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
            refresh_interval: REFRESH_INTERVAL,
            sign_in: tokio::sync::Mutex::new(None),
            token_http,
        })
    }

    /// Sets how often an unknown key may refetch the JWKS (tests shorten or pin it).
    #[cfg(test)]
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The configured issuer URL.
    pub fn issuer(&self) -> &str {
        &self.config.issuer_url
    }

    /// The configured client id (the `aud` of accepted tokens).
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// Checks an ID token and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let hash = token_hash(token);
        let now = Instant::now();
        let cached = self
            .verified
            .lock()
            .get(&hash)
            .filter(|(identity, at)| {
                now.duration_since(*at) < VERIFIED_TTL && identity.expires_at > clock::now_millis()
            })
            .map(|(identity, _)| identity.clone());
        if let Some(identity) = cached {
            return Ok(identity);
        }
        let identity = self.verify_uncached(token, &self.config.client_id).await?;
        let mut verified = self.verified.lock();
        if verified.len() >= VERIFIED_MAX_ENTRIES {
            let wall = clock::now_millis();
            verified.retain(|_, (identity, at)| {
                now.duration_since(*at) < VERIFIED_TTL && identity.expires_at > wall
            });
            if verified.len() >= VERIFIED_MAX_ENTRIES {
                verified.clear();
            }
        }
        verified.insert(hash, (identity.clone(), now));
        Ok(identity)
    }

    /// Checks the ID token of a sign-in (the console's code flow, or its refresh) for client
    /// `audience`: every check of [`Oidc::verify`], with `audience` instead of
    /// `--oidc-client-id`, and, when given, the `nonce` the sign-in sent. Not cached.
    pub async fn verify_sign_in(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<Identity, OidcError> {
        let claims = self.verified_claims(token, audience).await?;
        if let Some(nonce) = nonce {
            let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                sent.as_bytes(),
                nonce.as_bytes(),
            )) {
                return Err(OidcError::Nonce);
            }
        }
        self.identity(&claims)
    }

    /// The provider's authorization and token endpoints (discovery, fetched once).
    pub async fn sign_in_endpoints(&self) -> Result<SignInEndpoints, String> {
        let mut cached = self.sign_in.lock().await;
        if let Some(endpoints) = &*cached {
            return Ok(endpoints.clone());
        }
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            #[serde(flatten)]
            endpoints: SignInEndpoints,
        }
        let discovery: Discovery = self.get_json(&self.discovery_url()).await?;
        if discovery.issuer != self.config.issuer_url {
            return Err(format!(
                "the discovery document names the issuer `{}`, not `{}`",
                discovery.issuer, self.config.issuer_url
            ));
        }
        *cached = Some(discovery.endpoints.clone());
        Ok(discovery.endpoints)
    }

    /// The HTTP client for the provider's token endpoint: the provider's CA, no redirects.
    pub fn token_client(&self) -> &reqwest::Client {
        &self.token_http
    }

    fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer_url.trim_end_matches('/')
        )
    }

    async fn verify_uncached(&self, token: &str, audience: &str) -> Result<Identity, OidcError> {
        let claims = self.verified_claims(token, audience).await?;
        self.identity(&claims)
    }

    /// The claims of a token whose algorithm, signature, issuer, audience and times are good.
    async fn verified_claims(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let (alg, kid) = self.header(token)?;
        let mut candidates = self.candidates(alg, kid.as_deref());
        if candidates.is_empty() {
            self.refresh_for(alg, kid.as_deref()).await;
            candidates = self.candidates(alg, kid.as_deref());
        }
        if candidates.is_empty() {
            let never_fetched = self.keys.lock().jwks_uri.is_none();
            return Err(match kid {
                _ if never_fetched => OidcError::KeysUnavailable,
                Some(kid) => OidcError::UnknownKey(kid.chars().take(64).collect()),
                None => OidcError::UnknownKey(String::new()),
            });
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer_url]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = CLOCK_SKEW.as_secs();
        let mut last = OidcError::BadSignature;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = self.rejection(e.kind(), audience);
                    if last != OidcError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// The header's `alg` (checked against the accepted ones before anything else) and `kid`.
    fn header(&self, token: &str) -> Result<(Algorithm, Option<String>), OidcError> {
        #[derive(Deserialize)]
        struct RawHeader {
            alg: String,
            kid: Option<String>,
        }
        let encoded = token.split('.').next().ok_or(OidcError::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| OidcError::Malformed)?;
        let raw: RawHeader = serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)?;
        let alg = Algorithm::from_str(&raw.alg)
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| OidcError::Algorithm {
                alg: raw.alg.chars().take(32).collect(),
                accepted: self.config.signing_algs.join(", "),
            })?;
        Ok((alg, raw.kid))
    }

    /// Published keys that may have signed a token with this `alg` and `kid`.
    fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<std::sync::Arc<Key>> {
        self.keys
            .lock()
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg))
            .cloned()
            .collect()
    }

    /// Refetches the key set for a key it lacks, at most once per refresh interval; a failed
    /// fetch keeps the keys there are.
    async fn refresh_for(&self, alg: Algorithm, kid: Option<&str>) {
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if !self.candidates(alg, kid).is_empty() {
            return;
        }
        let now = Instant::now();
        if last_fetch.is_some_and(|at| now.duration_since(at) < self.refresh_interval) {
            return;
        }
        *last_fetch = Some(now);
        match self.fetch_keys().await {
            Ok((jwks_uri, keys)) => {
                tracing::info!(issuer = %self.config.issuer_url, keys = keys.len(), "OIDC signing keys fetched");
                *self.keys.lock() = KeyState {
                    keys,
                    jwks_uri: Some(jwks_uri),
                };
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer_url, error = %e, "cannot fetch the OIDC signing keys; keeping the cached ones");
            }
        }
    }

    /// Discovery, then the key set it points to.
    async fn fetch_keys(&self) -> Result<(String, Vec<std::sync::Arc<Key>>), String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<Value>,
        }
        let discovery: Discovery = self.get_json(&self.discovery_url()).await?;
        if discovery.issuer != self.config.issuer_url {
            return Err(format!(
                "the discovery document names the issuer `{}`, not `{}`",
                discovery.issuer, self.config.issuer_url
            ));
        }
        let set: KeySet = self.get_json(&discovery.jwks_uri).await?;
        let keys = set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| verification_key(&jwk))
            .map(std::sync::Arc::new)
            .collect();
        Ok((discovery.jwks_uri, keys))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON: {e}"))
    }

    fn rejection(&self, kind: &ErrorKind, audience: &str) -> OidcError {
        match kind {
            ErrorKind::InvalidSignature => OidcError::BadSignature,
            ErrorKind::ExpiredSignature => OidcError::Expired,
            ErrorKind::ImmatureSignature => OidcError::NotYetValid("nbf"),
            ErrorKind::InvalidIssuer => OidcError::WrongIssuer(self.config.issuer_url.clone()),
            ErrorKind::InvalidAudience => OidcError::WrongAudience(audience.to_owned()),
            ErrorKind::MissingRequiredClaim(claim) => OidcError::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(claim) => {
                OidcError::BadClaim(claim.clone(), "of the registered type")
            }
            ErrorKind::InvalidAlgorithm => OidcError::Algorithm {
                alg: "?".to_owned(),
                accepted: self.config.signing_algs.join(", "),
            },
            _ => OidcError::Malformed,
        }
    }

    /// User name, groups and required claims of a token whose signature and registered claims
    /// are good.
    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, OidcError> {
        let config = &self.config;
        let now = clock::now_millis() / 1000;
        let skew = i64::try_from(CLOCK_SKEW.as_secs()).unwrap_or(0);
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_f64()
                .ok_or_else(|| OidcError::BadClaim("iat".to_owned(), "a number"))?;
            if iat > (now + skew) as f64 {
                return Err(OidcError::NotYetValid("iat"));
            }
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or_else(|| OidcError::MissingClaim("exp".to_owned()))?;
        // `exp` was checked to be a time (a number) by the token library.
        let expires_at = (exp * 1000.0) as i64;
        if expires_at <= clock::now_millis() {
            return Err(OidcError::Expired);
        }
        let username = match claims.get(&config.username_claim) {
            None => return Err(OidcError::MissingClaim(config.username_claim.clone())),
            Some(Value::String(name)) if !name.is_empty() => name,
            Some(_) => {
                return Err(OidcError::BadClaim(
                    config.username_claim.clone(),
                    "a non-empty string",
                ));
            }
        };
        // kube-apiserver: with `email` as the user name, `email_verified`, when present, must
        // be true.
        if config.username_claim == "email"
            && claims
                .get("email_verified")
                .is_some_and(|v| v != &Value::Bool(true))
        {
            return Err(OidcError::EmailNotVerified);
        }
        let groups: Vec<String> = match claims.get(&config.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(group)) => vec![group.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    OidcError::BadClaim(
                        config.groups_claim.clone(),
                        "a string or an array of strings",
                    )
                })?,
            Some(_) => {
                return Err(OidcError::BadClaim(
                    config.groups_claim.clone(),
                    "a string or an array of strings",
                ));
            }
        };
        for (key, value) in &config.required_claims {
            match claims.get(key) {
                None => return Err(OidcError::MissingClaim(key.clone())),
                Some(Value::String(v)) if v == value => {}
                Some(_) => return Err(OidcError::RequiredClaim(key.clone())),
            }
        }
        Ok(Identity {
            username: format!("{}{username}", config.username_prefix),
            groups: groups
                .into_iter()
                .map(|g| format!("{}{g}", config.groups_prefix))
                .collect(),
            expires_at,
        })
    }
}

/// A JWKS entry usable to verify signatures: asymmetric, not marked for encryption. Symmetric
/// (`oct`) entries are dropped here, so no HMAC key can ever be used.
fn verification_key(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    if !matches!(
        jwk.algorithm,
        AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_)
    ) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let alg = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::from_str(&format!("{alg:?}")).ok()?),
        None => None,
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests;
