use super::*;

fn user(grants: Vec<Grant>) -> Principal {
    Principal::Token(Arc::new(Token {
        id: "t".into(),
        name: "t".into(),
        role: Role::User,
        grants,
        impersonate_user: None,
        impersonate_groups: Vec::new(),
        created_at: 0,
        expires_at: None,
    }))
}

fn grant(cluster: &str, access: Access) -> Grant {
    Grant {
        cluster: cluster.into(),
        access,
        impersonate: false,
    }
}

#[test]
fn the_strongest_matching_grant_wins() {
    let p = user(vec![grant("*", Access::Read), grant("prod", Access::Write)]);
    assert_eq!(p.grant_for("prod").unwrap().access, Access::Write);
    assert_eq!(p.grant_for("dev").unwrap().access, Access::Read);
    let p = user(vec![grant("prod", Access::Read)]);
    assert!(p.grant_for("dev").is_none());
}

#[test]
fn roles_parse_and_reject_unknown() {
    assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
    assert!("root".parse::<Role>().unwrap_err().contains("root"));
}

#[test]
fn grants_reject_unknown_access_levels() {
    let err = serde_json::from_str::<Grant>(r#"{"cluster":"a","access":"admin"}"#).unwrap_err();
    assert!(err.to_string().contains("admin"), "{err}");
}

#[test]
fn impersonation_names_must_be_sendable_as_they_are() {
    for ok in [
        "bob",
        "bob@example.com",
        "system:serviceaccount:ns:sa",
        "a b",
    ] {
        assert!(impersonation_header(ok).is_ok(), "{ok}");
    }
    let long = "x".repeat(1025);
    for bad in [
        "", "bob\n", "bob\r", "\tbob", " bob", "bob ", "bøb", "a\u{7f}", &long,
    ] {
        assert!(impersonation_header(bad).is_err(), "{bad:?}");
    }
}

// People signed in through OIDC.

use crate::config::DatabaseUrl;
use crate::records::auth::PersonAccess;

async fn authenticator() -> (Authenticator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("portico.db")))
        .await
        .unwrap();
    (Authenticator::new(db, 2), dir)
}

async fn add_grant(
    auth: &Authenticator,
    kind: SubjectKind,
    name: &str,
    scope: &str,
    access: PersonAccess,
    impersonate: bool,
) {
    let (cluster, selector) = if scope == "*" || !scope.contains(['=', '!', ' ']) {
        (Some(scope.to_owned()), None)
    } else {
        (None, Some(scope.to_owned()))
    };
    auth.db
        .insert_subject_grant(&SubjectGrant {
            id: crate::ids::random_id(),
            subject: Subject {
                kind,
                name: name.into(),
            },
            cluster,
            selector,
            access,
            impersonate,
            created_at: 0,
        })
        .await
        .unwrap();
    auth.forget_person_grants();
}

fn alice(groups: &[&str]) -> Identity {
    Identity {
        username: "alice@example.com".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        expires_at: clock::now_millis() + 600_000,
    }
}

#[derive(Debug)]
struct Labels(HashMap<String, Arc<BTreeMap<String, String>>>);

impl ClusterLabels for Labels {
    fn labels(&self, cluster_id: &str) -> Option<Arc<BTreeMap<String, String>>> {
        self.0.get(cluster_id).cloned()
    }
}

#[tokio::test]
async fn a_person_gets_the_grants_of_their_name_and_groups() {
    let (auth, _dir) = authenticator().await;
    add_grant(
        &auth,
        SubjectKind::Group,
        "devs",
        "dev",
        PersonAccess::Write,
        false,
    )
    .await;
    add_grant(
        &auth,
        SubjectKind::Group,
        "ops",
        "prod",
        PersonAccess::Write,
        false,
    )
    .await;
    add_grant(
        &auth,
        SubjectKind::User,
        "alice@example.com",
        "staging",
        PersonAccess::Read,
        false,
    )
    .await;
    add_grant(
        &auth,
        SubjectKind::User,
        "bob@example.com",
        "*",
        PersonAccess::Admin,
        false,
    )
    .await;
    let p = auth.person(alice(&["devs"])).await.unwrap();
    assert_eq!(p.id(), "oidc:alice@example.com");
    assert_eq!(p.name(), "alice@example.com");
    assert!(p.expires_at().is_some());
    assert_eq!(p.grant_for("dev").unwrap().access, Access::Write);
    assert_eq!(p.grant_for("staging").unwrap().access, Access::Read);
    assert!(p.grant_for("prod").is_none(), "not in ops");
    assert!(!p.is_admin(), "bob's grant is not alice's");
}

#[tokio::test]
async fn admin_on_every_cluster_is_the_admin_role_and_on_one_is_write() {
    let (auth, _dir) = authenticator().await;
    add_grant(
        &auth,
        SubjectKind::Group,
        "leads",
        "dev",
        PersonAccess::Admin,
        false,
    )
    .await;
    let p = auth.person(alice(&["leads"])).await.unwrap();
    assert!(!p.is_admin());
    assert_eq!(p.grant_for("dev").unwrap().access, Access::Write);
    add_grant(
        &auth,
        SubjectKind::Group,
        "admins",
        "*",
        PersonAccess::Admin,
        false,
    )
    .await;
    let p = auth.person(alice(&["admins"])).await.unwrap();
    assert!(p.is_admin());
    assert_eq!(p.grant_for("anything").unwrap().access, Access::Write);
}

