//! The verifier against an in-process issuer (axum on 127.0.0.1:0) that serves discovery and a
//! JWKS it can rotate or withhold. The RSA keys are test-only fixtures generated for these
//! tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::*;

const KEY_1: &str = include_str!("test-key-1.pem");
const KEY_1_PUBLIC: &str = include_str!("test-key-1.pub.pem");
const KEY_2: &str = include_str!("test-key-2.pem");
const CLIENT: &str = "portico";

/// The issuer's published state.
#[derive(Debug, Default)]
struct Provider {
    issuer: Mutex<String>,
    jwks: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

async fn discovery(State(p): State<Arc<Provider>>) -> Response {
    // Every fetch of the keys starts here.
    p.fetches.fetch_add(1, Ordering::SeqCst);
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = p.issuer.lock().clone();
    Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")})).into_response()
}

async fn keys(State(p): State<Arc<Provider>>) -> Response {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({"keys": *p.jwks.lock()})).into_response()
}

/// A running issuer and a verifier for it.
struct Fixture {
    provider: Arc<Provider>,
    issuer: String,
}

impl Fixture {
    async fn start() -> Self {
        let provider = Arc::new(Provider::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        *provider.issuer.lock() = issuer.clone();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let fixture = Self { provider, issuer };
        fixture.publish(&[("k1", KEY_1)]);
        fixture
    }

    fn publish(&self, keys: &[(&str, &str)]) {
        *self.provider.jwks.lock() = keys
            .iter()
            .map(|(kid, pem)| {
                let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
                jwk.common.key_id = Some((*kid).to_owned());
                serde_json::to_value(jwk).unwrap()
            })
            .collect();
    }

    fn config(&self) -> OidcConfig {
        OidcConfig {
            issuer_url: self.issuer.clone(),
            client_id: CLIENT.to_owned(),
            username_claim: "email".to_owned(),
            username_prefix: String::new(),
            groups_claim: "groups".to_owned(),
            groups_prefix: "oidc:".to_owned(),
            ca_pem: None,
            required_claims: Vec::new(),
            signing_algs: vec!["RS256".to_owned()],
        }
    }

    /// A verifier that may refetch keys at any time.
    fn verifier(&self) -> Oidc {
        Oidc::new(self.config())
            .unwrap()
            .with_refresh_interval(Duration::ZERO)
    }

    /// Claims of a good token for alice, changed by `edit`.
    fn claims(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let now = clock::now_millis() / 1000;
        let mut claims = json!({
            "iss": self.issuer,
            "aud": CLIENT,
            "sub": "alice-id",
            "email": "alice@example.com",
            "email_verified": true,
            "groups": ["devs", "ops"],
            "iat": now,
            "exp": now + 600,
        });
        edit(claims.as_object_mut().unwrap());
        claims
    }

    fn fetches(&self) -> usize {
        self.provider.fetches.load(Ordering::SeqCst)
    }
}

fn sign(kid: &str, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn a_good_token_names_the_user_and_prefixed_groups() {
    let f = Fixture::start().await;
    let token = sign("k1", KEY_1, &f.claims(|_| {}));
    let identity = f.verifier().verify(&token).await.unwrap();
    assert_eq!(identity.username, "alice@example.com");
    assert_eq!(identity.groups, ["oidc:devs", "oidc:ops"]);
    assert!(identity.expires_at > clock::now_millis());
}

#[tokio::test]
async fn registered_claims_are_checked() {
    let f = Fixture::start().await;
    let oidc = f.verifier();
    let now = clock::now_millis() / 1000;
    let cases: Vec<(Value, OidcError)> = vec![
        (
            f.claims(|c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
            OidcError::WrongAudience(CLIENT.into()),
        ),
        (
            f.claims(|c| {
                c.insert("aud".into(), json!(["a", "b"]));
            }),
            OidcError::WrongAudience(CLIENT.into()),
        ),
        (
            f.claims(|c| {
                c.insert("iss".into(), json!("https://evil.example.com"));
            }),
            OidcError::WrongIssuer(f.issuer.clone()),
        ),
        (
            f.claims(|c| {
                c.insert("exp".into(), json!(now - 600));
            }),
            OidcError::Expired,
        ),
        (
            f.claims(|c| {
                c.insert("nbf".into(), json!(now + 600));
            }),
            OidcError::NotYetValid("nbf"),
        ),
        (
            f.claims(|c| {
                c.insert("iat".into(), json!(now + 600));
            }),
            OidcError::NotYetValid("iat"),
        ),
        (
            f.claims(|c| {
                c.remove("exp");
            }),
            OidcError::MissingClaim("exp".into()),
        ),
        (
            f.claims(|c| {
                c.remove("email");
            }),
            OidcError::MissingClaim("email".into()),
        ),
        (
            f.claims(|c| {
                c.insert("email_verified".into(), json!(false));
            }),
            OidcError::EmailNotVerified,
        ),
        (
            f.claims(|c| {
                c.insert("groups".into(), json!([1, 2]));
            }),
            OidcError::BadClaim("groups".into(), "a string or an array of strings"),
        ),
    ];
    for (claims, want) in cases {
        let token = sign("k1", KEY_1, &claims);
        assert_eq!(oidc.verify(&token).await.unwrap_err(), want, "{claims}");
    }
    // An audience array that contains the client id is fine.
    let token = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("aud".into(), json!(["other", CLIENT]));
        }),
    );
    oidc.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_sign_in_token_verifies_only_for_its_client_and_nonce() {
    let f = Fixture::start().await;
    let oidc = f.verifier();
    let console = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("aud".into(), json!("portico-console"));
            c.insert("nonce".into(), json!("n-0123456789"));
        }),
    );
    assert_eq!(
        oidc.verify(&console).await.unwrap_err(),
        OidcError::WrongAudience(CLIENT.into())
    );
    let identity = oidc
        .verify_sign_in(&console, "portico-console", Some("n-0123456789"))
        .await
        .unwrap();
    assert_eq!(identity.username, "alice@example.com");
    // A sign-in's token must carry that sign-in's nonce.
    assert_eq!(
        oidc.verify_sign_in(&console, "portico-console", Some("n-other"))
            .await
            .unwrap_err(),
        OidcError::Nonce
    );
    let no_nonce = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("aud".into(), json!("portico-console"));
        }),
    );
    assert_eq!(
        oidc.verify_sign_in(&no_nonce, "portico-console", Some("n-0123456789"))
            .await
            .unwrap_err(),
        OidcError::Nonce
    );
    // A renewal sends no nonce.
    oidc.verify_sign_in(&no_nonce, "portico-console", None)
        .await
        .unwrap();
    // Not cached: the bearer-token path still refuses it.
    assert!(oidc.verify(&console).await.is_err());
    let cli = sign("k1", KEY_1, &f.claims(|_| {}));
    assert_eq!(
        oidc.verify_sign_in(&cli, "portico-console", None)
            .await
            .unwrap_err(),
        OidcError::WrongAudience("portico-console".into())
    );
}

