//! Console sign-in through a real OpenID provider (npm `oidc-provider`, run by
//! `portico_e2e::oidc`): the server-side code flow with PKCE and a nonce, as the console's own
//! confidential client; what the person sees follows the grants of their user name and groups;
//! the session renews the identity with the refresh token when the ID token expires.

use anyhow::{Context as _, Result, ensure};
use kube_sim::KubeSim;
use portico::records::console::SessionSubject;
use portico::testing::{now_millis, token_hash};
use portico_e2e::browser::{Browser, Locator};
use portico_e2e::console::{Console, Page};
use portico_e2e::gateway::TestGateway;
use portico_e2e::oidc::{CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET, OidcOptions, OidcProvider};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SESSION: &str = "__Host-portico_session";
const FLOW: &str = "__Host-portico_sso";

/// A gateway whose console signs in through `op` with the console client (its secret in a
/// file), and whose API accepts the CLI client's ID tokens; groups prefixed `oidc:`. The
/// provider learns the gateway's callback URL.
async fn gateway(op: &OidcProvider, dir: &tempfile::TempDir) -> Result<TestGateway> {
    let secret_file = dir.path().join("console-client-secret");
    std::fs::write(&secret_file, format!("{CONSOLE_CLIENT_SECRET}\n"))?;
    let gw = TestGateway::builder()
        .args(op.gateway_args())
        .args([
            "--console-oidc-client-id",
            CONSOLE_CLIENT_ID,
            "--console-oidc-client-secret-file",
            &secret_file.display().to_string(),
        ])
        .start()
        .await;
    let callback = format!("{}/ui/login/sso/callback", gw.url);
    op.set_redirect_uris(CONSOLE_CLIENT_ID, &[callback.as_str()])
        .await?;
    Ok(gw)
}

/// Starts a sign-in in `browser`; returns the provider's authorization URL it was sent to.
async fn start(browser: &mut Console, next: &str) -> Result<String> {
    let page = browser.get(&format!("/ui/login/sso?next={next}")).await?;
    ensure!(
        page.status == StatusCode::SEE_OTHER,
        "start: {} {}",
        page.status,
        page.body
    );
    ensure!(browser.cookie(FLOW).is_some(), "no flow cookie");
    Ok(page.location().context("no Location")?.to_owned())
}

/// The path (and query) of the gateway URL the provider sent the browser back to.
fn callback_path(gw: &TestGateway, redirect: &str) -> Result<String> {
    Ok(redirect
        .strip_prefix(&gw.url)
        .with_context(|| format!("the provider redirected to {redirect}, not the gateway"))?
        .to_owned())
}

