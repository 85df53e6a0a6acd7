use super::*;

#[test]
fn cluster_ids_are_plain() {
    for good in ["prod", "prod-eu-1", "a.b", "team_a:dev", "0abc"] {
        assert!(validate_id(good).is_ok(), "{good}");
    }
    let long = "a".repeat(254);
    for bad in ["", "-x", ".x", "a/b", "a b", "a%2Fb", "é", long.as_str()] {
        assert!(validate_id(bad).is_err(), "{bad:?}");
    }
}

/// Webhook payloads are these bytes: `initiator` is a bool.
#[test]
fn cluster_events_serialize_with_a_bool_initiator() {
    let event = |kind, initiator, server_version: Option<&str>| ClusterEvent {
        cluster_id: "prod".to_owned(),
        kind,
        initiator,
        instance_id: "replica-a".to_owned(),
        at: 1_700_000_000_000,
        server_version: server_version.map(str::to_owned),
    };
    assert_eq!(
        serde_json::to_string(&event(
            ClusterEventKind::Connected,
            Initiator::ThisReplica,
            Some("v1.30.2")
        ))
        .unwrap(),
        r#"{"clusterId":"prod","kind":"connected","initiator":true,"instanceId":"replica-a","at":1700000000000,"serverVersion":"v1.30.2"}"#
    );
    assert_eq!(
        serde_json::to_string(&event(
            ClusterEventKind::Disconnected,
            Initiator::OtherReplica,
            None
        ))
        .unwrap(),
        r#"{"clusterId":"prod","kind":"disconnected","initiator":false,"instanceId":"replica-a","at":1700000000000}"#
    );
}

/// A burst of changes to the same clusters collapses into one set of ids.
#[test]
fn changes_are_a_set_woken_once() {
    let changes = super::changes::StateChanges::default();
    changes.mark("b");
    changes.mark("a");
    changes.mark("b");
    changes.mark_all(["c".to_owned()]);
    assert_eq!(changes.take(), ["a", "b", "c"]);
    assert!(changes.take().is_empty());
}