#[tokio::test]
async fn a_groups_claim_may_be_one_string() {
    let f = Fixture::start().await;
    let token = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("groups".into(), json!("devs"));
        }),
    );
    let identity = f.verifier().verify(&token).await.unwrap();
    assert_eq!(identity.groups, ["oidc:devs"]);
}

#[tokio::test]
async fn required_claims_must_be_present_with_their_value() {
    let f = Fixture::start().await;
    let mut config = f.config();
    config.required_claims = vec![("hd".into(), "example.com".into())];
    let oidc = Oidc::new(config).unwrap();
    let missing = sign("k1", KEY_1, &f.claims(|_| {}));
    assert_eq!(
        oidc.verify(&missing).await.unwrap_err(),
        OidcError::MissingClaim("hd".into())
    );
    let wrong = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("hd".into(), json!("evil.com"));
        }),
    );
    assert_eq!(
        oidc.verify(&wrong).await.unwrap_err(),
        OidcError::RequiredClaim("hd".into())
    );
    let good = sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("hd".into(), json!("example.com"));
        }),
    );
    oidc.verify(&good).await.unwrap();
}

#[tokio::test]
async fn other_username_claims_get_the_issuer_prefix_by_default() {
    let f = Fixture::start().await;
    let mut config = f.config();
    config.username_claim = "sub".into();
    config.username_prefix = format!("{}#", f.issuer);
    let token = sign("k1", KEY_1, &f.claims(|_| {}));
    let identity = Oidc::new(config).unwrap().verify(&token).await.unwrap();
    assert_eq!(identity.username, format!("{}#alice-id", f.issuer));
}

