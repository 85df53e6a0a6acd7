//! Per-cluster proxy metrics. Only registered clusters get a label of their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use http::StatusCode;
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CodeLabels {
    pub(super) cluster: String,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ClusterLabel {
    pub(super) cluster: String,
}

/// Per-cluster proxy metrics.
#[derive(Debug)]
pub struct ProxyMetrics {
    pub(super) requests: Family<CodeLabels, Counter>,
    pub(super) upstream_latency: Family<ClusterLabel, Histogram>,
    pub(super) in_flight: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
    pub(super) open_upgrades: Family<ClusterLabel, Gauge<i64, AtomicI64>>,
    /// Each cluster's series, found by `&str`: a request builds no label and takes no
    /// family lock once its cluster has been seen.
    series: RwLock<HashMap<String, Arc<ClusterSeries>>>,
}

/// One cluster's series (clones of the families' entries: they count into the same place).
#[derive(Debug)]
pub(super) struct ClusterSeries {
    label: String,
    pub(super) upstream_latency: Histogram,
    pub(super) in_flight: Gauge<i64, AtomicI64>,
    pub(super) open_upgrades: Gauge<i64, AtomicI64>,
    /// `proxy_requests` by status code; a cluster sees a handful of codes.
    codes: RwLock<Vec<(u16, Counter)>>,
}

impl ProxyMetrics {
    pub fn new(metrics: &crate::telemetry::Metrics) -> Self {
        let this = Self {
            requests: Family::default(),
            upstream_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 20))
            }),
            in_flight: Family::default(),
            open_upgrades: Family::default(),
            series: RwLock::default(),
        };
        metrics.register(|registry| {
            registry.register(
                "proxy_requests",
                "Proxied requests by cluster and status code (Portico's own errors included)",
                this.requests.clone(),
            );
            registry.register(
                "proxy_upstream_duration_seconds",
                "Time from sending upstream to the response head, by cluster",
                this.upstream_latency.clone(),
            );
            registry.register(
                "proxy_in_flight_requests",
                "Proxied requests whose response is still streaming, by cluster",
                this.in_flight.clone(),
            );
            registry.register(
                "proxy_open_upgrades",
                "Spliced upgraded connections (exec, attach, port-forward), by cluster",
                this.open_upgrades.clone(),
            );
        });
        this
    }

    /// The series of `cluster` (a registered cluster, or [`super::UNREGISTERED`]).
    pub(super) fn series(&self, cluster: &str) -> Arc<ClusterSeries> {
        if let Some(series) = self.series.read().get(cluster) {
            return series.clone();
        }
        let label = ClusterLabel {
            cluster: cluster.to_owned(),
        };
        let series = Arc::new(ClusterSeries {
            label: cluster.to_owned(),
            upstream_latency: self.upstream_latency.get_or_create(&label).clone(),
            in_flight: self.in_flight.get_or_create(&label).clone(),
            open_upgrades: self.open_upgrades.get_or_create(&label).clone(),
            codes: RwLock::default(),
        });
        self.series
            .write()
            .entry(label.cluster)
            .or_insert(series)
            .clone()
    }

    /// Counts one answered request.
    pub(super) fn count(&self, series: &ClusterSeries, code: StatusCode) {
        let code = code.as_u16();
        if let Some((_, counter)) = series.codes.read().iter().find(|(c, _)| *c == code) {
            counter.inc();
            return;
        }
        let counter = self
            .requests
            .get_or_create(&CodeLabels {
                cluster: series.label.clone(),
                code,
            })
            .clone();
        counter.inc();
        let mut codes = series.codes.write();
        if !codes.iter().any(|(c, _)| *c == code) {
            codes.push((code, counter));
        }
    }
}

/// Decrements a gauge when dropped.
pub(super) struct GaugeGuard(pub(super) Gauge<i64, AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
