//! Single sign-on on the gateway against a real OpenID provider (npm `oidc-provider`, run by
//! `portico_e2e::oidc`): real ID tokens from a code flow with PKCE, as bearer tokens on the
//! proxy and the admin API, with access decided by grants for users and groups.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::oidc::{OidcOptions, OidcProvider, jwt_header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PODS: &str = "api/v1/namespaces/default/pods";

/// A gateway that accepts the provider's ID tokens (issued to the CLI client), with group
/// names prefixed `oidc:`.
async fn gateway(op: &OidcProvider) -> TestGateway {
    TestGateway::builder().args(op.gateway_args()).start().await
}

/// Registers the simulator as cluster `id` with `labels` and connects it.
async fn add_cluster(gw: &TestGateway, id: &str, sim: &KubeSim, labels: Value) -> Result<()> {
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": id, "kubeconfig": sim.kubeconfig(), "labels": labels}))
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "{}",
        response.text().await?
    );
    let response = gw
        .as_admin(Method::POST, &format!("/api/v1/clusters/{id}/connect"))
        .send()
        .await?;
    let view: Value = response.json().await?;
    ensure!(view["state"] == "connected", "{view}");
    Ok(())
}

async fn grant(gw: &TestGateway, body: Value) -> Result<Value> {
    let response = gw
        .as_admin(Method::POST, "/api/v1/grants")
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::CREATED,
        "{}",
        response.text().await?
    );
    Ok(response.json().await?)
}

