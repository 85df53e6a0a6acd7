use std::collections::BTreeMap;

use super::{Schedule, Targets};

fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[test]
fn five_field_cron_steps_by_minutes_in_utc() {
    let schedule = Schedule::parse("0 */6 * * *").unwrap();
    assert_eq!(
        schedule.next_after(at("2026-01-01T05:59:59Z")),
        Some(at("2026-01-01T06:00:00Z"))
    );
    assert_eq!(
        schedule.next_after(at("2026-01-01T06:00:00Z")),
        Some(at("2026-01-01T12:00:00Z"))
    );
}

#[test]
fn six_field_cron_has_seconds_first() {
    let schedule = Schedule::parse("*/2 * * * * *").unwrap();
    assert_eq!(
        schedule.next_after(at("2026-01-01T00:00:00Z")),
        Some(at("2026-01-01T00:00:02Z"))
    );
}

#[test]
fn bad_cron_is_rejected_with_the_reason() {
    for bad in ["", "* * * *", "61 * * * *", "* * * * * * *", "every minute"] {
        let e = Schedule::parse(bad).unwrap_err().to_string();
        assert!(e.contains("invalid cron expression"), "{bad}: {e}");
    }
}

#[test]
fn targets_select_by_id_and_labels() {
    let labels = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    assert!(Targets::All.matches("a", &labels));
    assert!(Targets::Clusters(vec!["a".into()]).matches("a", &labels));
    assert!(!Targets::Clusters(vec!["b".into()]).matches("a", &labels));
    assert!(Targets::Selector("env=prod".into()).matches("a", &labels));
    assert!(Targets::Selector("env".into()).matches("a", &labels));
    assert!(!Targets::Selector("env!=prod".into()).matches("a", &labels));
    assert!(!Targets::Selector("env=prod,tier=web".into()).matches("a", &labels));
    assert!(Targets::Selector("env=,".into()).validate().is_err());
}

#[test]
fn chart_versions_order_the_semver_way() {
    use std::cmp::Ordering;

    use super::helm::compare_versions;
    assert_eq!(compare_versions("1.10.0", "1.9.0"), Ordering::Greater);
    assert_eq!(compare_versions("1.2.0", "1.2.0-rc.1"), Ordering::Greater);
    assert_eq!(compare_versions("v2.0.0", "1.99.99"), Ordering::Greater);
    assert_eq!(compare_versions("0.1.0", "0.1.0"), Ordering::Equal);
    assert_eq!(compare_versions("latest", "1.0.0"), "latest".cmp("1.0.0"));
}
