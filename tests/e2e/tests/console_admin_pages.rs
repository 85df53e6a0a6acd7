//! The console's admin pages over HTTP: tokens (created once-shown, revoked with their
//! sessions), the audit log (filters, paging), Helm repositories (added, synced, charts
//! searched), webhooks (created, deliveries listed) and the replicas page, each with its CSRF
//! and grant checks and escaping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::routing::{get, post};
use kube_sim::KubeSim;
use portico::testing::token_hash;
use portico_e2e::console::Console;
use portico_e2e::fleet::{self, Fleet};
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{gateway_builder, plugin_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SESSION: &str = "__Host-portico_session";
/// Bound on every wait: reached only when something is broken.
const WAIT: Duration = Duration::from_secs(60);

async fn admin(gw: &TestGateway) -> Console {
    Console::sign_in(gw, gw.admin_token.as_deref().unwrap())
        .await
        .unwrap()
}

/// A read-only user (role `user`, read on `dev`) signed in.
async fn reader(gw: &TestGateway) -> Console {
    let token = gw
        .create_token(json!({"name": "reader", "role": "user",
                             "grants": [{"cluster": "dev", "access": "read"}]}))
        .await
        .unwrap();
    Console::sign_in(gw, &token).await.unwrap()
}

async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    fleet::eventually(what, WAIT, check).await
}

/// Body rows of the table with id `table` in `html`.
fn rows(html: &str, table: &str) -> usize {
    let Some(start) = html.find(&format!("id=\"{table}\"")) else {
        return 0;
    };
    let rest = &html[start..];
    let end = rest.find("</table>").unwrap_or(rest.len());
    let tbody = &rest[..end];
    let tbody = &tbody[tbody.find("<tbody>").unwrap_or(0)..];
    tbody.matches("<tr>").count()
}

/// The text of the element with id `id` (as rendered, escaped).
fn element_text<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(&rest[start..start + end])
}

/// Posts without a CSRF token and with a wrong one: both 403.
async fn assert_needs_csrf(browser: &mut Console, path: &str, fields: &[(&str, &str)]) {
    let page = browser.send(Method::POST, path, fields).await.unwrap();
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} without a token");
    let mut wrong = vec![("_csrf", "wrong")];
    wrong.extend_from_slice(fields);
    let page = browser.send(Method::POST, path, &wrong).await.unwrap();
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "{path} with a wrong token"
    );
}

