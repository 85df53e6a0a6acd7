//! The console in a real headless Chromium: sign in, register a simulator cluster, see it
//! connect without reloading, run an inspection and read its findings, and the other pages. Screenshots of each page are saved
//! under `target/console-screenshots/` (test artifacts).

use kube_sim::KubeSim;
use portico_e2e::browser::{Browser, Locator};
use portico_e2e::gateway::TestGateway;
use reqwest::Method;

#[tokio::test]
async fn an_operator_signs_in_registers_a_cluster_sees_it_connect_and_inspects_it() {
    let Some(browser) = Browser::start_or_skip("operator_day").await else {
        return;
    };
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    // A cluster with problems for the inspection to find (a crash-looping pod among others).
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    let c = &browser.client;

    // Any console page sends a signed-out browser to sign in.
    c.goto(&format!("{}/ui/clusters", gw.url)).await.unwrap();
    browser.wait_for("input[name=token]").await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/login")
    );
    browser.screenshot("01-sign-in").await.unwrap();
    browser
        .fill("token", gw.admin_token.as_deref().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back where it was going, signed in. (The sign-in page has an `h1` too, so the wait is
    // for what only a signed-in page shows: the form's post may still be on its way.)
    browser.wait_for_text("Sign out").await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/clusters");
    // The session cookie is out of the page's reach (HttpOnly).
    let cookies = c.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !cookies
            .as_str()
            .unwrap_or_default()
            .contains("portico_session"),
        "{cookies}"
    );

    // Register the simulator through the form, not connected yet.
    c.find(Locator::Css("details.add summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.fill("id", "sim-one").await.unwrap();
    browser.fill("name", "Simulator one").await.unwrap();
    browser.fill("kubeconfig", &sim.kubeconfig()).await.unwrap();
    browser
        .fill("labels", "env=dev,team=platform")
        .await
        .unwrap();
    // Untick "connect now": the connection comes later, from outside the browser.
    c.find(Locator::Css("input[name=connect]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("Cluster sim-one registered")
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/ui/clusters/sim-one"
    );

    // The list page, left open: a connect made elsewhere (the API) shows up without a reload.
    c.goto(&format!("{}/ui/clusters", gw.url)).await.unwrap();
    browser.wait_for("#clusters-table").await.unwrap();
    browser.wait_for_text(">disconnected<").await.unwrap();
    let marker = c
        .execute("window.notReloaded = true; return true", vec![])
        .await
        .unwrap();
    assert_eq!(marker, serde_json::json!(true));
    let status = gw
        .as_admin(Method::POST, "/api/v1/clusters/sim-one/connect")
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    browser
        .wait_for_text(r#"<span class="state good">connected</span>"#)
        .await
        .unwrap();
    let same_page = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, serde_json::json!(true), "the page was reloaded");
    browser.screenshot("02-clusters").await.unwrap();

    // The cluster's page: version from the simulator, state on every replica.
    c.find(Locator::LinkText("sim-one"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_text("On every replica").await.unwrap();
    browser.wait_for_text("env=dev").await.unwrap();
    browser.screenshot("03-cluster").await.unwrap();

    c.goto(&format!("{}/ui", gw.url)).await.unwrap();
    browser.wait_for_text("Overview").await.unwrap();
    browser.wait_for_text("Recent changes").await.unwrap();
    browser.screenshot("04-overview").await.unwrap();

    // An inspection: create the job in the form, run it now, read its findings.
    c.goto(&format!("{}/ui/inspections", gw.url)).await.unwrap();
    browser.wait_for("details.add summary").await.unwrap();
    c.find(Locator::Css("details.add summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.fill("name", "daily-checks").await.unwrap();
    browser.fill("plugins", "builtin-checks").await.unwrap();
    browser.fill("cron", "0 3 * * *").await.unwrap();
    c.find(Locator::Css("details.add form.stack button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("Job daily-checks created")
        .await
        .unwrap();
    c.find(Locator::XPath("//button[normalize-space()='Run now']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The run page follows the run until it ends (live region), then lists failed findings.
    browser
        .wait_for_text(r#"<span class="state good">success</span>"#)
        .await
        .unwrap();
    browser.wait_for_text("pod-crash-loop").await.unwrap();
    browser.screenshot("05-run").await.unwrap();
    c.goto(&format!(
        "{}/ui/inspections/findings?cluster=sim-one&status=failed",
        gw.url
    ))
    .await
    .unwrap();
    browser.wait_for("svg.chart").await.unwrap();
    browser.wait_for_text("pod-crash-loop").await.unwrap();
    browser.screenshot("06-findings").await.unwrap();
    c.goto(&format!("{}/ui/inspections", gw.url)).await.unwrap();
    browser.wait_for_text("daily-checks").await.unwrap();
    browser.screenshot("07-inspections").await.unwrap();

    // The other pages render in the browser (their forms have HTTP-level tests).
    for (path, text, name) in [
        ("/ui/replicas", "Replicas", "08-replicas"),
        ("/ui/plugins", "builtin-checks", "09-plugins"),
        ("/ui/helm", "Helm", "10-helm"),
        ("/ui/audit", "Audit", "11-audit"),
        ("/ui/tokens", "Tokens", "12-tokens"),
        ("/ui/webhooks", "Webhooks", "13-webhooks"),
    ] {
        c.goto(&format!("{}{path}", gw.url)).await.unwrap();
        browser.wait_for_text(text).await.unwrap();
        browser.screenshot(name).await.unwrap();
    }

    // Sign out: back to the sign-in page, and pages need a new sign-in.
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for("input[name=token]").await.unwrap();
    c.goto(&format!("{}/ui/clusters", gw.url)).await.unwrap();
    browser.wait_for("input[name=token]").await.unwrap();

    browser.close().await.unwrap();
    gw.stop().await;
}
