//! The console's Plugins pages over HTTP: the list, the configuration editor (saved, refused
//! with the plugin's causes, reset), enable/disable, delete, and the multipart upload with its
//! CSRF token; grants and escaping.

use portico_e2e::console::{Console, Page};
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::{gateway_builder, wasm};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const REQUIRE_LABELS: &str = include_str!("../../../plugins/examples/require-labels/manifest.toml");

async fn admin(gw: &TestGateway) -> Console {
    Console::sign_in(gw, gw.admin_token.as_deref().unwrap())
        .await
        .unwrap()
}

#[track_caller]
fn flash(page: &Page) -> String {
    page.flash()
        .unwrap_or_else(|| panic!("no message: {} {}", page.status, page.body))
}

/// A browser's `multipart/form-data` body of the upload form: `manifest` and `component`
/// files.
fn multipart(manifest: &str, component: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----portico-console-test-4f1c2e9a";
    let mut body = Vec::new();
    for (name, file, content_type, bytes) in [
        (
            "manifest",
            "manifest.toml",
            "text/plain",
            manifest.as_bytes(),
        ),
        ("component", "plugin.wasm", "application/wasm", component),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(browser: &mut Console, path: &str, manifest: &str) -> Page {
    let (content_type, body) = multipart(manifest, &wasm("require-labels"));
    browser
        .request(Method::POST, path, Some((&content_type, body)), &[])
        .await
        .unwrap()
}

async fn plugin(gw: &TestGateway, name: &str) -> Option<Value> {
    let response = gw
        .as_admin(Method::GET, &format!("/api/v1/plugins/{name}"))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => Some(response.json().await.unwrap()),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_list_shows_world_capabilities_limits_and_state() {
    let gw = gateway_builder("console-plugins-list").start().await;
    gw.gateway().app().plugins.builtins_compiled().await;
    let mut browser = admin(&gw).await;
    let page = browser.get("/ui/plugins").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains(r#"href="/ui/plugins/builtin-checks""#)
        .assert_contains(r#"href="/ui/plugins/helm-index""#)
        .assert_contains(r#"href="/ui/plugins/rules""#)
        .assert_contains("inspector")
        .assert_contains("repo-sync")
        .assert_contains(r#"<span class="label-chip">kube</span>"#)
        .assert_contains("60000 ms · 128 MiB")
        .assert_contains(r#"<span class="state good">enabled</span>"#)
        .assert_contains("built-in")
        .assert_contains(" ms</td>")
        .assert_contains("Upload a plugin")
        .assert_contains(r#"enctype="multipart/form-data""#);
    // A built-in plugin: configurable and disable-able, never deletable.
    let detail = browser.get("/ui/plugins/builtin-checks").await.unwrap();
    detail
        .assert_contains("Save configuration")
        .assert_contains("/ui/plugins/builtin-checks/disable")
        .assert_lacks("/ui/plugins/builtin-checks/delete")
        .assert_contains("maxOutputBytes");
    let page = browser.get("/ui/plugins/nothing-here").await.unwrap();
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn a_configuration_is_saved_and_a_bad_one_refused_with_its_cause() {
    let gw = gateway_builder("console-plugins-config").start().await;
    let mut browser = admin(&gw).await;
    browser.get("/ui/plugins/rules").await.unwrap();
    let default = plugin(&gw, "rules").await.unwrap()["config"].clone();

    let good = json!({"rules": [{"id": "ok", "match": {"apiVersion": "v1", "kinds": ["Pod"]},
                                 "expression": "has(object.spec)"}]});
    let page = browser
        .post("/ui/plugins/rules/config", &[("config", &good.to_string())])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(flash(&page), "ok:Configuration saved.");
    assert_eq!(plugin(&gw, "rules").await.unwrap()["config"], good);
    browser
        .get("/ui/plugins/rules")
        .await
        .unwrap()
        .assert_contains("has(object.spec)");

    // The plugin refuses it: the page again with the posted text and the cause; nothing stored.
    let bad = r#"{"rules": [{"id": "typo", "match": {"apiVersion": "v1", "kinds": ["Pod"]},
                 "expression": "object.spec.containers.all(c, c.image == '<script>x</script>'"}]}"#;
    let page = browser
        .post("/ui/plugins/rules/config", &[("config", bad)])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("refuses this configuration")
        .assert_contains("rules[0].expression")
        .assert_contains("does not compile")
        .assert_contains("&lt;script&gt;x&lt;/script&gt;")
        .assert_lacks("<script>x</script>");
    assert_eq!(plugin(&gw, "rules").await.unwrap()["config"], good);

    // Not JSON at all: refused by the console, with the reason.
    let page = browser
        .post("/ui/plugins/rules/config", &[("config", "{rules: [")])
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("not JSON")
        .assert_contains("{rules: [");
    assert_eq!(plugin(&gw, "rules").await.unwrap()["config"], good);

    // Reset to the manifest's default.
    let page = browser
        .post("/ui/plugins/rules/config/reset", &[])
        .await
        .unwrap();
    assert!(flash(&page).starts_with("ok:"), "{}", flash(&page));
    assert_eq!(plugin(&gw, "rules").await.unwrap()["config"], default);

    // Disable and enable.
    let page = browser
        .post("/ui/plugins/rules/disable", &[])
        .await
        .unwrap();
    assert_eq!(flash(&page), "ok:Disabled.");
    assert_eq!(plugin(&gw, "rules").await.unwrap()["enabled"], false);
    browser
        .get("/ui/plugins/rules")
        .await
        .unwrap()
        .assert_contains("/ui/plugins/rules/enable");
    browser.post("/ui/plugins/rules/enable", &[]).await.unwrap();
    assert_eq!(plugin(&gw, "rules").await.unwrap()["enabled"], true);

    // Forms without the session's token change nothing.
    for fields in [vec![], vec![("_csrf", "wrong")]] {
        let mut config = fields.clone();
        config.push(("config", "{}"));
        for (path, fields) in [
            ("/ui/plugins/rules/config", config),
            ("/ui/plugins/rules/disable", fields.clone()),
            ("/ui/plugins/rules/config/reset", fields.clone()),
        ] {
            let page = browser.send(Method::POST, path, &fields).await.unwrap();
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {fields:?}");
        }
    }
    let rules = plugin(&gw, "rules").await.unwrap();
    assert_eq!(rules["config"], default);
    assert_eq!(rules["enabled"], true);
    gw.stop().await;
}

#[tokio::test]
async fn an_upload_needs_the_csrf_token_and_installs_the_plugin() {
    let gw = gateway_builder("console-plugins-upload").start().await;
    let mut browser = admin(&gw).await;
    let list = browser.get("/ui/plugins").await.unwrap();
    let csrf = browser.csrf.clone().unwrap();
    let action = format!("/ui/plugins?_csrf={csrf}");
    list.assert_contains(&format!(r#"action="{action}""#));

    // Without the token, with a wrong one, or with another session's: 403, nothing installed.
    let mut other = admin(&gw).await;
    other.get("/ui").await.unwrap();
    let others = other.csrf.clone().unwrap();
    for path in [
        "/ui/plugins".to_owned(),
        "/ui/plugins?_csrf=wrong".to_owned(),
        format!("/ui/plugins?_csrf={others}"),
        format!("/ui/plugins?replace=true&_csrf={others}"),
    ] {
        let page = upload(&mut browser, &path, REQUIRE_LABELS).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(plugin(&gw, "require-labels").await.is_none());
    // The token, but not a multipart body.
    let page = browser
        .request(
            Method::POST,
            &action,
            Some(("application/x-www-form-urlencoded", b"manifest=x".to_vec())),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // With it: installed, to the plugin's page.
    let page = upload(&mut browser, &action, REQUIRE_LABELS).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/ui/plugins/require-labels"));
    assert!(flash(&page).contains("require-labels 0.1.0 installed"));
    let installed = plugin(&gw, "require-labels").await.unwrap();
    assert_eq!(installed["source"], "upload");
    browser
        .get("/ui/plugins/require-labels")
        .await
        .unwrap()
        .assert_contains("app.kubernetes.io/name")
        .assert_contains("/ui/plugins/require-labels/delete");

    // Again: refused with the API's reason, unless it replaces.
    let page = upload(&mut browser, &action, REQUIRE_LABELS).await;
    assert!(flash(&page).starts_with("error:"), "{}", flash(&page));
    let v2 = REQUIRE_LABELS.replace("0.1.0", "0.2.0");
    let page = upload(&mut browser, &format!("{action}&replace=true"), &v2).await;
    assert!(flash(&page).contains("0.2.0 installed"), "{}", flash(&page));
    assert_eq!(
        plugin(&gw, "require-labels").await.unwrap()["version"],
        "0.2.0"
    );
    // A bad manifest: the API's reason, shown as text.
    let page = upload(
        &mut browser,
        &action,
        "name = \"<script>alert(1)</script>\"\nversion = \"1.0.0\"\nworld = \"inspector\"\n",
    )
    .await;
    assert!(flash(&page).starts_with("error:"), "{}", flash(&page));
    browser
        .get("/ui/plugins")
        .await
        .unwrap()
        .assert_lacks("<script>alert(1)");

    // Delete.
    let page = browser
        .post("/ui/plugins/require-labels/delete", &[])
        .await
        .unwrap();
    assert_eq!(page.location(), Some("/ui/plugins"));
    assert!(plugin(&gw, "require-labels").await.is_none());
    gw.stop().await;
}

#[tokio::test]
async fn a_read_only_user_can_neither_see_nor_change_plugins() {
    let gw = TestGateway::builder().start().await;
    let reader = gw
        .create_token(json!({"name": "reader", "role": "user", "grants": []}))
        .await
        .unwrap();
    let mut reader = Console::sign_in(&gw, &reader).await.unwrap();
    reader
        .get("/ui")
        .await
        .unwrap()
        .assert_lacks("href=\"/ui/plugins\"");
    for path in ["/ui/plugins", "/ui/plugins/rules"] {
        let page = reader.get(path).await.unwrap();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        page.assert_lacks("Save configuration");
    }
    // Posting anyway with the reader's own valid token: the API refuses.
    for (path, fields) in [
        ("/ui/plugins/rules/config", vec![("config", "{}")]),
        ("/ui/plugins/rules/disable", vec![]),
        ("/ui/plugins/rules/config/reset", vec![]),
        ("/ui/plugins/rules/delete", vec![]),
    ] {
        let page = reader.post(path, &fields).await.unwrap();
        if page.status == StatusCode::SEE_OTHER {
            assert!(
                flash(&page).contains("admin role"),
                "{path}: {}",
                flash(&page)
            );
        } else {
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
            page.assert_contains("admin role");
        }
    }
    let csrf = reader.csrf.clone().unwrap();
    let page = upload(
        &mut reader,
        &format!("/ui/plugins?_csrf={csrf}"),
        REQUIRE_LABELS,
    )
    .await;
    assert!(flash(&page).contains("admin role"), "{}", flash(&page));
    assert!(plugin(&gw, "require-labels").await.is_none());
    let rules = ok(&gw, Method::GET, "/api/v1/plugins/rules", None).await;
    assert_eq!(rules["enabled"], true);
    gw.stop().await;
}