/// The whole sign-in as `user`: start, the provider's sign-in and consent, the callback.
async fn sign_in(gw: &TestGateway, op: &OidcProvider, user: &str, next: &str) -> Result<Console> {
    let mut browser = Console::new(gw)?;
    let authorize = start(&mut browser, next).await?;
    let back = op.complete_login(&authorize, user).await?;
    let page = browser.get(&callback_path(gw, &back)?).await?;
    ensure!(
        page.status == StatusCode::SEE_OTHER,
        "callback: {} {}",
        page.status,
        page.body
    );
    ensure!(browser.cookie(SESSION).is_some(), "no session cookie");
    ensure!(browser.cookie(FLOW).is_none(), "the flow cookie stayed");
    Ok(browser)
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_and_sees_what_their_groups_grant() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let gw = gateway(&op, &dir).await?;
    let sim = KubeSim::start().await?;
    gw.register_cluster("dev-a", &sim.kubeconfig()).await?;
    gw.register_cluster("prod-a", &sim.kubeconfig()).await?;
    gw.admin_post(
        "/api/v1/grants",
        json!({"subject": {"kind": "group", "name": "oidc:dev"}, "cluster": "dev-a",
               "access": "read"}),
    )
    .await?;

    // The sign-in page offers single sign-on next to the token form.
    let mut anonymous = Console::new(&gw)?;
    anonymous
        .get("/ui/login?next=/ui/clusters")
        .await?
        .assert_contains("Sign in with single sign-on")
        .assert_contains("/ui/login/sso?next=%2Fui%2Fclusters");

    // bob (group dev) signs in and lands on the page he asked for.
    let mut bob = Console::new(&gw)?;
    let authorize = start(&mut bob, "/ui/clusters").await?;
    let url = reqwest::Url::parse(&authorize)?;
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CONSOLE_CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query.contains_key("nonce") && query.contains_key("state"));
    assert!(query["scope"].contains("openid"), "{}", query["scope"]);
    let back = op.complete_login(&authorize, "bob").await?;
    let page = bob.get(&callback_path(&gw, &back)?).await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/ui/clusters"));
    let set = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(SESSION))
        .context("a session cookie")?;
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }

    // The console shows who he is, and only the cluster his group may read, read-only.
    let clusters = bob.get("/ui/clusters").await?;
    assert_eq!(clusters.status, StatusCode::OK, "{}", clusters.body);
    clusters
        .assert_contains("bob@example.com")
        .assert_contains("groups: oidc:dev")
        .assert_contains("SSO")
        .assert_contains("dev-a")
        .assert_lacks("prod-a")
        .assert_lacks("Register a cluster")
        .assert_lacks("href=\"/ui/tokens\"");
    let detail = bob.get("/ui/clusters/dev-a").await?;
    assert_eq!(detail.status, StatusCode::OK);
    detail.assert_contains("portico login --sso");
    let refused = bob.post("/ui/clusters/dev-a/connect", &[]).await?;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let flash = refused.flash().unwrap_or_default();
    assert!(flash.starts_with("error:"), "{flash}");
    let kubeconfig = bob.get("/ui/clusters/dev-a/kubeconfig").await?;
    assert_eq!(kubeconfig.status, StatusCode::BAD_REQUEST);

    // The session row: the person and the ID token's expiry; the refresh token only sealed.
    let hash = token_hash(bob.cookie(SESSION).unwrap());
    let row = gw.gateway().app().db.session(&hash).await?.context("row")?;
    match &row.subject {
        SessionSubject::Person {
            username,
            groups,
            identity_expires_at,
        } => {
            assert_eq!(username, "bob@example.com");
            assert_eq!(groups, &vec!["oidc:dev".to_owned()]);
            assert!(*identity_expires_at > now_millis());
        }
        other => panic!("{other:?}"),
    }
    let sealed = row.sealed_secret.context("a sealed refresh token")?;
    assert!(!String::from_utf8_lossy(&sealed).contains("bob"));

    // The sign-in is in the audit log under the person (written in the background: poll,
    // bounded).
    let signed_in = |audit: &Value| {
        audit["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|e| e["verb"] == "login" && e["tokenId"] == "oidc:bob@example.com")
        })
    };
    let mut audit = Value::Null;
    for _ in 0..100 {
        audit = gw.admin_json("/api/v1/audit?kind=console").await;
        if signed_in(&audit) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(signed_in(&audit), "{audit}");

    // alice is in `dev` and `ops`; a grant for her name alone makes her an admin.
    gw.admin_post(
        "/api/v1/grants",
        json!({"subject": {"kind": "user", "name": "alice@example.com"}, "cluster": "*",
               "access": "admin"}),
    )
    .await?;
    let mut alice = sign_in(&gw, &op, "alice", "/ui").await?;
    alice
        .get("/ui/clusters")
        .await?
        .assert_contains("alice@example.com")
        .assert_contains("dev-a")
        .assert_contains("prod-a")
        .assert_contains("href=\"/ui/tokens\"");

    // Signing out ends the session everywhere.
    let cookie = alice.cookie(SESSION).unwrap().to_owned();
    alice.get("/ui").await?;
    let out = alice.post("/ui/logout", &[]).await?;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let mut replay = Console::new(&gw)?;
    replay.set_cookie(SESSION, &cookie);
    let page = replay.get("/ui").await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().starts_with("/ui/login"));

    gw.stop().await;
    op.stop().await
}

#[tokio::test]
async fn a_sign_in_counts_only_in_the_browser_that_started_it() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let gw = gateway(&op, &dir).await?;

    let mut victim = Console::new(&gw)?;
    let authorize = start(&mut victim, "/ui").await?;
    let back = op.complete_login(&authorize, "bob").await?;
    let path = callback_path(&gw, &back)?;

    // Another browser (a login forced on someone else) gets nothing from the code.
    let mut other = Console::new(&gw)?;
    let page = other.get(&path).await?;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_contains("not started in this browser");
    assert!(other.cookie(SESSION).is_none());

    // A forged flow cookie does not open.
    let mut forged = Console::new(&gw)?;
    forged.set_cookie(FLOW, "AAAAbm90LWEtc2VhbGVkLWZsb3c");
    let page = forged.get(&path).await?;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(forged.cookie(SESSION).is_none());

    // The right browser with another state: refused, and the attempt is used up.
    let wrong_state = path.replace("state=", "state=x");
    let page = victim.get(&wrong_state).await?;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_contains("not for the sign-in this browser started");
    assert!(victim.cookie(SESSION).is_none());
    assert!(victim.cookie(FLOW).is_none());
    let page = victim.get(&path).await?;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(victim.cookie(SESSION).is_none());

    // The provider's refusal is shown as such.
    let authorize = start(&mut victim, "/ui").await?;
    let state = reqwest::Url::parse(&authorize)?
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .context("state")?;
    let page: Page = victim
        .get(&format!(
            "/ui/login/sso/callback?error=access_denied&error_description=denied+by+policy&state={state}"
        ))
        .await?;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    page.assert_contains("access_denied")
        .assert_contains("denied by policy");
    assert!(victim.cookie(SESSION).is_none());

    // carol's address is not verified: the provider signs her in, the gateway does not.
    let mut carol = Console::new(&gw)?;
    let authorize = start(&mut carol, "/ui").await?;
    let back = op.complete_login(&authorize, "carol").await?;
    let page = carol.get(&callback_path(&gw, &back)?).await?;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    page.assert_contains("not verified");
    assert!(carol.cookie(SESSION).is_none());

    gw.stop().await;
    op.stop().await
}

