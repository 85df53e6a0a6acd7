use super::*;

fn user(groups: &[&str]) -> User {
    User {
        name: "u".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

#[test]
fn classification_follows_the_default_flow_schemas() {
    let admin = user(&["system:masters", "system:authenticated"]);
    assert_eq!(classify(Some(&admin), "/api/v1/pods"), EXEMPT);
    assert_eq!(classify(Some(&admin), "/readyz"), EXEMPT);
    let dev = user(&["devs", "system:authenticated"]);
    assert_eq!(classify(Some(&dev), "/api/v1/pods"), GLOBAL_DEFAULT);
    assert_eq!(classify(Some(&dev), "/livez/ping"), PROBES);
    assert_eq!(classify(None, "/healthz"), PROBES);
    let node = user(&["system:nodes", "system:authenticated"]);
    assert_eq!(classify(Some(&node), "/api/v1/nodes"), SYSTEM_NODES);
    let sa = user(&["system:serviceaccounts", "system:authenticated"]);
    assert_eq!(classify(Some(&sa), "/api/v1/pods"), SERVICE_ACCOUNTS);
}

#[test]
fn long_running_subresources_bypass_apf() {
    assert!(is_long_running("/api/v1/namespaces/d/pods/p/exec"));
    assert!(is_long_running("/api/v1/namespaces/d/pods/p/log"));
    assert!(is_long_running("/api/v1/namespaces/d/pods/p/portforward"));
    assert!(!is_long_running("/api/v1/namespaces/d/pods/p"));
    assert!(!is_long_running("/api/v1/namespaces/d/pods/p/status"));
    // A pod named "log" is not the log subresource.
    assert!(!is_long_running("/api/v1/namespaces/d/pods/log"));
    assert!(!is_long_running("/healthz/log"));
}