/// Status code and message of a response (Kubernetes `Status` on the proxy, the API's error
/// shape on `/api/v1`).
async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["message"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

#[tokio::test]
async fn group_grants_decide_which_cluster_a_person_reaches() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let (dev_sim, prod_sim) = (KubeSim::start().await?, KubeSim::start().await?);
    let gw = gateway(&op).await;
    add_cluster(&gw, "dev-eu", &dev_sim, json!({"env": "dev"})).await?;
    add_cluster(&gw, "prod-eu", &prod_sim, json!({"env": "prod"})).await?;
    // Developers write to dev clusters (by label); ops (alice, not bob) read production.
    grant(
        &gw,
        json!({"subject": {"kind": "group", "name": "oidc:dev"}, "selector": "env=dev",
               "access": "write"}),
    )
    .await?;
    grant(
        &gw,
        json!({"subject": {"kind": "group", "name": "oidc:ops"}, "cluster": "prod-eu",
               "access": "read"}),
    )
    .await?;

    let alice = op.tokens_for("alice").await?.id_token;
    let bob = op.tokens_for("bob").await?.id_token;
    for cluster in ["dev-eu", "prod-eu"] {
        let response = gw
            .as_token(
                &alice,
                Method::GET,
                &format!("/k8s/clusters/{cluster}/{PODS}"),
            )
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "alice on {cluster}");
    }
    let response = gw
        .as_token(&bob, Method::GET, &format!("/k8s/clusters/dev-eu/{PODS}"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, message) = answer(
        gw.as_token(&bob, Method::GET, &format!("/k8s/clusters/prod-eu/{PODS}"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message.contains("user `bob@example.com` has no grant for cluster `prod-eu`"),
        "{message}"
    );
    // Read access on prod: alice may not write there.
    let (status, message) = answer(
        gw.as_token(
            &alice,
            Method::POST,
            "/k8s/clusters/prod-eu/api/v1/namespaces/default/configmaps",
        )
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
        .send()
        .await?,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("needs write access"), "{message}");
    assert!(
        prod_sim.requests().iter().all(|r| r.method != "POST"),
        "nothing refused reached the cluster"
    );
    // The cluster list shows each person what they may reach.
    let clusters: Value = gw
        .as_token(&bob, Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<&str> = clusters["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["dev-eu"]);

    // carol's address is not verified: her token is refused, saying why.
    let carol = op.tokens_for("carol").await?.id_token;
    let (status, message) = answer(
        gw.as_token(&carol, Method::GET, &format!("/k8s/clusters/dev-eu/{PODS}"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        message.contains("email address is not verified"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn the_admin_api_takes_id_tokens_and_admin_on_every_cluster_is_the_admin_role() -> Result<()>
{
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let gw = gateway(&op).await;
    grant(
        &gw,
        json!({"subject": {"kind": "group", "name": "oidc:ops"}, "cluster": "*",
               "access": "admin"}),
    )
    .await?;
    let alice = op.tokens_for("alice").await?.id_token;
    let bob = op.tokens_for("bob").await?.id_token;

    let response = gw
        .as_token(&alice, Method::GET, "/api/v1/grants")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, message) = answer(
        gw.as_token(&bob, Method::GET, "/api/v1/grants")
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message.contains("user `bob@example.com` lacks the admin role"),
        "{message}"
    );
    // A change made with an ID token is audited under the person's name.
    let response = gw
        .as_token(&alice, Method::POST, "/api/v1/grants")
        .json(
            &json!({"subject": {"kind": "user", "name": "bob@example.com"}, "cluster": "*",
                      "access": "read"}),
        )
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await?;
    // The audit log is written in the background.
    portico_e2e::fleet::eventually(
        "the grant's audit entry",
        Duration::from_secs(30),
        || async {
            let audit: Value = gw
                .as_admin(Method::GET, "/api/v1/audit?kind=api")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            audit["items"].as_array()?.iter().find(|e| {
                e["path"] == "/api/v1/grants"
                    && e["status"] == 201
                    && e["tokenName"] == "alice@example.com"
                    && e["tokenId"] == "oidc:alice@example.com"
            })?;
            Some(())
        },
    )
    .await;
    // Deleting it takes bob's access away at once (this replica).
    let response = gw
        .as_admin(
            Method::DELETE,
            &format!("/api/v1/grants/{}", created["id"].as_str().context("id")?),
        )
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let grants: Value = gw
        .as_token(&alice, Method::GET, "/api/v1/grants")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(grants["items"].as_array().context("items")?.len(), 1);
    // Portico tokens keep working beside ID tokens, and a garbage JWT is a clear 401.
    let response = gw.as_admin(Method::GET, "/api/v1/grants").send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, message) = answer(
        gw.as_token(
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            Method::GET,
            "/api/v1/grants",
        )
        .send()
        .await?,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("signing algorithm `none`"), "{message}");
    Ok(())
}

#[tokio::test]
async fn impersonating_grants_send_the_persons_name_and_groups_to_the_cluster() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let sim = KubeSim::start().await?;
    let gw = gateway(&op).await;
    add_cluster(&gw, "sim", &sim, json!({})).await?;
    grant(
        &gw,
        json!({"subject": {"kind": "group", "name": "oidc:dev"}, "cluster": "sim",
               "access": "write", "impersonate": true}),
    )
    .await?;
    let alice = op.tokens_for("alice").await?.id_token;
    sim.clear_requests();
    let response = gw
        .as_token(&alice, Method::GET, &format!("/k8s/clusters/sim/{PODS}"))
        .header("impersonate-user", "system:admin")
        .header("impersonate-group", "system:masters")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = sim.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("impersonate-user"),
        Some("alice@example.com")
    );
    assert_eq!(
        seen[0].header_all("impersonate-group"),
        ["oidc:dev", "oidc:ops"]
    );
    Ok(())
}

/// Presents `token` until it is accepted or `tries` seconds have passed (a rotated key is
/// fetched at most every 10 s).
async fn accepted_within(gw: &TestGateway, token: &str, tries: u32) -> Result<()> {
    let mut last = String::new();
    for _ in 0..tries {
        let (status, message) = answer(
            gw.as_token(token, Method::GET, "/api/v1/clusters")
                .send()
                .await?,
        )
        .await;
        if status == StatusCode::OK {
            return Ok(());
        }
        last = format!("{status} {message}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("not accepted: {last}")
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_when_a_token_names_it() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let gw = gateway(&op).await;
    let before = op.tokens_for("alice").await?.id_token;
    let status = gw
        .as_token(&before, Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .status();
    assert_eq!(status, StatusCode::OK);
    let kid = op.rotate_keys().await?;
    let after = op.tokens_for("alice").await?.id_token;
    assert_eq!(
        jwt_header(&after)?["kid"],
        kid.as_str(),
        "signed with the new key"
    );
    accepted_within(&gw, &after, 30).await?;
    Ok(())
}

#[tokio::test]
async fn with_the_provider_down_cached_keys_work_and_new_keys_fail_closed() -> Result<()> {
    let mut op = OidcProvider::start(OidcOptions::default()).await?;
    let gw = gateway(&op).await;
    let first = op.tokens_for("alice").await?.id_token;
    let status = gw
        .as_token(&first, Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .status();
    assert_eq!(status, StatusCode::OK);
    // Another token under the same key, not seen by the gateway yet; then one under a key the
    // gateway never fetched.
    let second = op.tokens_for("bob").await?.id_token;
    op.rotate_keys().await?;
    let rotated = op.tokens_for("alice").await?.id_token;
    op.halt().await?;

    let status = gw
        .as_token(&second, Method::GET, "/api/v1/clusters")
        .send()
        .await?
        .status();
    assert_eq!(status, StatusCode::OK, "cached keys keep working");
    let (status, message) = answer(
        gw.as_token(&rotated, Method::GET, "/api/v1/clusters")
            .send()
            .await?,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        message.contains("signed with a key the issuer does not publish"),
        "{message}"
    );
    Ok(())
}
