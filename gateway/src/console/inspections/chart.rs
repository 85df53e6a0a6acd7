//! The chart of failed findings over time per cluster: server-side SVG (no script) drawn from
//! the per-cluster results (`GET /runs/{id}` targets) of the last [`CHART_RUNS`] finished runs.

use std::collections::{BTreeMap, HashSet};

use maud::{Markup, html};
use serde_json::Value;

use crate::console::{Ui, UiError, empty, enc, items, text};

/// Finished runs the chart reads at most (one API call each).
pub(crate) const CHART_RUNS: usize = 30;
/// Runs listed to find them (running and repo-sync runs are passed over).
const RUNS_SCANNED: usize = 200;
/// Lines drawn at most: the clusters with the most failed findings.
pub(crate) const MAX_SERIES: usize = 10;

/// Line colours, one per cluster.
const COLOURS: [&str; MAX_SERIES] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
    "#475569", "#ea580c",
];

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// One cluster's failed findings per run: `(run start, failed findings)`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Series {
    pub cluster: String,
    pub points: Vec<(i64, i64)>,
}

/// What the chart draws, and how many clusters it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chart {
    pub series: Vec<Series>,
    pub omitted: usize,
}

/// Reads the last finished runs' per-cluster results (only `cluster`'s when given).
pub(crate) async fn series(ui: &Ui, cluster: Option<&str>) -> Result<Chart, UiError> {
    let jobs = ui.get("/jobs").await?;
    let repo_sync: HashSet<&str> = items(&jobs)
        .iter()
        .filter(|j| text(j, "kind") == "repo-sync")
        .map(|j| text(j, "id"))
        .collect();
    let runs = ui.get(&format!("/runs?limit={RUNS_SCANNED}")).await?;
    let chosen: Vec<&str> = items(&runs)
        .iter()
        .filter(|r| text(r, "status") != "running" && !repo_sync.contains(text(r, "jobId")))
        .take(CHART_RUNS)
        .map(|r| text(r, "id"))
        .collect();
    let detailed = futures::future::try_join_all(chosen.iter().map(|id| {
        let path = format!("/runs/{}", enc(id));
        async move { ui.get(&path).await }
    }))
    .await?;
    Ok(chart_of(&detailed, cluster))
}

/// Groups the runs' targets by cluster; skipped targets (not inspected) are no point.
pub(crate) fn chart_of(runs: &[Value], cluster: Option<&str>) -> Chart {
    let mut by_cluster: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for run in runs {
        let Some(at) = run.get("startedAt").and_then(Value::as_i64) else {
            continue;
        };
        let targets = run.get("targets").and_then(Value::as_array);
        for target in targets.map_or(&[][..], Vec::as_slice) {
            let id = text(target, "clusterId");
            if text(target, "status") == "skipped" || cluster.is_some_and(|c| c != id) {
                continue;
            }
            let failed = target
                .get("findingsFailed")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            by_cluster.entry(id).or_default().push((at, failed));
        }
    }
    let mut series: Vec<Series> = by_cluster
        .into_iter()
        .map(|(cluster, mut points)| {
            points.sort_unstable();
            Series {
                cluster: cluster.to_owned(),
                points,
            }
        })
        .collect();
    // The clusters with the most failures first; ties by name (the map's order, kept).
    series.sort_by_key(|s| std::cmp::Reverse(s.points.iter().map(|p| p.1).sum::<i64>()));
    let omitted = series.len().saturating_sub(MAX_SERIES);
    series.truncate(MAX_SERIES);
    Chart { series, omitted }
}

fn short_time(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.strftime("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn long_time(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// A cluster id cut to fit the legend.
fn legend_label(cluster: &str) -> String {
    if cluster.chars().count() > 22 {
        let cut: String = cluster.chars().take(21).collect();
        format!("{cut}…")
    } else {
        cluster.to_owned()
    }
}

fn coordinate(value: f64) -> String {
    format!("{value:.1}")
}

/// The SVG: time on x, failed findings on y, one line (and dots) per cluster, a legend.
pub(crate) fn render(chart: &Chart) -> Markup {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (Some(first), Some(last)) = (
        points.clone().map(|p| p.0).min(),
        points.clone().map(|p| p.0).max(),
    ) else {
        return empty("No finished inspection run with per-cluster results yet.");
    };
    let top = points.map(|p| p.1).max().unwrap_or(0).max(1);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = |at: i64| {
        if last == first {
            LEFT + plot_width / 2.0
        } else {
            LEFT + (at - first) as f64 / (last - first) as f64 * plot_width
        }
    };
    let y = |failed: i64| TOP + plot_height - failed as f64 / top as f64 * plot_height;
    let bottom = TOP + plot_height;
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    html! {
        svg.chart viewBox=(view_box) role="img" aria-label="Failed findings per cluster over time" {
            title { "Failed findings per cluster over the last " (CHART_RUNS) " runs" }
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
            line.axis x1=(LEFT) y1=(bottom) x2=(LEFT + plot_width) y2=(bottom) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT + plot_width) y2=(TOP) stroke-dasharray="3 3" {}
            text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (top) }
            text x=(LEFT - 6.0) y=(bottom + 4.0) text-anchor="end" { "0" }
            text x=(LEFT) y=(HEIGHT - 12.0) { (short_time(first)) }
            @if last != first {
                text x=(LEFT + plot_width) y=(HEIGHT - 12.0) text-anchor="end" { (short_time(last)) }
            }
            @for (i, series) in chart.series.iter().enumerate() {
                @let colour = COLOURS[i % COLOURS.len()];
                @let line: Vec<String> = series.points.iter()
                    .map(|&(at, failed)| format!("{},{}", coordinate(x(at)), coordinate(y(failed))))
                    .collect();
                g.series data-cluster=(series.cluster) {
                    @if line.len() > 1 {
                        polyline fill="none" stroke=(colour) stroke-width="2" points=(line.join(" ")) {}
                    }
                    @for &(at, failed) in &series.points {
                        circle cx=(coordinate(x(at))) cy=(coordinate(y(failed))) r="3.5" fill=(colour) {
                            title { (series.cluster) ": " (failed) " failed · " (long_time(at)) }
                        }
                    }
                    @let row = TOP + i as f64 * 18.0;
                    rect x=(WIDTH - RIGHT + 14.0) y=(row) width="10" height="10" fill=(colour) {}
                    text x=(WIDTH - RIGHT + 30.0) y=(row + 9.0) {
                        title { (series.cluster) }
                        (legend_label(&series.cluster))
                    }
                }
            }
        }
        @if chart.omitted > 0 {
            p.muted.small {
                "The " (chart.series.len()) " clusters with the most failed findings are drawn; "
                (chart.omitted) " more are not (filter by cluster to see one)."
            }
        }
    }
}