async fn tokens(gw: &TestGateway) -> Vec<Value> {
    ok(gw, Method::GET, "/api/v1/tokens", None).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_token_created_in_the_console_works_and_its_secret_is_shown_once() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let mut browser = admin(&gw).await;
    let page = browser.get("/ui/tokens").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Create a token")
        .assert_contains(">admin<");

    let fields = [
        ("name", "teammate"),
        ("role", "user"),
        ("grants", "dev=read\n<b>x</b>=write,impersonate"),
        ("impersonate_user", "jane"),
        ("impersonate_groups", "devs, ops"),
        ("ttl", "86400"),
        ("expires_at", ""),
    ];
    assert_needs_csrf(&mut browser, "/ui/tokens", &fields).await;
    assert_eq!(tokens(&gw).await.len(), 1, "nothing was created");

    let created = browser.post("/ui/tokens", &fields).await.unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    assert!(created.location().is_none() && created.flash().is_none());
    let secret = element_text(&created.body, "new-token")
        .expect("the new token on the page")
        .to_owned();
    assert!(secret.len() > 20, "{secret}");
    created.assert_contains("shown only on this page");
    for cookie in created.headers.get_all("set-cookie") {
        assert!(!cookie.to_str().unwrap().contains(&secret));
    }

    // It works on the API with what the form said.
    let response = gw
        .as_token(&secret, Method::GET, "/api/v1/clusters")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let all = tokens(&gw).await;
    let token = all.iter().find(|t| t["name"] == "teammate").unwrap();
    assert_eq!(token["role"], "user");
    assert_eq!(
        token["grants"],
        json!([{"cluster": "dev", "access": "read"},
               {"cluster": "<b>x</b>", "access": "write", "impersonate": true}])
    );
    assert_eq!(token["impersonateUser"], "jane");
    assert_eq!(token["impersonateGroups"], json!(["devs", "ops"]));
    let expires = token["expiresAt"].as_i64().unwrap();
    let created_at = token["createdAt"].as_i64().unwrap();
    assert!((expires - created_at - 86_400_000).abs() < 5_000);

    // Never again: not on the list, nowhere in the next pages; outside values are escaped.
    let list = browser.get("/ui/tokens").await.unwrap();
    list.assert_lacks(&secret)
        .assert_contains("teammate")
        .assert_contains("&lt;b&gt;x&lt;/b&gt;=write (impersonate)")
        .assert_lacks("<b>x</b>");
    assert_eq!(rows(&list.body, "tokens-table"), 2);
    browser.get("/ui").await.unwrap().assert_lacks(&secret);

    // A bad grant line or expiry: refused with the reason, nothing created.
    for (field, value, says) in [
        ("grants", "dev=admin", "`read` or `write`"),
        ("grants", "dev", "cluster=access"),
        ("expires_at", "tomorrow", "RFC 3339"),
    ] {
        let mut bad = vec![("name", "bad"), ("role", "user")];
        bad.push((field, value));
        let page = browser.post("/ui/tokens", &bad).await.unwrap();
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let flash = page.flash().unwrap();
        assert!(
            flash.starts_with("error:") && flash.contains(says),
            "{flash}"
        );
    }
    assert_eq!(tokens(&gw).await.len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn revoking_a_token_ends_its_console_sessions() {
    let gw = TestGateway::builder().start().await;
    let mut user = reader(&gw).await;
    assert_eq!(
        user.get("/ui/replicas").await.unwrap().status,
        StatusCode::OK
    );
    let cookie = user.cookie(SESSION).unwrap().to_owned();
    let db = &gw.gateway().app().db;
    assert!(db.session(&token_hash(&cookie)).await.unwrap().is_some());
    let id = tokens(&gw)
        .await
        .iter()
        .find(|t| t["name"] == "reader")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut browser = admin(&gw).await;
    browser
        .get("/ui/tokens")
        .await
        .unwrap()
        .assert_contains(&format!("/ui/tokens/{id}/revoke"));
    assert_needs_csrf(&mut browser, &format!("/ui/tokens/{id}/revoke"), &[]).await;
    // The reader cannot revoke anything (the API refuses), not even with a valid form.
    user.get("/ui/replicas").await.unwrap();
    let page = user
        .post(&format!("/ui/tokens/{id}/revoke"), &[])
        .await
        .unwrap();
    assert!(page.flash().unwrap().starts_with("error:"));
    assert_eq!(tokens(&gw).await.len(), 2);

    let page = browser
        .post(&format!("/ui/tokens/{id}/revoke"), &[])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    // The session row is gone with the token, not left for the next request to find.
    assert!(db.session(&token_hash(&cookie)).await.unwrap().is_none());
    let page = user.get("/ui/replicas").await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location().unwrap().starts_with("/ui/login"),
        "{:?}",
        page.location()
    );
    // The admin's own session cannot revoke its own token (the API refuses): no button.
    let list = browser.get("/ui/tokens").await.unwrap();
    list.assert_lacks("/revoke");
    gw.stop().await;
}

#[tokio::test]
async fn the_audit_log_filters_by_kind_token_and_cluster_and_pages_to_older_entries() {
    let gw = TestGateway::builder().start().await;
    let mut browser = admin(&gw).await;
    // A change through the console (kind `console`) and one through the API (kind `api`).
    browser.get("/ui/webhooks").await.unwrap();
    let page = browser
        .post(
            "/ui/webhooks",
            &[
                ("name", "from-console"),
                ("url", "http://127.0.0.1:9/hook"),
                ("secret", "s"),
                ("event_connected", "on"),
                ("scope", "cluster"),
                ("enabled", "on"),
            ],
        )
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    // API changes: 105 refused posts (refused changes are audited too), enough for two pages.
    for _ in 0..105 {
        let response = gw
            .as_admin(Method::POST, "/api/v1/jobs")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    // The log is written in the background.
    eventually("the audit entries", || async {
        let log = ok(&gw, Method::GET, "/api/v1/audit?kind=api&limit=1000", None).await;
        (log["items"].as_array().unwrap().len() >= 105).then_some(())
    })
    .await;
    eventually("the console entry", || async {
        let log = ok(&gw, Method::GET, "/api/v1/audit?kind=console", None).await;
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "/api/v1/webhooks")
            .then_some(())
    })
    .await;

    let page = browser.get("/ui/audit?kind=console").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("/api/v1/webhooks")
        .assert_contains("login")
        .assert_lacks("/api/v1/jobs")
        .assert_lacks("Older");
    let page = browser.get("/ui/audit?kind=api&token=admin").await.unwrap();
    page.assert_contains("/api/v1/jobs")
        .assert_lacks("/api/v1/webhooks");
    assert_eq!(rows(&page.body, "audit-table"), 100);
    // Older: the rest, none twice, none lost (many entries share a millisecond here).
    let older = page
        .body
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|href| href.starts_with("/ui/audit?before="))
        .expect("an Older link")
        .replace("&amp;", "&");
    assert!(
        older.contains("kind=api") && older.contains("token=admin"),
        "{older}"
    );
    let next = browser.get(&older).await.unwrap();
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(rows(&next.body, "audit-table"), 5, "{older}");
    next.assert_lacks("/ui/audit?before=");
    for (query, empty) in [
        ("token=nobody", true),
        ("cluster=dev", true),
        ("kind=console&token=admin", false),
    ] {
        let page = browser.get(&format!("/ui/audit?{query}")).await.unwrap();
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body.contains("No entries."), empty, "{query}");
    }
    // What the API refuses, the page refuses.
    let page = browser.get("/ui/audit?kind=nonsense").await.unwrap();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("`kind` must be");
    // Filter values from the outside are escaped.
    let page = browser
        .get("/ui/audit?cluster=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await
        .unwrap();
    page.assert_lacks("<script>alert(1)")
        .assert_contains("&quot;&gt;&lt;script&gt;");
    gw.stop().await;
}

