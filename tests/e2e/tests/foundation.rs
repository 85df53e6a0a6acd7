//! The foundation end to end: start-up, token auth, health and metrics, the secret key, and
//! storage on both database back ends.

use std::collections::BTreeMap;

use portico::config::DatabaseUrl;
use portico::records::auth::{Access, Grant, Role, Token};
use portico::server::StartError;
use portico::testing::now_millis;
use portico::testing::{ClusterRecord, DesiredState};
use portico::testing::{Db, StorageError};
use portico::testing::{OpenError, SecretKey};
use portico_e2e::gateway::{StartFailure, TestGateway};
use portico_e2e::postgres::TestPostgres;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRwbGhk=";

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned();
    let message = body["error"]["message"]
        .as_str()
        .expect("error.message")
        .to_owned();
    (status, code, message)
}

async fn create_token(gw: &TestGateway, body: Value) -> Value {
    let response = gw
        .as_admin(Method::POST, "/api/v1/tokens")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The token API and its 401/403 paths, on whichever database the gateway uses.
async fn exercise_tokens(gw: &TestGateway) {
    // No token, a malformed header, an unknown token: 401 with a JSON error.
    let response = gw
        .request(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portico\""
    );
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(message.contains("Authorization"), "{message}");
    for header in [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer pt_not-a-real-token",
        "Bearer ",
    ] {
        let response = gw
            .request(Method::GET, "/api/v1/tokens")
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }

    // The admin creates a user token; the secret is returned once.
    let created = create_token(
        gw,
        json!({"name": "ci-reader", "grants": [{"cluster": "prod", "access": "read"}]}),
    )
    .await;
    let user_token = created["token"].as_str().unwrap().to_owned();
    let user_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "user");
    assert_eq!(
        created["grants"],
        json!([{"cluster": "prod", "access": "read"}])
    );
    assert!(user_token.starts_with("pt_"));

    // The list shows it, without any secret or hash.
    let response = gw
        .as_admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("ci-reader"));
    assert!(!text.contains(&user_token[3..]), "no secret in the list");
    let list: Value = serde_json::from_str(&text).unwrap();
    for item in list["items"].as_array().unwrap() {
        assert!(item.get("token").is_none() && item.get("tokenHash").is_none());
    }

    // A valid token without the admin role: 403 on admin routes.
    for (method, path) in [
        (Method::GET, "/api/v1/tokens".to_owned()),
        (Method::POST, "/api/v1/tokens".to_owned()),
        (Method::DELETE, format!("/api/v1/tokens/{user_id}")),
    ] {
        let response = gw
            .as_token(&user_token, method.clone(), &path)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}"
        );
        assert!(message.contains("ci-reader"), "{message}");
    }

    // Bad requests are 400s that say what is wrong; duplicates are 409.
    for (body, needle) in [
        (json!({"name": "bad name!"}), "name"),
        (json!({"name": "r", "role": "root"}), "root"),
        (
            json!({"name": "r", "grants": [{"cluster": "a", "access": "sudo"}]}),
            "sudo",
        ),
        (json!({"name": "r", "expiresAt": "yesterday"}), "expiresAt"),
        (
            json!({"name": "r", "expiresAt": "2001-01-01T00:00:00Z"}),
            "expired",
        ),
        (json!({"name": "r", "unknown": 1}), "unknown"),
    ] {
        let response = gw
            .as_admin(Method::POST, "/api/v1/tokens")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, message) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(message.contains(needle), "{body}: {message}");
    }
    let response = gw
        .as_admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ci-reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, StatusCode::CONFLICT);

    // A second admin token works for admin routes.
    let admin2 = create_token(
        gw,
        json!({"name": "ops", "role": "admin", "ttlSeconds": 3600}),
    )
    .await;
    assert!(admin2["expiresAt"].as_i64().unwrap() > now_millis());
    let response = gw
        .as_token(
            admin2["token"].as_str().unwrap(),
            Method::GET,
            "/api/v1/tokens",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Deleting a token revokes it at once on this replica.
    let response = gw
        .as_admin(Method::DELETE, &format!("/api/v1/tokens/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = gw
        .as_token(&user_token, Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = gw
        .as_admin(Method::DELETE, &format!("/api/v1/tokens/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, StatusCode::NOT_FOUND);

    // An expired token is refused with a message that says so.
    let db = &gw.gateway().app().db;
    let expired = Token {
        id: "expired-1".into(),
        name: "old".into(),
        role: Role::Admin,
        grants: vec![],
        impersonate_user: None,
        impersonate_groups: vec![],
        created_at: now_millis() - 10_000,
        expires_at: Some(now_millis() - 1),
    };
    db.insert_token(&expired, &portico::testing::token_hash("pt_expired-secret"))
        .await
        .unwrap();
    let response = gw
        .as_token("pt_expired-secret", Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    let (status, _, message) = error_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn first_start_generates_an_admin_token_and_tokens_work_on_sqlite() {
    let gw = TestGateway::builder().start().await;
    let token = gw
        .admin_token
        .clone()
        .expect("first start generates a token");
    assert!(token.starts_with("pt_"));
    assert!(
        gw.data_dir.join("portico.db").is_file(),
        "SQLite file created"
    );
    assert!(
        gw.data_dir.join("secret.key").is_file(),
        "secret key generated"
    );
    exercise_tokens(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn tokens_work_on_postgres() {
    let Some(pg) = TestPostgres::start_or_skip("tokens_work_on_postgres") else {
        return;
    };
    let url = pg.create_database("tokens").unwrap();
    let gw = TestGateway::builder()
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", KEY_A)
        .env("PLAIN_HTTP", "true")
        .start()
        .await;
    assert!(gw.admin_token.is_some());
    exercise_tokens(&gw).await;
    gw.stop().await;

    // A second start on the same database prints no new token; a given one is accepted.
    let gw = TestGateway::builder()
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", KEY_A)
        .env("PLAIN_HTTP", "true")
        .env("ADMIN_TOKEN", "a-long-enough-admin-token")
        .start()
        .await;
    assert!(gw.gateway().generated_admin_token().is_none());
    let response = gw
        .as_admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    gw.stop().await;

    // The wrong key is refused at start, with a message that says what to do.
    let failure = TestGateway::builder()
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", KEY_B)
        .env("PLAIN_HTTP", "true")
        .try_start()
        .await
        .unwrap_err();
    match failure {
        StartFailure::Start(e @ StartError::WrongKey(_)) => {
            assert!(e.to_string().contains("SECRET_KEY"), "{e}")
        }
        other => panic!("expected a wrong-key error, got {other:?}"),
    }
}

#[tokio::test]
async fn restart_keeps_state_and_the_admin_token_flag_rotates_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::builder().data_dir(dir.path()).start().await;
    let generated = gw.admin_token.clone().unwrap();
    create_token(&gw, json!({"name": "kept"})).await;
    gw.stop().await;

    let gw = TestGateway::builder().data_dir(dir.path()).start().await;
    assert!(
        gw.admin_token.is_none(),
        "the token is printed only on the first start"
    );
    let response = gw
        .as_token(&generated, Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    let list: Value = response.json().await.unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "kept"]);
    gw.stop().await;

    // --admin-token replaces the bootstrap token: the old one stops working.
    let gw = TestGateway::builder()
        .data_dir(dir.path())
        .args(["--admin-token", "rotated-admin-token-0123"])
        .start()
        .await;
    let old = gw
        .as_token(&generated, Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = gw
        .as_admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), StatusCode::OK);
    gw.stop().await;

    // A key other than the generated one is refused.
    let failure = TestGateway::builder()
        .data_dir(dir.path())
        .env("SECRET_KEY", KEY_B)
        .try_start()
        .await
        .unwrap_err();
    assert!(
        matches!(failure, StartFailure::Start(StartError::WrongKey(_))),
        "{failure:?}"
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let gw = TestGateway::builder().start().await;
    let live = gw
        .request(Method::GET, "/health/live")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready = gw
        .request(Method::GET, "/health/ready")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");

    // Generate traffic on a few routes and statuses, then read it back.
    gw.request(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    gw.as_admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    gw.request(Method::GET, "/no/such/route")
        .send()
        .await
        .unwrap();
    let metrics = gw
        .as_admin(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| metrics.lines().any(|l| l.contains(needle));
    assert!(
        has(r#"portico_http_requests_total{route="/api/v1/tokens",method="GET",status="401"} 1"#),
        "{metrics}"
    );
    assert!(
        has(r#"portico_http_requests_total{route="/api/v1/tokens",method="GET",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        has(r#"route="unmatched",method="GET",status="404""#),
        "{metrics}"
    );
    assert!(
        has(r#"portico_http_request_duration_seconds_count{route="/health/ready"} 1"#),
        "{metrics}"
    );
    assert!(
        has("portico_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let gw = TestGateway::builder().start().await;
    let url = gw.url.clone();
    gw.stop().await;
    let err = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("{url}/health/live"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

/// Cluster rows with sealed credentials: round trip, conflicts, revisions, wrong key.
async fn exercise_cluster_storage(db: &Db) {
    let key = SecretKey::parse(KEY_A).unwrap();
    let kubeconfig = "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: super-secret-token\n";
    let record = ClusterRecord {
        id: "prod-eu".into(),
        name: "Production EU".into(),
        server: "https://10.0.0.1:6443".into(),
        context: Some("prod".into()),
        namespace: Some("shop".into()),
        sealed_credentials: key.seal(b"prod-eu", kubeconfig.as_bytes()),
        labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
        desired_state: DesiredState::Disconnected,
        config_revision: 1,
        created_at: now_millis(),
        updated_at: now_millis(),
    };
    db.insert_cluster(&record).await.unwrap();
    let err = db.insert_cluster(&record).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");

    let stored = db.cluster("prod-eu").await.unwrap().unwrap();
    assert_eq!(stored, record);
    assert!(
        !stored
            .sealed_credentials
            .windows(b"super-secret-token".len())
            .any(|w| w == b"super-secret-token"),
        "credentials are not stored in clear"
    );
    let opened = key.open(b"prod-eu", &stored.sealed_credentials).unwrap();
    assert_eq!(opened, kubeconfig.as_bytes());
    let wrong = SecretKey::parse(KEY_B).unwrap();
    let err = wrong
        .open(b"prod-eu", &stored.sealed_credentials)
        .unwrap_err();
    assert!(matches!(err, OpenError::WrongKey));
    assert!(err.to_string().contains("secret key differs"), "{err}");

    let mut changed = stored.clone();
    changed.name = "Prod EU".into();
    let updated = db.update_cluster(&changed).await.unwrap().unwrap();
    assert_eq!(updated.config_revision, 2);
    assert_eq!(updated.name, "Prod EU");
    assert!(
        db.set_desired_state("prod-eu", DesiredState::Connected)
            .await
            .unwrap()
    );
    assert_eq!(
        db.cluster("prod-eu").await.unwrap().unwrap().desired_state,
        DesiredState::Connected
    );
    assert!(
        !db.set_desired_state("nope", DesiredState::Connected)
            .await
            .unwrap()
    );
    assert_eq!(db.clusters().await.unwrap().len(), 1);
    assert!(db.delete_cluster("prod-eu").await.unwrap());
    assert!(db.cluster("prod-eu").await.unwrap().is_none());
    assert!(!db.delete_cluster("prod-eu").await.unwrap());

    // Tokens: grants survive the JSON column.
    let token = Token {
        id: "t1".into(),
        name: "grants".into(),
        role: Role::User,
        grants: vec![Grant {
            cluster: "*".into(),
            access: Access::Write,
            impersonate: true,
        }],
        impersonate_user: Some("alice".into()),
        impersonate_groups: vec!["dev".into(), "ops".into()],
        created_at: now_millis(),
        expires_at: None,
    };
    db.insert_token(&token, "hash-1").await.unwrap();
    assert_eq!(db.token_by_hash("hash-1").await.unwrap().unwrap(), token);
    assert!(db.token_by_hash("hash-2").await.unwrap().is_none());
}

#[tokio::test]
async fn cluster_storage_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("nested/folder/portico.db"));
    let db = Db::connect(&url).await.unwrap();
    exercise_cluster_storage(&db).await;
    db.close().await;
    // Migrations are idempotent: a second open of the same file works.
    let db = Db::connect(&url).await.unwrap();
    assert!(db.clusters().await.unwrap().is_empty());
}

#[tokio::test]
async fn cluster_storage_on_postgres() {
    let Some(pg) = TestPostgres::start_or_skip("cluster_storage_on_postgres") else {
        return;
    };
    let url = DatabaseUrl::Postgres(pg.create_database("clusters").unwrap());
    let db = Db::connect(&url).await.unwrap();
    exercise_cluster_storage(&db).await;
    db.close().await;
    let db = Db::connect(&url).await.unwrap();
    assert!(db.clusters().await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_start_error() {
    let failure = TestGateway::builder()
        .env("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none")
        .env("SECRET_KEY", KEY_A)
        .env("PLAIN_HTTP", "true")
        .try_start()
        .await
        .unwrap_err();
    let message = match failure {
        StartFailure::Start(e) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(message.contains("cannot open the database"), "{message}");
    assert!(!message.contains("secret"), "password redacted: {message}");
}
