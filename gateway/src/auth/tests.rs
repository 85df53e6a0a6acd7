use super::*;

fn user(grants: Vec<Grant>) -> Principal {
    Principal {
        token: Arc::new(Token {
            id: "t".into(),
            name: "t".into(),
            role: Role::User,
            grants,
            impersonate_user: None,
            impersonate_groups: Vec::new(),
            created_at: 0,
            expires_at: None,
        }),
    }
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
