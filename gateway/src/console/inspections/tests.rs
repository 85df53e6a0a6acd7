use serde_json::json;

use super::chart::{MAX_SERIES, chart_of, render};
use super::*;

fn run(at: i64, targets: &[(&str, &str, i64)]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(cluster, status, failed)| {
            json!({"clusterId": cluster, "status": status, "findingsFailed": failed})
        })
        .collect();
    json!({"startedAt": at, "targets": targets})
}

#[test]
fn the_chart_has_one_series_per_cluster_oldest_first_without_skipped_targets() {
    let runs = [
        run(2_000, &[("a", "success", 3), ("b", "skipped", 0)]),
        run(1_000, &[("a", "failed", 5), ("b", "success", 1)]),
    ];
    let chart = chart_of(&runs, None);
    assert_eq!(chart.omitted, 0);
    assert_eq!(chart.series.len(), 2);
    assert_eq!(chart.series[0].cluster, "a");
    assert_eq!(chart.series[0].points, [(1_000, 5), (2_000, 3)]);
    assert_eq!(chart.series[1].cluster, "b");
    assert_eq!(chart.series[1].points, [(1_000, 1)]);

    let only_b = chart_of(&runs, Some("b"));
    assert_eq!(only_b.series.len(), 1);
    assert_eq!(only_b.series[0].cluster, "b");
}

#[test]
fn the_chart_draws_a_bounded_number_of_lines_the_worst_first() {
    let targets: Vec<(String, i64)> = (0..MAX_SERIES as i64 + 3)
        .map(|i| (format!("c{i:02}"), i))
        .collect();
    let borrowed: Vec<(&str, &str, i64)> = targets
        .iter()
        .map(|(c, n)| (c.as_str(), "success", *n))
        .collect();
    let chart = chart_of(&[run(1, &borrowed)], None);
    assert_eq!(chart.series.len(), MAX_SERIES);
    assert_eq!(chart.omitted, 3);
    assert_eq!(chart.series[0].cluster, format!("c{:02}", MAX_SERIES + 2));
    assert!(chart.series.iter().all(|s| s.cluster != "c00"));
}

#[test]
fn the_svg_escapes_cluster_ids_and_closes_every_element() {
    let runs = [
        run(1_000, &[("<script>x</script>", "success", 2)]),
        run(61_000, &[("<script>x</script>", "success", 4)]),
    ];
    let svg = render(&chart_of(&runs, None)).into_string();
    assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"), "{svg}");
    assert!(svg.contains("<polyline"), "{svg}");
    // Inside HTML, an SVG element without an end tag would swallow the ones after it.
    for element in ["line", "polyline", "circle", "rect"] {
        assert_eq!(
            svg.matches(&format!("<{element} ")).count(),
            svg.matches(&format!("</{element}>")).count(),
            "{element}: {svg}"
        );
    }
    assert!(!svg.contains("style="), "{svg}");
    // Nothing to draw: a sentence, not an empty chart.
    let none = render(&chart_of(&[], None)).into_string();
    assert!(!none.contains("<svg"), "{none}");
}

fn form(targets: &str, value: &str, timeout: &str) -> JobForm {
    JobForm {
        name: " nightly ".into(),
        kind: Some("inspection".into()),
        plugins: "builtin-checks, rules".into(),
        cron: "0 3 * * *".into(),
        targets: targets.into(),
        target_value: value.into(),
        timeout: timeout.into(),
        webhooks: String::new(),
        notify_only_on_failure: None,
        enabled: Some("on".into()),
    }
}

#[test]
fn job_forms_become_the_api_body() {
    let body = job_body(form("clusters", "dev, prod", "60"), true).unwrap();
    assert_eq!(
        body,
        json!({"name": "nightly", "kind": "inspection", "plugins": ["builtin-checks", "rules"],
               "cron": "0 3 * * *", "targets": {"clusters": ["dev", "prod"]}, "webhooks": [],
               "notifyOnlyOnFailure": false, "enabled": true, "timeoutSeconds": 60})
    );
    let body = job_body(form("selector", "env=prod", ""), false).unwrap();
    assert_eq!(body["targets"], json!({"selector": "env=prod"}));
    assert!(body.get("kind").is_none() && body.get("timeoutSeconds").is_none());
    assert_eq!(
        job_body(form("all", "", ""), false).unwrap()["targets"],
        "all"
    );

    assert!(job_body(form("everything", "", ""), true).is_err());
    assert!(job_body(form("all", "", "soon"), true).is_err());
    let mut bad_kind = form("all", "", "");
    bad_kind.kind = Some("cleanup".into());
    assert!(job_body(bad_kind, true).is_err());
}
