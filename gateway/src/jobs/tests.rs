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
    // Not a version: below every version.
    assert_eq!(compare_versions("latest", "1.0.0"), Ordering::Less);
}

#[test]
fn chart_pre_releases_order_by_semver_precedence() {
    use std::cmp::Ordering;

    use super::helm::compare_versions;
    // Numeric pre-release identifiers compare as numbers, not text.
    assert_eq!(
        compare_versions("1.0.0-rc.10", "1.0.0-rc.9"),
        Ordering::Greater
    );
    assert_eq!(
        compare_versions("1.0.0-rc.9", "1.0.0-rc.10"),
        Ordering::Less
    );
    // A release outranks its pre-releases.
    assert_eq!(compare_versions("1.0.0", "1.0.0-rc.1"), Ordering::Greater);
    assert_eq!(compare_versions("1.0.0", "1.0.0-rc.10"), Ordering::Greater);
    // SemVer 2.0's own example chain, each lower than the next.
    let chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ];
    for pair in chain.windows(2) {
        assert_eq!(
            compare_versions(pair[0], pair[1]),
            Ordering::Less,
            "{pair:?}"
        );
        assert_eq!(
            compare_versions(pair[1], pair[0]),
            Ordering::Greater,
            "{pair:?}"
        );
    }
}

#[test]
fn chart_build_metadata_is_ignored_for_precedence() {
    use std::cmp::Ordering;

    use super::helm::{compare_versions, precedence};
    assert_eq!(
        precedence("1.0.0+build.2", "1.0.0+build.10"),
        Ordering::Equal
    );
    assert_eq!(precedence("1.0.0+zzz", "1.0.0"), Ordering::Equal);
    assert_eq!(
        precedence("1.0.0-rc.1+zzz", "1.0.0-rc.2+aaa"),
        Ordering::Less
    );
    assert_eq!(precedence("1.0.0+zzz", "1.0.1+aaa"), Ordering::Less);
    // The listing order stays total: equal precedence falls back to the text.
    assert_eq!(compare_versions("1.0.0+b", "1.0.0+a"), Ordering::Greater);
    assert_eq!(compare_versions("1.0.0+a", "1.0.0+a"), Ordering::Equal);
}

#[test]
fn chart_versions_are_read_as_helm_reads_them() {
    use std::cmp::Ordering;

    use super::helm::{parse_version, precedence};
    let v = |text: &str| parse_version(text).map(|v| v.to_string());
    assert_eq!(v("1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(v("v1.2.3").as_deref(), Some("1.2.3"));
    assert_eq!(v("1.2").as_deref(), Some("1.2.0"));
    assert_eq!(v("v1").as_deref(), Some("1.0.0"));
    assert_eq!(v("1.2-rc.1+b.5").as_deref(), Some("1.2.0-rc.1+b.5"));
    assert_eq!(v("01.02.003").as_deref(), Some("1.2.3"));
    assert_eq!(
        v("1.0.0-x-y.7+meta-data.01").as_deref(),
        Some("1.0.0-x-y.7+meta-data.01")
    );
    for bad in [
        "",
        "v",
        "latest",
        "V1.2.3",
        "vv1.2.3",
        "1.2.3.4",
        "1..3",
        "1.2.",
        ".1.2",
        "+1.2.3",
        "1.-2.3",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-rc..1",
        "1.2.3-rc.01",
        "1.2.3-rc_1",
        "1.2.3+a..b",
        "1.2.3 ",
        " 1.2.3",
        "18446744073709551616.0.0",
    ] {
        assert_eq!(v(bad), None, "{bad:?}");
    }
    // Partial and `v`-prefixed versions compare with the rest.
    assert_eq!(precedence("1.2", "1.2.0"), Ordering::Equal);
    assert_eq!(precedence("v1.10", "1.9.9"), Ordering::Greater);
    assert_eq!(precedence("1", "0.99.99"), Ordering::Greater);
}

#[test]
fn chart_versions_list_newest_first_unparseable_last() {
    use super::helm::{ChartVersion, newest, sort_newest_first};
    let version = |name: &str, version: &str| ChartVersion {
        repository: "repo".into(),
        name: name.into(),
        version: version.into(),
        app_version: None,
        description: None,
        icon: None,
        keywords: Vec::new(),
        deprecated: false,
        digest: None,
        urls: Vec::new(),
        created: None,
        first_seen_run: "run".into(),
        first_seen_at: 0,
        new: false,
    };
    let texts = [
        "nightly",
        "1.0.0-rc.9",
        "1.0.0",
        "1.0.0-rc.10",
        "latest",
        "v0.9",
        "1.0.0+b",
        "1.0.0+a",
    ];
    let expected = [
        "1.0.0+b",
        "1.0.0+a",
        "1.0.0",
        "1.0.0-rc.10",
        "1.0.0-rc.9",
        "v0.9",
        "nightly",
        "latest",
    ];
    let mut versions: Vec<ChartVersion> = texts.iter().map(|t| version("web", t)).collect();
    sort_newest_first(&mut versions);
    let got: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(got, expected);
    // The same order whatever order the versions came in.
    let mut reversed: Vec<ChartVersion> = texts.iter().rev().map(|t| version("web", t)).collect();
    sort_newest_first(&mut reversed);
    assert_eq!(reversed, versions);

    let newest = newest(vec![
        version("web", "1.0.0-rc.9"),
        version("db", "latest"),
        version("web", "1.0.0-rc.10"),
        version("db", "0.0.1-alpha"),
    ]);
    let got: Vec<(&str, &str)> = newest
        .iter()
        .map(|v| (v.name.as_str(), v.version.as_str()))
        .collect();
    assert_eq!(got, [("db", "0.0.1-alpha"), ("web", "1.0.0-rc.10")]);
}
