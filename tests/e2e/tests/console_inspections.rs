//! The console's Inspections pages over HTTP: a job created through the console form, run now
//! against a simulator cluster, its run, its findings with filters and the chart of failed
//! findings; edit, enable/disable, delete; CSRF, grants and escaping.

use std::time::Duration;

use kube_sim::KubeSim;
use portico_e2e::console::{Console, Page};
use portico_e2e::gateway::{TestGateway, ok};
use portico_e2e::plugins::gateway_builder;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn admin(gw: &TestGateway) -> Console {
    Console::sign_in(gw, gw.admin_token.as_deref().unwrap())
        .await
        .unwrap()
}

fn job_fields<'a>(name: &'a str, targets: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("kind", "inspection"),
        ("plugins", "builtin-checks"),
        ("cron", "0 3 * * *"),
        ("targets", targets),
        ("target_value", value),
        ("timeout", "120"),
        ("webhooks", ""),
        ("enabled", "on"),
    ]
}

/// The jobs but the built-in Helm sync job every gateway has.
async fn jobs(gw: &TestGateway) -> Vec<Value> {
    ok(gw, Method::GET, "/api/v1/jobs", None).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "inspection")
        .cloned()
        .collect()
}

#[track_caller]
fn flash(page: &Page) -> String {
    page.flash()
        .unwrap_or_else(|| panic!("no message: {} {}", page.status, page.body))
}

