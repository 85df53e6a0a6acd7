//! The OpenID provider harness itself (`portico_e2e::oidc`): a real discovery document over
//! HTTPS with the harness's CA, real tokens from a code flow with PKCE and from the device
//! flow, refresh, key rotation and stop.

use std::time::Duration;

use anyhow::{Context as _, Result};
use portico_e2e::oidc::{CLI_CLIENT_ID, OidcOptions, OidcProvider, Tokens, jwt_claims, jwt_header};

#[tokio::test]
async fn discovery_is_served_over_https_with_the_harness_ca() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    assert!(
        op.issuer().starts_with("https://127.0.0.1:"),
        "{}",
        op.issuer()
    );
    let disco = op.discovery().await?;
    assert_eq!(disco["issuer"], op.issuer());
    assert!(
        disco["grant_types_supported"]
            .as_array()
            .context("grant_types_supported")?
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code"),
        "{disco}"
    );
    assert_eq!(
        disco["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    // The CA file is what the gateway's `--oidc-ca-file` gets; a client without it refuses.
    let ca = std::fs::read_to_string(op.ca_file().context("ca file")?)?;
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let untrusting = reqwest::Client::new()
        .get(format!("{}/.well-known/openid-configuration", op.issuer()))
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "a client without the CA must not connect"
    );
    op.stop().await?;
    Ok(())
}

fn assert_alice(tokens: &Tokens, issuer: &str) -> Result<()> {
    let claims = jwt_claims(&tokens.id_token)?;
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], CLI_CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(jwt_header(&tokens.id_token)?["alg"], "RS256");
    Ok(())
}

#[tokio::test]
async fn code_flow_with_pkce_gives_a_real_id_token_and_refresh_works() -> Result<()> {
    let op = OidcProvider::start(OidcOptions {
        id_token_ttl: Duration::from_secs(30),
        ..OidcOptions::default()
    })
    .await?;
    let tokens = op.tokens_for("alice").await?;
    assert_alice(&tokens, op.issuer())?;
    let claims = jwt_claims(&tokens.id_token)?;
    let lifetime =
        claims["exp"].as_i64().context("exp")? - claims["iat"].as_i64().context("iat")?;
    assert_eq!(lifetime, 30, "the configured ID token lifetime");
    // The signing key is published.
    let kid = jwt_header(&tokens.id_token)?["kid"].clone();
    let jwks = op.jwks().await?;
    assert!(
        jwks["keys"]
            .as_array()
            .context("keys")?
            .iter()
            .any(|k| k["kid"] == kid),
        "{jwks}"
    );
    let refresh = tokens.refresh_token.clone().context("a refresh token")?;
    let renewed = op.refresh(&refresh).await?;
    assert_alice(&renewed, op.issuer())?;
    // A public client's refresh token is rotated on use.
    assert_ne!(renewed.refresh_token.as_deref(), Some(refresh.as_str()));
    assert!(
        op.refresh(&refresh).await.is_err(),
        "a used refresh token is refused"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_user_cannot_sign_in() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    assert!(op.tokens_for("mallory").await.is_err());
    Ok(())
}

#[tokio::test]
async fn device_flow_approved_over_http_gives_tokens() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let disco = op.discovery().await?;
    let endpoint = disco["device_authorization_endpoint"]
        .as_str()
        .context("device_authorization_endpoint")?;
    let start: serde_json::Value = op
        .http()
        .post(endpoint)
        .form(&[
            ("client_id", CLI_CLIENT_ID),
            ("scope", "openid email groups offline_access"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let device_code = start["device_code"].as_str().context("device_code")?;
    let user_code = start["user_code"].as_str().context("user_code")?;
    let token_endpoint = disco["token_endpoint"].as_str().context("token_endpoint")?;
    let poll = || {
        op.http()
            .post(token_endpoint)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
                ("client_id", CLI_CLIENT_ID),
            ])
            .send()
    };
    let pending: serde_json::Value = poll().await?.json().await?;
    assert_eq!(pending["error"], "authorization_pending", "{pending}");
    op.approve_device(user_code, "alice").await?;
    let resp = poll().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    assert!(status.is_success(), "{status} {body}");
    let id_token = body["id_token"].as_str().context("id_token")?;
    assert_eq!(
        jwt_claims(id_token)?["groups"],
        serde_json::json!(["dev", "ops"])
    );
    assert!(body["refresh_token"].is_string(), "{body}");
    Ok(())
}

#[tokio::test]
async fn key_rotation_publishes_a_new_key_first_and_signs_with_it() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let before = op.tokens_for("bob").await?;
    let old_kid = jwt_header(&before.id_token)?["kid"].clone();
    let new_kid = op.rotate_keys().await?;
    assert_ne!(old_kid, new_kid.as_str());
    let jwks = op.jwks().await?;
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![serde_json::json!(new_kid), old_kid.clone()]);
    // Refresh tokens survive a rotation; new ID tokens carry the new key.
    let after = op
        .refresh(before.refresh_token.as_deref().context("refresh token")?)
        .await?;
    assert_eq!(jwt_header(&after.id_token)?["kid"], new_kid.as_str());
    let only = op.replace_keys().await?;
    let jwks = op.jwks().await?;
    assert_eq!(jwks["keys"].as_array().context("keys")?.len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], only.as_str());
    Ok(())
}

#[tokio::test]
async fn redirect_uris_of_the_console_client_can_be_set_after_start() -> Result<()> {
    use portico_e2e::oidc::{CONSOLE_CLIENT_ID, pkce_pair};
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let callback = "http://127.0.0.1:4242/ui/oidc/callback";
    let authorize = |redirect: &str| {
        let (_, challenge) = pkce_pair();
        let mut url = reqwest::Url::parse(&format!("{}/auth", op.issuer())).expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "openid email")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    // Not registered yet: the provider shows an error page instead of redirecting.
    assert!(
        op.complete_login(&authorize(callback), "alice")
            .await
            .is_err()
    );
    op.set_redirect_uris(CONSOLE_CLIENT_ID, &[callback]).await?;
    let back = op.complete_login(&authorize(callback), "alice").await?;
    assert!(
        back.starts_with(callback) && back.contains("code="),
        "{back}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stopped_provider_refuses_connections() -> Result<()> {
    let mut op = OidcProvider::start(OidcOptions::default()).await?;
    op.halt().await?;
    assert!(op.discovery().await.is_err());
    Ok(())
}