#[tokio::test]
async fn admin_pages_refuse_read_only_users() {
    let gw = TestGateway::builder().start().await;
    let mut user = reader(&gw).await;
    let page = user.get("/ui/replicas").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_lacks("/ui/tokens").assert_lacks("/ui/audit");
    for path in [
        "/ui/helm",
        "/ui/helm/charts",
        "/ui/audit",
        "/ui/tokens",
        "/ui/webhooks",
        "/ui/webhooks/x",
    ] {
        let page = user.get(path).await.unwrap();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Posting anyway, with the session's valid CSRF token: the API refuses every one.
    user.get("/ui/replicas").await.unwrap();
    for (path, fields) in [
        (
            "/ui/tokens",
            vec![("name", "sneaky"), ("role", "admin"), ("grants", "")],
        ),
        (
            "/ui/webhooks",
            vec![
                ("name", "sneaky"),
                ("url", "http://127.0.0.1:9/"),
                ("secret", "s"),
                ("event_connected", "on"),
            ],
        ),
        (
            "/ui/helm",
            vec![("name", "sneaky"), ("url", "http://127.0.0.1:9/")],
        ),
        ("/ui/helm/sync", vec![]),
        ("/ui/helm/jobs/x/schedule", vec![("cron", "* * * * *")]),
        ("/ui/helm/repositories/x/delete", vec![]),
        ("/ui/webhooks/x/delete", vec![]),
    ] {
        let page = user.post(path, &fields).await.unwrap();
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let flash = page.flash().unwrap();
        assert!(flash.starts_with("error:"), "{path}: {flash}");
    }
    assert_eq!(tokens(&gw).await.len(), 2);
    let webhooks = ok(&gw, Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(webhooks["items"], json!([]));
    let repositories = ok(&gw, Method::GET, "/api/v1/helm/repositories", None).await;
    assert_eq!(repositories["items"], json!([]));
    gw.stop().await;
}

/// A webhook receiver that answers 204 and counts what it got.
async fn receiver() -> (Arc<Mutex<usize>>, String) {
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    let router = Router::new().route(
        "/hook",
        post(move || {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap() += 1;
                AxumStatus::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (count, format!("http://{addr}/hook"))
}

#[tokio::test]
async fn a_webhook_created_in_the_console_lists_its_deliveries() {
    let gw = TestGateway::builder().start().await;
    let (received, url) = receiver().await;
    let mut browser = admin(&gw).await;
    let page = browser.get("/ui/webhooks").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("No webhook yet");
    let fields = [
        ("name", "notify"),
        ("url", url.as_str()),
        ("secret", "a-signing-secret"),
        ("event_connected", "on"),
        ("event_disconnected", "on"),
        ("scope", "cluster"),
        ("clusters", ""),
        ("enabled", "on"),
    ];
    assert_needs_csrf(&mut browser, "/ui/webhooks", &fields).await;
    let page = browser.post("/ui/webhooks", &fields).await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let location = page.location().unwrap().to_owned();
    let id = location.strip_prefix("/ui/webhooks/").unwrap().to_owned();
    let webhook = ok(&gw, Method::GET, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(webhook["name"], "notify");
    assert_eq!(webhook["events"], json!(["connected", "disconnected"]));
    assert_eq!(webhook["enabled"], true);

    // No event ticked: the API's reason comes back.
    let mut none = fields.to_vec();
    none.retain(|(k, _)| !k.starts_with("event_"));
    let page = browser.post("/ui/webhooks", &none).await.unwrap();
    assert!(
        page.flash().unwrap().contains("`events`"),
        "{:?}",
        page.flash()
    );

    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let mut page = None;
    for _ in 0..600 {
        let shown = browser.get(&location).await.unwrap();
        if shown.body.contains(">delivered<") {
            page = Some(shown);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = page.expect("the delivery on the page");
    assert_eq!(*received.lock().unwrap(), 1);
    assert_eq!(rows(&page.body, "deliveries-table"), 1);
    page.assert_contains("connected")
        .assert_contains("/ui/clusters/dev")
        .assert_contains("deliveries-live")
        .assert_lacks("a-signing-secret");
    let list = browser.get("/ui/webhooks").await.unwrap();
    assert_eq!(rows(&list.body, "webhooks-table"), 1);

    // Edit: disabled, one event, one cluster; the secret is kept when left empty.
    let edit = format!("/ui/webhooks/{id}/edit");
    assert_needs_csrf(&mut browser, &edit, &fields).await;
    let page = browser
        .post(
            &edit,
            &[
                ("name", "notify"),
                ("url", url.as_str()),
                ("secret", ""),
                ("event_disconnected", "on"),
                ("scope", "replica"),
                ("clusters", "dev, prod"),
            ],
        )
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let webhook = ok(&gw, Method::GET, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(webhook["enabled"], false);
    assert_eq!(webhook["events"], json!(["disconnected"]));
    assert_eq!(webhook["scope"], "replica");
    assert_eq!(webhook["clusters"], json!(["dev", "prod"]));
    let stored = gw.gateway().app().db.webhook(&id).await.unwrap().unwrap();
    assert!(!stored.sealed_secret.is_empty());

    let delete = format!("/ui/webhooks/{id}/delete");
    assert_needs_csrf(&mut browser, &delete, &[]).await;
    let page = browser.post(&delete, &[]).await.unwrap();
    assert_eq!(page.location(), Some("/ui/webhooks"));
    let response = gw
        .as_admin(Method::GET, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    gw.stop().await;
}

const INDEX: &str = r#"
apiVersion: v1
entries:
  web:
    - name: web
      version: 1.10.0
      appVersion: "2.0"
      description: A web server
      keywords: [http, proxy]
      urls: [web-1.10.0.tgz]
    - name: web
      version: 1.9.0
      description: A web server (old)
      urls: [web-1.9.0.tgz]
  db:
    - name: db
      version: 0.1.0
      description: "A database <script>alert(1)</script>"
      deprecated: true
      urls: [db-0.1.0.tgz]
"#;

/// Serves [`INDEX`] at `/charts/index.yaml`.
async fn chart_repository() -> String {
    let router = Router::new().route("/charts/index.yaml", get(|| async { INDEX }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/charts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_repository_added_in_the_console_is_synced_and_its_charts_searchable() {
    let gw = gateway_builder("console-helm")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .args(["--plugin-http-allow-local"])
        .env("JOB_POLL_INTERVAL_MS", "200")
        .start()
        .await;
    let url = chart_repository().await;
    let job = eventually("the built-in job", || async {
        let jobs = ok(&gw, Method::GET, "/api/v1/jobs", None).await;
        jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == "repo-sync")
            .cloned()
    })
    .await;
    let job_id = job["id"].as_str().unwrap().to_owned();

    let mut browser = admin(&gw).await;
    let page = browser.get("/ui/helm").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("No repository yet")
        .assert_contains("Sync now")
        .assert_contains("helm-repo-sync");
    let fields = [("name", "local"), ("url", url.as_str()), ("auth", "none")];
    assert_needs_csrf(&mut browser, "/ui/helm", &fields).await;
    let page = browser
        .post("/ui/helm", &[("name", "Bad Name"), ("url", url.as_str())])
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().contains("`name` must be"),
        "{:?}",
        page.flash()
    );
    let page = browser.post("/ui/helm", &fields).await.unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let repositories = ok(&gw, Method::GET, "/api/v1/helm/repositories", None).await;
    let repository = repositories["items"][0].clone();
    assert_eq!(repository["name"], "local");
    let repo_id = repository["id"].as_str().unwrap().to_owned();

    assert_needs_csrf(&mut browser, "/ui/helm/sync", &[]).await;
    let page = browser.post("/ui/helm/sync", &[]).await.unwrap();
    let flash = page.flash().unwrap();
    assert!(flash.starts_with("ok:Sync started"), "{flash}");
    eventually("the sync", || async {
        let repositories = ok(&gw, Method::GET, "/api/v1/helm/repositories", None).await;
        (repositories["items"][0]["lastSyncStatus"] == "success").then_some(())
    })
    .await;

    // The repositories page: synced, and every version is new after the first sync.
    let page = browser.get("/ui/helm").await.unwrap();
    page.assert_contains(">success<")
        .assert_lacks("No new version");
    assert_eq!(rows(&page.body, "charts-table"), 3);
    // The browser: newest per chart, searchable by keyword, every version on demand.
    let page = browser.get("/ui/helm/charts").await.unwrap();
    assert_eq!(rows(&page.body, "charts-table"), 2);
    page.assert_contains("1.10.0")
        .assert_lacks("1.9.0")
        .assert_contains("&lt;script&gt;alert(1)")
        .assert_lacks("<script>alert(1)");
    let page = browser.get("/ui/helm/charts?q=proxy").await.unwrap();
    assert_eq!(rows(&page.body, "charts-table"), 1);
    page.assert_contains("web").assert_lacks("A database");
    let page = browser
        .get("/ui/helm/charts?q=web&versions=all&repository=local&new=true")
        .await
        .unwrap();
    assert_eq!(rows(&page.body, "charts-table"), 2);
    page.assert_contains("1.9.0").assert_contains(">new<");
    let page = browser
        .get("/ui/helm/charts?q=nothing-like-it")
        .await
        .unwrap();
    page.assert_contains("No chart matches");

    // The schedule of the sync job: a bad cron is refused with the API's reason.
    let schedule = format!("/ui/helm/jobs/{job_id}/schedule");
    assert_needs_csrf(&mut browser, &schedule, &[("cron", "0 1 * * *")]).await;
    let page = browser.post(&schedule, &[("cron", "often")]).await.unwrap();
    assert!(
        page.flash().unwrap().starts_with("error:"),
        "{:?}",
        page.flash()
    );
    let page = browser
        .post(&schedule, &[("cron", "0 */2 * * *")])
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{job_id}"), None).await;
    assert_eq!(job["cron"], "0 */2 * * *");

    // Edit the URL and add credentials; then delete.
    let edit = format!("/ui/helm/repositories/{repo_id}/edit");
    let other = format!("{url}/other");
    let page = browser
        .post(
            &edit,
            &[
                ("name", "local"),
                ("url", other.as_str()),
                ("auth", "basic"),
                ("username", "u"),
                ("password", "p"),
            ],
        )
        .await
        .unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let repository = ok(
        &gw,
        Method::GET,
        &format!("/api/v1/helm/repositories/{repo_id}"),
        None,
    )
    .await;
    assert_eq!(repository["url"], other.as_str());
    assert_eq!(repository["authType"], "basic");
    let delete = format!("/ui/helm/repositories/{repo_id}/delete");
    assert_needs_csrf(&mut browser, &delete, &[]).await;
    let page = browser.post(&delete, &[]).await.unwrap();
    assert!(
        page.flash().unwrap().starts_with("ok:"),
        "{:?}",
        page.flash()
    );
    let repositories = ok(&gw, Method::GET, "/api/v1/helm/repositories", None).await;
    assert_eq!(repositories["items"], json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn the_replicas_page_of_a_standalone_gateway_shows_itself() {
    let gw = TestGateway::builder().start().await;
    let mut user = reader(&gw).await;
    let page = user.get("/ui/replicas").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("standalone")
        .assert_contains("replicas-live")
        .assert_contains(">leader<")
        .assert_contains("this one");
    assert_eq!(rows(&page.body, "replicas-table"), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replicas_page_shows_the_leader_its_term_and_each_renewal() {
    let Some(fleet) =
        Fleet::start("the_replicas_page_shows_the_leader_its_term_and_each_renewal").await
    else {
        return;
    };
    const ADMIN: &str = "console-replicas-admin-token";
    let a = fleet.replica("replica-a", ADMIN).start().await;
    let b = fleet.replica("replica-b", ADMIN).start().await;
    let (leader, instances) = eventually("a leader and two instances", || async {
        let leader = ok(&b, Method::GET, "/api/v1/leader", None).await;
        let instances = ok(&b, Method::GET, "/api/v1/instances", None).await;
        (leader["holder"].is_string()
            && leader["transitions"].is_i64()
            && instances["items"].as_array().unwrap().len() == 2)
            .then_some((leader, instances))
    })
    .await;
    // The API now says when each instance last renewed its lease.
    for instance in instances["items"].as_array().unwrap() {
        let renewed = instance["renewTime"].as_str().unwrap();
        assert!(
            renewed.starts_with("20") && renewed.contains('T'),
            "{renewed}"
        );
    }
    let mut browser = Console::sign_in(&b, ADMIN).await.unwrap();
    let page = browser.get("/ui/replicas").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(rows(&page.body, "replicas-table"), 2);
    page.assert_contains("replica-a")
        .assert_contains("replica-b")
        .assert_contains("leases")
        .assert_contains(&format!(
            "<code>{}</code>",
            leader["holder"].as_str().unwrap()
        ))
        .assert_contains(&format!(
            "<dd>{}</dd>",
            leader["transitions"].as_i64().unwrap()
        ))
        .assert_contains(">alive<")
        .assert_lacks("standalone: no instance lease");
    a.stop().await;
    b.stop().await;
}
