//! The console's core over HTTP: sign-in, sessions (cookie flags, expiry, revocation, sign-out,
//! any replica), CSRF and cross-site posts, the Content-Security-Policy, grants, escaping, and
//! the overview and cluster pages against a simulator cluster.

use kube_sim::KubeSim;
use portico::testing::{now_millis, token_hash};
use portico_e2e::console::{Console, input_value};
use portico_e2e::gateway::TestGateway;
use portico_e2e::postgres::TestPostgres;
use reqwest::{Method, StatusCode};
use serde_json::json;

const SESSION: &str = "__Host-portico_session";

async fn admin(gw: &TestGateway) -> Console {
    Console::sign_in(gw, gw.admin_token.as_deref().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_hardened_cookie() {
    let gw = TestGateway::builder().start().await;
    let mut browser = Console::new(&gw).unwrap();

    // Not signed in: pages send the browser to sign in (and back), posts do nothing.
    let page = browser.get("/ui/clusters?state=failed").await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        Some("/ui/login?next=%2Fui%2Fclusters%3Fstate%3Dfailed")
    );
    let page = browser
        .send(Method::POST, "/ui/clusters/x/connect", &[("_csrf", "x")])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    // The gateway's root leads to the console.
    let root = browser.get("/").await.unwrap();
    assert_eq!(root.location(), Some("/ui"));

    // The login page: CSP, no caching, a CSRF cookie for its form.
    let login = browser.get("/ui/login").await.unwrap();
    assert_eq!(login.status, StatusCode::OK);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert_eq!(login.headers["cache-control"], "no-store");

    // A wrong token: refused, no session.
    let page = browser.try_sign_in("pt_not-a-token").await.unwrap();
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    page.assert_contains("not valid");
    assert!(browser.cookie(SESSION).is_none());

    // The admin token signs in; the cookie is HttpOnly, Secure, SameSite=Lax, host-only.
    let page = browser
        .try_sign_in(gw.admin_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/ui"));
    let set = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(SESSION))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    // The database holds only the hash of the cookie's value.
    let id = browser.cookie(SESSION).unwrap().to_owned();
    let db = &gw.gateway().app().db;
    assert!(db.session(&id).await.unwrap().is_none());
    assert!(db.session(&token_hash(&id)).await.unwrap().is_some());

    let overview = browser.get("/ui").await.unwrap();
    assert_eq!(overview.status, StatusCode::OK);
    overview
        .assert_contains("Overview")
        .assert_contains("admin")
        .assert_contains("Sign out");
    gw.stop().await;
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_cookie_and_next_stays_in_the_console() {
    let gw = TestGateway::builder().start().await;
    let token = gw.admin_token.clone().unwrap();
    let mut browser = Console::new(&gw).unwrap();
    let login = browser.get("/ui/login").await.unwrap();
    let csrf = input_value(&login.body, "_csrf").unwrap();

    // Posted without the login cookie (a cross-site login attempt): refused.
    let mut stranger = Console::new(&gw).unwrap();
    let page = stranger
        .send(
            Method::POST,
            "/ui/login",
            &[("_csrf", &csrf), ("token", &token)],
        )
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(stranger.cookie(SESSION).is_none());

    // `next` outside the console is not followed (no open redirect).
    for next in [
        "https://example.invalid/",
        "//example.invalid/ui/",
        "/ui/\\evil",
        "/uix",
    ] {
        let mut browser = Console::new(&gw).unwrap();
        let login = browser.get("/ui/login").await.unwrap();
        let csrf = input_value(&login.body, "_csrf").unwrap();
        let page = browser
            .send(
                Method::POST,
                "/ui/login",
                &[("_csrf", &csrf), ("token", &token), ("next", next)],
            )
            .await
            .unwrap();
        assert_eq!(page.location(), Some("/ui"), "next={next}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn forms_need_the_session_csrf_token_and_the_same_origin() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let mut browser = admin(&gw).await;
    browser.get("/ui/clusters/dev").await.unwrap();
    let csrf = browser.csrf.clone().unwrap();

    // No token, a wrong token, another session's token: 403, and the cluster stays connected.
    let mut other = admin(&gw).await;
    other.get("/ui").await.unwrap();
    let others = other.csrf.clone().unwrap();
    assert_ne!(others, csrf);
    for fields in [
        vec![],
        vec![("_csrf", "wrong")],
        vec![("_csrf", others.as_str())],
    ] {
        let page = browser
            .send(Method::POST, "/ui/clusters/dev/disconnect", &fields)
            .await
            .unwrap();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{fields:?}");
    }
    // The right token from another site: refused before the form is read.
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://example.invalid"),
    ] {
        let body = format!("_csrf={csrf}");
        let page = browser
            .request(
                Method::POST,
                "/ui/clusters/dev/disconnect",
                Some(("application/x-www-form-urlencoded", body.into_bytes())),
                &[(header, value)],
            )
            .await
            .unwrap();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{header}: {value}");
    }
    let cluster: serde_json::Value = gw.admin_json("/api/v1/clusters/dev").await;
    assert_eq!(cluster["desiredState"], "connected");

    // The right token from this page: done, with a message for the next page.
    let page = browser
        .post("/ui/clusters/dev/disconnect", &[])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/ui/clusters/dev"));
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let cluster: serde_json::Value = gw.admin_json("/api/v1/clusters/dev").await;
    assert_eq!(cluster["desiredState"], "disconnected");
    // The next page shows the message once.
    browser
        .get("/ui/clusters/dev")
        .await
        .unwrap()
        .assert_contains("Disconnected on every replica");
    browser
        .get("/ui/clusters/dev")
        .await
        .unwrap()
        .assert_lacks("Disconnected on every replica");

    // The change is in the audit log as the console's, under the signed-in token (the log is
    // written in the background: poll, bounded).
    let mut audit = serde_json::Value::Null;
    for _ in 0..100 {
        audit = gw.admin_json("/api/v1/audit?kind=console").await;
        if audit["items"].as_array().unwrap().iter().any(|e| {
            e["path"] == "/api/v1/clusters/dev/disconnect"
                && e["tokenName"] == "admin"
                && e["status"] == 200
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["path"] == "/api/v1/clusters/dev/disconnect"),
        "{audit}"
    );
    assert!(entries.iter().any(|e| e["verb"] == "login"), "{audit}");
    gw.stop().await;
}

#[tokio::test]
async fn a_read_only_user_sees_no_write_buttons_and_cannot_post() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    gw.connect_sim("other", &sim).await.unwrap();
    let reader = gw
        .create_token(json!({"name": "reader", "role": "user",
                             "grants": [{"cluster": "dev", "access": "read"}]}))
        .await
        .unwrap();
    let mut browser = Console::sign_in(&gw, &reader).await.unwrap();

    let list = browser.get("/ui/clusters").await.unwrap();
    assert_eq!(list.status, StatusCode::OK);
    list.assert_contains("/ui/clusters/dev")
        .assert_lacks("/ui/clusters/other")
        .assert_lacks("Register a cluster")
        .assert_lacks("/ui/tokens");
    let detail = browser.get("/ui/clusters/dev").await.unwrap();
    detail
        .assert_contains("Download kubeconfig")
        .assert_lacks("/disconnect")
        .assert_lacks("Delete");
    // A cluster without a grant is refused as on the API.
    let page = browser.get("/ui/clusters/other").await.unwrap();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Posting anyway (a valid CSRF token) is refused by the API's own check.
    let page = browser
        .post("/ui/clusters/dev/disconnect", &[])
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().contains("admin role"),
        "{:?}",
        page.flash()
    );
    let page = browser
        .post(
            "/ui/clusters",
            &[("id", "sneaky"), ("kubeconfig", &sim.kubeconfig())],
        )
        .await
        .unwrap();
    assert!(page.flash().unwrap().starts_with("error:"));
    let status = gw
        .as_admin(Method::GET, "/api/v1/clusters/sneaky")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let cluster: serde_json::Value = gw.admin_json("/api/v1/clusters/dev").await;
    assert_eq!(cluster["desiredState"], "connected");
    // Admin pages are the API's 403.
    let page = browser.get("/ui/inspections").await.unwrap();
    assert!(
        matches!(page.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}",
        page.status
    );

    // The kubeconfig download carries the reader's own token and reaches the cluster.
    let kubeconfig = browser.get("/ui/clusters/dev/kubeconfig").await.unwrap();
    assert_eq!(kubeconfig.status, StatusCode::OK);
    assert!(
        kubeconfig.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("portico-dev.kubeconfig")
    );
    assert!(kubeconfig.body.contains(&reader), "{}", kubeconfig.body);
    assert!(kubeconfig.body.contains("/k8s/clusters/dev"));
    gw.stop().await;
}

#[tokio::test]
async fn registering_through_the_console_connects_and_escapes_what_it_shows() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    let mut browser = admin(&gw).await;
    browser.get("/ui/clusters").await.unwrap();
    let page = browser
        .post(
            "/ui/clusters",
            &[
                ("id", "web"),
                ("name", "<script>alert(1)</script>"),
                ("kubeconfig", &sim.kubeconfig()),
                ("labels", "env=prod, team=<b>pay</b>"),
                ("connect", "on"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(page.location(), Some("/ui/clusters/web"));
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );

    // Connected shortly (the page refreshes itself; here we poll it, bounded).
    let mut connected = false;
    for _ in 0..100 {
        let page = browser.get("/ui/clusters").await.unwrap();
        if page
            .body
            .contains(r#"<span class="state good">connected</span>"#)
        {
            connected = true;
            page.assert_contains("data-refresh")
                .assert_contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                .assert_lacks("<script>alert(1)</script>")
                .assert_contains("team=&lt;b&gt;pay&lt;/b&gt;");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(connected, "the cluster did not show as connected");
    let detail = browser.get("/ui/clusters/web").await.unwrap();
    detail
        .assert_contains("env=prod")
        .assert_contains(&sim.url())
        .assert_lacks("<script>alert(1)</script>");

    // Filters: by state, and a bad label is a message, not a registration.
    browser
        .get("/ui/clusters?state=failed")
        .await
        .unwrap()
        .assert_contains("No cluster matches");
    let page = browser
        .post(
            "/ui/clusters",
            &[("id", "bad"), ("kubeconfig", "x"), ("labels", "novalue")],
        )
        .await
        .unwrap();
    assert!(page.flash().unwrap().contains("not key=value"));

    // Edit and delete.
    let page = browser
        .post(
            "/ui/clusters/web/edit",
            &[
                ("name", "Web"),
                ("labels", "env=staging"),
                ("namespace", "apps"),
            ],
        )
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let cluster: serde_json::Value = gw.admin_json("/api/v1/clusters/web").await;
    assert_eq!(cluster["name"], "Web");
    assert_eq!(cluster["labels"], json!({"env": "staging"}));
    assert_eq!(cluster["namespace"], "apps");
    let page = browser.post("/ui/clusters/web/delete", &[]).await.unwrap();
    assert_eq!(page.location(), Some("/ui/clusters"));
    let status = gw
        .as_admin(Method::GET, "/api/v1/clusters/web")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn sessions_end_at_sign_out_when_idle_and_when_the_token_is_revoked() {
    let gw = TestGateway::builder().start().await;
    let db = &gw.gateway().app().db;

    // Sign-out: the old cookie, replayed, opens nothing.
    let mut browser = admin(&gw).await;
    let stolen = browser.cookie(SESSION).unwrap().to_owned();
    browser.get("/ui").await.unwrap();
    let page = browser.post("/ui/logout", &[]).await.unwrap();
    assert_eq!(page.location(), Some("/ui/login"));
    assert!(browser.cookie(SESSION).is_none());
    let mut thief = Console::new(&gw).unwrap();
    thief.set_cookie(SESSION, &stolen);
    assert_eq!(
        thief.get("/ui").await.unwrap().status,
        StatusCode::SEE_OTHER
    );

    // Idle past the timeout (default 60 min): sent to sign in, told why.
    let mut browser = admin(&gw).await;
    let hash = token_hash(browser.cookie(SESSION).unwrap());
    db.touch_session(&hash, now_millis() - 61 * 60 * 1000)
        .await
        .unwrap();
    let page = browser.get("/ui").await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().contains("why=expired"));
    assert!(db.session(&hash).await.unwrap().is_none());

    // A revoked token ends its sessions at the next request.
    let token = gw
        .create_token(json!({"name": "temp", "role": "admin"}))
        .await
        .unwrap();
    let mut browser = Console::sign_in(&gw, &token).await.unwrap();
    assert_eq!(browser.get("/ui").await.unwrap().status, StatusCode::OK);
    let tokens: serde_json::Value = gw.admin_json("/api/v1/tokens").await;
    let id = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "temp")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = gw
        .as_admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let page = browser.get("/ui").await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().starts_with("/ui/login"));

    // An expired token cannot sign in.
    let expired = portico::testing::generate_token();
    db.insert_token(
        &portico::records::auth::Token {
            id: "expired-id".to_owned(),
            name: "expired".to_owned(),
            role: portico::records::auth::Role::Admin,
            grants: Vec::new(),
            impersonate_user: None,
            impersonate_groups: Vec::new(),
            created_at: now_millis() - 10_000,
            expires_at: Some(now_millis() - 1_000),
        },
        &token_hash(&expired),
    )
    .await
    .unwrap();
    let mut browser = Console::new(&gw).unwrap();
    let page = browser.try_sign_in(&expired).await.unwrap();
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    page.assert_contains("expired");
    gw.stop().await;
}

#[tokio::test]
async fn a_session_made_on_one_replica_works_on_another() {
    let Some(pg) = TestPostgres::start_or_skip("console_session_on_any_replica") else {
        return;
    };
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const ADMIN: &str = "pt_console-test-admin-token-0123456789";
    let url = pg.create_database("console").unwrap();
    let start = || {
        TestGateway::builder()
            .env("DATABASE_URL", &url)
            .env("SECRET_KEY", KEY)
            .env("ADMIN_TOKEN", ADMIN)
            .env("PLAIN_HTTP", "true")
            .start()
    };
    let a = start().await;
    let b = start().await;
    let mut on_a = Console::sign_in(&a, ADMIN).await.unwrap();
    let cookie = on_a.cookie(SESSION).unwrap().to_owned();
    let mut on_b = Console::new(&b).unwrap();
    on_b.set_cookie(SESSION, &cookie);
    let page = on_b.get("/ui").await.unwrap();
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Sign out");
    // Sign out on B ends it on A.
    on_b.post("/ui/logout", &[]).await.unwrap();
    assert_eq!(on_a.get("/ui").await.unwrap().status, StatusCode::SEE_OTHER);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_cluster_list_comes_in_pages_and_the_overview_counts_every_cluster() {
    let gw = TestGateway::builder().start().await;
    // Registered, not connected: 101 clusters are one more than a page.
    let kubeconfig = KubeSim::start().await.unwrap().kubeconfig();
    for i in 0..101 {
        gw.register_cluster(&format!("p{i:03}"), &kubeconfig)
            .await
            .unwrap();
    }
    let mut browser = admin(&gw).await;

    let overview = browser.get("/ui").await.unwrap();
    assert_eq!(overview.status, StatusCode::OK);
    overview
        .assert_contains(r#"<div class="num">101</div><div class="label">registered</div>"#)
        .assert_contains(r#"<div class="num">101</div><div class="label">disconnected</div>"#)
        .assert_contains(r#"<div class="num">0</div><div class="label">connected</div>"#);

    // The first page: 100 rows, and a link to the next page (which keeps the filters).
    let first = browser.get("/ui/clusters").await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.matches(r#"href="/ui/clusters/p"#).count(), 100);
    first
        .assert_contains("100 of 101 clusters")
        .assert_contains(r#"href="/ui/clusters/p099""#)
        .assert_lacks(r#"href="/ui/clusters/p100""#)
        .assert_contains(r#"href="/ui/clusters?continue=p099""#)
        .assert_lacks("first page");
    let second = browser.get("/ui/clusters?continue=p099").await.unwrap();
    assert_eq!(second.body.matches(r#"href="/ui/clusters/p"#).count(), 1);
    second
        .assert_contains(r#"href="/ui/clusters/p100""#)
        .assert_contains("1 of 101 clusters")
        .assert_contains("first page")
        .assert_lacks("next page");

    // A search runs over every cluster, not only the page shown: p100 is on the second page.
    let found = browser.get("/ui/clusters?q=P100").await.unwrap();
    assert_eq!(found.body.matches(r#"href="/ui/clusters/p"#).count(), 1);
    found
        .assert_contains(r#"href="/ui/clusters/p100""#)
        .assert_contains("1 of 1 clusters");
    let found = browser.get("/ui/clusters?q=P09").await.unwrap();
    assert_eq!(found.body.matches(r#"href="/ui/clusters/p"#).count(), 10);
    found
        .assert_contains(r#"href="/ui/clusters/p090""#)
        .assert_contains(r#"href="/ui/clusters/p099""#)
        .assert_contains("10 of 10 clusters")
        .assert_lacks("next page");
    let none = browser
        .get("/ui/clusters?state=connected&q=p1")
        .await
        .unwrap();
    none.assert_contains("No cluster matches");
    gw.stop().await;
}