#[tokio::test]
async fn a_signature_by_another_key_fails() {
    let f = Fixture::start().await;
    // Claims kid k1 but signed with key 2.
    let token = sign("k1", KEY_2, &f.claims(|_| {}));
    assert_eq!(
        f.verifier().verify(&token).await.unwrap_err(),
        OidcError::BadSignature
    );
    // A tampered payload under a genuine signature.
    let good = sign("k1", KEY_1, &f.claims(|_| {}));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = f.claims(|c| {
        c.insert("email".into(), json!("admin@example.com"));
    });
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    assert_eq!(
        f.verifier().verify(&tampered).await.unwrap_err(),
        OidcError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = Fixture::start().await;
    let header = json!({"alg": "none", "kid": "k1", "typ": "JWT"});
    let token = format!("{}.{}.", b64(&header), b64(&f.claims(|_| {})));
    let err = f.verifier().verify(&token).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::Algorithm { alg, .. } if alg == "none"),
        "{err:?}"
    );
    assert_eq!(f.fetches(), 0, "refused before any key lookup");
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    let f = Fixture::start().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let secret = EncodingKey::from_secret(KEY_1_PUBLIC.as_bytes()).unwrap();
    let token = encode(&header, &f.claims(|_| {}), &secret).unwrap();
    let err = f.verifier().verify(&token).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::Algorithm { alg, .. } if alg == "HS256"),
        "{err:?}"
    );
    // Even with the key published as a symmetric JWK under that kid.
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(KEY_1_PUBLIC);
    f.provider
        .jwks
        .lock()
        .push(json!({"kty": "oct", "kid": "k1", "k": k}));
    let err = f.verifier().verify(&token).await.unwrap_err();
    assert!(matches!(err, OidcError::Algorithm { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_with_a_rate_limit() {
    let f = Fixture::start().await;
    let oidc = Oidc::new(f.config())
        .unwrap()
        .with_refresh_interval(Duration::from_secs(3600));
    oidc.verify(&sign("k1", KEY_1, &f.claims(|_| {})))
        .await
        .unwrap();
    assert_eq!(f.fetches(), 1, "first use fetches the keys");
    // Known key, new token: no fetch.
    oidc.verify(&sign(
        "k1",
        KEY_1,
        &f.claims(|c| {
            c.insert("nonce".into(), json!("2"));
        }),
    ))
    .await
    .unwrap();
    assert_eq!(f.fetches(), 1);
    // The provider rotates to k2; inside the interval an unknown kid does not refetch, so a
    // flood of made-up kids cannot hammer the provider.
    f.publish(&[("k1", KEY_1), ("k2", KEY_2)]);
    let rotated = sign("k2", KEY_2, &f.claims(|_| {}));
    for _ in 0..5 {
        assert_eq!(
            oidc.verify(&rotated).await.unwrap_err(),
            OidcError::UnknownKey("k2".into())
        );
    }
    assert_eq!(f.fetches(), 1, "rate-limited");

    // Past the interval, the unknown kid refetches and the rotated key works.
    let oidc = f.verifier();
    oidc.verify(&sign("k1", KEY_1, &f.claims(|_| {})))
        .await
        .unwrap();
    let before = f.fetches();
    f.publish(&[("k1", KEY_1), ("k3", KEY_2)]);
    let rotated = sign("k3", KEY_2, &f.claims(|_| {}));
    oidc.verify(&rotated).await.unwrap();
    assert_eq!(f.fetches(), before + 1, "one refetch for the new kid");
}

#[tokio::test]
async fn provider_down_keeps_cached_keys_and_fails_new_ones_closed() {
    let f = Fixture::start().await;
    let oidc = f.verifier();
    oidc.verify(&sign("k1", KEY_1, &f.claims(|_| {})))
        .await
        .unwrap();
    f.provider.down.store(true, Ordering::SeqCst);
    f.publish(&[("k1", KEY_1), ("k2", KEY_2)]);
    // A new token (not in the verified cache) under the cached key still works.
    let identity = oidc
        .verify(&sign(
            "k1",
            KEY_1,
            &f.claims(|c| {
                c.insert("nonce".into(), json!("other"));
            }),
        ))
        .await
        .unwrap();
    assert_eq!(identity.username, "alice@example.com");
    // A key the gateway never saw fails closed, though the (unreachable) provider has it.
    let before = f.fetches();
    assert_eq!(
        oidc.verify(&sign("k2", KEY_2, &f.claims(|_| {})))
            .await
            .unwrap_err(),
        OidcError::UnknownKey("k2".into())
    );
    assert!(f.fetches() > before, "a refetch was tried");
}

#[tokio::test]
async fn no_keys_at_all_fails_closed() {
    let f = Fixture::start().await;
    f.provider.down.store(true, Ordering::SeqCst);
    let token = sign("k1", KEY_1, &f.claims(|_| {}));
    assert_eq!(
        f.verifier().verify(&token).await.unwrap_err(),
        OidcError::KeysUnavailable
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_trusted() {
    let f = Fixture::start().await;
    *f.provider.issuer.lock() = "https://evil.example.com".into();
    let token = sign("k1", KEY_1, &f.claims(|_| {}));
    assert_eq!(
        f.verifier().verify(&token).await.unwrap_err(),
        OidcError::KeysUnavailable
    );
}

#[test]
fn only_jwt_shaped_tokens_go_to_the_verifier() {
    assert!(looks_like_jwt("eyJhbGciOi.eyJzdWIi.c2ln"));
    assert!(!looks_like_jwt("pt_eyJ.a.b"));
    assert!(!looks_like_jwt("eyJhbGciOi.eyJzdWIi"));
    assert!(!looks_like_jwt("some-admin-token"));
}

#[test]
fn hmac_algorithms_cannot_be_configured() {
    let config = OidcConfig {
        issuer_url: "https://issuer.example.com".into(),
        client_id: CLIENT.into(),
        username_claim: "email".into(),
        username_prefix: String::new(),
        groups_claim: "groups".into(),
        groups_prefix: String::new(),
        ca_pem: None,
        required_claims: Vec::new(),
        signing_algs: vec!["HS256".into()],
    };
    assert!(matches!(
        Oidc::new(config),
        Err(OidcSetupError::Algorithm(_))
    ));
}