#[tokio::test]
async fn label_selector_grants_follow_the_clusters_labels() {
    let (auth, _dir) = authenticator().await;
    let labels = |pairs: &[(&str, &str)]| {
        Arc::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let auth = auth.with_cluster_labels(Arc::new(Labels(HashMap::from([
        ("p1".to_owned(), labels(&[("env", "prod"), ("team", "a")])),
        ("p2".to_owned(), labels(&[("env", "prod"), ("team", "c")])),
        ("d1".to_owned(), labels(&[("env", "dev")])),
    ]))));
    add_grant(
        &auth,
        SubjectKind::Group,
        "devs",
        "env=prod,team in (a,b)",
        PersonAccess::Read,
        true,
    )
    .await;
    let p = auth.person(alice(&["devs"])).await.unwrap();
    let grant = p.grant_for("p1").unwrap();
    assert_eq!((grant.access, grant.impersonate), (Access::Read, true));
    assert!(p.grant_for("p2").is_none(), "team c");
    assert!(p.grant_for("d1").is_none(), "env dev");
    assert!(p.grant_for("unknown").is_none(), "no labels known");
    // With a record's labels at hand (lists of stored clusters).
    let stored = BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "b".to_owned()),
    ]);
    assert!(p.grant_for_labels("x", &stored).is_some());
}

#[tokio::test]
async fn a_person_impersonates_with_their_name_and_groups() {
    let (auth, _dir) = authenticator().await;
    let p = auth.person(alice(&["devs", "ops"])).await.unwrap();
    let (user, groups) = p.impersonation();
    assert_eq!(user, "alice@example.com");
    assert_eq!(groups, ["devs", "ops"]);
}

#[tokio::test]
async fn a_deleted_grant_stops_applying_at_once_on_this_replica() {
    let (auth, _dir) = authenticator().await;
    add_grant(
        &auth,
        SubjectKind::Group,
        "devs",
        "dev",
        PersonAccess::Read,
        false,
    )
    .await;
    assert!(
        auth.person(alice(&["devs"]))
            .await
            .unwrap()
            .grant_for("dev")
            .is_some()
    );
    let id = auth.db.subject_grants().await.unwrap()[0].id.clone();
    assert!(auth.db.delete_subject_grant(&id).await.unwrap());
    auth.forget_person_grants();
    assert!(
        auth.person(alice(&["devs"]))
            .await
            .unwrap()
            .grant_for("dev")
            .is_none()
    );
}

#[tokio::test]
async fn an_expired_identity_is_refused() {
    let (auth, _dir) = authenticator().await;
    let mut identity = alice(&[]);
    identity.expires_at = clock::now_millis() - 1;
    assert_eq!(auth.person(identity).await.unwrap_err(), AuthError::Expired);
}

/// Time is paused after the database work (sqlx waits on its own threads).
#[tokio::test]
async fn a_persons_streams_end_when_their_id_token_expires() {
    let (auth, _dir) = authenticator().await;
    let mut short = alice(&[]);
    short.expires_at = clock::now_millis() + 60_000;
    let short = auth.person(short).await.unwrap();
    let long = auth.person(alice(&[])).await.unwrap();
    tokio::time::pause();
    let first = auth.open_stream(&short).unwrap();
    let second = auth.open_stream(&long).unwrap();
    assert_eq!(
        auth.open_stream(&long).unwrap_err(),
        2,
        "one limit per person"
    );
    let (mut first_ended, mut second_ended) =
        (Box::pin(first.revoked()), Box::pin(second.revoked()));
    tokio::select! {
        () = &mut first_ended => panic!("ended early"),
        () = tokio::time::sleep(Duration::from_secs(59)) => {}
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::select! {
        () = &mut first_ended => {}
        () = tokio::time::sleep(Duration::from_secs(1)) => panic!("the expired token's stream is still open"),
    }
    // The person's stream under a newer ID token lives on.
    tokio::select! {
        () = &mut second_ended => panic!("a later token's stream ended with the earlier one"),
        () = tokio::time::sleep(Duration::from_secs(60)) => {}
    }
    drop(first);
    auth.open_stream(&long)
        .expect("the ended stream's slot is free again");
}

#[tokio::test]
async fn the_stream_watcher_never_revokes_a_person_for_lack_of_a_token_row() {
    let (auth, _dir) = authenticator().await;
    let auth = Arc::new(auth);
    let p = auth.person(alice(&[])).await.unwrap();
    tokio::time::pause();
    let guard = auth.open_stream(&p).unwrap();
    let stop = CancellationToken::new();
    let watcher = tokio::spawn({
        let auth = auth.clone();
        let stop = stop.clone();
        async move { auth.watch_streams(stop).await }
    });
    let mut ended = Box::pin(guard.revoked());
    tokio::select! {
        () = &mut ended => panic!("a person's stream was ended by the token watcher"),
        () = tokio::time::sleep(CACHE_TTL * 4) => {}
    }
    stop.cancel();
    watcher.await.unwrap();
}

#[test]
fn selectors_use_kubernetes_syntax() {
    let labels = BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "a".to_owned()),
    ]);
    for (selector, want) in [
        ("env=prod", true),
        ("env==prod", true),
        ("env!=prod", false),
        ("env", true),
        ("!env", false),
        ("!region", true),
        ("team in (a,b)", true),
        ("team in (b, c)", false),
        ("team notin (b,c)", true),
        ("region notin (x)", true),
        ("env=prod,team in (a,b)", true),
        ("env=prod,team=b", false),
    ] {
        assert_eq!(
            Selector::parse(selector).unwrap().matches(&labels),
            want,
            "{selector}"
        );
    }
    for bad in [
        "",
        ",",
        "env=pro d",
        "team in a,b",
        "team in (a,b",
        "=x",
        "a=b=c",
    ] {
        assert!(Selector::parse(bad).is_err(), "{bad:?}");
    }
}