/// Makes the session's identity expire now (as if its ID token's `exp` had passed).
async fn expire_identity(gw: &TestGateway, hash: &str) -> Result<()> {
    let db = &gw.gateway().app().db;
    let row = db.session(hash).await?.context("row")?;
    let SessionSubject::Person {
        groups,
        identity_expires_at,
        ..
    } = &row.subject
    else {
        anyhow::bail!("not a person's session");
    };
    let done = db
        .renew_person_session(
            hash,
            *identity_expires_at,
            groups,
            now_millis() - 1,
            row.sealed_secret.as_deref(),
        )
        .await?;
    ensure!(done, "the row did not change");
    Ok(())
}

fn identity_expiry(row: &portico::records::console::ConsoleSession) -> i64 {
    match &row.subject {
        SessionSubject::Person {
            identity_expires_at,
            ..
        } => *identity_expires_at,
        SessionSubject::Token { .. } => 0,
    }
}

#[tokio::test]
async fn an_expired_identity_is_renewed_with_the_refresh_token_or_the_session_ends() -> Result<()> {
    let mut op = OidcProvider::start(OidcOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let gw = gateway(&op, &dir).await?;
    let db = &gw.gateway().app().db;
    let mut bob = sign_in(&gw, &op, "bob", "/ui").await?;
    let hash = token_hash(bob.cookie(SESSION).unwrap());
    let sealed_before = db.session(&hash).await?.unwrap().sealed_secret;

    // Expired: the next page renews it at the provider and the person stays signed in.
    expire_identity(&gw, &hash).await?;
    let page = bob.get("/ui").await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("bob@example.com");
    let row = db.session(&hash).await?.context("row")?;
    assert!(identity_expiry(&row) > now_millis());
    assert_ne!(row.sealed_secret, sealed_before, "sealed anew");

    // A refresh token the provider does not know: the provider refuses and the session ends.
    let mut mallory = sign_in(&gw, &op, "bob", "/ui").await?;
    let other_hash = token_hash(mallory.cookie(SESSION).unwrap());
    let app = gw.gateway().app();
    let bogus = app.secret_key.seal(
        format!("portico console session {other_hash}").as_bytes(),
        b"not-a-refresh-token",
    );
    let row = db.session(&other_hash).await?.unwrap();
    db.renew_person_session(
        &other_hash,
        identity_expiry(&row),
        &["oidc:dev".to_owned()],
        now_millis() - 1,
        Some(&bogus),
    )
    .await?;
    let page = mallory.get("/ui").await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        page.location().unwrap().contains("why=expired"),
        "{:?}",
        page.location()
    );
    assert!(db.session(&other_hash).await?.is_none());

    // The provider is down when the identity expires: nobody is signed in, the session stays.
    op.halt().await?;
    expire_identity(&gw, &hash).await?;
    let page = bob.get("/ui").await?;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    page.assert_contains("Identity provider unreachable")
        .assert_lacks("bob@example.com");
    assert!(db.session(&hash).await?.is_some());

    gw.stop().await;
    Ok(())
}

/// Waits (bounded) until `script` returns `true` in the page.
async fn wait_until(browser: &Browser, script: &str) -> Result<()> {
    for _ in 0..200 {
        if browser.client.execute(script, vec![]).await? == Value::Bool(true) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("`{script}` never held within 20 s")
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_in_a_browser() -> Result<()> {
    let Some(browser) = Browser::start_or_skip("sso_sign_in").await else {
        return Ok(());
    };
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let gw = gateway(&op, &dir).await?;
    let sim = KubeSim::start().await?;
    gw.register_cluster("dev-a", &sim.kubeconfig()).await?;
    gw.admin_post(
        "/api/v1/grants",
        json!({"subject": {"kind": "group", "name": "oidc:dev"}, "cluster": "*",
               "access": "read"}),
    )
    .await?;
    let c = &browser.client;

    c.goto(&format!("{}/ui/clusters", gw.url)).await?;
    browser.wait_for("#sso").await?.click().await?;
    // The provider's own sign-in page, then its consent page.
    browser.wait_for("input[name=login]").await?;
    browser.screenshot("01-provider-sign-in").await?;
    browser.fill("login", "bob").await?;
    browser.fill("password", "test").await?;
    c.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    wait_until(
        &browser,
        "return document.querySelector('input[name=login]') === null \
         && document.querySelector('button[type=submit]') !== null",
    )
    .await?;
    browser.screenshot("02-provider-consent").await?;
    if !c.current_url().await?.path().starts_with("/ui") {
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
    }
    // Back on the page asked for, signed in as bob.
    browser.wait_for_text("bob@example.com").await?;
    assert_eq!(c.current_url().await?.path(), "/ui/clusters");
    browser.wait_for_text("dev-a").await?;
    browser.screenshot("03-signed-in").await?;
    let cookies = c.execute("return document.cookie", vec![]).await?;
    assert!(
        !cookies.as_str().unwrap_or_default().contains("portico"),
        "{cookies}"
    );

    browser.close().await?;
    gw.stop().await;
    op.stop().await
}
