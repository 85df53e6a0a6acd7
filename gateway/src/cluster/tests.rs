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