#[tokio::test]
async fn a_job_created_in_the_console_runs_and_its_findings_and_chart_show() {
    let gw = gateway_builder("console-inspections-run").start().await;
    let sim = KubeSim::start().await.unwrap();
    sim.load_yaml(include_str!("plugins_data/unhealthy.yaml"))
        .unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let mut browser = admin(&gw).await;

    let page = browser.get("/ui/inspections").await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("helm-repo-sync")
        .assert_contains("Create a job")
        .assert_contains("builtin-checks");

    // Created through the form: the API holds it as the form said.
    let page = browser
        .post("/ui/inspections", &job_fields("nightly", "clusters", "dev"))
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(flash(&page).starts_with("ok:"), "{}", flash(&page));
    let jobs = jobs(&gw).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["name"], "nightly");
    assert_eq!(job["targets"], json!({"clusters": ["dev"]}));
    assert_eq!(job["timeoutSeconds"], 120);
    assert_eq!(job["enabled"], true);
    let id = job["id"].as_str().unwrap();
    let job_page = format!("/ui/inspections/jobs/{id}");
    assert_eq!(page.location(), Some(job_page.as_str()));
    browser
        .get(&job_page)
        .await
        .unwrap()
        .assert_contains("Job nightly created")
        .assert_contains("Run now");

    // Run now: to the run's page, which follows the run until it is done.
    let page = browser.post(&format!("{job_page}/run"), &[]).await.unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let run_page = page.location().unwrap().to_owned();
    assert!(run_page.starts_with("/ui/inspections/runs/"), "{run_page}");
    let mut done = None;
    for _ in 0..600 {
        let page = browser.get(&run_page).await.unwrap();
        assert_eq!(page.status, StatusCode::OK);
        if !page
            .body
            .contains(r#"<span class="state busy">running</span>"#)
        {
            done = Some(page);
            break;
        }
        // Still running: the region refreshes itself.
        page.assert_contains(r#"data-refresh="#);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = done.expect("the run did not finish");
    done.assert_contains(r#"<span class="state good">success</span>"#)
        .assert_contains("nightly")
        .assert_contains(r#"href="/ui/clusters/dev""#)
        // The failed findings by default.
        .assert_contains("pod-crash-loop")
        .assert_lacks(r#"<span class="state good">passed</span>"#)
        // Finished: the region no longer refreshes.
        .assert_lacks(r#"id="run-live" data-refresh"#);
    let passed = browser
        .get(&format!("{run_page}?status=passed"))
        .await
        .unwrap();
    passed
        .assert_contains(r#"<span class="state good">passed</span>"#)
        .assert_lacks(r#"<span class="state bad">failed</span></td>"#);

    // The jobs page shows the last run.
    browser
        .get("/ui/inspections")
        .await
        .unwrap()
        .assert_contains(&format!(r#"href="{run_page}""#))
        .assert_contains(r#"<span class="state good">success</span>"#);

    // Findings: filtered by cluster, check, severity and result through the API's params.
    let all = browser
        .get("/ui/inspections/findings?cluster=dev&status=failed")
        .await
        .unwrap();
    assert_eq!(all.status, StatusCode::OK);
    all.assert_contains("pod-crash-loop")
        .assert_contains("node-not-ready")
        .assert_contains("<svg")
        .assert_contains(r#"data-cluster="dev""#)
        .assert_contains("<circle");
    let one_check = browser
        .get("/ui/inspections/findings?cluster=dev&check=pod-crash-loop&status=failed")
        .await
        .unwrap();
    one_check
        .assert_contains("pod-crash-loop")
        .assert_lacks("<code>node-not-ready</code>");
    let api = ok(
        &gw,
        Method::GET,
        "/api/v1/findings?cluster=dev&passed=false&check=pod-crash-loop",
        None,
    )
    .await;
    let severity = api["items"][0]["severity"].as_str().unwrap().to_owned();
    browser
        .get(&format!(
            "/ui/inspections/findings?check=pod-crash-loop&severity={severity}"
        ))
        .await
        .unwrap()
        .assert_contains("pod-crash-loop");
    let other = if severity == "info" {
        "critical"
    } else {
        "info"
    };
    browser
        .get(&format!(
            "/ui/inspections/findings?check=pod-crash-loop&severity={other}"
        ))
        .await
        .unwrap()
        .assert_contains("No finding matches");
    browser
        .get("/ui/inspections/findings?cluster=elsewhere")
        .await
        .unwrap()
        .assert_contains("No finding matches")
        .assert_contains("No finished inspection run")
        .assert_lacks("<svg");
    // Values from the outside: refused with a reason, or shown as text.
    let page = browser
        .get("/ui/inspections/findings?severity=bogus")
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_contains("severity");
    let page = browser
        .get("/ui/inspections/findings?status=maybe")
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = browser
        .get("/ui/inspections/findings?check=%3Cscript%3Ealert(1)%3C/script%3E")
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        .assert_lacks("<script>alert(1)");
    gw.stop().await;
}

#[tokio::test]
async fn jobs_are_edited_enabled_and_deleted_and_bad_forms_are_refused_with_a_reason() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let mut browser = admin(&gw).await;
    browser.get("/ui/inspections").await.unwrap();
    let page = browser
        .post("/ui/inspections", &job_fields("weekly", "all", ""))
        .await
        .unwrap();
    assert!(flash(&page).starts_with("ok:"), "{}", flash(&page));
    let id = jobs(&gw).await[0]["id"].as_str().unwrap().to_owned();
    let base = format!("/ui/inspections/jobs/{id}");

    // Edit: a label selector, no longer enabled (an unticked box).
    browser.get(&base).await.unwrap().assert_contains("Edit");
    let page = browser
        .post(
            &format!("{base}/edit"),
            &[
                ("name", "weekly-prod"),
                ("plugins", "builtin-checks"),
                ("cron", "0 4 * * 1"),
                ("targets", "selector"),
                ("target_value", "env=prod"),
                ("timeout", ""),
            ],
        )
        .await
        .unwrap();
    assert_eq!(flash(&page), "ok:Saved.");
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(job["name"], "weekly-prod");
    assert_eq!(job["cron"], "0 4 * * 1");
    assert_eq!(job["targets"], json!({"selector": "env=prod"}));
    assert_eq!(job["enabled"], false);
    assert_eq!(job["timeoutSeconds"], 120, "an empty timeout keeps it");
    browser
        .get(&base)
        .await
        .unwrap()
        .assert_contains("labels env=prod")
        .assert_contains(&format!(r#"action="{base}/enable""#));

    // Enable and disable.
    let page = browser.post(&format!("{base}/enable"), &[]).await.unwrap();
    assert!(flash(&page).starts_with("ok:"));
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(job["enabled"], true);
    browser.post(&format!("{base}/disable"), &[]).await.unwrap();
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(job["enabled"], false);

    // What the API refuses comes back as its message; nothing is created.
    for (fields, says) in [
        (job_fields("bad cron", "all", ""), "name"),
        (
            {
                let mut f = job_fields("cronless", "all", "");
                f[3] = ("cron", "every day");
                f
            },
            "cron",
        ),
        (
            {
                let mut f = job_fields("wrongworld", "all", "");
                f[2] = ("plugins", "helm-index");
                f
            },
            "helm-index",
        ),
        (
            {
                let mut f = job_fields("slow", "all", "");
                f[6] = ("timeout", "soon");
                f
            },
            "timeout",
        ),
    ] {
        let page = browser.post("/ui/inspections", &fields).await.unwrap();
        let message = flash(&page);
        assert!(
            message.starts_with("error:") && message.contains(says),
            "{message}"
        );
    }
    assert_eq!(jobs(&gw).await.len(), 1);

    // A value from the outside in a message is shown as text.
    let page = browser
        .post(
            "/ui/inspections",
            &job_fields("x", "<script>alert(1)</script>", ""),
        )
        .await
        .unwrap();
    assert!(flash(&page).starts_with("error:"));
    browser
        .get("/ui/inspections")
        .await
        .unwrap()
        .assert_contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        .assert_lacks("<script>alert(1)");

    // Delete.
    let page = browser.post(&format!("{base}/delete"), &[]).await.unwrap();
    assert_eq!(page.location(), Some("/ui/inspections"));
    assert!(jobs(&gw).await.is_empty());
    let page = browser.get(&base).await.unwrap();
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn job_forms_need_the_csrf_token_and_an_admin() {
    let gw = TestGateway::builder().start().await;
    let sim = KubeSim::start().await.unwrap();
    gw.connect_sim("dev", &sim).await.unwrap();
    let job = ok(
        &gw,
        Method::POST,
        "/api/v1/jobs",
        Some(
            json!({"name": "checks", "plugins": ["builtin-checks"], "cron": "0 3 * * *",
                    "enabled": false}),
        ),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let base = format!("/ui/inspections/jobs/{id}");
    let mut browser = admin(&gw).await;
    browser.get("/ui/inspections").await.unwrap();

    // No token or a wrong one: 403 and nothing changes.
    for fields in [vec![], vec![("_csrf", "wrong")]] {
        let mut create = fields.clone();
        create.extend(job_fields("sneaky", "all", ""));
        for (path, fields) in [
            ("/ui/inspections".to_owned(), create),
            (format!("{base}/enable"), fields.clone()),
            (format!("{base}/run"), fields.clone()),
            (format!("{base}/delete"), fields.clone()),
        ] {
            let page = browser.send(Method::POST, &path, &fields).await.unwrap();
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {fields:?}");
        }
    }
    assert_eq!(jobs(&gw).await.len(), 1);
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(job["enabled"], false);
    let runs = ok(&gw, Method::GET, "/api/v1/runs", None).await;
    assert!(runs["items"].as_array().unwrap().is_empty(), "{runs}");

    // A read-only user: the pages are the API's 403, posting anyway is refused by the API.
    let reader = gw
        .create_token(json!({"name": "reader", "role": "user",
                             "grants": [{"cluster": "dev", "access": "read"}]}))
        .await
        .unwrap();
    let mut reader = Console::sign_in(&gw, &reader).await.unwrap();
    reader
        .get("/ui")
        .await
        .unwrap()
        .assert_lacks("/ui/inspections\"");
    for path in [
        "/ui/inspections".to_owned(),
        base.clone(),
        "/ui/inspections/findings".to_owned(),
    ] {
        let page = reader.get(&path).await.unwrap();
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        page.assert_lacks("Run now");
    }
    for (path, fields) in [
        (
            "/ui/inspections".to_owned(),
            job_fields("sneaky", "all", ""),
        ),
        (format!("{base}/enable"), vec![]),
        (format!("{base}/run"), vec![]),
        (format!("{base}/delete"), vec![]),
    ] {
        let page = reader.post(&path, &fields).await.unwrap();
        let message = flash(&page);
        assert!(message.contains("admin role"), "{path}: {message}");
    }
    assert_eq!(jobs(&gw).await.len(), 1);
    let job = ok(&gw, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(job["enabled"], false);
    let runs = ok(&gw, Method::GET, "/api/v1/runs", None).await;
    assert!(runs["items"].as_array().unwrap().is_empty(), "{runs}");
    gw.stop().await;
}
